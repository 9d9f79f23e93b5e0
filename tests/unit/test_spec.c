/*
 * test_spec.c — the experiment spec: defaults, validation messages and pointers, canonical form
 * and hash stability, SHA-256 against the FIPS 180-2 vectors, hostile input (prefixes, random
 * mutations, deep nesting, oversize) and every allocation failing in turn.
 * cJSON is routed through nl_malloc so the allocation-failure loop reaches it too.
 * Single-threaded.
 */
#define _POSIX_C_SOURCE 200809L
#include "nl.h"
#include "norm.h"
#include "sha256.h"
#include "spec.h"
#include "../test.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>

/* A spec with every field set away from its default. */
static const char *const full_spec =
	"{\n"
	"  \"name\": \"derf-peri \\\"x\\\" \\u00e9\",\n"
	"  \"model\": {\"arch\": \"gpt\", \"n_layer\": 6, \"d_model\": 96, \"n_head\": 3, \"d_ff\": 200,\n"
	"            \"seq_len\": 64, \"tie_head\": false, \"bias\": false, \"scaled_init\": false,\n"
	"            \"init_std\": 0.015},\n"
	"  \"norm\":  {\"type\": \"derf\", \"placement\": \"peri\",\n"
	"            \"alpha0\": {\"attn\": 0.5, \"ffn\": 0.25, \"final\": 2.5},\n"
	"            \"shift0\": -0.3, \"eps\": 1e-6, \"mix_post_ratio\": 0.3, \"embed_scale\": \"none\",\n"
	"            \"embed_norm\": true},\n"
	"  \"data\":  {\"source\": \"text\", \"path\": \"/tmp/corpus.txt\", \"val_fraction\": 0.1},\n"
	"  \"train\": {\"steps\": 2000, \"batch_size\": 8, \"lr\": 3e-4, \"warmup\": 50,\n"
	"            \"schedule\": \"constant\", \"min_lr\": 1e-5, \"weight_decay\": 0.05,\n"
	"            \"grad_clip\": 0, \"beta1\": 0.85, \"beta2\": 0.95, \"adam_eps\": 1e-10},\n"
	"  \"probe\": {\"every\": 5, \"depth_every\": 25, \"samples_every\": 250, \"samples\": 1000,\n"
	"            \"val_every\": 200, \"val_batches\": 2},\n"
	"  \"seed\": 1234567890123,\n"
	"  \"device\": \"cpu\",\n"
	"  \"threads\": 2\n"
	"}\n";

/* Parse from an exact-size heap copy, so ASan sees any read past len. */
static int parse_n(struct spec *s, const char *txt, size_t len, const struct spec_limits *lim,
		   struct spec_errors *e)
{
	char *buf = malloc(len ? len : 1);
	int rc;
	if (!buf)
		return -999;
	memcpy(buf, txt, len);
	rc = spec_parse(s, buf, len, lim, e);
	free(buf);
	return rc;
}

static int parse_str(struct spec *s, const char *txt, struct spec_errors *e)
{
	return parse_n(s, txt, strlen(txt), NULL, e);
}

static int msgs_are_one_line(const struct spec_errors *e)
{
	for (int i = 0; i < e->n; i++)
		if (!e->e[i].msg[0] || strchr(e->e[i].msg, '\n'))
			return 0;
	return 1;
}

static void dump_errs(const struct spec_errors *e)
{
	for (int i = 0; i < e->n; i++)
		fprintf(stderr, "    [%s] %s\n", e->e[i].pointer, e->e[i].msg);
}

/* Expects rejection with code rc and an error at `ptr` whose message holds each of sub1, sub2. */
static void expect_err(int line, const char *txt, int rc_want, const char *ptr, const char *sub1,
		       const char *sub2)
{
	struct spec s;
	struct spec_errors e;
	int found = 0;
	int rc = parse_str(&s, txt, &e);
	for (int i = 0; i < e.n; i++)
		if (strcmp(e.e[i].pointer, ptr) == 0 && (!sub1 || strstr(e.e[i].msg, sub1)) &&
		    (!sub2 || strstr(e.e[i].msg, sub2)))
			found = 1;
	CHECKF(rc == rc_want, "line %d: %s: rc %d, want %d", line, txt, rc, rc_want);
	CHECKF(found, "line %d: %s: no error at \"%s\" with \"%s\" / \"%s\"", line, txt, ptr,
	       sub1 ? sub1 : "", sub2 ? sub2 : "");
	CHECKF(msgs_are_one_line(&e), "line %d: %s: messages not one line", line, txt);
	if (!found || rc != rc_want)
		dump_errs(&e);
}
#define EXPECT_ERR(txt, rc, ptr, s1, s2) expect_err(__LINE__, txt, rc, ptr, s1, s2)

static void hash_of(const char *txt, char hex[65])
{
	struct spec s;
	struct spec_errors e;
	hex[0] = '\0';
	if (parse_str(&s, txt, &e) != 0) {
		dump_errs(&e);
		return;
	}
	if (spec_hash(&s, hex) != 0)
		hex[0] = '\0';
}

/* ---- SHA-256 ---- */

static void digest_hex(const void *p, size_t n, char hex[65])
{
	uint8_t d[SHA256_LEN];
	sha256(p, n, d);
	sha256_hex(d, hex);
}

static void test_sha256(void)
{
	char hex[65];
	static const char v56[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	const char *million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

	digest_hex("abc", 3, hex);
	CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	digest_hex("", 0, hex);
	CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
	CHECK(strlen(v56) == 56);
	digest_hex(v56, 56, hex);
	CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);

	/* FIPS 180-2's second long vector (112 bytes), and lengths around the padding edges
	 * (55 fits the length in the same block, 56 does not); digests from an independent
	 * implementation (Python hashlib). */
	digest_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
		   "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu", 112, hex);
	CHECK(strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1") == 0);
	static const struct { size_t n; const char *hex; } edges[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	char as[128];
	memset(as, 'a', sizeof as);
	for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
		digest_hex(as, edges[i].n, hex);
		CHECKF(strcmp(hex, edges[i].hex) == 0, "%zu x 'a'", edges[i].n);
	}

	char *a = malloc(1000000);
	CHECK(a != NULL);
	if (!a)
		return;
	memset(a, 'a', 1000000);
	digest_hex(a, 1000000, hex);
	CHECK(strcmp(hex, million_a) == 0);

	/* Incremental, in chunk sizes that straddle block boundaries, gives the same digest. */
	static const size_t chunks[] = { 1, 3, 55, 56, 63, 64, 65, 127, 1000 };
	for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
		struct sha256_ctx ctx;
		uint8_t d[SHA256_LEN];
		size_t done = 0;
		sha256_init(&ctx);
		while (done < 1000000) {
			size_t take = 1000000 - done < chunks[c] ? 1000000 - done : chunks[c];
			sha256_update(&ctx, a + done, take);
			done += take;
		}
		sha256_update(&ctx, NULL, 0);
		sha256_final(&ctx, d);
		sha256_hex(d, hex);
		CHECKF(strcmp(hex, million_a) == 0, "chunk %zu", chunks[c]);
	}
	free(a);
}

