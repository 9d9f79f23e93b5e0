/*
 * spec.c — the experiment spec: strict JSON in, a validated struct spec out, and its canonical
 * text (keys sorted, every default filled) whose SHA-256 identifies the run.
 *
 * One table (spec_fields) describes every field: where it lives, its JSON type, range and
 * default. Parsing, defaults and the canonical form all walk that table, so they cannot disagree
 * and adding a field is one row (plus a line in resolve_defaults if its default depends on
 * another field). The text is first checked by a small non-allocating scanner (strict RFC 8259,
 * depth cap, precise line/byte for messages); cJSON then builds the tree, so a cJSON failure on
 * text the scanner accepted can only be memory.
 *
 * Owns nothing beyond one call; no globals besides constant tables. cJSON keeps a global "last
 * error" that its parser writes; we never read it, but concurrent parses do race on it inside
 * cJSON. cJSON allocates through its hooks: a process that wants allocation-failure injection to
 * reach cJSON installs nl_malloc/nl_free with cJSON_InitHooks once in main.
 */
#define _POSIX_C_SOURCE 200809L
#include "spec.h"

#include "lnremove.h"
#include "model.h"
#include "nl.h"
#include "norm.h"
#include "sha256.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any spec needs (3) and far below cJSON's own nesting limit (1000). */
#define SPEC_JSON_DEPTH 64
/* cJSON copies a number into a 64-byte buffer; a longer one would be cut, so refuse it. */
#define SPEC_JSON_NUMBER_MAX 63

/* ---- the field table ------------------------------------------------------------------ */

enum spec_sec {
	SEC_ROOT, SEC_MODEL, SEC_NORM, SEC_ALPHA0, SEC_DATA, SEC_TRAIN, SEC_PROBE, SEC_HEALTH,
	SEC_LNREMOVE, SEC_PN, SEC_UN, SEC_N
};

static const char *const spec_sec_pointer[SEC_N] = {
	"", "/model", "/norm", "/norm/alpha0", "/data", "/train", "/probe", "/health", "/lnremove",
	"/norm/pn", "/norm/un",
};

enum spec_ftype {
	FT_OBJ,     /* a nested object: `child` is its section */
	FT_INT,     /* int, integral JSON number in [lo, hi] */
	FT_LONG,    /* long */
	FT_U64,     /* uint64_t */
	FT_REAL,    /* double in lo..hi, ends open per `open` */
	FT_BOOL,    /* int 0/1 */
	FT_STR,     /* char[hi + 1], length in bytes lo..hi, no control characters */
	FT_WORD,    /* char[cap]: one of `names` */
	FT_CHOICE,  /* int: one of `names`, stored as vals[i] */
	FT_NORM,    /* int: index into norm_table */
};

#define OPEN_LO 1u
#define OPEN_HI 2u
#define DEP_DEFAULT 4u   /* default depends on other fields: set in resolve_defaults */
#define VIT_ONLY 8u      /* means something for model.arch "vit" only: left out of other
			  * archs' canonical form, so their spec hashes stay what they were */
#define OMIT_DEFAULT 16u /* left out of the canonical form while at its default (a section:
			  * while every field in it is), so specs from before the field existed
			  * keep their hashes */
#define CHILD_ONLY 32u   /* means something for a child run only (parent or init_from set): left
			  * out of every other spec's canonical form, for the same reason */
