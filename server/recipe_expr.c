/*
 * recipe_expr.c — a check's depth expression (recipe.h): parsed from its "of" text and evaluated
 * over one depth row (depth[i], mean/max/min/sum over Python-style slices, one quotient or
 * difference). Pure; no globals; thread-safe.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recipe.h"

/* ---- expressions ---- */

static void skip_ws(const char **p)
{
	while (**p == ' ')
		(*p)++;
}

static int parse_int(const char **p, int *out)
{
	const char *s = *p;
	int neg = 0;
	long v = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		v = v * 10 + (*s - '0');
		if (v > 100000)
			return -1;
		s++;
	}
	*out = (int)(neg ? -v : v);
	*p = s;
	return 0;
}

/* bound := int | "h"; absent when the next character is ':' or ']'. */
static int parse_bound(const char **p, int *has, int *val, int *half)
{
	skip_ws(p);
	*has = *half = 0;
	if (**p == ':' || **p == ']')
		return 0;
	if (**p == 'h') {
		(*p)++;
		*has = *half = 1;
		return 0;
	}
	if (parse_int(p, val) != 0)
		return -1;
	*has = 1;
	return 0;
}

static int parse_term(const char **p, struct recipe_term *t, char *why, size_t cap)
{
	static const struct { const char *w; int kind; } aggs[] = {
		{ "mean", RECIPE_MEAN }, { "max", RECIPE_MAX }, { "min", RECIPE_MIN }, { "sum", RECIPE_SUM },
	};
	memset(t, 0, sizeof *t);
	skip_ws(p);
	if (strncmp(*p, "depth[", 6) == 0) {
		*p += 6;
		skip_ws(p);
		if (parse_int(p, &t->index) != 0) {
			snprintf(why, cap, "depth[...] needs a layer index (negative counts from the "
				 "end), e.g. depth[-1]");
			return -1;
		}
		skip_ws(p);
		if (**p != ']') {
			snprintf(why, cap, "expected ']' after the layer index");
			return -1;
		}
		(*p)++;
		t->kind = RECIPE_AT;
		return 0;
	}
	for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++) {
		size_t n = strlen(aggs[i].w);
		if (strncmp(*p, aggs[i].w, n) != 0 || isalnum((unsigned char)(*p)[n]))
			continue;
		*p += n;
		t->kind = aggs[i].kind;
		skip_ws(p);
		if (**p != '[')
			return 0;
		(*p)++;
		if (parse_bound(p, &t->has_lo, &t->lo, &t->lo_half) != 0)
			goto bad_slice;
		skip_ws(p);
		if (**p != ':')
			goto bad_slice;
		(*p)++;
		if (parse_bound(p, &t->has_hi, &t->hi, &t->hi_half) != 0)
			goto bad_slice;
		skip_ws(p);
		if (**p != ']')
			goto bad_slice;
		(*p)++;
		return 0;
	}
	snprintf(why, cap, "expected depth[i], mean, max, min or sum (optionally over a slice such "
		 "as mean[h:]) at \"%.20s\"", *p);
	return -1;
bad_slice:
	snprintf(why, cap, "a slice is [lo:hi] with integers or h (half the depth), e.g. mean[h:] "
		 "or max[:-1]");
	return -1;
}

int recipe_expr_parse(const char *s, struct recipe_expr *e, char *why, size_t cap)
{
	const char *p = s;
	memset(e, 0, sizeof *e);
	if (parse_term(&p, &e->t[0], why, cap) != 0)
		return -1;
	e->n = 1;
	skip_ws(&p);
	if (*p == '/' || *p == '-') {
		e->op = *p++;
		if (parse_term(&p, &e->t[1], why, cap) != 0)
			return -1;
		e->n = 2;
		skip_ws(&p);
	}
	if (*p) {
		snprintf(why, cap, "unexpected \"%.20s\" (an expression is one term, or two joined by "
			 "'/' or '-')", p);
		return -1;
	}
	return 0;
}

/* Python slice bound over n: negative from the end, clamped to 0..n. */
static int bound_of(int has, int val, int half, int n, int dflt)
{
	if (!has)
		return dflt;
	int b = half ? n / 2 : val;
	if (b < 0)
		b += n;
	return b < 0 ? 0 : b > n ? n : b;
}

static double term_eval(const struct recipe_term *t, const double *v, int n)
{
	if (t->kind == RECIPE_AT) {
		int i = t->index < 0 ? n + t->index : t->index;
		return i >= 0 && i < n ? v[i] : NAN;
	}
	int lo = bound_of(t->has_lo, t->lo, t->lo_half, n, 0);
	int hi = bound_of(t->has_hi, t->hi, t->hi_half, n, n);
	if (lo >= hi)
		return NAN;
	double acc = t->kind == RECIPE_MAX ? -INFINITY : t->kind == RECIPE_MIN ? INFINITY : 0;
	for (int i = lo; i < hi; i++) {
		if (isnan(v[i]))
			return NAN;
		if (t->kind == RECIPE_MAX)
			acc = v[i] > acc ? v[i] : acc;
		else if (t->kind == RECIPE_MIN)
			acc = v[i] < acc ? v[i] : acc;
		else
			acc += v[i];
	}
	return t->kind == RECIPE_MEAN ? acc / (hi - lo) : acc;
}

double recipe_expr_eval(const struct recipe_expr *e, const double *v, int n)
{
	double a = term_eval(&e->t[0], v, n);
	if (e->n == 1)
		return a;
	double b = term_eval(&e->t[1], v, n);
	return e->op == '/' ? a / b : a - b;
}