/* ---- defaults ---- */

static void test_defaults(void)
{
	struct spec s, d;
	struct spec_errors e;
	int rc = parse_str(&s, "{}", &e);
	CHECK(rc == 0);
	CHECK(e.n == 0);
	spec_defaults(&d);
	CHECK(memcmp(&s, &d, sizeof s) == 0);

	CHECK(strcmp(s.name, "") == 0);
	CHECK(strcmp(s.model.arch, "gpt") == 0);
	CHECK(s.model.n_layer == 4 && s.model.d_model == 128 && s.model.n_head == 4);
	CHECK(s.model.d_ff == 512 && s.model.seq_len == 128);
	CHECK(s.model.tie_head == 1 && s.model.bias == 1 && s.model.scaled_init == 1);
	CHECK(s.model.init_std == 0.02);
	CHECK(s.norm.type == norm_find("layernorm") && s.norm.type >= 0);
	CHECK(s.norm.placement == SPEC_PLACE_PRE);
	CHECK(s.norm.alpha_attn == 1.0 && s.norm.alpha_ffn == 1.0 && s.norm.alpha_final == 1.0);
	CHECK(s.norm.shift0 == 0.0);
	CHECK(s.norm.eps == norm_table[s.norm.type]->default_eps);
	CHECK(s.norm.mix_post_ratio == 0.25);
	CHECK(s.norm.embed_scale == 0 && s.norm.embed_norm == 0);
	CHECK(strcmp(s.data.source, "text") == 0 && strcmp(s.data.path, "kjv") == 0);
	CHECK(s.data.val_fraction == 0.05);
	CHECK(s.train.steps == 1000 && s.train.batch_size == 16 && s.train.lr == 1e-3);
	CHECK(s.train.warmup == 100 && s.train.schedule == SPEC_SCHED_COSINE);
	CHECK(s.train.min_lr == 1e-4 && s.train.weight_decay == 0.1 && s.train.grad_clip == 1.0);
	CHECK(s.train.beta1 == 0.9 && s.train.beta2 == 0.99 && s.train.adam_eps == 1e-8);
	CHECK(s.probe.every == 10 && s.probe.depth_every == 50 && s.probe.samples_every == 500);
	CHECK(s.probe.samples == 4096 && s.probe.val_every == 100 && s.probe.val_batches == 4);
	CHECK(s.seed == 1 && strcmp(s.device, "cpu") == 0 && s.threads == 1);

	/* Whitespace and a UTF-8 BOM around "{}" are fine. */
	CHECK(parse_str(&s, " \n\t{ }\r\n", &e) == 0);
	CHECK(parse_str(&s, "\xef\xbb\xbf{}", &e) == 0);
	/* errs may be NULL. */
	CHECK(spec_parse(&s, "{}", 2, NULL, NULL) == 0);
	CHECK(spec_parse(&s, "{\"seed\":-1}", 11, NULL, NULL) == NL_EINVAL);

	/* Dependent defaults. */
	CHECK(parse_str(&s, "{\"train\":{\"steps\":40}}", &e) == 0 && s.train.warmup == 40);
	CHECK(parse_str(&s, "{\"train\":{\"lr\":5e-5}}", &e) == 0 && s.train.min_lr == 5e-5);
	CHECK(parse_str(&s, "{\"model\":{\"d_model\":64}}", &e) == 0 && s.model.d_ff == 256);
	CHECK(parse_str(&s, "{\"norm\":{\"type\":\"rmsnorm\"}}", &e) == 0 &&
	      s.norm.eps == norm_table[norm_find("rmsnorm")]->default_eps);

	CHECK(strcmp(spec_placement_name(SPEC_PLACE_PRE), "pre") == 0);
	CHECK(strcmp(spec_placement_name(SPEC_PLACE_LNS), "lns") == 0);
	CHECK(strcmp(spec_placement_name(SPEC_PLACE_MIX), "mix") == 0);
	CHECK(spec_placement_name(99) != NULL);
}

static void test_embed_scale_and_scaled_init(void)
{
	struct spec s;
	struct spec_errors e;
	static const struct { const char *txt; int want; } es[] = {
		{ "{\"norm\":{\"type\":\"dyt\"}}", 1 },
		{ "{\"norm\":{\"type\":\"derf\"}}", 1 },
		{ "{\"norm\":{\"type\":\"layernorm\"}}", 0 },
		{ "{\"norm\":{\"type\":\"rmsnorm\"}}", 0 },
		{ "{\"norm\":{\"type\":\"dyt\",\"embed_scale\":\"auto\"}}", 1 },
		{ "{\"norm\":{\"type\":\"dyt\",\"embed_scale\":\"none\"}}", 0 },
		{ "{\"norm\":{\"type\":\"layernorm\",\"embed_scale\":\"learned\"}}", 1 },
	};
	for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
		int rc = parse_str(&s, es[i].txt, &e);
		CHECKF(rc == 0 && s.norm.embed_scale == es[i].want, "%s: rc %d embed_scale %d",
		       es[i].txt, rc, s.norm.embed_scale);
	}
	/* The canonical form carries the resolved value, never "auto". */
	CHECK(parse_str(&s, "{\"norm\":{\"type\":\"dyt\"}}", &e) == 0);
	char *c = spec_canonical(&s);
	CHECK(c && strstr(c, "\"embed_scale\":\"learned\"") && !strstr(c, "auto"));
	nl_free(c);
	CHECK(parse_str(&s, "{}", &e) == 0);
	c = spec_canonical(&s);
	CHECK(c && strstr(c, "\"embed_scale\":\"none\""));
	nl_free(c);

	CHECK(parse_str(&s, "{\"norm\":{\"placement\":\"lns\"}}", &e) == 0);
	CHECK(s.norm.placement == SPEC_PLACE_LNS && s.model.scaled_init == 0);
	CHECK(parse_str(&s, "{\"norm\":{\"placement\":\"lns\"},\"model\":{\"scaled_init\":true}}",
			&e) == 0 && s.model.scaled_init == 1);
	CHECK(parse_str(&s, "{\"norm\":{\"placement\":\"peri\"}}", &e) == 0 &&
	      s.model.scaled_init == 1 && s.norm.placement == SPEC_PLACE_PERI);
}

/* ---- canonical form ---- */

