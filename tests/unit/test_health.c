/*
 * test_health — run health: the judgements on made-up loss curves and checks (spike, stall and its
 * recovery, the dead streak, the precedence of findings), the unigram entropy, and real training
 * on the default corpus: DyT at today's defaults ends dead within 100 steps under on_dead=stop,
 * with the reason naming the saturated sites, while LayerNorm at the same settings stays ok.
 */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "blas.h"
#include "health.h"
#include "spec.h"
#include "train.h"

static void spec_from(struct spec *s, const char *json)
{
	struct spec_errors e;
	int rc = spec_parse(s, json, strlen(json), NULL, &e);
	CHECKF(rc == 0, "%s: %s %s", json, e.n ? e.e[0].pointer : "", e.n ? e.e[0].msg : "");
}

static void test_entropy(void)
{
	uint64_t uni[4] = { 5, 5, 5, 5 }, one[3] = { 0, 7, 0 }, skew[2] = { 1, 3 };
	CHECK(fabs(health_entropy(uni, 4) - log(4)) < 1e-12);
	CHECK(health_entropy(one, 3) == 0);
	CHECK(fabs(health_entropy(skew, 2) - (-(0.25 * log(0.25) + 0.75 * log(0.75)))) < 1e-12);
	uint64_t none[2] = { 0, 0 };
	CHECK(isnan(health_entropy(none, 2)));
}

static void test_spike(void)
{
	struct spec s;
	struct health h;
	spec_from(&s, "{\"train\":{\"steps\":1000},\"health\":{\"spike_window\":10,\"spike_factor\":2}}");
	CHECK(health_init(&h, &s, 3.0) == 0);
	long step = 0;
	for (int i = 0; i < 10; i++)
		health_loss(&h, &s, ++step, 2.0 - 0.01 * i);
	CHECK(h.status == HEALTH_OK);
	health_loss(&h, &s, ++step, 3.5);            /* 1.8× the median: not a spike */
	CHECK(h.status == HEALTH_OK);
	health_loss(&h, &s, ++step, 4.5);            /* 2.4×: a spike, at this step */
	CHECKF(h.status == HEALTH_SPIKE && h.step == 12 && strstr(h.reason, "spike at step 12"),
	       "%s %ld %s", health_name(h.status), h.step, h.reason);
	health_loss(&h, &s, ++step, 9.0);            /* the first spike is the one kept */
	CHECK(h.step == 12);
	health_free(&h);
}

static void test_stall(void)
{
	struct spec s;
	struct health h;
	spec_from(&s, "{\"train\":{\"steps\":100},\"health\":{\"spike_window\":10,\"stall_after\":0.5}}");
	CHECK(health_init(&h, &s, 3.0) == 0);
	long step = 0;
	while (step < 49)
		health_loss(&h, &s, ++step, 3.01);   /* on the plateau, but too early to judge */
	CHECK(h.status == HEALTH_OK);
	health_loss(&h, &s, ++step, 3.01);
	CHECKF(h.status == HEALTH_STALLED && h.step == 50 && strstr(h.reason, "unigram entropy 3"),
	       "%s %ld %s", health_name(h.status), h.step, h.reason);
	/* leaving the plateau: the median of the window falls below, and the run is not stalled */
	for (int i = 0; i < 10; i++)
		health_loss(&h, &s, ++step, 2.5);
	CHECKF(h.status == HEALTH_OK && h.step == 0, "%s", health_name(h.status));
	/* 1% is the margin: 3.02 is 0.67% off, 3.04 is 1.3% off */
	for (int i = 0; i < 10; i++)
		health_loss(&h, &s, ++step, 3.04);
	CHECK(h.status == HEALTH_OK);
	for (int i = 0; i < 10; i++)
		health_loss(&h, &s, ++step, 2.98);
	CHECK(h.status == HEALTH_STALLED);
	health_free(&h);
}

