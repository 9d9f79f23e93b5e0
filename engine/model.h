/*
 * model.h — the model core every architecture shares. A model is
 *   - a tensor table (name, shape, init, decay flag, role), carved from one parameter allocation;
 *     the names are the checkpoint names (PyTorch module layout, Linear weights [out, in]);
 *   - a list of norm sites (name, input, cache, kind) that the probes walk;
 *   - L blocks of two residual branches (attention, MLP). The placement (pre, post, peri, mix,
 *     lns, deepnorm) wraps a branch {fwd, bwd} once, here, for every architecture;
 *   - activations carved from one allocation by one routine (sizing and carving cannot drift);
 *   - ops (enum model_op) that a backend executes. Host code — probes, optimizer, checkpoints,
 *     gradient checks, CLI — reads and writes model memory only through the backend (alloc,
 *     upload, download, exec, sync), so a GPU backend implements ops, not a second model.
 * An architecture (struct model_arch: gpt, llama, vit) supplies its embedding, its two branches
 * and its head only.
 * A struct model is owned by one trainer thread; its pool's workers only run kernels.
 */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>

#include "nl.h"
#include "norm.h"
#include "pool.h"
#include "rng.h"
#include "spec.h"

#define MODEL_MAX_LAYERS 64  /* the spec's n_layer range; probes keep per-depth rows of this size */
#define MODEL_NAME_MAX 64
#define MODEL_VOCAB 256      /* byte-level text */
#define MODEL_CLASSES 10     /* Fashion-MNIST */
#define MODEL_ROPE_THETA 10000.0

/* The per-block norm slots; their names are the probes' and the checkpoints' ("norm1"...). */
enum model_slot {
	MODEL_SLOT_NORM1,      /* attention branch: pre/lns/peri input norm, post norm after the add */
	MODEL_SLOT_NORM2,      /* MLP branch */
	MODEL_SLOT_NORM1_OUT,  /* Peri-LN output norm of the attention branch */
	MODEL_SLOT_NORM2_OUT,  /* Peri-LN output norm of the MLP branch */
	MODEL_SLOT_COUNT,
	MODEL_SLOT_EMB = MODEL_SLOT_COUNT,  /* Peri-LN's optional embedding norm */
	MODEL_SLOT_FINAL,                   /* norm_f before the head */
};

extern const char *const model_slot_names[MODEL_SLOT_COUNT];

enum model_block_kind {
	MODEL_BLOCK_PRE,   /* x += F(s·N(x)); s = 1, or 1/√l for LNS */
	MODEL_BLOCK_POST,  /* x = N(a·x + F(x)); a = 1, or DeepNorm's (2L)^¼ */
	MODEL_BLOCK_PERI,  /* x += N_out(F(N_in(x))) */
};

enum model_init {
	MODEL_INIT_ZERO,
	MODEL_INIT_NORMAL,      /* N(0, init_std) */
	MODEL_INIT_NORMAL_OUT,  /* N(0, init_std/√(2L)) with scaled_init: output projections */
	MODEL_INIT_NORM,        /* the norm kind's own init (γ 1, β 0, α0, s0) */
	MODEL_INIT_ESCALE,      /* √d: the learned embedding scale of DyT/Derf LMs */
};

enum model_role {
	MODEL_ROLE_EMBED,
	MODEL_ROLE_ATTN,
	MODEL_ROLE_MLP,
	MODEL_ROLE_NORM,
	MODEL_ROLE_HEAD,
};

struct model_tensor {
	char name[MODEL_NAME_MAX];
	size_t off, len;     /* in reals, inside the parameter allocation */
	int ndim;
	int shape[2];
	enum model_init init;
	enum model_role role;
	int decay;           /* AdamW weight decay applies */
	int block;           /* block index, -1 outside the blocks */
	int suffix;          /* inside a block: where the name after "blocks.<l>." starts */
	int site;            /* a norm parameter: its site index; -1 otherwise */
};

/* One norm instance: where it sits, its parameters, and (once carved) what it reads and keeps. */
struct model_site {
	char name[MODEL_NAME_MAX];   /* "blocks.3.norm2", "norm_emb", "norm_f" */
	int block;                   /* -1 outside the blocks */
	int slot;                    /* enum model_slot */
	size_t off;                  /* parameters (norm_param_count reals) */
	struct norm_cfg cfg;
	const real *input;           /* [N,C] the norm's input (set when activations are carved) */
	real *cache;                 /* [N,cache_per_token], then norm_chan_reals of per-channel
				      * scratch (batch-statistic kinds: chan in norm.h) */
	size_t buf_off;              /* its buffers (norm_buffer_count reals) in model.bufs */
};

/* A norm buffer of one site (norm.h): checkpoint name "<site>.<buffer>", never optimized. */
struct model_buffer {
	char name[MODEL_NAME_MAX];
	size_t off, len;     /* in reals, inside model.bufs */
	int ndim;
	int shape[2];
	int site;
};