/* Every object's keys strictly increasing by strcmp, at every level; counts objects' keys. */
static int keys_sorted(const cJSON *o, int *nkeys)
{
	const char *prev = NULL;
	for (const cJSON *it = o->child; it; it = it->next) {
		if (prev && strcmp(prev, it->string) >= 0)
			return 0;
		prev = it->string;
		(*nkeys)++;
		if (cJSON_IsObject(it) && !keys_sorted(it, nkeys))
			return 0;
	}
	return 1;
}

/* parse → canonical → parse: identical struct and identical text, with want_keys keys in all. */
static void check_round_trip_n(const char *txt, int want_keys)
{
	struct spec a, b;
	struct spec_errors e;
	char *ca = NULL, *cb = NULL;
	int rc = parse_str(&a, txt, &e);
	CHECKF(rc == 0, "%s", txt);
	if (rc) {
		dump_errs(&e);
		return;
	}
	ca = spec_canonical(&a);
	CHECK(ca != NULL);
	if (!ca)
		return;
	rc = parse_str(&b, ca, &e);
	CHECKF(rc == 0, "canonical does not parse: %s", ca);
	if (rc == 0) {
		CHECKF(memcmp(&a, &b, sizeof a) == 0, "struct differs after round trip: %s", ca);
		cb = spec_canonical(&b);
		CHECKF(cb && strcmp(ca, cb) == 0, "canonical differs:\n%s\n%s", ca, cb ? cb : "");
	}
	/* No whitespace outside strings is easier to assert as: no newline, no ": ". */
	CHECK(!strchr(ca, '\n') && !strstr(ca, "\": "));
	cJSON *j = cJSON_Parse(ca);
	int nkeys = 0;
	CHECK(j != NULL);
	if (j) {
		CHECKF(keys_sorted(j, &nkeys), "keys not sorted: %s", ca);
		/* want_keys, plus model.head_bias where it is true (left out while false) */
		int want = want_keys + (a.model.head_bias != 0);
		CHECKF(nkeys == want, "canonical has %d keys, want %d (all fields): %s", nkeys, want,
		       ca);
		cJSON_Delete(j);
	}
	nl_free(ca);
	nl_free(cb);
}

/* Every field of a spec whose norm kind reads no extra hyper-parameters. */
static void check_round_trip(const char *txt)
{
	check_round_trip_n(txt, 51);
}

static void test_canonical(void)
{
	struct spec s;
	struct spec_errors e;
	char *c;

	check_round_trip("{}");
	check_round_trip(full_spec);
	check_round_trip("{\"train\":{\"lr\":0.30000000000000004,\"min_lr\":1e-300},"
			 "\"model\":{\"init_std\":5e-324},\"norm\":{\"shift0\":-0.1,\"eps\":0.1}}");
	check_round_trip("{\"seed\":9007199254740992,\"name\":\"\\u00e9\\ud83d\\ude00 \\u2028\\\"\\\\\\/\"}");
	check_round_trip("{\"seed\":0,\"train\":{\"steps\":1,\"grad_clip\":1e6},\"norm\":{\"shift0\":-0}}");
	check_round_trip("{\"norm\":{\"type\":\"dyt\",\"placement\":\"lns\"},\"data\":{\"val_fraction\":0.001}}");
	check_round_trip("{\"norm\":{\"type\":\"none\",\"placement\":\"mix\",\"alpha0\":{\"attn\":100}}}");

	/* Full spec values land where they should. */
	CHECK(parse_str(&s, full_spec, &e) == 0);
	CHECK(s.model.n_layer == 6 && s.model.d_model == 96 && s.model.n_head == 3 && s.model.d_ff == 200);
	CHECK(s.model.tie_head == 0 && s.model.bias == 0 && s.model.scaled_init == 0);
	CHECK(s.norm.type == norm_find("derf") && s.norm.placement == SPEC_PLACE_PERI);
	CHECK(s.norm.alpha_attn == 0.5 && s.norm.alpha_ffn == 0.25 && s.norm.alpha_final == 2.5);
	CHECK(s.norm.shift0 == -0.3 && s.norm.eps == 1e-6 && s.norm.embed_scale == 0 && s.norm.embed_norm == 1);
	CHECK(strcmp(s.data.path, "/tmp/corpus.txt") == 0 && s.data.val_fraction == 0.1);
	CHECK(s.train.schedule == SPEC_SCHED_CONSTANT && s.train.grad_clip == 0 && s.train.warmup == 50);
	CHECK(s.probe.samples == 1000 && s.probe.val_batches == 2);
	CHECK(s.seed == 1234567890123ULL && s.threads == 2);
	CHECK(strcmp(s.name, "derf-peri \"x\" \xc3\xa9") == 0);

	/* Integers print as integers, including ones %g would write with an exponent. */
	CHECK(parse_str(&s, "{\"seed\":1000000000000000,\"train\":{\"steps\":10000000}}", &e) == 0);
	c = spec_canonical(&s);
	CHECK(c && strstr(c, "\"seed\":1000000000000000") && strstr(c, "\"steps\":10000000"));
	nl_free(c);

	/* A sketch of the expected text for {}: the start is fixed by the sort order. */
	CHECK(parse_str(&s, "{}", &e) == 0);
	c = spec_canonical(&s);
	CHECK(c && strncmp(c, "{\"data\":{\"path\":\"kjv\",\"sha256\":\"\",\"source\":\"text\","
			   "\"val_fraction\":0.05},\"device\":\"cpu\",\"model\":{\"arch\":\"gpt\","
			   "\"bias\":true,\"d_ff\":512,", 117) == 0);
	CHECK(c && strstr(c, "\"seed\":1,") && strstr(c, "\"lr\":0.001,") && strstr(c, "\"adam_eps\":1e-08"));
	/* model.head_bias came later: left out while false, so older specs keep their hash */
	CHECK(c && !strstr(c, "head_bias"));
	nl_free(c);
	check_round_trip("{\"model\":{\"head_bias\":true,\"tie_head\":false}}");
	CHECK(parse_str(&s, "{\"model\":{\"head_bias\":true}}", &e) == 0 && s.model.head_bias == 1);
	c = spec_canonical(&s);
	CHECK(c && strstr(c, "\"head_bias\":true"));
	nl_free(c);
	/* llama defaults to no biases; a converted layernorm llama has them */
	CHECK(parse_str(&s, "{\"model\":{\"arch\":\"llama\",\"bias\":true}}", &e) == 0 &&
	      s.model.bias == 1);
	check_round_trip("{\"norm\":{\"type\":\"crmsnorm\",\"placement\":\"deepnorm\"}}");
	CHECK(parse_str(&s, "{\"norm\":{\"type\":\"crmsnorm\",\"placement\":\"deepnorm\"}}",
			&e) == 0 && s.norm.eps == 1e-5 && s.model.scaled_init == 0);
}

