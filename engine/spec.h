/*
 * spec.h — the experiment spec: JSON in, a validated struct out, and the canonical form whose
 * SHA-256 identifies the run. Every field has a default, so "{}" is valid; unknown fields and
 * out-of-range values are errors naming the field as a JSON Pointer and the allowed range.
 * Pure functions over caller-owned memory; thread-safe.
 */
#ifndef SPEC_H
#define SPEC_H

#include <stddef.h>
#include <stdint.h>

#define SPEC_NAME_MAX 128
#define SPEC_PATH_MAX 1024
#define SPEC_MAX_ERRORS 16
#define SPEC_JSON_MAX (1 << 20)      /* a spec file larger than 1 MiB is rejected */
#define SPEC_MEM_LIMIT_DEFAULT (4ULL << 30) /* bytes a run may need, unless the caller says */

enum spec_placement {
	SPEC_PLACE_PRE,
	SPEC_PLACE_POST,
	SPEC_PLACE_PERI,
	SPEC_PLACE_MIX,
	SPEC_PLACE_LNS,
	SPEC_PLACE_DEEPNORM,   /* x ← N(a·x + F(x)), a = (2L)^¼, DeepNet's init (NORMS.md §4.6) */
};

enum spec_schedule {
	SPEC_SCHED_COSINE,
	SPEC_SCHED_CONSTANT,
};

struct spec_model {
	char arch[16];          /* "gpt", "llama" or "vit" (model.h's table) */
	int n_layer;            /* 1..64, default 4 */
	int d_model;            /* 8..4096, default 128 */
	int n_head;             /* 1..64, divides d_model, default 4 */
	int d_ff;               /* 1..16384, default 4*d_model; llama: the multiple of 64 ≥ 8·d/3 */
	int seq_len;            /* 2..4096, default 128 (text; vit: 1 + patches) */
	int tie_head;           /* default 1; llama 0; vit has its own head */
	int bias;               /* Linear biases, default 1; llama 0 */
	int head_bias;          /* gpt/llama: a bias on the LM head, default 0 (what a model converted
				 * from Pre-LN needs for the final norm's β); vit's head always has one */
	int patch;              /* vit: patch side in pixels, divides 28; default 4 */
	int pool_mean;          /* vit "pool": 0 = "cls" (default), 1 = "mean" over patches */
	int scaled_init;        /* GPT-2 0.02/sqrt(2L) on output projections; default 1, 0 for lns */
	double init_std;        /* default 0.02 */
};

/* PowerNorm (NORMS.md §5): "norm":{"pn":{...}}; read only when norm.type is powernorm. */
struct spec_pn {
	double alpha_fwd;       /* [0, 1], default 0.9: ψ's EMA weight on the old value */
	double alpha_bkw;       /* [0, 1], default 0.9: Γ's decay is 1 − (1 − alpha_bkw) */
	long warmup;            /* 0..steps, default 10% of train.steps (batch q in the forward) */
	int groups;             /* group scaling groups, divides d_model, default n_head */
};

/* Unified Normalization (NORMS.md §6): "norm":{"un":{...}}; read only when norm.type is un. */
struct spec_un {
	int window;             /* 1..64, default 4 (W_f = W_b) */
	long warmup;            /* 0..steps, default 10% of train.steps */
	int outlier_filtration; /* default false for text, true for vit (the paper's NLP/CV split) */
	double momentum;        /* [0, 1), default 0.9 */
	double r_max;           /* r clamped to [1/r_max, r_max]; [1, 1e3], default 5 */
	long r_free_after;      /* r = 1 up to this step; default max(un.warmup, 10% of steps) */
};