#define NORM_HP 64u      /* a hyper-parameter of the norm kinds that list its dotted key in
			  * norm_kind.hparams: in the canonical form only for those kinds (other
			  * kinds' hashes stay what they were), reset to its default for the others
			  * (it cannot change their run); an object of them is left out when empty */

struct spec_field {
	int sec;
	const char *key;
	int type;
	size_t off;
	double lo, hi;
	unsigned flags;
	double def;                 /* numbers, bools, choice values */
	const char *sdef;           /* strings, words, norm type */
	int child;                  /* FT_OBJ */
	const char *const *names;   /* FT_WORD, FT_CHOICE: NULL-terminated */
	const int *vals;            /* FT_CHOICE: stored value of names[i] */
	const char *noun;           /* FT_CHOICE: "a placement", for messages */
	size_t cap;                 /* FT_WORD: storage size */
};

static const char *const arch_names[] = { "gpt", "llama", "vit", NULL };
static const char *const source_names[] = { "text", "fashion-mnist", NULL };
static const char *const device_names[] = { "cpu", NULL };
static const char *const placement_names[] = { "pre", "post", "peri", "mix", "lns", "deepnorm",
					       NULL };
static const int placement_vals[] = {
	SPEC_PLACE_PRE, SPEC_PLACE_POST, SPEC_PLACE_PERI, SPEC_PLACE_MIX, SPEC_PLACE_LNS,
	SPEC_PLACE_DEEPNORM,
};
static const char *const schedule_names[] = { "cosine", "constant", NULL };
static const int schedule_vals[] = { SPEC_SCHED_COSINE, SPEC_SCHED_CONSTANT };
/* "auto" is only an input: resolve_defaults turns it into 1 or 0 before anything is printed. */
static const char *const embed_names[] = { "auto", "learned", "none", NULL };
static const char *const pool_names[] = { "cls", "mean", NULL };
static const int pool_vals[] = { 0, 1 };
static const int embed_vals[] = { -1, 1, 0 };
static const char *const on_dead_names[] = { "stop", "continue", NULL };
static const int on_dead_vals[] = { SPEC_ON_DEAD_STOP, SPEC_ON_DEAD_CONTINUE };
static const char *const lnr_mode_names[] = { "none", "gradual", "all_at_once", NULL };
static const int lnr_mode_vals[] = { SPEC_LNR_NONE, SPEC_LNR_GRADUAL, SPEC_LNR_ALL_AT_ONCE };
static const char *const lnr_std_names[] = { "ema", "data", NULL };
static const int lnr_std_vals[] = { SPEC_LNR_STD_EMA, SPEC_LNR_STD_DATA };

#define OFF(m) offsetof(struct spec, m)
#define TWO53 9007199254740992.0

static const struct spec_field spec_fields[] = {
	{ SEC_ROOT, "name", FT_STR, OFF(name), 0, SPEC_NAME_MAX - 1, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "model", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_MODEL, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "norm", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_NORM, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "data", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_DATA, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "train", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_TRAIN, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "probe", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_PROBE, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "health", FT_OBJ, 0, 0, 0, OMIT_DEFAULT, 0, NULL, SEC_HEALTH, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "seed", FT_U64, OFF(seed), 0, TWO53, 0, 1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "device", FT_WORD, OFF(device), 0, 0, 0, 0, "cpu", 0, device_names, NULL, NULL,
	  sizeof ((struct spec *)0)->device },
	{ SEC_ROOT, "threads", FT_INT, OFF(threads), 1, 64, 0, 1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "parent", FT_STR, OFF(parent), 0, SPEC_PARENT_MAX - 1, CHILD_ONLY, 0, "", 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "init_from", FT_STR, OFF(init_from), 0, SPEC_PATH_MAX - 1, CHILD_ONLY, 0, "", 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "parent_hash", FT_STR, OFF(parent_hash), 0, 64, CHILD_ONLY, 0, "", 0, NULL, NULL, NULL, 0 },
	{ SEC_ROOT, "lnremove", FT_OBJ, 0, 0, 0, CHILD_ONLY, 0, NULL, SEC_LNREMOVE, NULL, NULL, NULL, 0 },

	{ SEC_MODEL, "arch", FT_WORD, OFF(model.arch), 0, 0, 0, 0, "gpt", 0, arch_names, NULL, NULL,
	  sizeof ((struct spec *)0)->model.arch },
	{ SEC_MODEL, "n_layer", FT_INT, OFF(model.n_layer), 1, MODEL_MAX_LAYERS, 0, 4, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "d_model", FT_INT, OFF(model.d_model), 8, NORM_MAX_D, 0, 128, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "n_head", FT_INT, OFF(model.n_head), 1, 64, 0, 4, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "d_ff", FT_INT, OFF(model.d_ff), 1, 16384, DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "seq_len", FT_INT, OFF(model.seq_len), 2, 4096, 0, 128, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "tie_head", FT_BOOL, OFF(model.tie_head), 0, 1, DEP_DEFAULT, 1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "bias", FT_BOOL, OFF(model.bias), 0, 1, DEP_DEFAULT, 1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "head_bias", FT_BOOL, OFF(model.head_bias), 0, 1, OMIT_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "patch", FT_INT, OFF(model.patch), 1, 28, VIT_ONLY, 4, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "pool", FT_CHOICE, OFF(model.pool_mean), 0, 0, VIT_ONLY, 0, NULL, 0,
	  pool_names, pool_vals, "a pooling", 0 },
	{ SEC_MODEL, "scaled_init", FT_BOOL, OFF(model.scaled_init), 0, 1, DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_MODEL, "init_std", FT_REAL, OFF(model.init_std), 0, 1, OPEN_LO, 0.02, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_NORM, "type", FT_NORM, OFF(norm.type), 0, 0, DEP_DEFAULT, 0, "layernorm", 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "placement", FT_CHOICE, OFF(norm.placement), 0, 0, 0, SPEC_PLACE_PRE, NULL, 0,
	  placement_names, placement_vals, "a placement", 0 },
	{ SEC_NORM, "alpha0", FT_OBJ, 0, 0, 0, 0, 0, NULL, SEC_ALPHA0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "shift0", FT_REAL, OFF(norm.shift0), -10, 10, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "eps", FT_REAL, OFF(norm.eps), 0, 1, OPEN_LO | DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "mix_post_ratio", FT_REAL, OFF(norm.mix_post_ratio), 0, 1, 0, 0.25, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "embed_scale", FT_CHOICE, OFF(norm.embed_scale), 0, 0, 0, -1, NULL, 0,
	  embed_names, embed_vals, "an embed_scale setting", 0 },
	{ SEC_NORM, "embed_norm", FT_BOOL, OFF(norm.embed_norm), 0, 1, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "momentum", FT_REAL, OFF(norm.momentum), 0, 1, OPEN_LO | NORM_HP, 0.1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "pn", FT_OBJ, 0, 0, 0, NORM_HP, 0, NULL, SEC_PN, NULL, NULL, NULL, 0 },
	{ SEC_NORM, "un", FT_OBJ, 0, 0, 0, NORM_HP, 0, NULL, SEC_UN, NULL, NULL, NULL, 0 },

	{ SEC_PN, "alpha_fwd", FT_REAL, OFF(norm.pn.alpha_fwd), 0, 1, NORM_HP, 0.9, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PN, "alpha_bkw", FT_REAL, OFF(norm.pn.alpha_bkw), 0, 1, NORM_HP, 0.9, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PN, "warmup", FT_LONG, OFF(norm.pn.warmup), 0, 10000000, NORM_HP | DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PN, "groups", FT_INT, OFF(norm.pn.groups), 1, 64, NORM_HP | DEP_DEFAULT, 1, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_UN, "window", FT_INT, OFF(norm.un.window), 1, 64, NORM_HP, 4, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_UN, "warmup", FT_LONG, OFF(norm.un.warmup), 0, 10000000, NORM_HP | DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_UN, "outlier_filtration", FT_BOOL, OFF(norm.un.outlier_filtration), 0, 1, NORM_HP | DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_UN, "momentum", FT_REAL, OFF(norm.un.momentum), 0, 1, NORM_HP | OPEN_HI, 0.9, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_UN, "r_max", FT_REAL, OFF(norm.un.r_max), 1, 1000, NORM_HP, 5, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_UN, "r_free_after", FT_LONG, OFF(norm.un.r_free_after), 0, 10000000, NORM_HP | DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_ALPHA0, "attn", FT_REAL, OFF(norm.alpha_attn), 0, 100, OPEN_LO | DEP_DEFAULT, 1.0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_ALPHA0, "ffn", FT_REAL, OFF(norm.alpha_ffn), 0, 100, OPEN_LO | DEP_DEFAULT, 1.0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_ALPHA0, "final", FT_REAL, OFF(norm.alpha_final), 0, 100, OPEN_LO | DEP_DEFAULT, 1.0, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_DATA, "source", FT_WORD, OFF(data.source), 0, 0, DEP_DEFAULT, 0, "text", 0, source_names, NULL, NULL,
	  sizeof ((struct spec *)0)->data.source },
	{ SEC_DATA, "path", FT_STR, OFF(data.path), 1, SPEC_PATH_MAX - 1, 0, 0, "kjv", 0, NULL, NULL, NULL, 0 },
	{ SEC_DATA, "sha256", FT_STR, OFF(data.sha256), 0, 64, 0, 0, "", 0, NULL, NULL, NULL, 0 },
	{ SEC_DATA, "val_fraction", FT_REAL, OFF(data.val_fraction), 0.001, 0.5, 0, 0.05, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_TRAIN, "steps", FT_LONG, OFF(train.steps), 1, 10000000, 0, 1000, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "batch_size", FT_INT, OFF(train.batch_size), 1, 4096, 0, 16, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "lr", FT_REAL, OFF(train.lr), 0, 10, OPEN_LO, 1e-3, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "warmup", FT_LONG, OFF(train.warmup), 0, 10000000, DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "schedule", FT_CHOICE, OFF(train.schedule), 0, 0, 0, SPEC_SCHED_COSINE, NULL, 0,
	  schedule_names, schedule_vals, "a schedule", 0 },
	{ SEC_TRAIN, "min_lr", FT_REAL, OFF(train.min_lr), 0, 10, DEP_DEFAULT, 0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "weight_decay", FT_REAL, OFF(train.weight_decay), 0, 10, 0, 0.1, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "grad_clip", FT_REAL, OFF(train.grad_clip), 0, 1e6, 0, 1.0, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "beta1", FT_REAL, OFF(train.beta1), 0, 1, OPEN_HI, 0.9, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "beta2", FT_REAL, OFF(train.beta2), 0, 1, OPEN_HI, 0.99, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "adam_eps", FT_REAL, OFF(train.adam_eps), 0, 1, OPEN_LO, 1e-8, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_TRAIN, "on_dead", FT_CHOICE, OFF(train.on_dead), 0, 0, OMIT_DEFAULT, SPEC_ON_DEAD_STOP, NULL, 0,
	  on_dead_names, on_dead_vals, "an on_dead setting", 0 },

	{ SEC_PROBE, "every", FT_LONG, OFF(probe.every), 1, 1e9, 0, 10, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PROBE, "depth_every", FT_LONG, OFF(probe.depth_every), 1, 1e9, 0, 50, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PROBE, "samples_every", FT_LONG, OFF(probe.samples_every), 1, 1e9, 0, 500, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PROBE, "samples", FT_INT, OFF(probe.samples), 0, 100000, 0, 4096, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PROBE, "val_every", FT_LONG, OFF(probe.val_every), 1, 1e9, 0, 100, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_PROBE, "val_batches", FT_INT, OFF(probe.val_batches), 1, 1000, 0, 4, NULL, 0, NULL, NULL, NULL, 0 },

	{ SEC_HEALTH, "every", FT_LONG, OFF(health.every), 1, 1e9, OMIT_DEFAULT, 10, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_HEALTH, "dead_checks", FT_INT, OFF(health.dead_checks), 1, 1000, OMIT_DEFAULT, 3, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_HEALTH, "stall_after", FT_REAL, OFF(health.stall_after), 0, 1, OMIT_DEFAULT, 0.5, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_HEALTH, "stall_margin", FT_REAL, OFF(health.stall_margin), 0, 1, OPEN_LO | OMIT_DEFAULT, 0.01, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_HEALTH, "spike_factor", FT_REAL, OFF(health.spike_factor), 1, 1e6, OPEN_LO | OMIT_DEFAULT, 3, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_HEALTH, "spike_window", FT_INT, OFF(health.spike_window), 2, 1000, OMIT_DEFAULT, 50, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_LNREMOVE, "mode", FT_CHOICE, OFF(lnremove.mode), 0, 0, CHILD_ONLY, SPEC_LNR_NONE, NULL, 0,
	  lnr_mode_names, lnr_mode_vals, "an LN-removal mode", 0 },
	{ SEC_LNREMOVE, "start", FT_LONG, OFF(lnremove.start), 1, 10000000, CHILD_ONLY, 20, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_LNREMOVE, "gap_ln2", FT_INT, OFF(lnremove.gap_ln2), 1, 100000, CHILD_ONLY, 2, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_LNREMOVE, "gap_ln1_qk", FT_INT, OFF(lnremove.gap_ln1_qk), 1, 100000, CHILD_ONLY, 2, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_LNREMOVE, "gap_ln1_v", FT_INT, OFF(lnremove.gap_ln1_v), 1, 100000, CHILD_ONLY, 3, NULL, 0, NULL, NULL, NULL, 0 },
	{ SEC_LNREMOVE, "std_source", FT_CHOICE, OFF(lnremove.std_source), 0, 0, CHILD_ONLY, SPEC_LNR_STD_EMA, NULL, 0,
	  lnr_std_names, lnr_std_vals, "an std source", 0 },
	{ SEC_LNREMOVE, "ema_momentum", FT_REAL, OFF(lnremove.ema_momentum), 0, 1, CHILD_ONLY | OPEN_HI, 0.9, NULL, 0, NULL, NULL, NULL, 0 },
};

#define SPEC_NFIELDS ((int)(sizeof spec_fields / sizeof spec_fields[0]))
/* The most fields one section has; sized with room so a new row does not silently overflow. */
#define SPEC_SEC_MAX 32

/* "norm.pn.warmup": the dotted key of a field (sweeps, the schema, norm_kind.hparams). */
static void field_dotted(const struct spec_field *f, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", spec_sec_pointer[f->sec], f->key);
	memmove(buf, buf + 1, strlen(buf));   /* drop the leading '/' */
	for (char *p = buf; *p; p++)
		if (*p == '/')
			*p = '.';
}

/* Whether a NORM_HP leaf field is read by norm kind k (NULL: by none). */
static int norm_uses(const struct norm_kind *k, const struct spec_field *f)
{
	char key[160];
	if (!k)
		return 0;
	field_dotted(f, key, sizeof key);
	for (int i = 0; i < NORM_MAX_HPARAMS && k->hparams[i]; i++)
		if (strcmp(k->hparams[i], key) == 0)
			return 1;
	return 0;
}

static int field_index(size_t off)
{
	for (int i = 0; i < SPEC_NFIELDS; i++)
		if (spec_fields[i].type != FT_OBJ && spec_fields[i].off == off)
			return i;
	return -1;
}

static void *field_ptr(struct spec *s, const struct spec_field *f)
{
	return (char *)s + f->off;
}

static const void *field_cptr(const struct spec *s, const struct spec_field *f)
{
	return (const char *)s + f->off;
}

/* ---- small formatting helpers ----------------------------------------------------------- */

/* Shortest %g text that reads back as exactly v; locale-proof decimal point. */
static void fmt_num(char *buf, size_t cap, double v)
{
	if (!isfinite(v)) {
		snprintf(buf, cap, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
		return;
	}
	/* The shortest text over all precisions, so 10 is "10" rather than "1e+01". */
	char best[40] = "", cand[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(cand, sizeof cand, "%.*g", p, v);
		if (strtod(cand, NULL) == v && (!best[0] || strlen(cand) < strlen(best)))
			memcpy(best, cand, sizeof best);
	}
	snprintf(buf, cap, "%s", best);
	for (char *c = buf; *c; c++)
		if (*c == ',')
			*c = '.';
}

/* Length of s[0..n) without a UTF-8 sequence cut short at its end. */
static size_t utf8_trim(const char *s, size_t n)
{
	size_t m = n, need;
	unsigned char lead;
	while (m > 0 && n - m < 3 && ((unsigned char)s[m - 1] & 0xc0) == 0x80)
		m--;
	if (m == 0)
		return n;
	lead = (unsigned char)s[m - 1];
	if (lead < 0xc0)
		return n;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	return n - (m - 1) < need ? m - 1 : n;
}

/* "value" for a message: escaped to stay on one line, cut after 40 bytes (not mid-character). */
static void quote(char *dst, size_t cap, const char *s)
{
	size_t n = 0, i = 0;
	const size_t keep = 40;
	if (cap < 8) {
		if (cap)
			dst[0] = '\0';
		return;
	}
	dst[n++] = '"';
	for (; s[i] && i < keep && n + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			dst[n++] = '\\';
			dst[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", c);
		} else {
			dst[n++] = (char)c;
		}
	}
	if (s[i]) {
		n = utf8_trim(dst, n);
		if (n + 4 < cap) {
			memcpy(dst + n, "...", 3);
			n += 3;
		}
	}
	dst[n++] = '"';
	dst[n] = '\0';
}

static const char *json_type_name(const cJSON *it)
{
	if (cJSON_IsString(it))
		return "a string";
	if (cJSON_IsNumber(it))
		return "a number";
	if (cJSON_IsBool(it))
		return cJSON_IsTrue(it) ? "true" : "false";
	if (cJSON_IsNull(it))
		return "null";
	if (cJSON_IsArray(it))
		return "an array";
	if (cJSON_IsObject(it))
		return "an object";
	return "an unknown value";
}

/* Bytes in binary units, one decimal: "4.0 GiB". */
static void fmt_bytes(char *buf, size_t cap, uint64_t b)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)b;
	int u = -1;
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	if (u < 0)
		snprintf(buf, cap, "%" PRIu64 " bytes", b);
	else
		snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void add_err(struct spec_errors *errs, const char *pointer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_err(struct spec_errors *errs, const char *pointer, const char *fmt, ...)
{
	if (errs->n >= SPEC_MAX_ERRORS)
		return;
	struct spec_error *e = &errs->e[errs->n++];
	va_list ap;
	nl_strlcpy(e->pointer, pointer, sizeof e->pointer);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
}

/* parent + "/" + key as an RFC 6901 token (~ → ~0, / → ~1); cut whole characters if too long. */
static void pointer_join(char *dst, size_t cap, const char *parent, const char *key)
{
	size_t n;
	int cut = 0;
	nl_strlcpy(dst, parent, cap);
	n = strlen(dst);
	if (n + 2 >= cap)
		return;
	dst[n++] = '/';
	for (const char *k = key; *k; k++) {
		const char *rep = *k == '~' ? "~0" : *k == '/' ? "~1" : NULL;
		size_t w = rep ? 2 : 1;
		if (n + w >= cap) {
			cut = 1;
			break;
		}
		if (rep)
			memcpy(dst + n, rep, 2);
		else
			dst[n] = *k;
		n += w;
	}
	if (cut)
		n = utf8_trim(dst, n);
	dst[n] = '\0';
}

/* Edit distance, for "did you mean": keys are short, so the O(ab) table is tiny. */
static int edit_distance(const char *a, const char *b)
{
	int la = (int)strlen(a), lb = (int)strlen(b);
	int row[33];
	if (la > 32 || lb > 32)
		return 99;
	for (int j = 0; j <= lb; j++)
		row[j] = j;
	for (int i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = i;
		for (int j = 1; j <= lb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void err_unknown(struct spec_errors *errs, const char *pointer, int sec, const char *key)
{
	char allowed[200], hint[64] = "";
	size_t n = 0;
	int best = 3;
	allowed[0] = '\0';
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		const struct spec_field *f = &spec_fields[i];
		int d;
		if (f->sec != sec)
			continue;
		if (n < sizeof allowed) {
			int w = snprintf(allowed + n, sizeof allowed - n, "%s%s", n ? ", " : "", f->key);
			if (w > 0)
				n += (size_t)w;
		}
		d = edit_distance(key, f->key);
		if (d < best) {
			best = d;
			snprintf(hint, sizeof hint, "; did you mean \"%s\"?", f->key);
		}
	}
	add_err(errs, pointer, "unknown field%s (allowed: %s)", hint, allowed);
}

/* ---- strict JSON scan ------------------------------------------------------------------------ */

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		unsigned char c = p[k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* p[*i] is '"'. On error *i is where it went wrong (n when the input ran out). */
static int scan_string(const unsigned char *p, size_t n, size_t *i, const char **why)
{
	size_t k = *i + 1;
	for (;;) {
		unsigned char c;
		if (k >= n) {
			*why = "unterminated string";
			goto fail;
		}
		c = p[k];
		if (c == '"') {
			*i = k + 1;
			return 0;
		}
		if (c < 0x20) {
			*why = "control character in a string (escape it)";
			goto fail;
		}
		if (c >= 0x80) {
			/* RFC 8259 §8.1: JSON text is UTF-8. A name or path that is not would reach
			 * the canonical form, the store and every JSON answer that quotes it. */
			size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if (want > n - k || nl_utf8_check((const char *)p + k, want) != want) {
				*why = "invalid UTF-8 in a string";
				goto fail;
			}
			k += want;
			continue;
		}
		if (c != '\\') {
			k++;
			continue;
		}
		if (k + 1 >= n) {
			k = n;
			*why = "unterminated string";
			goto fail;
		}
		c = p[k + 1];
		if (c && strchr("\"\\/bfnrt", c)) {
			k += 2;
			continue;
		}
		if (c != 'u') {
			k++;
			*why = "unknown escape in a string";
			goto fail;
		}
		unsigned cp, lo;
		if (k + 6 > n) {
			k = n;
			*why = "unterminated string";
			goto fail;
		}
		if (hex4(p + k + 2, &cp)) {
			*why = "bad \\u escape (needs 4 hex digits)";
			goto fail;
		}
		if (cp == 0) {
			/* cJSON would cut the string there: a value that silently differs from the text. */
			*why = "\\u0000 is not allowed in a string";
			goto fail;
		}
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			*why = "unpaired UTF-16 surrogate in a string";
			goto fail;
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			/* A high surrogate needs "\\u" + a low one right after it. */
			if ((k + 6 < n && p[k + 6] != '\\') || (k + 7 < n && p[k + 7] != 'u')) {
				*why = "unpaired UTF-16 surrogate in a string";
				goto fail;
			}
			if (k + 12 > n) {
				k = n;
				*why = "unterminated string";
				goto fail;
			}
			if (hex4(p + k + 8, &lo) || lo < 0xdc00 || lo > 0xdfff) {
				*why = "unpaired UTF-16 surrogate in a string";
				goto fail;
			}
			k += 6;
		}
		k += 6;
	}
fail:
	*i = k;
	return -1;
}

static int scan_number(const unsigned char *p, size_t n, size_t *i, const char **why)
{
	size_t k = *i;
	if (p[k] == '-')
		k++;
	if (k >= n)
		goto end;
	if (p[k] == '0') {
		k++;
	} else if (p[k] >= '1' && p[k] <= '9') {
		while (k < n && p[k] >= '0' && p[k] <= '9')
			k++;
	} else {
		*why = "expected a digit";
		goto fail;
	}
	if (k < n && p[k] == '.') {
		k++;
		if (k >= n)
			goto end;
		if (!(p[k] >= '0' && p[k] <= '9')) {
			*why = "expected a digit after '.'";
			goto fail;
		}
		while (k < n && p[k] >= '0' && p[k] <= '9')
			k++;
	}
	if (k < n && (p[k] == 'e' || p[k] == 'E')) {
		k++;
		if (k < n && (p[k] == '+' || p[k] == '-'))
			k++;
		if (k >= n)
			goto end;
		if (!(p[k] >= '0' && p[k] <= '9')) {
			*why = "expected a digit in the exponent";
			goto fail;
		}
		while (k < n && p[k] >= '0' && p[k] <= '9')
			k++;
	}
	if (k - *i > SPEC_JSON_NUMBER_MAX) {
		k = *i;
		*why = "number longer than 63 characters";
		goto fail;
	}
	*i = k;
	return 0;
end:
	*why = "unexpected end of input";
	k = n;
fail:
	*i = k;
	return -1;
}

/* 1 and *i advanced when p[*i..] spells lit; 0 when it does not; -1 (and *i = n) when the input
 * ends part-way through it. */
static int scan_literal(const unsigned char *p, size_t n, size_t *i, const char *lit)
{
	size_t len = strlen(lit), have = n - *i < len ? n - *i : len;
	if (memcmp(p + *i, lit, have) != 0)
		return 0;
	if (have < len) {
		*i = n;
		return -1;
	}
	*i += len;
	return 1;
}

/*
 * Checks that p[0..n) is exactly one RFC 8259 value (with surrounding whitespace), nested at most
 * SPEC_JSON_DEPTH deep and within what cJSON represents faithfully. No allocation, no recursion.
 * On error, *at is the byte offset of the problem (n when the input ends early) and *why says what.
 */
static int json_scan(const unsigned char *p, size_t n, size_t *at, const char **why)
{
	unsigned char stack[SPEC_JSON_DEPTH];
	int depth = 0;
	size_t i = 0;
	enum { S_VALUE, S_VALUE_OR_CLOSE, S_KEY, S_KEY_OR_CLOSE, S_COLON, S_AFTER } st = S_VALUE;

	for (;;) {
		unsigned char c;
		while (i < n && is_ws(p[i]))
			i++;
		if (st == S_AFTER && depth == 0) {
			if (i < n) {
				*why = "unexpected text after the document";
				goto fail;
			}
			return 0;
		}
		if (i >= n) {
			*why = "unexpected end of input";
			goto fail;
		}
		c = p[i];
		switch (st) {
		case S_VALUE_OR_CLOSE:
			if (c == ']') {
				depth--;
				i++;
				st = S_AFTER;
				break;
			}
			/* fall through */
		case S_VALUE:
			if (c == '{' || c == '[') {
				if (depth == SPEC_JSON_DEPTH) {
					*why = "nested deeper than 64 levels";
					goto fail;
				}
				stack[depth++] = c;
				i++;
				st = c == '{' ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
			} else if (c == '"') {
				if (scan_string(p, n, &i, why))
					goto fail;
				st = S_AFTER;
			} else if (c == '-' || (c >= '0' && c <= '9')) {
				if (scan_number(p, n, &i, why))
					goto fail;
				st = S_AFTER;
			} else {
				int r = scan_literal(p, n, &i, "true");
				if (r == 0)
					r = scan_literal(p, n, &i, "false");
				if (r == 0)
					r = scan_literal(p, n, &i, "null");
				if (r <= 0) {
					*why = r < 0 ? "unexpected end of input" : "expected a value";
					goto fail;
				}
				st = S_AFTER;
			}
			break;
		case S_KEY_OR_CLOSE:
			if (c == '}') {
				depth--;
				i++;
				st = S_AFTER;
				break;
			}
			/* fall through */
		case S_KEY:
			if (c != '"') {
				*why = "expected a field name in double quotes";
				goto fail;
			}
			if (scan_string(p, n, &i, why))
				goto fail;
			st = S_COLON;
			break;
		case S_COLON:
			if (c != ':') {
				*why = "expected ':' after a field name";
				goto fail;
			}
			i++;
			st = S_VALUE;
			break;
		case S_AFTER:
			if (c == ',') {
				i++;
				st = stack[depth - 1] == '{' ? S_KEY : S_VALUE;
			} else if (c == (stack[depth - 1] == '{' ? '}' : ']')) {
				depth--;
				i++;
			} else {
				*why = stack[depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'";
				goto fail;
			}
			break;
		}
	}
fail:
	*at = i;
	return -1;
}

/* skip: bytes before p in the caller's text (a BOM), so the offset names the caller's byte. */
static void err_json(struct spec_errors *errs, const unsigned char *p, size_t n, size_t at,
		     size_t skip, const char *why)
{
	size_t line = 1;
	for (size_t k = 0; k < at && k < n; k++)
		line += p[k] == '\n';
	add_err(errs, "", "invalid JSON at line %zu, byte %zu: %s%s", line, at + skip, why,
		at >= n ? " (truncated?)" : "");
}

/* ---- field validation ------------------------------------------------------------------------- */

struct spec_ctx {
	struct spec *s;
	struct spec_errors *errs;
	unsigned char given[SPEC_NFIELDS];
	unsigned char bad[SPEC_NFIELDS];
};

static void fmt_range(char *buf, size_t cap, const struct spec_field *f)
{
	char lo[32], hi[32];
	if (f->type == FT_REAL) {
		fmt_num(lo, sizeof lo, f->lo);
		fmt_num(hi, sizeof hi, f->hi);
		snprintf(buf, cap, "%s%s, %s%s", f->flags & OPEN_LO ? "(" : "[", lo,
			 hi, f->flags & OPEN_HI ? ")" : "]");
	} else {
		snprintf(buf, cap, "%.0f..%.0f", f->lo, f->hi);
	}
}

static int in_range(const struct spec_field *f, double v)
{
	if (!isfinite(v))
		return 0;
	if (f->flags & OPEN_LO ? v <= f->lo : v < f->lo)
		return 0;
	if (f->flags & OPEN_HI ? v >= f->hi : v > f->hi)
		return 0;
	return 1;
}

static void list_names(char *buf, size_t cap, const char *const *names)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int i = 0; names[i] && n < cap; i++) {
		int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Validates one scalar and stores it. Returns 0, or -1 after recording the error. */
static int set_field(struct spec_ctx *cx, const struct spec_field *f, const cJSON *it,
		     const char *ptr)
{
	char val[64], range[96], allowed[160];
	void *dst = field_ptr(cx->s, f);

	switch (f->type) {
	case FT_INT:
	case FT_LONG:
	case FT_U64: {
		double v;
		if (!cJSON_IsNumber(it)) {
			add_err(cx->errs, ptr, "expected an integer, got %s", json_type_name(it));
			return -1;
		}
		v = it->valuedouble;
		fmt_num(val, sizeof val, v);
		fmt_range(range, sizeof range, f);
		if (!isfinite(v)) {
			add_err(cx->errs, ptr, "number too large, out of range %s", range);
			return -1;
		}
		if (floor(v) != v) {
			add_err(cx->errs, ptr, "expected an integer in %s, got %s", range, val);
			return -1;
		}
		if (!in_range(f, v)) {
			add_err(cx->errs, ptr, "%s is out of range %s", val, range);
			return -1;
		}
		if (f->type == FT_INT)
			*(int *)dst = (int)v;
		else if (f->type == FT_LONG)
			*(long *)dst = (long)v;
		else
			*(uint64_t *)dst = (uint64_t)v;
		return 0;
	}
	case FT_REAL: {
		double v;
		if (!cJSON_IsNumber(it)) {
			add_err(cx->errs, ptr, "expected a number, got %s", json_type_name(it));
			return -1;
		}
		v = it->valuedouble;
		if (!in_range(f, v)) {
			fmt_num(val, sizeof val, v);
			fmt_range(range, sizeof range, f);
			if (!isfinite(v))
				add_err(cx->errs, ptr, "number too large, out of range %s", range);
			else
				add_err(cx->errs, ptr, "%s is out of range %s", val, range);
			return -1;
		}
		/* -0 and 0 are the same experiment: keep one spelling so they hash alike. */
		*(double *)dst = v == 0 ? 0.0 : v;
		return 0;
	}
	case FT_BOOL:
		if (!cJSON_IsBool(it)) {
			add_err(cx->errs, ptr, "expected true or false, got %s", json_type_name(it));
			return -1;
		}
		*(int *)dst = cJSON_IsTrue(it) ? 1 : 0;
		return 0;
	default:
		break;
	}

	if (!cJSON_IsString(it) || !it->valuestring) {
		add_err(cx->errs, ptr, "expected a string, got %s", json_type_name(it));
		return -1;
	}
	const char *str = it->valuestring;
	quote(val, sizeof val, str);

	switch (f->type) {
	case FT_STR: {
		size_t len = strlen(str), cap = (size_t)f->hi + 1;
		if ((double)len < f->lo) {
			add_err(cx->errs, ptr, "must not be empty");
			return -1;
		}
		if ((double)len > f->hi) {
			add_err(cx->errs, ptr, "%zu bytes is too long (at most %.0f)", len, f->hi);
			return -1;
		}
		if (has_control(str)) {
			add_err(cx->errs, ptr, "%s contains a control character", val);
			return -1;
		}
		memset(dst, 0, cap);
		memcpy(dst, str, len);
		return 0;
	}
	case FT_WORD:
		for (int i = 0; f->names[i]; i++) {
			if (strcmp(str, f->names[i]) == 0) {
				memset(dst, 0, f->cap);
				nl_strlcpy(dst, str, f->cap);
				return 0;
			}
		}
		list_names(allowed, sizeof allowed, f->names);
		if (!f->names[1])
			add_err(cx->errs, ptr, "%s is not supported: only \"%s\" is supported", val,
				f->names[0]);
		else
			add_err(cx->errs, ptr, "%s is not allowed (allowed: %s)", val, allowed);
		return -1;
	case FT_CHOICE:
		for (int i = 0; f->names[i]; i++) {
			if (strcmp(str, f->names[i]) == 0) {
				*(int *)dst = f->vals[i];
				return 0;
			}
		}
		list_names(allowed, sizeof allowed, f->names);
		add_err(cx->errs, ptr, "%s is not %s (allowed: %s)", val, f->noun, allowed);
		return -1;
	case FT_NORM: {
		int k = norm_find(str);
		if (k < 0) {
			norm_names(allowed, sizeof allowed);
			add_err(cx->errs, ptr, "%s is not a norm type (allowed: %s)", val, allowed);
			return -1;
		}
		*(int *)dst = k;
		return 0;
	}
	default:
		add_err(cx->errs, ptr, "internal error: field type %d", f->type);
		return -1;
	}
}

static void walk_object(struct spec_ctx *cx, const cJSON *obj, int sec)
{
	for (const cJSON *it = obj->child; it; it = it->next) {
		char ptr[sizeof cx->errs->e[0].pointer];
		const char *key = it->string ? it->string : "";
		int r = -1;

		for (int i = 0; i < SPEC_NFIELDS; i++) {
			if (spec_fields[i].sec == sec && strcmp(spec_fields[i].key, key) == 0) {
				r = i;
				break;
			}
		}
		pointer_join(ptr, sizeof ptr, spec_sec_pointer[sec], key);
		if (r < 0) {
			err_unknown(cx->errs, ptr, sec, key);
			continue;
		}
		if (cx->given[r]) {
			add_err(cx->errs, ptr, "duplicate field (given more than once)");
			cx->bad[r] = 1;
			continue;
		}
		cx->given[r] = 1;
		const struct spec_field *f = &spec_fields[r];
		if (f->type == FT_OBJ) {
			if (!cJSON_IsObject(it)) {
				add_err(cx->errs, ptr, "expected an object, got %s", json_type_name(it));
				cx->bad[r] = 1;
			} else {
				walk_object(cx, it, f->child);
			}
		} else if (set_field(cx, f, it, ptr)) {
			cx->bad[r] = 1;
		}
	}
}

/* Defaults that depend on other fields; `given` NULL means none was given. */
static int not_given(const unsigned char *given, size_t off)
{
	int i = field_index(off);
	return i >= 0 && !(given && given[i]);
}

static void apply_table_defaults(struct spec *s);

static void resolve_defaults(struct spec *s, const unsigned char *given)
{
	int i;
	const struct norm_kind *k = NULL;
	int llama = strcmp(s->model.arch, "llama") == 0, vit = strcmp(s->model.arch, "vit") == 0;
	/* per-architecture defaults first: the norm type decides eps and the embedding scale */
	if (llama && not_given(given, OFF(norm.type)))
		s->norm.type = norm_find("rmsnorm");
	if (llama && not_given(given, OFF(model.bias)))
		s->model.bias = 0;
	if (llama && not_given(given, OFF(model.tie_head)))
		s->model.tie_head = 0;
	if (vit && not_given(given, OFF(data.source)))
		nl_strlcpy(s->data.source, "fashion-mnist", sizeof s->data.source);
	if (vit) {
		if (not_given(given, OFF(norm.alpha_attn)))
			s->norm.alpha_attn = 0.5;
		if (not_given(given, OFF(norm.alpha_ffn)))
			s->norm.alpha_ffn = 0.5;
		if (not_given(given, OFF(norm.alpha_final)))
			s->norm.alpha_final = 0.5;
		if (s->norm.embed_scale < 0)
			s->norm.embed_scale = 0;   /* no embedding scale on patch embeddings */
	}
	if (s->norm.type >= 0 && s->norm.type < norm_table_len)
		k = norm_table[s->norm.type];

	if ((i = field_index(OFF(model.d_ff))) >= 0 && !(given && given[i]))
		s->model.d_ff = llama ? (8 * s->model.d_model + 3 * 64 - 1) / (3 * 64) * 64 :
			4 * s->model.d_model;
	/* GPT-2's 1/sqrt(2L) output scaling fights LayerNorm-Scaling's own depth scaling; DeepNorm
	 * draws the blocks' matrices with its own Xavier gains, so the flag would mean nothing. */
	if ((i = field_index(OFF(model.scaled_init))) >= 0 && !(given && given[i]))
		s->model.scaled_init = s->norm.placement != SPEC_PLACE_LNS &&
				       s->norm.placement != SPEC_PLACE_DEEPNORM;
	if ((i = field_index(OFF(norm.eps))) >= 0 && !(given && given[i]))
		s->norm.eps = k ? k->default_eps : 1e-5;
	if (s->norm.embed_scale < 0)
		s->norm.embed_scale = k ? (k->wants_embed_scale != 0) : 0;
	if ((i = field_index(OFF(train.warmup))) >= 0 && !(given && given[i]))
		s->train.warmup = s->train.steps < 100 ? s->train.steps : 100;
	if ((i = field_index(OFF(train.min_lr))) >= 0 && !(given && given[i]))
		s->train.min_lr = s->train.lr < 1e-4 ? s->train.lr : 1e-4;
	/* batch-statistic norms: the papers' warmups (PN 8000 = the LR warmup of a long IWSLT run,
	 * UN 4000) are ~10% of their runs or less; ours are short, so 10% of train.steps (at least
	 * 1). UN's r clamp opens at max(1000, warmup) in the code, the warmup for its settings:
	 * here max(un.warmup, 10% of steps). PN groups = heads, as the code's group_num. */
	long tenth = s->train.steps / 10 > 0 ? s->train.steps / 10 : 1;
	if (not_given(given, OFF(norm.pn.warmup)))
		s->norm.pn.warmup = tenth;
	if (not_given(given, OFF(norm.pn.groups)))
		s->norm.pn.groups = s->model.n_head;
	if (not_given(given, OFF(norm.un.warmup)))
		s->norm.un.warmup = tenth;
	if (not_given(given, OFF(norm.un.r_free_after)))
		s->norm.un.r_free_after = s->norm.un.warmup > tenth ? s->norm.un.warmup : tenth;
	/* the paper's split: no filtration for NLP, filtration for vision */
	if (not_given(given, OFF(norm.un.outlier_filtration)))
		s->norm.un.outlier_filtration = vit;
}

/* Hyper-parameters of other norm kinds cannot change this run: back to their defaults, so the
 * struct (and the canonical form, which leaves them out) says what runs. */
static void reset_unused_hparams(struct spec *s, unsigned char *given)
{
	const struct norm_kind *k = s->norm.type >= 0 && s->norm.type < norm_table_len ?
		norm_table[s->norm.type] : NULL;
	struct spec def;
	memset(&def, 0, sizeof def);
	apply_table_defaults(&def);
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		const struct spec_field *f = &spec_fields[i];
		if (!(f->flags & NORM_HP) || f->type == FT_OBJ || norm_uses(k, f))
			continue;
		size_t n = f->type == FT_REAL ? sizeof(double) : f->type == FT_LONG ? sizeof(long) :
			sizeof(int);
		memcpy(field_ptr(s, f), field_cptr(&def, f), n);
		if (given)
			given[i] = 0;
	}
}

static void apply_table_defaults(struct spec *s)
{
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		const struct spec_field *f = &spec_fields[i];
		void *dst = field_ptr(s, f);
		switch (f->type) {
		case FT_INT:
		case FT_BOOL:
		case FT_CHOICE:
			*(int *)dst = (int)f->def;
			break;
		case FT_LONG:
			*(long *)dst = (long)f->def;
			break;
		case FT_U64:
			*(uint64_t *)dst = (uint64_t)f->def;
			break;
		case FT_REAL:
			*(double *)dst = f->def;
			break;
		case FT_STR:
			nl_strlcpy(dst, f->sdef ? f->sdef : "", (size_t)f->hi + 1);
			break;
		case FT_WORD:
			nl_strlcpy(dst, f->sdef, f->cap);
			break;
		case FT_NORM: {
			int k = norm_find(f->sdef);
			*(int *)dst = k >= 0 ? k : 0;
			break;
		}
		default:
			break;
		}
	}
}

void spec_defaults(struct spec *s)
{
	/* Zero first so padding and string tails are deterministic (specs are compared bytewise). */
	memset(s, 0, sizeof *s);
	apply_table_defaults(s);
	resolve_defaults(s, NULL);
}

static void check_cross(struct spec_ctx *cx)
{
	const struct spec *s = cx->s;
	int nh = field_index(OFF(model.n_head)), dm = field_index(OFF(model.d_model));
	int wu = field_index(OFF(train.warmup)), st = field_index(OFF(train.steps));
	int ml = field_index(OFF(train.min_lr)), lr = field_index(OFF(train.lr));
	char a[32], b[32];

	int vit = strcmp(s->model.arch, "vit") == 0, llama = strcmp(s->model.arch, "llama") == 0;
	int pa = field_index(OFF(model.patch)), hb = field_index(OFF(model.head_bias));
	int so = field_index(OFF(data.source));
	if (!cx->bad[nh] && !cx->bad[dm] && s->model.d_model % s->model.n_head != 0)
		add_err(cx->errs, "/model/n_head", "n_head %d must divide d_model %d",
			s->model.n_head, s->model.d_model);
	else if (llama && !cx->bad[nh] && !cx->bad[dm] && (s->model.d_model / s->model.n_head) % 2)
		add_err(cx->errs, "/model/n_head", "llama's rotary positions pair channels: the head "
			"size d_model/n_head = %d must be even", s->model.d_model / s->model.n_head);
	if (!cx->bad[pa] && 28 % s->model.patch != 0)
		add_err(cx->errs, "/model/patch", "%d must divide the 28-pixel image side "
			"(1, 2, 4, 7, 14 or 28)", s->model.patch);
	/* llama has no biases by default; "bias": true is what a layernorm-trained llama converted
	 * to (C)RMSNorm needs to carry LayerNorm's β (normlab convert) */
	if (vit && cx->given[hb] && s->model.head_bias)
		add_err(cx->errs, "/model/head_bias", "vit's head always has a bias: head_bias is for "
			"gpt and llama");
	if (cx->given[so] && !cx->bad[so] &&
	    (strcmp(s->data.source, "fashion-mnist") == 0) != vit)
		add_err(cx->errs, "/data/source", "\"%s\" does not fit model.arch \"%s\" (vit reads "
			"\"fashion-mnist\", gpt and llama read \"text\")", s->data.source,
			s->model.arch);
	if (cx->given[wu] && !cx->bad[wu] && !cx->bad[st] && s->train.warmup > s->train.steps)
		add_err(cx->errs, "/train/warmup", "%ld is out of range 0..%ld (at most train.steps)",
			s->train.warmup, s->train.steps);
	if (cx->given[ml] && !cx->bad[ml] && !cx->bad[lr] && s->train.min_lr > s->train.lr) {
		fmt_num(a, sizeof a, s->train.min_lr);
		fmt_num(b, sizeof b, s->train.lr);
		add_err(cx->errs, "/train/min_lr", "%s is out of range [0, %s] (at most train.lr)", a, b);
	}
	if (s->parent[0] && (strspn(s->parent, "0123456789") != strlen(s->parent) ||
			     strlen(s->parent) > 18))
		add_err(cx->errs, "/parent", "must be a run id (decimal digits, as POST "
			"/api/v1/experiments answered)");
	if (s->parent[0] && s->init_from[0])
		add_err(cx->errs, "/init_from", "give one start: parent (a run of the daemon) or "
			"init_from (a checkpoint file, the CLI), not both");
	if (s->parent_hash[0] && (strspn(s->parent_hash, "0123456789abcdef") != 64 ||
				  s->parent_hash[64]))
		add_err(cx->errs, "/parent_hash", "must be 64 lower-case hex digits (the parent's "
			"spec hash), or absent");
	int pg = field_index(OFF(norm.pn.groups)), ty = field_index(OFF(norm.type));
	if (cx->given[pg] && !cx->bad[pg] && !cx->bad[dm] && !cx->bad[ty] &&
	    s->norm.type == norm_find("powernorm") && s->model.d_model % s->norm.pn.groups != 0)
		add_err(cx->errs, "/norm/pn/groups", "%d must divide d_model %d (group scaling splits "
			"the channels into equal groups)", s->norm.pn.groups, s->model.d_model);
	if (s->data.sha256[0]) {
		size_t n = strspn(s->data.sha256, "0123456789abcdef");
		if (n != 64 || s->data.sha256[n])
			add_err(cx->errs, "/data/sha256", "must be 64 lower-case hex digits (the corpus's "
				"SHA-256, as GET /api/v1/datasets lists it), or absent");
	}
}

int spec_is_child(const struct spec *s)
{
	return s->parent[0] || s->init_from[0];
}

static cJSON *canon_value(const struct spec *s, const struct spec_field *f);

/* The canonical text of one field's value (for comparing a child's field with its parent's). */
static int field_text(const struct spec *s, const struct spec_field *f, char *buf, size_t cap)
{
	cJSON *v = canon_value(s, f);
	char *t = v ? cJSON_PrintUnformatted(v) : NULL;
	cJSON_Delete(v);
	if (!t)
		return -1;
	nl_strlcpy(buf, t, cap);
	cJSON_free(t);
	return 0;
}

/*
 * A child's model is its parent's: every model and norm field it leaves out is copied from the
 * parent, and one it gives must equal the parent's (the weights would not fit otherwise). Then
 * parent_hash is the parent's spec hash. Errors name the field.
 */
static int inherit_parent(struct spec_ctx *cx, const struct spec_limits *limits)
{
	struct spec par;
	struct spec_error pe = { "", "" };
	char ph[65] = "", a[160], b[160];
	struct spec *s = cx->s;
	int rc = limits->resolve_parent(limits->parent_ctx, s, &par, ph, &pe);
	if (rc != 0) {
		add_err(cx->errs, pe.pointer, "%s", pe.msg);
		return rc;
	}
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		const struct spec_field *f = &spec_fields[i];
		char ptr[128];
		if (f->type == FT_OBJ || (f->sec != SEC_MODEL && f->sec != SEC_NORM &&
					  f->sec != SEC_ALPHA0))
			continue;
		if (!cx->given[i]) {
			memcpy(field_ptr(s, f), field_cptr(&par, f),
			       f->type == FT_REAL ? sizeof(double) :
			       f->type == FT_LONG ? sizeof(long) :
			       f->type == FT_U64 ? sizeof(uint64_t) :
			       f->type == FT_STR ? (size_t)f->hi + 1 :
			       f->type == FT_WORD ? f->cap : sizeof(int));
			continue;
		}
		if (field_text(s, f, a, sizeof a) || field_text(&par, f, b, sizeof b))
			return NL_ENOMEM;
		if (strcmp(a, b) != 0) {
			snprintf(ptr, sizeof ptr, "%s/%s", spec_sec_pointer[f->sec], f->key);
			add_err(cx->errs, ptr, "%s differs from the parent's %s: a child's model and "
				"norm fields are its parent's (leave the field out)", a, b);
		}
	}
	if (s->parent_hash[0] && strcmp(s->parent_hash, ph) != 0)
		add_err(cx->errs, "/parent_hash", "the parent's spec hash is %s, not %s", ph,
			s->parent_hash);
	nl_strlcpy(s->parent_hash, ph, sizeof s->parent_hash);
	if (par.lnremove.mode != SPEC_LNR_NONE)
		add_err(cx->errs, s->parent[0] ? "/parent" : "/init_from", "the parent removed its "
			"norms (lnremove.mode %s): a child starts from a model with its norms",
			lnr_mode_names[par.lnremove.mode]);
	return 0;
}

/* LN removal: a child of a Pre-LN (or Pre-RMSNorm) language model, with its schedule inside
 * train.steps. */
static void check_lnremove(struct spec_ctx *cx)
{
	const struct spec *s = cx->s;
	const struct spec_lnremove *c = &s->lnremove;
	if (c->mode == SPEC_LNR_NONE)
		return;
	if (!spec_is_child(s)) {
		add_err(cx->errs, "/lnremove/mode", "LN removal fine-tunes a trained model: give "
			"\"parent\" (a finished run of the daemon) or \"init_from\" (a checkpoint "
			"file, the CLI)");
		return;
	}
	if (strcmp(s->model.arch, "vit") == 0)
		add_err(cx->errs, "/model/arch", "LN removal runs on gpt and llama, not vit");
	if (!lnr_kind_ok(norm_table[s->norm.type]->name))
		add_err(cx->errs, "/norm/type", "LN removal replaces layernorm or rmsnorm, not %s",
			norm_table[s->norm.type]->name);
	if (s->norm.placement != SPEC_PLACE_PRE)
		add_err(cx->errs, "/norm/placement", "LN removal needs the pre placement, not %s",
			spec_placement_name(s->norm.placement));
	long last = lnr_last_step(c, s->model.n_layer);
	if (last > s->train.steps)
		add_err(cx->errs, "/lnremove/start", "the schedule's last removal (%s) falls at step "
			"%ld, past train.steps %ld: lower lnremove.start or the gaps, or raise "
			"train.steps", c->mode == SPEC_LNR_GRADUAL ? "ln_f" : "every site", last,
			s->train.steps);
}

int spec_parse(struct spec *s, const char *json, size_t len, const struct spec_limits *limits,
	       struct spec_errors *errs)
{
	struct spec_errors local_errs;
	const unsigned char *p = (const unsigned char *)json;
	const char *why = NULL;
	cJSON *root = NULL;
	size_t at = 0, skip = 0;
	int rc;

	if (!errs)
		errs = &local_errs;
	errs->n = 0;

	if (!json && len) {
		add_err(errs, "", "invalid JSON: no text");
		return NL_EINVAL;
	}
	if (len > SPEC_JSON_MAX) {
		add_err(errs, "", "the JSON document is %zu bytes, above the limit of %d bytes", len,
			SPEC_JSON_MAX);
		return NL_EINVAL;
	}
	/* A UTF-8 byte order mark is not JSON but editors write it; skip it. */
	if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
		p += 3;
		len -= 3;
		skip = 3;
	}
	{
		size_t k = 0;
		while (k < len && is_ws(p[k]))
			k++;
		if (k == len) {
			add_err(errs, "", "invalid JSON: empty document");
			return NL_EINVAL;
		}
	}
	if (json_scan(p, len, &at, &why)) {
		err_json(errs, p, len, at, skip, why);
		return NL_EINVAL;
	}
	{
		size_t k = 0;
		while (is_ws(p[k]))
			k++;
		if (p[k] != '{') {
			add_err(errs, "", "the spec must be a JSON object, got %s",
				p[k] == '[' ? "an array" : p[k] == '"' ? "a string" :
				p[k] == 't' || p[k] == 'f' ? "a boolean" : p[k] == 'n' ? "null" :
				"a number");
			return NL_EINVAL;
		}
	}
	/*
	 * The scanner has proven the text is one well-formed value ending at len, so cJSON can be
	 * given the length-bounded original (no NUL needed, nothing trails it); if it still fails,
	 * it ran out of memory.
	 */
	root = cJSON_ParseWithLengthOpts((const char *)p, len, NULL, 0);
	if (!root) {
		add_err(errs, "", "out of memory while parsing the spec");
		return NL_ENOMEM;
	}
	rc = spec_parse_tree(s, root, limits, errs);
	cJSON_Delete(root);
	return rc;
}

int spec_parse_tree(struct spec *s, const struct cJSON *root, const struct spec_limits *limits,
		    struct spec_errors *errs)
{
	struct spec_errors local_errs;
	struct spec_ctx cx;
	struct spec tmp;
	int rc = NL_EINVAL;

	if (!errs)
		errs = &local_errs;
	errs->n = 0;
	if (!cJSON_IsObject(root)) {
		add_err(errs, "", "the spec must be a JSON object");
		return NL_EINVAL;
	}
	memset(&cx, 0, sizeof cx);
	memset(&tmp, 0, sizeof tmp);
	apply_table_defaults(&tmp);    /* embed_scale stays -1 ("auto") until resolved */
	cx.s = &tmp;
	cx.errs = errs;
	walk_object(&cx, root, SEC_ROOT);
	check_cross(&cx);
	if (errs->n)
		goto out;

	reset_unused_hparams(&tmp, cx.given);
	resolve_defaults(&tmp, cx.given);
	if (spec_is_child(&tmp) && limits && limits->resolve_parent) {
		rc = inherit_parent(&cx, limits);
		if (rc != 0 || errs->n) {
			rc = rc ? rc : NL_EINVAL;
			goto out;
		}
	}
	check_lnremove(&cx);
	if (errs->n) {
		rc = NL_EINVAL;
		goto out;
	}
	/* a text corpus is resolved by the caller (the daemon's data roots); images (vit) come with
	 * the architecture's own data set */
	int text = strcmp(tmp.data.source, "text") == 0;
	/* the model alone over the cap: say so before looking for the corpus at all */
	if (limits && limits->resolve_data && text) {
		uint64_t max = limits->max_bytes ? limits->max_bytes : SPEC_MEM_LIMIT_DEFAULT;
		uint64_t need = spec_mem_estimate(&tmp);
		if (need != UINT64_MAX && need > max)
			goto mem_check;
	}
	if (limits && limits->resolve_data && text) {
		struct spec_error de = { "/data/path", "" };
		rc = limits->resolve_data(limits->resolve_ctx, &tmp, &de);
		if (rc != 0) {
			add_err(errs, de.pointer, "%s", de.msg);
			goto out;
		}
	}
mem_check:
	{
		uint64_t max = limits && limits->max_bytes ? limits->max_bytes : SPEC_MEM_LIMIT_DEFAULT;
		uint64_t need = spec_mem_estimate(&tmp);
		/*
		 * UINT64_MAX is spec_mem_estimate's "could not build the layout", which for a spec
		 * that passed validation means the layout's own allocation failed: that is our
		 * out-of-memory, not the user's oversized model.
		 */
		if (need == UINT64_MAX) {
			add_err(errs, "", "out of memory while estimating the run's memory");
			rc = NL_ENOMEM;
			goto out;
		}
		if (need > max) {
			char a[32], b[32];
			fmt_bytes(a, sizeof a, need);
			fmt_bytes(b, sizeof b, max);
			if (strcmp(a, b) == 0) {
				snprintf(a, sizeof a, "%" PRIu64 " bytes", need);
				snprintf(b, sizeof b, "%" PRIu64 " bytes", max);
			}
			if (tmp.data.bytes == 0) {
				add_err(errs, "/model",
					"the run needs %s (parameters, gradients, AdamW state, activations), "
					"above the limit of %s; reduce model.n_layer, model.d_model, "
					"model.seq_len or train.batch_size", a, b);
			} else {
				/* the corpus is mapped whole and counts: name both parts, and blame
				 * the corpus when it alone tips the run over */
				char m[32], c[32];
				fmt_bytes(m, sizeof m, need - tmp.data.bytes);
				fmt_bytes(c, sizeof c, tmp.data.bytes);
				add_err(errs, need - tmp.data.bytes <= max ? "/data/path" : "/model",
					"the run needs %s (%s for the model: parameters, gradients, AdamW "
					"state, activations; %s (%" PRIu64 " bytes) for the corpus, which is "
					"memory-mapped whole), above the limit of %s", a, m, c,
					tmp.data.bytes, b);
			}
			rc = NL_ELIMIT;
			goto out;
		}
	}
	*s = tmp;
	rc = 0;
out:
	return rc;
}

/* ---- canonical form --------------------------------------------------------------------------- */

static cJSON *canon_section(const struct spec *s, int sec);

static cJSON *raw_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static cJSON *raw_printf(const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return cJSON_CreateRaw(buf);
}

/*
 * Numbers go out as raw text we format ourselves: integers as integers (cJSON would print a
 * seed of 1e15 as "1e+15"), doubles as the shortest text that reads back bit-exactly. The hash
 * then does not depend on cJSON's number printer.
 */
static cJSON *canon_value(const struct spec *s, const struct spec_field *f)
{
	const void *src = field_cptr(s, f);
	char num[32];

	switch (f->type) {
	case FT_OBJ:
		return canon_section(s, f->child);
	case FT_INT:
		return raw_printf("%d", *(const int *)src);
	case FT_LONG:
		return raw_printf("%ld", *(const long *)src);
	case FT_U64:
		return raw_printf("%" PRIu64, *(const uint64_t *)src);
	case FT_REAL: {
		double v = *(const double *)src;
		if (!isfinite(v))
			return cJSON_CreateNull();
		fmt_num(num, sizeof num, v);
		return cJSON_CreateRaw(num);
	}
	case FT_BOOL:
		return cJSON_CreateBool(*(const int *)src != 0);
	case FT_STR:
		return cJSON_CreateString(src);
	case FT_WORD:
		return cJSON_CreateString(src);
	case FT_CHOICE: {
		int v = *(const int *)src;
		for (int i = 0; f->names[i]; i++)
			if (f->vals[i] == v)
				return cJSON_CreateString(f->names[i]);
		return cJSON_CreateNull();
	}
	case FT_NORM: {
		int k = *(const int *)src;
		if (k < 0 || k >= norm_table_len)
			return cJSON_CreateNull();
		return cJSON_CreateString(norm_table[k]->name);
	}
	default:
		return NULL;
	}
}

/* Whether field f of s holds its table default (OMIT_DEFAULT fields have plain ones); an
 * object: whether every field in its section does. */
static int at_default(const struct spec *s, const struct spec_field *f)
{
	struct spec d;
	if (f->type == FT_OBJ) {
		for (int i = 0; i < SPEC_NFIELDS; i++)
			if (spec_fields[i].sec == f->child && !at_default(s, &spec_fields[i]))
				return 0;
		return 1;
	}
	memset(&d, 0, sizeof d);
	apply_table_defaults(&d);
	const void *a = field_cptr(s, f), *b = field_cptr(&d, f);
	switch (f->type) {
	case FT_INT: case FT_BOOL: case FT_CHOICE: case FT_NORM:
		return *(const int *)a == *(const int *)b;
	case FT_LONG:
		return *(const long *)a == *(const long *)b;
	case FT_U64:
		return *(const uint64_t *)a == *(const uint64_t *)b;
	case FT_REAL:
		return *(const double *)a == *(const double *)b;
	case FT_STR: case FT_WORD:
		return strcmp(a, b) == 0;
	default:
		return 0;
	}
}

static cJSON *canon_section(const struct spec *s, int sec)
{
	int idx[SPEC_SEC_MAX], n = 0;
	cJSON *obj;

	for (int i = 0; i < SPEC_NFIELDS && n < SPEC_SEC_MAX; i++)
		if (spec_fields[i].sec == sec)
			idx[n++] = i;
	/* Sorted by strcmp so the text (and hash) does not depend on the table's order. */
	for (int i = 1; i < n; i++) {
		int v = idx[i], j = i;
		while (j > 0 && strcmp(spec_fields[idx[j - 1]].key, spec_fields[v].key) > 0) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = v;
	}
	obj = cJSON_CreateObject();
	if (!obj)
		return NULL;
	const struct norm_kind *k = s->norm.type >= 0 && s->norm.type < norm_table_len ?
		norm_table[s->norm.type] : NULL;
	for (int i = 0; i < n; i++) {
		const struct spec_field *f = &spec_fields[idx[i]];
		if ((f->flags & VIT_ONLY) && strcmp(s->model.arch, "vit") != 0)
			continue;
		if ((f->flags & OMIT_DEFAULT) && at_default(s, f))
			continue;
		if ((f->flags & CHILD_ONLY) && (!spec_is_child(s) ||
						(f->type == FT_STR && !*(const char *)field_cptr(s, f))))
			continue;
		if ((f->flags & NORM_HP) && f->type != FT_OBJ && !norm_uses(k, f))
			continue;
		cJSON *it = canon_value(s, f);
		if (it && (f->flags & NORM_HP) && f->type == FT_OBJ && !it->child) {
			cJSON_Delete(it);   /* none of its fields belongs to this norm kind */
			continue;
		}
		/* Keys are static strings from the table: add them without copying. */
		if (!it || !cJSON_AddItemToObjectCS(obj, f->key, it)) {
			cJSON_Delete(it);
			cJSON_Delete(obj);
			return NULL;
		}
	}
	return obj;
}

char *spec_canonical(const struct spec *s)
{
	cJSON *root = canon_section(s, SEC_ROOT);
	char *txt = NULL, *out = NULL;
	if (!root)
		return NULL;
	txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!txt)
		return NULL;
	out = nl_strdup(txt);
	cJSON_free(txt);
	return out;
}

