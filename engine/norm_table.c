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
extern const struct norm_kind norm_batchnorm;
extern const struct norm_kind norm_powernorm;
extern const struct norm_kind norm_un;

const struct norm_kind *const norm_table[] = {
	&norm_layernorm,
	&norm_rmsnorm,
	&norm_dyt,
	&norm_derf,
	&norm_none,
	&norm_crmsnorm,
	&norm_batchnorm,
	&norm_powernorm,
	&norm_un,
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

size_t norm_buffer_len(const struct norm_kind *k, int i, int d, const struct norm_cfg *cfg)
{
	switch (k->buffers[i].shape) {
	case NORM_BUF_D: return (size_t)d;
	case NORM_BUF_SCALAR: return 1;
	case NORM_BUF_WINDOW_D: return (size_t)cfg->un_window * (size_t)d;
	}
	return 0;
}

size_t norm_buffer_count(const struct norm_kind *k, int d, const struct norm_cfg *cfg)
{
	size_t n = 0;
	for (int i = 0; i < k->n_buffers; i++)
		n += norm_buffer_len(k, i, d, cfg);
	return n;
}

long norm_buffer_offset(const struct norm_kind *k, const char *name, int d,
			const struct norm_cfg *cfg)
{
	size_t off = 0;
	for (int i = 0; i < k->n_buffers; i++) {
		if (strcmp(k->buffers[i].name, name) == 0)
			return (long)off;
		off += norm_buffer_len(k, i, d, cfg);
	}
	return -1;
}

void norm_buffer_init(const struct norm_kind *k, real *buf, int d, const struct norm_cfg *cfg)
{
	for (int i = 0; i < k->n_buffers; i++) {
		size_t n = norm_buffer_len(k, i, d, cfg);
		for (size_t j = 0; j < n; j++)
			buf[j] = (real)k->buffers[i].init;
		buf += n;
	}
}

size_t norm_chan_reals(const struct norm_kind *k, int d)
{
	return (size_t)k->chan_per_channel * (size_t)d + (size_t)k->chan_scalars;
}

size_t norm_partials(const struct norm_kind *k, int d)
{
	size_t n = norm_param_count(k, d);
	if (k->batch) {
		size_t f = (size_t)k->batch->n_fwd_stats * (size_t)d;
		size_t b = (size_t)k->batch->n_bwd_stats * (size_t)d;
		n = f > n ? f : n;
		n = b > n ? b : n;
	}
	return n ? n : 1;
}

void norm_batch_forward_serial(const struct norm_kind *k, const struct norm_batch *b, double *sum)
{
	const struct norm_batch_ops *o = k->batch;
	if (b->mode == NORM_MODE_EVAL) {
		o->fwd_finish(b, NULL);
	} else {
		memset(sum, 0, sizeof(double) * (size_t)o->n_fwd_stats * (size_t)b->d);
		o->fwd_stats(sum, b, 0, b->N);
		o->fwd_finish(b, sum);
	}
	o->fwd_apply(b, 0, b->N);
}

void norm_batch_backward_serial(const struct norm_kind *k, const struct norm_batch *b, double *sum)
{
	const struct norm_batch_ops *o = k->batch;
	memset(sum, 0, sizeof(double) * (size_t)o->n_bwd_stats * (size_t)b->d);
	o->bwd_stats(sum, b, 0, b->N);
	o->bwd_finish(b, sum);
	if (o->bwd_apply)
		o->bwd_apply(b, 0, b->N);
}