struct spec_norm {
	int type;               /* index into norm_table; default layernorm */
	int placement;          /* enum spec_placement; default pre */
	double alpha_attn, alpha_ffn, alpha_final;  /* "alpha0": {"attn","ffn","final"}, default 1.0 */
	double shift0;          /* Derf s0, default 0 */
	double eps;             /* default: the kind's default_eps */
	double mix_post_ratio;  /* 0..1, default 0.25 */
	int embed_scale;        /* "auto" resolves to 1 for kinds that want it; "learned" 1; "none" 0 */
	int embed_norm;         /* Peri-LN optional embedding norm, default 0 */
	double momentum;        /* batchnorm: running-statistics momentum (0, 1], default 0.1 */
	struct spec_pn pn;
	struct spec_un un;
};

struct spec_data {
	char source[16];        /* "text"; "fashion-mnist" for vit (the default there) */
	char path[SPEC_PATH_MAX]; /* "kjv" = the default corpus; the CLI: a file path; the daemon:
				   * a dataset name or a relative path inside a data root */
	double val_fraction;    /* 0.001..0.5, default 0.05 */
	char sha256[65];        /* content hash of the corpus, lower-case hex, or "" (unknown): the
				 * daemon fills it at submit (a given one pins the content), so the
				 * spec hash tells two corpora with one name apart */
	uint64_t bytes;         /* corpus size once resolved, 0 before; not part of the canonical
				 * form: it makes spec_mem_estimate count the mapped corpus */
};

struct spec_train {
	long steps;             /* 1..10 000 000, default 1000 */
	int batch_size;         /* 1..4096, default 16 */
	double lr;              /* (0, 10], default 1e-3 */
	long warmup;            /* 0..steps, default 100 */
	int schedule;           /* enum spec_schedule, default cosine */
	double min_lr;          /* [0, lr], default 1e-4 */
	double weight_decay;    /* [0, 10], default 0.1 */
	double grad_clip;       /* [0, 1e6], 0 = off, default 1.0 */
	double beta1;           /* [0,1), default 0.9 */
	double beta2;           /* [0,1), default 0.99 */
	double adam_eps;        /* (0, 1], default 1e-8 */
	int on_dead;            /* enum spec_on_dead, default stop */
};

enum spec_on_dead {
	SPEC_ON_DEAD_STOP,      /* a dead run ends at once (status "dead") */
	SPEC_ON_DEAD_CONTINUE,  /* it trains on, marked dead */
};

/* Run health thresholds (health.h says what each judges). */
struct spec_health {
	long every;             /* steps between dead checks, 1..1e9, default 10 */
	int dead_checks;        /* consecutive dead checks that make a run dead, 1..1000, default 3 */
	double stall_after;     /* fraction of train.steps before a stall is judged, [0,1], 0.5 */
	double stall_margin;    /* relative distance to the unigram entropy, (0,1], default 0.01 */
	double spike_factor;    /* loss above this × the recent median is a spike, (1,1e6], 3 */
	int spike_window;       /* losses in the recent median, 2..1000, default 50 */
};

struct spec_probe {
	long every;             /* scalar metrics interval, default 10 */
	long depth_every;       /* depth profiles, default 50 */
	long samples_every;     /* norm input/output samples, default 500 */
	int samples;            /* pairs per site per sample step, 0..100 000, default 4096 */
	long val_every;         /* validation loss, default 100 */
	int val_batches;        /* batches per validation, 1..1000, default 4 */
};

/* LN removal (NORMS.md §8; engine/lnremove.h): a child run fine-tunes its parent's weights and
 * replaces the norm sites by FakeLayerNorm on a schedule. */
enum spec_lnr_mode {
	SPEC_LNR_NONE,          /* a plain fine-tune of the parent (the control) */
	SPEC_LNR_GRADUAL,       /* ln2 per layer, then ln1 Q/K, ln1 V, then ln_f, spaced by gaps */
	SPEC_LNR_ALL_AT_ONCE,   /* every site at `start` */
};

enum spec_lnr_std {
	SPEC_LNR_STD_EMA,       /* σ frozen = the EMA of the real std at the removal step */
	SPEC_LNR_STD_DATA,      /* σ frozen = the std measured on validation batches at the start */
};

