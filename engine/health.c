/*
 * health.c — run health judgements (see health.h). Pure state over what the trainer measured.
 */
#include "health.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl.h"

static const char *const names[HEALTH_COUNT] = {
	[HEALTH_OK] = "ok", [HEALTH_SPIKE] = "spike", [HEALTH_STALLED] = "stalled",
	[HEALTH_DEAD] = "dead", [HEALTH_DIVERGED] = "diverged",
};

const char *health_name(int status)
{
	return status >= 0 && status < HEALTH_COUNT ? names[status] : "unknown";
}

int health_parse(const char *name)
{
	for (int i = 0; name && i < HEALTH_COUNT; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

void health_restore(struct health *h, int status, long step, const char *reason)
{
	if (status <= HEALTH_OK || status >= HEALTH_COUNT)
		return;
	h->status = status;
	h->step = step;
	snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
	if (status == HEALTH_SPIKE) {
		h->spiked = 1;
		h->spike_step = step;
		snprintf(h->spike_reason, sizeof h->spike_reason, "%s", h->reason);
	}
}

double health_entropy(const uint64_t *counts, int k)
{
	double n = 0, h = 0;
	for (int i = 0; i < k; i++)
		n += (double)counts[i];
	if (n <= 0)
		return NAN;
	for (int i = 0; i < k; i++)
		if (counts[i]) {
			double p = (double)counts[i] / n;
			h -= p * log(p);
		}
	return h;
}

int health_init(struct health *h, const struct spec *s, double entropy)
{
	memset(h, 0, sizeof *h);
	h->entropy = entropy;
	h->recent = nl_calloc((size_t)s->health.spike_window, sizeof *h->recent);
	return h->recent ? 0 : NL_ENOMEM;
}

void health_free(struct health *h)
{
	nl_free(h->recent);
	memset(h, 0, sizeof *h);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median of the ring (n ≥ 1 values). */
static double median(const struct health *h, double *tmp)
{
	memcpy(tmp, h->recent, sizeof *tmp * (size_t)h->n_recent);
	qsort(tmp, (size_t)h->n_recent, sizeof *tmp, cmp_double);
	int n = h->n_recent;
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void set(struct health *h, int status, long step, const char *reason)
{
	h->status = status;
	h->step = step;
	snprintf(h->reason, sizeof h->reason, "%s", reason);
}

void health_loss(struct health *h, const struct spec *s, long step, double loss)
{
	const struct spec_health *c = &s->health;
	double tmp[HEALTH_WINDOW_MAX];
	char why[HEALTH_REASON_MAX];
	if (!isfinite(loss) || h->status >= HEALTH_DEAD)
		return;
	/* a spike: judged against the median of a full window before this loss joins it */
	if (h->n_recent == c->spike_window) {
		double med = median(h, tmp);
		if (loss > c->spike_factor * med && !h->spiked) {
			h->spiked = 1;
			h->spike_step = step;
			snprintf(h->spike_reason, sizeof h->spike_reason, "spike at step %ld: loss %.4g is "
				 "%.3g× the median %.4g of the %d steps before", step, loss, loss / med,
				 med, c->spike_window);
			if (h->status < HEALTH_SPIKE)
				set(h, HEALTH_SPIKE, step, h->spike_reason);
		}
	}
	h->recent[h->at] = loss;
	h->at = (h->at + 1) % c->spike_window;
	if (h->n_recent < c->spike_window)
		h->n_recent++;

	/* a stall: after stall_after of the steps, the recent median at the unigram entropy */
	if (!isfinite(h->entropy) || h->entropy <= 0 ||
	    (double)step < c->stall_after * (double)s->train.steps)
		return;
	double med = median(h, tmp);
	int stalled = fabs(med - h->entropy) <= c->stall_margin * h->entropy;
	if (stalled && h->status < HEALTH_STALLED) {
		snprintf(why, sizeof why, "stalled at step %ld: loss %.4g (median of the last %d steps) "
			 "is within %.3g%% of the data's unigram entropy %.4g nats: only symbol "
			 "frequencies were learned", step, med, h->n_recent, c->stall_margin * 100,
			 h->entropy);
		set(h, HEALTH_STALLED, step, why);
	} else if (!stalled && h->status == HEALTH_STALLED) {
		if (h->spiked)
			set(h, HEALTH_SPIKE, h->spike_step, h->spike_reason);
		else
			set(h, HEALTH_OK, 0, "");
	}
}

void health_check(struct health *h, const struct spec *s, long step, const struct health_obs *o)
{
	int sat = o->sat_max >= HEALTH_SAT_DEAD;
	int zero = o->grads_known && o->grads_all_zero;
	if (h->status >= HEALTH_DEAD)
		return;
	if (!sat && !zero) {
		h->dead_streak = 0;
		return;
	}
	if (h->dead_streak++ == 0)
		h->dead_since = step;
	if (h->dead_streak < s->health.dead_checks)
		return;
	char why[HEALTH_REASON_MAX];
	int n = snprintf(why, sizeof why, "dead at step %ld: ", h->dead_since);
	if (sat && o->n_sat > 1)
		n += snprintf(why + n, sizeof why - (size_t)n, "%d norm sites saturated, %s most "
			      "(P(|αx+s|>2) = %.4g)%s", o->n_sat, o->sat_site, o->sat_max,
			      zero ? ", " : "");
	else if (sat)
		n += snprintf(why + n, sizeof why - (size_t)n, "%s saturated (P(|αx+s|>2) = %.4g)%s",
			      o->sat_site, o->sat_max, zero ? ", " : "");
	if (zero && n > 0 && (size_t)n < sizeof why)
		n += snprintf(why + n, sizeof why - (size_t)n, "gradient to every block 0");
	if (n > 0 && (size_t)n < sizeof why)
		snprintf(why + n, sizeof why - (size_t)n, " (%d checks in a row, to step %ld)",
			 h->dead_streak, step);
	set(h, HEALTH_DEAD, h->dead_since, why);
}

void health_diverged(struct health *h, long step, const char *why)
{
	set(h, HEALTH_DIVERGED, step, why);
}

int health_should_stop(const struct health *h, const struct spec *s)
{
	return h->status == HEALTH_DEAD && s->train.on_dead == SPEC_ON_DEAD_STOP;
}