int spec_hash(const struct spec *s, char hex[65])
{
	uint8_t d[SHA256_LEN];
	char *c = spec_canonical(s);
	if (!c)
		return NL_ENOMEM;
	sha256(c, strlen(c), d);
	nl_free(c);
	sha256_hex(d, hex);
	return 0;
}

const char *spec_placement_name(int p)
{
	for (int i = 0; placement_names[i]; i++)
		if (placement_vals[i] == p)
			return placement_names[i];
	return "?";
}

/* ---- the field table as data (engine/schema.c serves it) -------------------------------- */

static const char *const ftype_name[] = {
	[FT_OBJ] = "object", [FT_INT] = "integer", [FT_LONG] = "integer", [FT_U64] = "integer",
	[FT_REAL] = "number", [FT_BOOL] = "boolean", [FT_STR] = "string", [FT_WORD] = "string",
	[FT_CHOICE] = "string", [FT_NORM] = "string",
};

/* One leaf field of the table as {path, type, min, max, ..., enum, default}. */
static cJSON *field_json(const struct spec_field *f, const struct spec *def)
{
	cJSON *o = cJSON_CreateObject(), *e;
	char path[160];
	if (!o)
		return NULL;
	snprintf(path, sizeof path, "%s/%s", spec_sec_pointer[f->sec], f->key);
	cJSON_AddStringToObject(o, "pointer", path);
	/* "model.n_layer": the dotted key sweeps and the dashboard use */
	for (char *p = path + 1; *p; p++)
		if (*p == '/')
			*p = '.';
	cJSON_AddStringToObject(o, "key", path + 1);
	cJSON_AddStringToObject(o, "type", ftype_name[f->type]);
	const void *v = field_cptr(def, f);
	switch (f->type) {
	case FT_INT:
	case FT_LONG:
	case FT_U64:
	case FT_REAL:
		cJSON_AddNumberToObject(o, "min", f->lo);
		cJSON_AddNumberToObject(o, "max", f->hi);
		if (f->type == FT_REAL) {
			cJSON_AddBoolToObject(o, "min_exclusive", (f->flags & OPEN_LO) != 0);
			cJSON_AddBoolToObject(o, "max_exclusive", (f->flags & OPEN_HI) != 0);
		}
		cJSON_AddNumberToObject(o, "default",
					f->type == FT_INT ? (double)*(const int *)v :
					f->type == FT_LONG ? (double)*(const long *)v :
					f->type == FT_U64 ? (double)*(const uint64_t *)v :
					*(const double *)v);
		break;
	case FT_BOOL:
		cJSON_AddBoolToObject(o, "default", *(const int *)v != 0);
		break;
	case FT_STR:
		cJSON_AddNumberToObject(o, "min_length", f->lo);
		cJSON_AddNumberToObject(o, "max_length", f->hi);
		cJSON_AddStringToObject(o, "default", (const char *)v);
		break;
	case FT_WORD:
	case FT_CHOICE:
		e = cJSON_AddArrayToObject(o, "enum");
		for (int i = 0; e && f->names[i]; i++)
			cJSON_AddItemToArray(e, cJSON_CreateString(f->names[i]));
		if (f->type == FT_WORD) {
			cJSON_AddStringToObject(o, "default", (const char *)v);
		} else {
			for (int i = 0; f->names[i]; i++)
				if (f->vals[i] == *(const int *)v) {
					cJSON_AddStringToObject(o, "default", f->names[i]);
					break;
				}
		}
		break;
	case FT_NORM:
		e = cJSON_AddArrayToObject(o, "enum");
		for (int i = 0; e && i < norm_table_len; i++)
			cJSON_AddItemToArray(e, cJSON_CreateString(norm_table[i]->name));
		cJSON_AddStringToObject(o, "default", norm_table[*(const int *)v]->name);
		break;
	default:
		break;
	}
	if (f->flags & DEP_DEFAULT)
		cJSON_AddBoolToObject(o, "default_depends", 1);
	if (f->flags & VIT_ONLY)
		cJSON_AddStringToObject(o, "arch_only", "vit");
	if (f->flags & CHILD_ONLY)
		cJSON_AddBoolToObject(o, "child_only", 1);
	if (f->flags & NORM_HP) {
		cJSON *kinds = cJSON_AddArrayToObject(o, "norm_only");
		for (int i = 0; kinds && i < norm_table_len; i++)
			if (norm_uses(norm_table[i], f))
				cJSON_AddItemToArray(kinds, cJSON_CreateString(norm_table[i]->name));
	}
	return o;
}

cJSON *spec_fields_json(void)
{
	struct spec def;
	cJSON *arr = cJSON_CreateArray();
	if (!arr)
		return NULL;
	spec_defaults(&def);
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		if (spec_fields[i].type == FT_OBJ)
			continue;
		cJSON *o = field_json(&spec_fields[i], &def);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

const char *const *spec_field_enum(const char *key)
{
	for (int i = 0; i < SPEC_NFIELDS; i++) {
		const struct spec_field *f = &spec_fields[i];
		char dotted[160];
		if (!f->names)
			continue;
		snprintf(dotted, sizeof dotted, "%s/%s", spec_sec_pointer[f->sec], f->key);
		for (char *p = dotted; *p; p++)
			if (*p == '/')
				*p = '.';
		if (strcmp(dotted + 1, key) == 0)
			return f->names;
	}
	return NULL;
}

int spec_json_check(const char *text, size_t len, size_t *at, const char **why)
{
	size_t pos = 0;
	const char *w = NULL;
	int rc = json_scan((const unsigned char *)text, len, &pos, &w);
	if (at)
		*at = pos;
	if (why)
		*why = rc ? w : NULL;
	return rc ? -1 : 0;
}