struct spec_lnremove {
	int mode;               /* enum spec_lnr_mode, default none */
	long start;             /* step of the first removal, 1..10 000 000, default 20 */
	int gap_ln2;            /* steps between layers in each phase: 1..100 000, defaults 2, 2, 3 */
	int gap_ln1_qk;
	int gap_ln1_v;
	int std_source;         /* enum spec_lnr_std, default ema */
	double ema_momentum;    /* [0, 1), default 0.9 */
};

#define SPEC_PARENT_MAX 32      /* a run id in decimal */

struct spec {
	char name[SPEC_NAME_MAX];
	struct spec_model model;
	struct spec_norm norm;
	struct spec_data data;
	struct spec_train train;
	struct spec_probe probe;
	struct spec_health health;
	uint64_t seed;          /* 0..2^53, default 1 */
	char device[8];         /* "cpu" */
	int threads;            /* 1..64, default 1 */
	/* A child run starts from a trained model: `parent` (the daemon: a finished run's id) or
	 * `init_from` (the CLI: a checkpoint file). Its model and norm fields are the parent's.
	 * parent_hash is the parent's spec hash (filled when the parent is resolved), so children of
	 * different parents never hash alike. All of these are left out of the canonical form of a
	 * spec that is not a child, so other runs' hashes are what they were. */
	char parent[SPEC_PARENT_MAX];
	char init_from[SPEC_PATH_MAX];
	char parent_hash[65];
	struct spec_lnremove lnremove;
};

struct spec_error {
	char pointer[128];      /* JSON Pointer of the offending field, "" for the document */
	char msg[256];          /* one line: what is wrong and what is allowed */
};

struct spec_errors {
	int n;
	struct spec_error e[SPEC_MAX_ERRORS];
};

/*
 * Resolves s->data.path to the corpus a run would read, for callers that confine it (the daemon's
 * data roots). spec_parse calls it once every field is valid and before the memory check; it
 * sets s->data.sha256 (or checks a pinned one) and s->data.bytes. Returns 0, or a negative
 * nl_code with e's pointer and message filled; the message must not describe anything outside
 * what the caller allows the user to see.
 */
typedef int (*spec_data_fn)(void *ctx, struct spec *s, struct spec_error *e);

/*
 * Resolves a child's start (s->parent or s->init_from) to the parent's spec, for spec_parse: fills
 * *parent (a parsed spec) and parent_hash (its spec hash, lower-case hex). Returns 0, or a
 * negative nl_code with e's pointer and message filled ("/parent": no such run, not finished, not
 * yours; "/init_from": no such checkpoint).
 */
typedef int (*spec_parent_fn)(void *ctx, const struct spec *s, struct spec *parent,
			      char parent_hash[65], struct spec_error *e);

struct spec_limits {
	uint64_t max_bytes;     /* memory a run may need (params, grads, Adam state, activations,
				 * and the corpus when resolve_data says its size) */
	spec_data_fn resolve_data; /* NULL: data.path is taken as it is (the CLI) */
	void *resolve_ctx;
	spec_parent_fn resolve_parent; /* NULL: a child's model fields are taken as given */
	void *parent_ctx;
};

/* 1 when s starts from a trained model (parent or init_from set). */
int spec_is_child(const struct spec *s);

/* Fills s with every default. */
void spec_defaults(struct spec *s);

/*
 * Parses and validates JSON text (len bytes, need not be NUL-terminated). On success returns 0 and
 * s holds the resolved spec. On failure returns NL_EINVAL (or NL_ELIMIT for the memory cap, or
 * NL_ENOMEM), leaves s untouched, and errs lists every problem found (at most SPEC_MAX_ERRORS).
 * json is borrowed. limits and errs may be NULL (defaults / errors not wanted).
 */
int spec_parse(struct spec *s, const char *json, size_t len, const struct spec_limits *limits,
	       struct spec_errors *errs);