#define MODEL_BRANCH_W 6     /* parameter offsets one branch may keep */

struct model_block {
	enum model_block_kind kind;
	real scale;          /* LNS 1/√l; 1 otherwise */
	real res_scale;      /* post: DeepNorm's a = (2L)^¼ on the residual; 1 otherwise */
	int site[MODEL_SLOT_COUNT];          /* index into the site list, -1 where absent */
	size_t w[2][MODEL_BRANCH_W];         /* the architecture's branch parameters (offsets) */
	int t_first, t_end;  /* tensor index range [t_first, t_end) of this block */
};

enum model_data { MODEL_DATA_TEXT, MODEL_DATA_IMAGES };

struct model_layout {
	const struct model_arch *arch;
	int L, C, NH, F, T, V, B;
	int S;               /* width of the residual stream, of every norm site and of what writes
			      * to or reads from the stream: C, or C − 1 for a kind that keeps it
			      * compressed (CRMSNorm); attention and the MLP inside keep C and F */
	real deep_beta;      /* DeepNorm's Xavier gain (8L)^−¼ for V, the projections and the MLP;
			      * 0 when the placement is not deepnorm */
	int N;               /* rows through the blocks: B·T */
	int bias, tied, has_escale;
	int causal;          /* attention mask */
	int rope;            /* rotary positions on q, k */
	int swiglu;          /* MLP proj(silu(gate(x)) ⊙ up(x)) instead of proj(gelu(fc(x))) */
	int patch, n_patch, pool_mean;  /* vit */
	const struct norm_kind *nk;
	size_t n_params;
	struct model_tensor *tensors;   /* n_tensors entries, owned */
	int n_tensors;
	struct model_site *sites;       /* n_sites entries, owned */
	int n_sites;
	struct model_buffer *buffers;   /* n_buffers entries, owned (none for per-token kinds) */
	int n_buffers;
	size_t n_buf;                   /* reals of all buffers */
	int site_emb, site_f;           /* indices, -1 where absent */
	size_t e[4];                    /* the architecture's embedding parameters (offsets) */
	size_t escale, head, head_b;    /* head == the token embedding when tied */
	struct model_block *blocks;     /* L entries, owned */
};

/* One residual branch's activations as its placement wraps it. */
struct model_sub {
	real *x;          /* input (residual stream) */
	real *n, *cn;     /* pre/peri: N_in(x) (·s for LNS), cache; post: cn is N's cache */
	real *f;          /* branch output F(·) */
	real *fo, *cfo;   /* peri: N_out(f), cache */
	real *h;          /* post: x + f, the norm's input */
	real *y;          /* output (residual stream) */
};

struct model_block_acts {
	struct model_sub sub[2];
	real *qkv;        /* [N,3C] (q, k after RoPE where the arch has it) */
	real *att;        /* [B,NH,T,T] softmax probabilities */
	real *atty;       /* [N,C] attention output before proj */
	real *fch;        /* [N,F] MLP pre-activation; swiglu: [N,2F] gate | up */
	real *fchg;       /* [N,F] activation output */
	/* LN removal's split ln1 (the core sets them around the attention branch of a pre block):
	 * the V rows of qkv read inp_v instead of inp, and the backward adds ∂L/∂inp_v into dinp_v.
	 * NULL: one input, as always. */
	const real *inp_v;
	real *dinp_v;
};

enum model_timer {
	MODEL_T_MATMUL,
	MODEL_T_ATTENTION,
	MODEL_T_NORM,
	MODEL_T_OTHER,
	MODEL_T_COUNT,
};

/* The op list: everything a backend executes. */
enum model_op {
	OP_MM_FWD, OP_MM_BWD_IN, OP_MM_BWD_W, OP_ATT_FWD, OP_ATT_BWD, OP_GELU_FWD, OP_GELU_BWD,
	OP_SWIGLU_FWD, OP_SWIGLU_BWD, OP_ROPE_FWD, OP_ROPE_BWD,
	OP_EMB_FWD, OP_EMB_BWD, OP_ESCALE_GRAD, OP_PATCH_GATHER, OP_VIT_EMB_FWD, OP_VIT_EMB_BWD,
	OP_POOL_FWD, OP_POOL_BWD,
	OP_CE_FUSED, OP_CE_FWD, OP_ADD, OP_SCALE, OP_ACC, OP_COPY, OP_ZERO, OP_NORM_FWD, OP_NORM_BWD,
	OP_SUMSQ, OP_ADAMW,
	/* LN removal (lnremove.h): matmuls on a band of columns (.n = the row stride of o / a),
	 * FakeLN (.s = 1/σ), and the mean per-token std of a site input (into part[]) */
	OP_MM_FWD_LD, OP_MM_BWD_IN_LD, OP_MM_BWD_W_LD, OP_FAKENORM_FWD, OP_FAKENORM_BWD, OP_NORM_STD,
	OP_COUNT,
};