static void test_hash(void)
{
	char h1[65], h2[65], h3[65], h4[65], h5[65], h6[65];
	hash_of("{\"seed\":7,\"model\":{\"n_layer\":2,\"d_model\":64},\"norm\":{\"type\":\"dyt\"}}", h1);
	hash_of("{\"norm\":{\"type\":\"dyt\"},\"model\":{\"d_model\":64,\"n_layer\":2},\"seed\":7}", h2);
	hash_of("{\"seed\":7,\"device\":\"cpu\",\"threads\":1,\"name\":\"\","
		"\"model\":{\"arch\":\"gpt\",\"n_layer\":2,\"d_model\":64,\"n_head\":4,\"d_ff\":256,"
		"\"scaled_init\":true,\"init_std\":0.02},"
		"\"norm\":{\"type\":\"dyt\",\"embed_scale\":\"learned\",\"eps\":1e-5,\"placement\":\"pre\","
		"\"alpha0\":{\"attn\":1,\"ffn\":1.0,\"final\":1e0}},"
		"\"train\":{\"warmup\":100,\"min_lr\":0.0001,\"lr\":0.001},"
		"\"data\":{\"path\":\"kjv\"}}", h3);
	hash_of("{\"seed\":8,\"model\":{\"n_layer\":2,\"d_model\":64},\"norm\":{\"type\":\"dyt\"}}", h4);
	hash_of("{\"seed\":7,\"model\":{\"n_layer\":2,\"d_model\":64},\"norm\":{\"type\":\"dyt\",\"embed_scale\":\"auto\"}}", h5);
	hash_of("{\"seed\":7,\"model\":{\"n_layer\":2,\"d_model\":64},\"norm\":{\"type\":\"derf\"}}", h6);

	CHECK(strlen(h1) == 64);
	for (int i = 0; h1[i]; i++)
		CHECK(isxdigit((unsigned char)h1[i]) && !isupper((unsigned char)h1[i]));
	CHECKF(strcmp(h1, h2) == 0, "key order changed the hash");
	CHECKF(strcmp(h1, h3) == 0, "explicit defaults changed the hash");
	CHECKF(strcmp(h1, h5) == 0, "explicit \"auto\" changed the hash");
	CHECKF(strcmp(h1, h4) != 0, "different seed, same hash");
	/* -0 and 0 are the same experiment. */
	{
		char z1[65], z2[65];
		hash_of("{\"norm\":{\"shift0\":-0.0}}", z1);
		hash_of("{}", z2);
		CHECK(z1[0] && strcmp(z1, z2) == 0);
	}
	CHECKF(strcmp(h1, h6) != 0, "different norm, same hash");

	/* The hash is the SHA-256 of the canonical text. */
	struct spec s;
	struct spec_errors e;
	char hex[65], want[65];
	CHECK(parse_str(&s, full_spec, &e) == 0);
	char *c = spec_canonical(&s);
	CHECK(c != NULL && spec_hash(&s, hex) == 0);
	if (c) {
		digest_hex(c, strlen(c), want);
		CHECK(strcmp(hex, want) == 0);
	}
	nl_free(c);
}

/* ---- rejections ---- */

/* Batch-statistic norms' hyper-parameters: ranges and defaults, named errors, and the canonical
 * form carries them only for the kind that reads them (every other spec keeps its hash). */
static void test_batch_norm_fields(void)
{
	struct spec s;
	struct spec_errors e;
	char h1[65], h2[65], h3[65], h4[65];
	EXPECT_ERR("{\"norm\":{\"type\":\"batchnorm\",\"momentum\":0}}", NL_EINVAL, "/norm/momentum",
		   "0 is out of range", "(0, 1]");
	EXPECT_ERR("{\"norm\":{\"type\":\"un\",\"un\":{\"window\":0}}}", NL_EINVAL,
		   "/norm/un/window", "0 is out of range", "1..64");
	EXPECT_ERR("{\"norm\":{\"type\":\"un\",\"un\":{\"momentum\":1}}}", NL_EINVAL,
		   "/norm/un/momentum", "out of range", "[0, 1)");
	EXPECT_ERR("{\"norm\":{\"type\":\"un\",\"un\":{\"r_max\":0.5}}}", NL_EINVAL,
		   "/norm/un/r_max", "out of range", "[1, 1000]");
	EXPECT_ERR("{\"norm\":{\"type\":\"powernorm\",\"pn\":{\"alpha_fwd\":1.5}}}", NL_EINVAL,
		   "/norm/pn/alpha_fwd", "out of range", "[0, 1]");
	EXPECT_ERR("{\"model\":{\"d_model\":96,\"n_head\":3},\"norm\":{\"type\":\"powernorm\","
		   "\"pn\":{\"groups\":5}}}", NL_EINVAL, "/norm/pn/groups", "5 must divide d_model 96",
		   NULL);
	EXPECT_ERR("{\"norm\":{\"type\":\"powernorm\",\"pn\":{\"warmpu\":5}}}", NL_EINVAL,
		   "/norm/pn/warmpu", "did you mean \"warmup\"", NULL);
	/* defaults: 10% of the steps, heads as groups, filtration for vit only */
	CHECK(parse_str(&s, "{\"model\":{\"n_head\":8},\"train\":{\"steps\":300}}", &e) == 0);
	CHECK(s.norm.momentum == 0.1 && s.norm.pn.warmup == 30 && s.norm.pn.groups == 8 &&
	      s.norm.un.warmup == 30 && s.norm.un.r_free_after == 30 && s.norm.un.window == 4 &&
	      !s.norm.un.outlier_filtration && s.norm.pn.alpha_fwd == 0.9 && s.norm.un.r_max == 5);
	CHECK(parse_str(&s, "{\"model\":{\"arch\":\"vit\"},\"norm\":{\"type\":\"un\"}}", &e) == 0);
	CHECK(s.norm.un.outlier_filtration == 1);
	/* another kind's hyper-parameters cannot change a run, so not its hash either */
	hash_of("{\"norm\":{\"type\":\"layernorm\"}}", h1);
	hash_of("{\"norm\":{\"type\":\"layernorm\",\"momentum\":0.5,\"pn\":{\"warmup\":3}}}", h2);
	CHECKF(strcmp(h1, h2) == 0, "layernorm's hash moved with batch-norm fields");
	hash_of("{\"norm\":{\"type\":\"powernorm\"}}", h3);
	hash_of("{\"norm\":{\"type\":\"powernorm\",\"pn\":{\"warmup\":3}}}", h4);
	CHECKF(strcmp(h3, h4) != 0, "powernorm's hash must follow pn.warmup");
	CHECK(parse_str(&s, "{\"norm\":{\"type\":\"batchnorm\",\"un\":{\"window\":9}}}", &e) == 0);
	char *c = spec_canonical(&s);
	CHECKF(c && strstr(c, "\"momentum\":0.1") && !strstr(c, "\"un\"") && !strstr(c, "\"pn\""),
	       "batchnorm canonical: %s", c ? c : "");
	CHECK(s.norm.un.window == 4);   /* reset: it does not apply */
	nl_free(c);
	/* + the "un" object and its 6 fields; "pn" and its 4; batchnorm's momentum */
	check_round_trip_n("{\"norm\":{\"type\":\"un\",\"un\":{\"window\":2,\"outlier_filtration\":true}}}", 58);
	check_round_trip_n("{\"norm\":{\"type\":\"powernorm\",\"pn\":{\"groups\":2,\"alpha_bkw\":0.5}}}", 56);
	check_round_trip_n("{\"norm\":{\"type\":\"batchnorm\",\"momentum\":0.01}}", 52);
}