static void test_dead(void)
{
	struct spec s;
	struct health h;
	struct health_obs live = { .grads_known = 1, .grads_all_zero = 0, .sat_max = 0.5 };
	struct health_obs sat = { .grads_known = 1, .grads_all_zero = 0, .sat_max = 0.9995,
				  .sat_site = "norm_f", .n_sat = 1 };
	struct health_obs zero = { .grads_known = 1, .grads_all_zero = 1, .sat_max = -1 };
	spec_from(&s, "{\"health\":{\"dead_checks\":3}}");
	CHECK(health_init(&h, &s, 3.0) == 0);
	health_check(&h, &s, 10, &sat);
	health_check(&h, &s, 20, &sat);
	health_check(&h, &s, 30, &live);             /* the streak breaks */
	health_check(&h, &s, 40, &zero);
	health_check(&h, &s, 50, &sat);
	CHECK(h.status == HEALTH_OK && !health_should_stop(&h, &s));
	health_check(&h, &s, 60, &zero);
	CHECKF(h.status == HEALTH_DEAD && h.step == 40 && strstr(h.reason, "dead at step 40") &&
	       strstr(h.reason, "gradient to every block 0") && strstr(h.reason, "to step 60"),
	       "%s %ld %s", health_name(h.status), h.step, h.reason);
	CHECK(health_should_stop(&h, &s));
	/* a dead run's later losses change nothing; divergence outranks it */
	health_loss(&h, &s, 61, 3.0);
	CHECK(h.status == HEALTH_DEAD);
	health_diverged(&h, 70, "diverged at step 70");
	CHECK(h.status == HEALTH_DIVERGED && h.step == 70);
	health_free(&h);

	struct spec c;
	spec_from(&c, "{\"train\":{\"on_dead\":\"continue\"},\"health\":{\"dead_checks\":1}}");
	CHECK(health_init(&h, &c, 3.0) == 0);
	health_check(&h, &c, 10, &sat);
	CHECK(h.status == HEALTH_DEAD && strstr(h.reason, "norm_f saturated") && !health_should_stop(&h, &c));
	health_free(&h);
}

/* Real training on the default corpus at the settings the issue measured (L=4 d=128 h=4, T=128,
 * B=16, defaults otherwise): returns the status the run ended with, the step, the reason. */
static int train_until_done(const char *type, long *step, char *reason, size_t cap)
{
	char json[256];
	struct spec s;
	struct trainer t;
	struct nl_err err = { 0 };
	snprintf(json, sizeof json, "{\"norm\":{\"type\":\"%s\"},\"train\":{\"steps\":100},"
		 "\"threads\":1}", type);
	spec_from(&s, json);
	if (trainer_init(&t, &s, "var/data/kjv.txt", &err) != 0) {
		CHECKF(0, "trainer_init: %s", err.msg);
		return -1;
	}
	int rc = 0;
	while (!trainer_done(&t) && rc == 0)
		rc = trainer_step(&t, NULL, &err);
	*step = t.step;
	snprintf(reason, cap, "%s", t.health.reason);
	int status = t.health.status;
	CHECKF((rc == NL_EDEAD) == (status == HEALTH_DEAD), "%s: rc %d, health %s", type, rc,
	       health_name(status));
	CHECKF(fabs(t.health.entropy - 3.0749) < 1e-3, "KJV unigram entropy %.6f nats", t.health.entropy);
	trainer_free(&t);
	return status;
}

static void test_training(void)
{
	long step;
	char reason[HEALTH_REASON_MAX];
	int st = train_until_done("dyt", &step, reason, sizeof reason);
	CHECKF(st == HEALTH_DEAD && step <= 100 && strstr(reason, "saturated"),
	       "dyt: %s at step %ld: %s", health_name(st), step, reason);
	printf("figure: dyt at the defaults stopped at step %ld: %s\n", step, reason);
	st = train_until_done("layernorm", &step, reason, sizeof reason);
	CHECKF(st == HEALTH_OK && step == 100, "layernorm: %s at step %ld: %s", health_name(st), step,
	       reason);
}

int main(int argc, char **argv)
{
	blas_setup(argc, argv);   /* OpenBLAS on one thread, as the CLI and daemon run it */
	test_entropy();
	test_spike();
	test_stall();
	test_dead();
	test_training();
	return test_finish("health");
}