extern const char *const model_op_names[OP_COUNT];

struct model;

/* OP_ADAMW's arguments: the moments (device memory) and the step's constants. */
struct model_adamw {
	real *m, *v;
	real lr, b1, b2, eps, wd, bc1, bc2, clip;
};

/* One op: the kernel's arguments. Backends read what their kind uses. */
struct model_opargs {
	enum model_op k;
	real *o, *o2;
	const real *a, *b, *c;
	const int *ia;
	int N, C, OC;
	long n;
	real s;
	const struct model_site *site;
	enum norm_mode mode;             /* OP_NORM_FWD: train / eval / batch (norm.h) */
	struct model *m;
	const void *extra;               /* OP_ADAMW: its parameters */
	double part[POOL_MAX_THREADS];   /* per-thread partials (embedding scale, sums of squares) */
};

/*
 * A backend owns model memory and runs ops on it. Device pointers are opaque to host code: it
 * copies through upload/download. alloc returns zeroed memory or NULL.
 * OP_NORM_FWD / OP_NORM_BWD of a batch-statistic kind (norm.h, lay.nk->batch): the op is the
 * whole normalization over the op's N rows in op->mode: per-channel sums over every row, the
 * kind's serial finish, then the row pass; the site's buffers are m->bufs + site->buf_off and its
 * per-channel scratch follows the N·cache_per_token reals of the cache. The CPU backend runs the
 * kind's passes (norm_batch_ops); another backend implements the same two ops its own way.
 */
struct model_backend {
	const char *name;
	void *(*alloc)(size_t bytes);
	void (*release)(void *p);
	void (*upload)(struct model *m, void *dev, const void *host, size_t bytes);
	void (*download)(struct model *m, void *host, const void *dev, size_t bytes);
	void (*exec)(struct model *m, struct model_opargs *op);
	void (*sync)(struct model *m);
};

extern const struct model_backend model_backend_cpu;

struct model {
	struct model_layout lay;
	const struct model_backend *be;
	struct pool *pool;          /* owned */
	real *params;               /* [n_params] device memory */
	real *bufs;                 /* [n_buf] norm buffers, device memory (NULL when none) */
	enum norm_mode norm_mode;   /* the mode of the forward in progress */
	real *grads;                /* [n_params] device memory */
	real *acts;                 /* one allocation, carved below; device memory */
	int *tokens, *targets;      /* text: [N] each; images: targets [B] (one allocation) */
	real *images;               /* images: [B, 28·28] normalized pixels (in acts) */
	real *resid;                /* [(L+1), N, C]: resid + l·N·C is block l's input x_l */
	real *emb, *cemb;           /* embedding output before norm_emb (when present), cache */
	struct model_block_acts *ba;  /* [L] host-owned descriptors */
	real *nf, *cf;              /* final norm output, cache (nf == resid_L without final norm) */
	real *patches, *pe;         /* vit: [B·P, patch²] gathered pixels, [B·P, C] patch embeddings */
	real *pooled;               /* vit: [B, C] */
	real *dpooled, *dpe;        /* vit backward */
	real *rope;                 /* llama: [T, hs/2] cos then [T, hs/2] sin */
	real *logits;               /* [rows, V]; after a training forward, dlogits */
	real *losses;               /* [rows] */
	int correct;                /* images: argmax hits among the rows of the last forward */
	real *hloss;                /* [rows] host copy of the losses */
	real *hlogits;              /* images: [B, classes] host copy of the logits */
	int *htargets;              /* images: [B] host copy of the targets */
	real *dres[2], *dt1, *dt2, *datty, *dqkv, *dfch, *dfchg, *att_scratch;
	double *dnorm;              /* [nth][max norm params] per-thread partial sums (host) */
	size_t dnorm_stride;
	double *dres_norm;          /* [L] ‖∂L/∂x_l‖ from the last backward with probe_grads set */
	int probe_grads;            /* caller sets: fill dres_norm during backward */
	int timing;                 /* caller sets: accumulate per-op times */
	struct model_lnr *lnr;      /* LN removal state (lnremove.h), owned; NULL when off */
	double t_ops[MODEL_T_COUNT];  /* seconds spent per op class while timing */
};

/*
 * An architecture: its layout pieces, its activations, and its embedding, branches and head.
 * Branch b is 0 (attention) or 1 (MLP); its forward writes out = F(inp), its backward ADDS
 * ∂L/∂inp into dinp (which may be NULL) and the parameter gradients into m->grads.
 */
