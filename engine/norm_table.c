/*
 * norm_table.c — the list of norm kinds and the layout helpers every caller shares.
 * Adding a variant: write norm_<name>.c with one `const struct norm_kind`, add one row below.
 * Read-only after load; thread-safe.
 */
#include "norm.h"

#include <stdio.h>
#include <string.h>

extern const struct norm_kind norm_layernorm;
extern const struct norm_kind norm_rmsnorm;
extern const struct norm_kind norm_dyt;
extern const struct norm_kind norm_derf;
extern const struct norm_kind norm_none;
extern const struct norm_kind norm_crmsnorm;

const struct norm_kind *const norm_table[] = {
	&norm_layernorm,
	&norm_rmsnorm,
	&norm_dyt,
	&norm_derf,
	&norm_none,
	&norm_crmsnorm,
};

const int norm_table_len = (int)(sizeof norm_table / sizeof norm_table[0]);

int norm_find(const char *name)
{
	for (int i = 0; i < norm_table_len; i++)
		if (strcmp(norm_table[i]->name, name) == 0)
			return i;
	return -1;
}

void norm_names(char *buf, size_t cap)
{
	size_t used = 0;
	if (cap == 0)
		return;
	buf[0] = '\0';
	for (int i = 0; i < norm_table_len && used < cap; i++) {
		int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", norm_table[i]->name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

size_t norm_tensor_len(const struct norm_kind *k, int i, int d)
{
	return k->tensors[i].shape == NORM_SHAPE_D ? (size_t)d : 1;
}

size_t norm_param_count(const struct norm_kind *k, int d)
{
	size_t n = 0;
	for (int i = 0; i < k->n_tensors; i++)
		n += norm_tensor_len(k, i, d);
	return n;
}

long norm_tensor_offset(const struct norm_kind *k, const char *name, int d)
{
	size_t off = 0;
	for (int i = 0; i < k->n_tensors; i++) {
		if (strcmp(k->tensors[i].name, name) == 0)
			return (long)off;
		off += norm_tensor_len(k, i, d);
	}
	return -1;
}

void norm_param_init(const struct norm_kind *k, real *p, int d, const struct norm_cfg *cfg)
{
	for (int i = 0; i < k->n_tensors; i++) {
		size_t n = norm_tensor_len(k, i, d);
		real v = 0;
		switch (k->tensors[i].init) {
		case NORM_INIT_ONE: v = 1; break;
		case NORM_INIT_ZERO: v = 0; break;
		case NORM_INIT_ALPHA0: v = (real)cfg->alpha0; break;
		case NORM_INIT_SHIFT0: v = (real)cfg->shift0; break;
		}
		for (size_t j = 0; j < n; j++)
			p[j] = v;
		p += n;
	}
}