static void test_errors(void)
{
	struct spec s;
	struct spec_errors e;
	int rc;

	EXPECT_ERR("{\"norm\":{\"type\":\"dtyt\"}}", NL_EINVAL, "/norm/type", "\"dtyt\"", "layernorm");
	EXPECT_ERR("{\"norm\":{\"type\":\"dtyt\"}}", NL_EINVAL, "/norm/type", "rmsnorm, dyt, derf", NULL);
	EXPECT_ERR("{\"model\":{\"n_layer\":-1}}", NL_EINVAL, "/model/n_layer", "-1", "1..64");
	EXPECT_ERR("{\"model\":{\"n_layer\":65}}", NL_EINVAL, "/model/n_layer", "65", "1..64");
	EXPECT_ERR("{\"model\":{\"d_model\":100,\"n_head\":3}}", NL_EINVAL, "/model/n_head",
		   "n_head 3 must divide d_model 100", NULL);
	EXPECT_ERR("{\"model\":{\"n_layer\":64,\"d_model\":4096}}", NL_ELIMIT, "/model", "above the limit",
		   "model.n_layer");
	EXPECT_ERR("{\"modle\":{}}", NL_EINVAL, "/modle", "unknown field", "model");
	EXPECT_ERR("{\"modle\":{}}", NL_EINVAL, "/modle", "did you mean \"model\"", NULL);
	EXPECT_ERR("{\"model\":{\"n_layers\":2}}", NL_EINVAL, "/model/n_layers", "n_layer", "seq_len");
	EXPECT_ERR("{\"seed\":\"1\"}", NL_EINVAL, "/seed", "expected an integer", "string");
	EXPECT_ERR("{\"seed\":-1}", NL_EINVAL, "/seed", "-1 is out of range", NULL);
	EXPECT_ERR("{\"seed\":1.5}", NL_EINVAL, "/seed", "integer", "1.5");
	EXPECT_ERR("{\"seed\":9007199254740994}", NL_EINVAL, "/seed", "out of range", NULL);
	EXPECT_ERR("{\"train\":{\"lr\":0}}", NL_EINVAL, "/train/lr", "0 is out of range", "(0, 10]");
	EXPECT_ERR("{\"train\":{\"lr\":1e999}}", NL_EINVAL, "/train/lr", "too large", "(0, 10]");
	EXPECT_ERR("{\"seed\":1e999}", NL_EINVAL, "/seed", "too large", NULL);
	EXPECT_ERR("{\"train\":{\"schedule\":\"linear\"}}", NL_EINVAL, "/train/schedule",
		   "\"linear\" is not a schedule", "cosine, constant");
	EXPECT_ERR("{\"train\":{\"beta2\":1}}", NL_EINVAL, "/train/beta2", "[0, 1)", NULL);
	EXPECT_ERR("{\"train\":{\"steps\":10,\"warmup\":20}}", NL_EINVAL, "/train/warmup", "20", "train.steps");
	EXPECT_ERR("{\"train\":{\"lr\":1e-4,\"min_lr\":1e-3}}", NL_EINVAL, "/train/min_lr", "train.lr", NULL);
	EXPECT_ERR("{\"norm\":{\"alpha0\":{\"atn\":1}}}", NL_EINVAL, "/norm/alpha0/atn", "unknown field",
		   "attn, ffn, final");
	EXPECT_ERR("{\"norm\":{\"alpha0\":{\"attn\":0}}}", NL_EINVAL, "/norm/alpha0/attn", "(0, 100]", NULL);
	EXPECT_ERR("{\"norm\":{\"placement\":\"middle\"}}", NL_EINVAL, "/norm/placement", "\"middle\"",
		   "pre, post, peri, mix, lns, deepnorm");
	EXPECT_ERR("{\"model\":{\"arch\":\"vit\",\"head_bias\":true}}", NL_EINVAL,
		   "/model/head_bias", "vit's head always has a bias", NULL);
	EXPECT_ERR("{\"norm\":{\"embed_scale\":true}}", NL_EINVAL, "/norm/embed_scale", "expected a string", NULL);
	EXPECT_ERR("{\"model\":{\"tie_head\":1}}", NL_EINVAL, "/model/tie_head", "expected true or false", NULL);
	EXPECT_ERR("{\"model\":5}", NL_EINVAL, "/model", "expected an object", NULL);
	EXPECT_ERR("{\"model\":{\"arch\":\"bert\"}}", NL_EINVAL, "/model/arch", "\"bert\"", "gpt, llama, vit");
	EXPECT_ERR("{\"device\":\"cuda\"}", NL_EINVAL, "/device", "only \"cpu\" is supported", NULL);
	EXPECT_ERR("{\"threads\":0}", NL_EINVAL, "/threads", "1..64", NULL);
	EXPECT_ERR("{\"data\":{\"path\":\"\"}}", NL_EINVAL, "/data/path", "empty", NULL);
	EXPECT_ERR("{\"data\":{\"path\":\"a\\nb\"}}", NL_EINVAL, "/data/path", "control character", NULL);
	EXPECT_ERR("{\"name\":\"a\\tb\"}", NL_EINVAL, "/name", "control character", "\\x09");
	EXPECT_ERR("{\"seed\":1,\"seed\":2}", NL_EINVAL, "/seed", "duplicate", NULL);
	EXPECT_ERR("{\"norm\":{},\"norm\":{\"type\":\"dyt\"}}", NL_EINVAL, "/norm", "duplicate", NULL);
	EXPECT_ERR("{\"a/b~c\":1}", NL_EINVAL, "/a~1b~0c", "unknown field", NULL);
	EXPECT_ERR("{\"probe\":{\"samples\":100001}}", NL_EINVAL, "/probe/samples", "0..100000", NULL);

	/* A long bad value is cut in the message, which stays one line. */
	{
		char big[600];
		int n = snprintf(big, sizeof big, "{\"norm\":{\"type\":\"");
		for (int i = 0; i < 500; i++)
			big[n++] = 'x';
		memcpy(big + n, "\"}}", 4);
		EXPECT_ERR(big, NL_EINVAL, "/norm/type", "...", "layernorm");
		char longname[300];
		n = snprintf(longname, sizeof longname, "{\"name\":\"");
		for (int i = 0; i < 128; i++)
			longname[n++] = 'n';
		memcpy(longname + n, "\"}", 3);
		EXPECT_ERR(longname, NL_EINVAL, "/name", "128 bytes", "127");
	}

	/* An unknown key too long for a pointer is cut on a character boundary. */
	{
		char key[1200];
		size_t n = (size_t)snprintf(key, sizeof key, "{\"");
		for (int i = 0; i < 200; i++) {
			key[n++] = '\xc3';
			key[n++] = '\xa9';
		}
		memcpy(key + n, "\":1}", 5);
		rc = parse_str(&s, key, &e);
		CHECK(rc == NL_EINVAL && e.n == 1);
		if (e.n == 1) {
			size_t pl = strlen(e.e[0].pointer);
			CHECK(pl > 100 && pl < sizeof e.e[0].pointer && e.e[0].pointer[0] == '/');
			/* "/" + 63 whole characters fill the 127 usable bytes exactly. */
			CHECKF(pl == 127 && (unsigned char)e.e[0].pointer[pl - 1] == 0xa9, "%zu", pl);
		}
	}

	/* Nesting up to the scanner's cap is JSON; the spec then rejects the unknown field. */
	{
		/* Three-byte characters: the cut lands mid-character and must back off to a whole one. */
		char key[1200];
		size_t n = (size_t)snprintf(key, sizeof key, "{\"a");
		for (int i = 0; i < 100; i++) {
			memcpy(key + n, "\xe2\x82\xac", 3);
			n += 3;
		}
		memcpy(key + n, "\":1}", 5);
		rc = parse_str(&s, key, &e);
		CHECK(rc == NL_EINVAL && e.n == 1);
		if (e.n == 1) {
			size_t pl = strlen(e.e[0].pointer);
			/* "/a" + 41 characters = 125; the 42nd would need bytes 125..127. */
			CHECKF(pl == 125 && (unsigned char)e.e[0].pointer[pl - 1] == 0xac, "%zu", pl);
		}
		/* And in a quoted value inside a message. */
		n = (size_t)snprintf(key, sizeof key, "{\"norm\":{\"type\":\"");
		for (int i = 0; i < 100; i++) {
			memcpy(key + n, "\xe2\x82\xac", 3);
			n += 3;
		}
		memcpy(key + n, "\"}}", 4);
		rc = parse_str(&s, key, &e);
		CHECK(rc == NL_EINVAL && e.n == 1 && strstr(e.e[0].msg, "\xe2\x82\xac...\""));
	}
	EXPECT_ERR("{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", NL_EINVAL, "/x",
		   "unknown field", NULL);

	/* Several problems are all reported, in document order. */
	rc = parse_str(&s, "{\"seed\":-1,\"threads\":0,\"model\":{\"n_layer\":0},\"bogus\":1}", &e);
	CHECK(rc == NL_EINVAL && e.n == 4);
	if (e.n == 4)
		CHECK(strcmp(e.e[0].pointer, "/seed") == 0 && strcmp(e.e[1].pointer, "/threads") == 0 &&
		      strcmp(e.e[2].pointer, "/model/n_layer") == 0 && strcmp(e.e[3].pointer, "/bogus") == 0);

	/* A cross-field rule is skipped when a field it reads already failed. */
	rc = parse_str(&s, "{\"model\":{\"d_model\":100,\"n_head\":0}}", &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "/model/n_head") == 0 &&
	      !strstr(e.e[0].msg, "divide"));
	rc = parse_str(&s, "{\"model\":{\"d_model\":5000,\"n_head\":3}}", &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "/model/d_model") == 0);
	rc = parse_str(&s, "{\"train\":{\"steps\":0,\"warmup\":20}}", &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "/train/steps") == 0);

	/* The memory cap is not checked until the fields are valid. */
	rc = parse_str(&s, "{\"model\":{\"n_layer\":64,\"d_model\":4096},\"seed\":-1}", &e);
	CHECK(rc == NL_EINVAL && e.n == 1);

	/* More errors than fit: capped, no overflow. */
	{
		char many[2048];
		size_t n = 1;
		many[0] = '{';
		for (int i = 0; i < 40; i++)
			n += (size_t)snprintf(many + n, sizeof many - n, "%s\"bad%d\":%d", i ? "," : "", i, i);
		many[n++] = '}';
		many[n] = '\0';
		rc = parse_str(&s, many, &e);
		CHECK(rc == NL_EINVAL && e.n == SPEC_MAX_ERRORS);
	}

	/* A failed parse leaves the caller's struct alone. */
	{
		struct spec before;
		memset(&s, 0xab, sizeof s);
		memcpy(&before, &s, sizeof s);
		CHECK(parse_str(&s, "{\"model\":{\"n_layer\":-1}}", &e) == NL_EINVAL);
		CHECK(memcmp(&s, &before, sizeof s) == 0);
	}

	/* Limits: the caller's cap wins over the default one. */
	{
		struct spec_limits lim = { .max_bytes = 1000 };
		const char *txt = "{}";
		rc = parse_n(&s, txt, strlen(txt), &lim, &e);
		CHECK(rc == NL_ELIMIT && e.n == 1 && strcmp(e.e[0].pointer, "/model") == 0);
		CHECK(e.n == 1 && strstr(e.e[0].msg, "limit of 1000 bytes"));
		lim.max_bytes = UINT64_MAX - 1;
		txt = "{\"model\":{\"n_layer\":64,\"d_model\":4096}}";
		rc = parse_n(&s, txt, strlen(txt), &lim, &e);
		CHECK(rc == 0);
		lim.max_bytes = 0;   /* 0 = the default */
		rc = parse_n(&s, txt, strlen(txt), &lim, &e);
		CHECK(rc == NL_ELIMIT && e.n == 1 && strstr(e.e[0].msg, "4.0 GiB"));
	}
}