struct layout_builder;
struct carver;
struct model_arch {
	const char *name;
	enum model_data data;
	void (*layout_embed)(struct layout_builder *lb, const struct spec *s);
	void (*layout_branch)(struct layout_builder *lb, const struct spec *s, int l, int b);
	void (*layout_head)(struct layout_builder *lb, const struct spec *s);
	void (*carve_branch)(struct carver *cv, struct model *m, int l, int b);
	void (*carve_head)(struct carver *cv, struct model *m);     /* logits, losses, ... */
	void (*carve_scratch)(struct carver *cv, struct model *m, int nth);
	void (*embed_fwd)(struct model *m, real *x0);
	void (*embed_bwd)(struct model *m, const real *dx0);
	void (*branch_fwd)(struct model *m, int l, int b, const real *inp, real *out);
	void (*branch_bwd)(struct model *m, int l, int b, const real *inp, const real *dout,
			   real *dinp);
	/* Loss over the batch from the final representation xf; with for_backward the logits
	 * become dlogits. head_bwd ADDS ∂L/∂xf into dxf. */
	double (*head_fwd)(struct model *m, const real *xf, int for_backward);
	void (*head_bwd)(struct model *m, const real *xf, real *dxf);
	/* After model_init: fills constant device tables (RoPE); may be NULL. */
	void (*bind)(struct model *m);
	/* Model FLOPs per token (a row of the residual stream) of a training step: 6 per weight a
	 * matmul uses, plus attention's 12·L·T·C. */
	double (*flops_per_row)(const struct model_layout *lay);
};

extern const struct model_arch model_arch_gpt, model_arch_llama, model_arch_vit;

/* The architecture named in the spec (model.arch), or NULL. */
const struct model_arch *model_arch_find(const char *name);

/* Builds the layout for spec s with batch B. Returns 0, NL_EINVAL or NL_ENOMEM. */
int model_layout_build(struct model_layout *lay, const struct spec *s, int B);
void model_layout_free(struct model_layout *lay);
/* Reals of activations + backward scratch for nth threads (what model_init allocates). */
size_t model_act_reals(const struct model_layout *lay, int nth);
/* Index of the tensor named `name`, or -1. */
int model_tensor_find(const struct model_layout *lay, const char *name);
/* Reals of one site's cache: N·cache_per_token plus its per-channel scratch. */
size_t model_site_cache_reals(const struct model_layout *lay);
/* Rows of the batch the loss is over: tokens (text) or images. */
int model_loss_rows(const struct model_layout *lay);

/* Allocates everything for spec s (batch size from the spec) on a pool of s->threads threads. */
int model_init(struct model *m, const struct spec *s, struct nl_err *err);
void model_free(struct model *m);

/* Initial values per the tensor table, drawn in table order from r; norm buffers to their
 * initial values too. */
void model_init_params(struct model *m, const struct spec *s, struct rng *r);
/* Norm buffers (running statistics, counters, windows) to their initial values. */
void model_init_buffers(struct model *m);

/* Forward over the batch in device memory. Returns the mean loss. With for_backward, the logits
 * become dlogits for model_backward; otherwise logits stay as they are. A forward for backward
 * is a training forward (NORM_MODE_TRAIN: batch statistics, norm buffers updated); any other is
 * an evaluation (NORM_MODE_EVAL: running statistics, buffers untouched). */
double model_forward(struct model *m, int for_backward);
/* The same in an explicit norm mode (norm.h), e.g. NORM_MODE_BATCH: train-mode statistics
 * without touching the buffers. */
double model_forward_mode(struct model *m, int for_backward, enum norm_mode mode);
/* Backward from the fused dlogits; ACCUMULATES into m->grads (zero them first). */
void model_backward(struct model *m);
void model_zero_grad(struct model *m);

/* Runs one op on the model's backend (timed when m->timing). */
void model_run(struct model *m, struct model_opargs *op);

/* Host ⇄ device copies through the backend (n reals / ints). */
void model_download(struct model *m, real *host, const real *dev, size_t n);
void model_upload(struct model *m, real *dev, const real *host, size_t n);
void model_upload_ints(struct model *m, int *dev, const int *host, size_t n);
void model_download_ints(struct model *m, int *host, const int *dev, size_t n);
/* One parameter / gradient element (index into the parameter allocation). */
real model_param_get(struct model *m, size_t i);
void model_param_set(struct model *m, size_t i, real v);
real model_grad_get(struct model *m, size_t i);

/* Internal to the core and the architectures (model.c, arch_*.c). */
struct layout_builder {
	struct model_layout *lay;
	int cap, site_cap, buf_cap;
	int failed;
};
size_t model_add_tensor(struct layout_builder *lb, const char *name, int ndim, int d0, int d1,
			enum model_init init, enum model_role role, int decay, int block);
struct carver {
	real *base;
	size_t off;
};
real *model_take(struct carver *cv, size_t n);

#endif