struct cJSON;

/*
 * spec_parse over a tree already parsed from text that passed the strict scanner
 * (spec_json_check): the daemon parses a request body once and validates the spec from that
 * tree, with the same checks, errors and result as spec_parse on the text. root is borrowed.
 */
int spec_parse_tree(struct spec *s, const struct cJSON *root, const struct spec_limits *limits,
		    struct spec_errors *errs);

/* Canonical JSON (defaults filled, keys sorted, no whitespace). Caller frees with nl_free. */
char *spec_canonical(const struct spec *s);

/* Lower-case hex SHA-256 of the canonical form, into hex[65]. Returns 0 or NL_ENOMEM. */
int spec_hash(const struct spec *s, char hex[65]);

/* Name of a placement / schedule, for messages and the canonical form. */
const char *spec_placement_name(int p);

/*
 * The field table as data: a cJSON array with one object per leaf field (pointer "/model/n_layer",
 * key "model.n_layer", type, min/max or enum, default for arch gpt, default_depends when another
 * field decides it). Caller frees with cJSON_Delete; NULL when out of memory.
 */
struct cJSON *spec_fields_json(void);

/* The allowed names (NULL-terminated) of a word/choice field by dotted key ("norm.placement",
 * "model.arch"), or NULL. Static storage. */
const char *const *spec_field_enum(const char *key);

/*
 * The strict scanner spec_parse runs first (RFC 8259, UTF-8, no \u0000, numbers of at most 63
 * characters, nesting to 64), for other JSON the same rules should cover: the daemon runs it on
 * every request body, because cJSON alone reads "a\u0000b" as "a". 0 when text[0..len) is one
 * JSON document; else -1 with *at the byte where it went wrong and *why one line (static).
 */
int spec_json_check(const char *text, size_t len, size_t *at, const char **why);

/* Memory a run of this spec needs in bytes (params, grads, AdamW m/v, activations, scratch, and
 * the mapped corpus: s->data.bytes). */
uint64_t spec_mem_estimate(const struct spec *s);

/*
 * What a run of this spec writes to the store, known before it starts (the trainer emits exactly
 * these rows; test_quotas checks the count against a real run). A diverged run stops early and
 * writes less. Bytes are the payload (float32 x, y and int32 token, channel per sample pair;
 * float64 per depth value and per scalar point) plus SPEC_STORE_ROW_BYTES per row for the keys.
 */
#define SPEC_STORE_ROW_BYTES 32
#define SPEC_SAMPLE_BYTES 16     /* one (x, y, token, channel) pair */
struct spec_store_est {
	int sample_sites;        /* norm sites sampled at each sample step */
	long sample_steps;       /* steps with samples: every samples_every, step 1 and the last */
	uint64_t sample_bytes;   /* samples × sites × sample steps × SPEC_SAMPLE_BYTES + rows */
	long depth_steps;        /* steps with depth profiles */
	int depth_rows;          /* depth rows per depth step (L values each) */
	uint64_t depth_bytes;    /* depth rows and the depth-step scalars (outer norms, grads) */
	uint64_t scalar_bytes;   /* loss, lr, grad_norm, tokens/s every probe.every; val_loss */
	uint64_t total;          /* the sum; UINT64_MAX when the layout cannot be built */
};

/* Fills *out for spec s (every field; total UINT64_MAX on failure). Pure; thread-safe. */
void spec_store_estimate(const struct spec *s, struct spec_store_est *out);

/*
 * Floating-point operations a run of this spec performs: per training step 6 × parameters ×
 * tokens (forward 2, backward 4) plus attention's 12 × L × B × T² × C, and per validation the
 * forward third of that for each of val_batches batches. An estimate for quotas, within a small
 * factor of the kernels' real count; +inf when the layout cannot be built.
 */
double spec_flops_estimate(const struct spec *s);

#endif
