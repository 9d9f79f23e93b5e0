/*
 * fuzz_spec.c — libFuzzer harness for the experiment spec parser (engine/spec.h).
 *
 * The input is a spec file's bytes, given to spec_parse exactly as `normlab train` gives it a
 * file, under the daemon's default memory cap. Beyond "no crash, no leak, no UB" it checks what
 * a user relies on:
 *   - a rejected spec comes back with 1..SPEC_MAX_ERRORS errors, each a JSON Pointer ("" or
 *     "/...") and a non-empty, terminated message, and leaves the caller's struct untouched;
 *     NL_ENOMEM without any allocation failing would be a parser bug passed off as memory;
 *   - an accepted spec has a canonical form that parses again to the same canonical text and
 *     hash (the hash names the run: if it moved, a resubmitted spec would not be recognised);
 *   - the daemon's path to the same bytes (spec_json_check, one cJSON parse, spec_parse_tree;
 *     see h_create in server/api_experiments.c) reaches the same canonical form and hash when both
 *     accept the text: the same file is the same run whichever way it is submitted.
 * Single-threaded; everything is freed before returning.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "fuzz.h"
#include "nl.h"
#include "spec.h"

static void check_errors(const struct spec_errors *errs, int rc)
{
	FUZZ_CHECK(errs->n >= 1 && errs->n <= SPEC_MAX_ERRORS, "rc %d with %d errors", rc, errs->n);
	for (int i = 0; i < errs->n; i++) {
		const struct spec_error *e = &errs->e[i];
		FUZZ_CHECK(FUZZ_TERMINATED(e->pointer) && FUZZ_TERMINATED(e->msg),
			   "error %d is not terminated", i);
		FUZZ_CHECK(e->pointer[0] == '\0' || e->pointer[0] == '/',
			   "error %d: pointer \"%s\" is not a JSON Pointer", i, e->pointer);
		FUZZ_CHECK(e->msg[0] != '\0', "error %d (%s) has no message", i, e->pointer);
		/* messages and pointers quote the input; the daemon puts them in JSON */
		FUZZ_CHECK(fuzz_utf8_valid(e->pointer, strlen(e->pointer)) &&
			   fuzz_utf8_valid(e->msg, strlen(e->msg)), "error %d is not UTF-8: %s: %s", i,
			   e->pointer, e->msg);
	}
}

/* Parses text (len bytes); on success returns its canonical form (caller frees) and hash. */
static char *parse_canonical(const char *text, size_t len, char hash[65], int *rc_out)
{
	static const struct spec_limits lim = { .max_bytes = SPEC_MEM_LIMIT_DEFAULT };
	struct spec s, before;
	struct spec_errors errs;

	/* a pattern no parse would write, to see that a failed parse leaves s alone */
	memset(&s, 0xa5, sizeof s);
	before = s;
	int rc = spec_parse(&s, text, len, &lim, &errs);
	*rc_out = rc;
	FUZZ_CHECK(rc == 0 || rc == NL_EINVAL || rc == NL_ELIMIT, "spec_parse returned %d "
		   "(NL_ENOMEM without an allocation failing)", rc);
	if (rc != 0) {
		check_errors(&errs, rc);
		FUZZ_CHECK(memcmp(&s, &before, sizeof s) == 0, "a failed parse wrote the spec");
		return NULL;
	}
	FUZZ_CHECK(memchr(s.name, '\0', sizeof s.name) != NULL, "name is not terminated");
	char *canon = spec_canonical(&s);
	FUZZ_CHECK(canon != NULL, "spec_canonical failed on a valid spec");
	FUZZ_CHECK(fuzz_utf8_valid(canon, strlen(canon)), "the canonical form is not UTF-8: %s",
		   canon);
	FUZZ_CHECK(spec_hash(&s, hash) == 0 && strlen(hash) == 64, "spec_hash failed");
	(void)spec_mem_estimate(&s);
	return canon;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char h1[65], h2[65], h3[65];
	int rc;
	char *c1 = parse_canonical((const char *)data, size, h1, &rc);

	if (c1) {
		int rc2;
		char *c2 = parse_canonical(c1, strlen(c1), h2, &rc2);
		FUZZ_CHECK(c2 != NULL, "the canonical form %s does not parse again (rc %d)", c1, rc2);
		FUZZ_CHECK(strcmp(c1, c2) == 0, "canonical form is not a fixed point:\n%s\n%s", c1, c2);
		FUZZ_CHECK(strcmp(h1, h2) == 0, "hash moved: %s %s", h1, h2);
		nl_free(c2);
	}

	/* The daemon's path (h_create): the body is NUL-terminated by the HTTP layer, scanned
	 * strictly, parsed once by cJSON, and validated from that tree. */
	char *body = nl_malloc(size + 1);
	FUZZ_CHECK(body != NULL, "out of memory");
	memcpy(body, data, size);
	body[size] = '\0';
	size_t at;
	const char *why;
	cJSON *j = spec_json_check(body, size, &at, &why) == 0 ?
		   cJSON_ParseWithLengthOpts(body, size + 1, NULL, 1) : NULL;
	struct spec s3;
	static const struct spec_limits lim = { .max_bytes = SPEC_MEM_LIMIT_DEFAULT };
	int rc3 = cJSON_IsObject(j) ? spec_parse_tree(&s3, j, &lim, NULL) : -1;
	if (rc3 == 0 && c1) {
		char *c3 = spec_canonical(&s3);
		FUZZ_CHECK(c3 != NULL && spec_hash(&s3, h3) == 0, "canonical form of the tree");
		FUZZ_CHECK(strcmp(c1, c3) == 0, "the CLI and the daemon read the same spec "
			   "differently:\n%s\n%s", c1, c3);
		FUZZ_CHECK(strcmp(h1, h3) == 0, "hash differs between CLI and daemon");
		nl_free(c3);
	}
	/* where the CLI accepts the text, so does the daemon's path, and the other way round */
	if (j && cJSON_IsObject(j))
		FUZZ_CHECK((c1 != NULL) == (rc3 == 0), "CLI %s, daemon %s", c1 ? "accepts" : "refuses",
			   rc3 == 0 ? "accepts" : "refuses");
	cJSON_Delete(j);
	nl_free(body);
	nl_free(c1);
	return 0;
}