static void test_bad_json(void)
{
	struct spec s;
	struct spec_errors e;
	size_t n = strlen(full_spec);
	int rc;

	/* Cut a valid spec in half. */
	rc = parse_n(&s, full_spec, n / 2, NULL, &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0);
	CHECKF(e.n == 1 && strstr(e.e[0].msg, "JSON") && strstr(e.e[0].msg, "line") &&
	       strstr(e.e[0].msg, "truncated"), "%s", e.e[0].msg);
	CHECK(msgs_are_one_line(&e));

	EXPECT_ERR("", NL_EINVAL, "", "JSON", "empty");
	EXPECT_ERR("  \n ", NL_EINVAL, "", "JSON", "empty");
	EXPECT_ERR("[]", NL_EINVAL, "", "JSON object", "array");
	EXPECT_ERR("42", NL_EINVAL, "", "JSON object", NULL);
	EXPECT_ERR("null", NL_EINVAL, "", "JSON object", NULL);
	EXPECT_ERR("{} x", NL_EINVAL, "", "JSON", "after the document");
	EXPECT_ERR("{}{}", NL_EINVAL, "", "JSON", "byte 2");
	EXPECT_ERR("{\n\"seed\":1,\n\"threads\" 2}", NL_EINVAL, "", "line 3, byte 22", "':'");
	EXPECT_ERR("\xef\xbb\xbf{\"seed\" 1}", NL_EINVAL, "", "line 1, byte 11", NULL);
	EXPECT_ERR("{\"train\":{\"lr\":NaN}}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"train\":{\"lr\":Infinity}}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"train\":{\"lr\":-Infinity}}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"seed\":01}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"seed\":+1}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"seed\":1,}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{'seed':1}", NL_EINVAL, "", "JSON", NULL);
	EXPECT_ERR("{\"name\":\"a\\u0000b\"}", NL_EINVAL, "", "JSON", "u0000");
	EXPECT_ERR("{\"name\":\"\\ud800\"}", NL_EINVAL, "", "JSON", "surrogate");
	EXPECT_ERR("{\"name\":\"\\udc00\"}", NL_EINVAL, "", "JSON", "surrogate");
	EXPECT_ERR("{\"name\":\"\\ud800\\u0041\"}", NL_EINVAL, "", "JSON", "surrogate");
	EXPECT_ERR("{\"name\":\"\\ud83d\\ude0", NL_EINVAL, "", "JSON", "truncated");
	EXPECT_ERR("{\"name\":\"\\x41\"}", NL_EINVAL, "", "JSON", "escape");
	/* Raw bytes that are not UTF-8 (found by fuzz_spec: they reached the canonical form and
	 * every JSON answer quoting it): a stray continuation byte, a truncated sequence, an
	 * overlong '/', an encoded surrogate, a code point past U+10FFFF, a key. */
	EXPECT_ERR("{\"name\":\"\xad\"}", NL_EINVAL, "", "line 1, byte 9", "UTF-8");
	EXPECT_ERR("{\"name\":\"a\xc3\"}", NL_EINVAL, "", "byte 10", "UTF-8");
	EXPECT_ERR("{\"name\":\"\xc0\xaf\"}", NL_EINVAL, "", "JSON", "UTF-8");
	EXPECT_ERR("{\"name\":\"\xed\xa0\x80\"}", NL_EINVAL, "", "JSON", "UTF-8");
	EXPECT_ERR("{\"name\":\"\xf4\x90\x80\x80\"}", NL_EINVAL, "", "JSON", "UTF-8");
	EXPECT_ERR("{\"amemo\xad\": {}}", NL_EINVAL, "", "JSON", "UTF-8");
	CHECK(parse_str(&s, "{\"name\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", &e) == 0);
	EXPECT_ERR("{\"name\":\"tab\there\"}", NL_EINVAL, "", "JSON", "control");
	EXPECT_ERR("{\"seed\":11111111111111111111111111111111111111111111111111111111111111111111}",
		   NL_EINVAL, "", "JSON", "63");
	EXPECT_ERR("{\"model\":{\"bias\":tru", NL_EINVAL, "", "JSON", "truncated");

	/* A NUL byte inside the given length is not the end of the document. */
	rc = parse_n(&s, "{}\0{", 4, NULL, &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0);
	rc = parse_n(&s, "{\"name\":\"a\0b\"}", 14, NULL, &e);
	CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0);

	/* Only len bytes are read: "{}" followed by garbage beyond len is fine. */
	CHECK(spec_parse(&s, "{}garbage", 2, NULL, &e) == 0);

	/* Too large, even if it would otherwise be valid. */
	{
		size_t big = (size_t)SPEC_JSON_MAX + 1;
		char *b = malloc(big);
		CHECK(b != NULL);
		if (b) {
			memset(b, ' ', big);
			b[0] = '{';
			b[big - 1] = '}';
			rc = spec_parse(&s, b, big, NULL, &e);
			CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0 &&
			      strstr(e.e[0].msg, "limit"));
			/* One byte less is accepted: the cap is exactly SPEC_JSON_MAX. */
			b[big - 2] = '}';
			rc = spec_parse(&s, b, big - 1, NULL, &e);
			CHECK(rc == 0);
			free(b);
		}
	}

	/* 10,000 levels deep: arrays at the root, objects under an unknown key, and under a
	 * known one. Each fails cleanly as a document error. */
	{
		const int depth = 10000;
		char *b = malloc((size_t)depth * 8 + 64);
		CHECK(b != NULL);
		if (b) {
			size_t k = 0;
			for (int i = 0; i < depth; i++)
				b[k++] = '[';
			for (int i = 0; i < depth; i++)
				b[k++] = ']';
			rc = spec_parse(&s, b, k, NULL, &e);
			CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0 &&
			      strstr(e.e[0].msg, "nested"));

			static const char *const heads[] = { "{\"modle\":", "{\"model\":" };
			for (int h = 0; h < 2; h++) {
				k = 0;
				memcpy(b, heads[h], strlen(heads[h]));
				k += strlen(heads[h]);
				for (int i = 0; i < depth; i++) {
					memcpy(b + k, "{\"a\":", 5);
					k += 5;
				}
				b[k++] = '1';
				for (int i = 0; i < depth + 1; i++)
					b[k++] = '}';
				rc = spec_parse(&s, b, k, NULL, &e);
				CHECK(rc == NL_EINVAL && e.n == 1 && strcmp(e.e[0].pointer, "") == 0 &&
				      strstr(e.e[0].msg, "nested"));
			}
			free(b);
		}
	}
}

/* ---- hostile input ---- */

static uint64_t lcg_state = 0x9e3779b97f4a7c15ULL;

static uint32_t lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(lcg_state >> 33);
}

/* Whatever the input: no crash, and either success with no errors (and a canonical form that
 * round-trips) or failure with at least one one-line error. */
static int check_any(const char *buf, size_t len, int *accepted)
{
	struct spec s, t;
	struct spec_errors e;
	int rc = parse_n(&s, buf, len, NULL, &e);
	*accepted += rc == 0;
	if (rc == 0) {
		if (e.n != 0)
			return 0;
		char *c = spec_canonical(&s);
		if (!c)
			return 0;
		int ok = parse_str(&t, c, &e) == 0 && memcmp(&s, &t, sizeof s) == 0;
		nl_free(c);
		return ok;
	}
	return (rc == NL_EINVAL || rc == NL_ELIMIT) && e.n >= 1 && e.n <= SPEC_MAX_ERRORS &&
	       msgs_are_one_line(&e);
}

static void test_fuzz(void)
{
	size_t n = strlen(full_spec);
	int bad = 0, accepted = 0;
	for (size_t k = 0; k <= n; k++) {
		if (!check_any(full_spec, k, &accepted)) {
			bad++;
			fprintf(stderr, "prefix %zu misbehaved\n", k);
		}
	}
	CHECKF(bad == 0, "%d prefixes misbehaved", bad);
	/* Only the whole text and the whole text less its final newline are specs. */
	CHECKF(accepted == 2, "%d prefixes accepted, want 2", accepted);
	accepted = 0;

	static const char alphabet[] = "{}[]\",:0123456789-+.eE \\u\ntrfalsenul\x01\x80\xff";
	char *buf = malloc(n + 16);
	CHECK(buf != NULL);
	if (!buf)
		return;
	bad = 0;
	for (int iter = 0; iter < 600; iter++) {
		size_t len = n;
		memcpy(buf, full_spec, n);
		int muts = 1 + (int)(lcg() % 3);
		for (int m = 0; m < muts; m++) {
			size_t at = len ? lcg() % len : 0;
			char ch = (lcg() & 1) ? alphabet[lcg() % (sizeof alphabet - 1)] : (char)(lcg() & 0xff);
			switch (lcg() % 3) {
			case 0:
				if (len)
					buf[at] = ch;
				break;
			case 1:
				if (len < n + 8) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = ch;
					len++;
				}
				break;
			default:
				if (len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			}
		}
		if (!check_any(buf, len, &accepted)) {
			bad++;
			fprintf(stderr, "mutation %d misbehaved: %.*s\n", iter, (int)len, buf);
		}
	}
	free(buf);
	CHECKF(bad == 0, "%d mutations misbehaved", bad);
	/* Some mutations (inside strings, digits) stay valid: the loop exercised both outcomes. */
	CHECKF(accepted > 0 && accepted < 600, "accepted %d of 600", accepted);
}

/* ---- allocation failure ---- */

/* spec_parse_tree, over the tree the daemon parses a body or builds a sweep cell into, gives the
 * spec spec_parse gives the same text: 17-digit numbers, -0 and huge integers hash the same
 * (a print-and-reparse detour once moved them: found by fuzz_spec). */
static void test_parse_tree(void)
{
	static const char *const texts[] = {
		"{\"norm\":{\"placement\":\"mix\",\"mix_post_ratio\":0.9199254740990071992547409939365}}",
		"{\"train\":{\"lr\":0.00012345678901234567,\"beta2\":0.99999999999999989}}",
		"{\"seed\":9007199254740992,\"norm\":{\"shift0\":-0.0,\"eps\":1e-300}}",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct spec a, b;
		char ha[65] = "", hb[65] = "";
		cJSON *j = cJSON_Parse(texts[i]);
		CHECKF(j != NULL, "cJSON %zu", i);
		CHECK(parse_str(&a, texts[i], NULL) == 0 && spec_hash(&a, ha) == 0);
		CHECKF(j && spec_parse_tree(&b, j, NULL, NULL) == 0 && spec_hash(&b, hb) == 0 &&
		       strcmp(ha, hb) == 0, "%s: text hash %s, tree hash %s", texts[i], ha, hb);
		cJSON_Delete(j);
	}
	/* and the tree's errors are the text's */
	{
		struct spec_errors ea, eb;
		struct spec a, b;
		const char *bad = "{\"model\":{\"n_layer\":65,\"colour\":1},\"train\":{\"lr\":-1}}";
		cJSON *j = cJSON_Parse(bad);
		CHECK(parse_str(&a, bad, &ea) == NL_EINVAL);
		CHECK(j && spec_parse_tree(&b, j, NULL, &eb) == NL_EINVAL);
		CHECKF(ea.n == eb.n && ea.n >= 3, "text %d errors, tree %d", ea.n, eb.n);
		for (int k = 0; k < ea.n && k < eb.n; k++)
			CHECKF(strcmp(ea.e[k].pointer, eb.e[k].pointer) == 0 &&
			       strcmp(ea.e[k].msg, eb.e[k].msg) == 0, "error %d: %s %s / %s %s", k,
			       ea.e[k].pointer, ea.e[k].msg, eb.e[k].pointer, eb.e[k].msg);
		cJSON_Delete(j);
	}
}

static void test_alloc_failure(void)
{
	struct spec s;
	struct spec_errors e;
	char *base = NULL, hex_base[65], hex[65];
	int failures = 0, done = 0;

	CHECK(parse_str(&s, full_spec, &e) == 0);
	base = spec_canonical(&s);
	CHECK(base != NULL && spec_hash(&s, hex_base) == 0);
	if (!base)
		return;
	size_t n = strlen(full_spec);
	char *txt = malloc(n);
	CHECK(txt != NULL);
	if (!txt) {
		nl_free(base);
		return;
	}
	memcpy(txt, full_spec, n);

	for (long k = 1; k < 100000 && !done; k++) {
		char *c = NULL;
		int rc, hrc = -1;
		nl_alloc_fail_at(k);
		rc = spec_parse(&s, txt, n, NULL, &e);
		if (rc == 0)
			c = spec_canonical(&s);
		if (c)
			hrc = spec_hash(&s, hex);
		nl_alloc_fail_at(0);
		if (rc == 0 && c && hrc == 0) {
			CHECK(strcmp(c, base) == 0 && strcmp(hex, hex_base) == 0);
			done = 1;
		} else {
			failures++;
			CHECKF(rc == 0 || (rc == NL_ENOMEM && e.n == 1), "k=%ld rc=%d", k, rc);
		}
		nl_free(c);
	}
	CHECK(done);
	/* The loop must have hit allocations in both the parse and the canonical form. */
	CHECKF(failures >= 3, "only %d injected failures", failures);
	free(txt);
	nl_free(base);
}

int main(void)
{
	/* Route cJSON's allocations through the injectable wrapper. */
	cJSON_Hooks hooks = { nl_malloc, nl_free };
	cJSON_InitHooks(&hooks);

	test_sha256();
	test_defaults();
	test_embed_scale_and_scaled_init();
	test_canonical();
	test_hash();
	test_errors();
	test_batch_norm_fields();
	test_bad_json();
	test_fuzz();
	test_parse_tree();
	test_alloc_failure();
	return test_finish("spec");
}
