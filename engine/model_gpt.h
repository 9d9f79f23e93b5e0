/*
 * model_gpt.h — a decoder-only byte-level Transformer with a pluggable norm kind and placement.
 * Parameters, gradients and activations each live in one allocation carved from a layout table
 * built from the spec (gpt_layout_build); the same table names every tensor for checkpoints
 * (PyTorch-style names, Linear weights [out, in]) and sizes the memory estimate.
 * A struct gpt is owned by one trainer thread; its pool's workers only run kernels.
 */
#ifndef MODEL_GPT_H
#define MODEL_GPT_H

#include <stddef.h>

#include "nl.h"
#include "norm.h"
#include "pool.h"
#include "rng.h"
#include "spec.h"

#define GPT_VOCAB 256
#define GPT_MAX_LAYERS 64   /* the spec's n_layer range; probes keep per-depth rows of this size */
#define GPT_NAME_MAX 64

enum gpt_site {
	GPT_SITE_NORM1,      /* attention site: pre/lns/peri input norm, post norm after the add */
	GPT_SITE_NORM2,      /* MLP site */
	GPT_SITE_NORM1_OUT,  /* Peri-LN output norm of the attention branch */
	GPT_SITE_NORM2_OUT,  /* Peri-LN output norm of the MLP branch */
	GPT_SITE_COUNT,
};

extern const char *const gpt_site_names[GPT_SITE_COUNT];

enum gpt_block_kind {
	GPT_BLOCK_PRE,   /* x += F(s·N(x)); s = 1, or 1/√l for LNS */
	GPT_BLOCK_POST,  /* x = N(x + F(x)) */
	GPT_BLOCK_PERI,  /* x += N_out(F(N_in(x))) */
};

struct gpt_tensor {
	char name[GPT_NAME_MAX];
	size_t off, len;     /* in reals, inside the parameter allocation */
	int ndim;
	int shape[2];
	int decay;           /* AdamW weight decay applies (2-D weights only) */
	int block;           /* block index, -1 outside the blocks */
};

struct gpt_norm_inst {
	int present;
	size_t off;          /* parameters (norm_param_count reals) */
	struct norm_cfg cfg;
};

struct gpt_block {
	enum gpt_block_kind kind;
	real scale;          /* LNS 1/√l; 1 otherwise */
	struct gpt_norm_inst norm[GPT_SITE_COUNT];
	size_t qkv_w, qkv_b, proj_w, proj_b, fc_w, fc_b, mproj_w, mproj_b; /* biases: if bias */
	int t_first, t_end;  /* tensor index range [t_first, t_end) of this block */
};

struct gpt_layout {
	int L, C, NH, F, T, V, B;
	int bias, tied, has_escale;
	const struct norm_kind *nk;
	size_t n_params;
	struct gpt_tensor *tensors;     /* n_tensors entries, owned */
	int n_tensors;
	size_t wte, wpe, escale, head;  /* head == wte when tied */
	struct gpt_norm_inst norm_emb, norm_f;
	struct gpt_block *blocks;       /* L entries, owned */
};

/* Builds the layout for spec s with batch B. Returns 0 or NL_ENOMEM. Free with gpt_layout_free. */
int gpt_layout_build(struct gpt_layout *lay, const struct spec *s, int B);
void gpt_layout_free(struct gpt_layout *lay);
/* Reals of activations + backward scratch for nth threads (what gpt_init allocates). */
size_t gpt_act_reals(const struct gpt_layout *lay, int nth);
/* Index of the tensor named `name`, or -1. */
int gpt_tensor_find(const struct gpt_layout *lay, const char *name);

/* Per-block activations (pointers into gpt.acts). Names follow NORMS.md §12 hook points. */
struct gpt_block_acts {
	real *n1, *c1;       /* norm1 output [N,C] (LNS: scaled), cache */
	real *qkv;           /* [N,3C] */
	real *att;           /* [B,NH,T,T] */
	real *atty;          /* [N,C] attention output before proj */
	real *a;             /* [N,C] attention branch (after proj) */
	real *ao, *c1o;      /* peri: N1o(a), cache */
	real *h;             /* [N,C] pre/peri: residual after attention; post: x + a (norm1 input) */
	real *n2, *c2;       /* norm2 output, cache */
	real *fch, *fchg;    /* [N,F] MLP pre-activation and GELU output */
	real *m;             /* [N,C] MLP branch */
	real *mo, *c2o;      /* peri: N2o(m), cache */
	real *h2;            /* post: n1 + m (norm2 input) */
};

enum gpt_timer {
	GPT_T_MATMUL,
	GPT_T_ATTENTION,
	GPT_T_NORM,
	GPT_T_OTHER,
	GPT_T_COUNT,
};

struct gpt {
	struct gpt_layout lay;
	struct pool *pool;          /* owned */
	real *params;               /* [n_params] owned */
	real *grads;                /* [n_params] owned */
	real *acts;                 /* one allocation, carved below; owned */
	int *tokens, *targets;      /* [N] owned (one allocation) */
	real *resid;                /* [(L+1), N, C]: resid + l·N·C is block l's input x_l */
	real *emb, *cemb;           /* embedding output before norm_emb (when present), cache */
	struct gpt_block_acts *ba;  /* [L] owned */
	real *nf, *cf;              /* final norm output, cache (nf == resid_L without final norm) */
	real *logits;               /* [N,V]; after a training forward, dlogits */
	real *losses;               /* [N] */
	real *dres[2], *dt1, *dt2, *datty, *dqkv, *dfch, *dfchg, *att_scratch;
	double *dnorm;              /* [nth][max norm params] per-thread partial sums */
	size_t dnorm_stride;
	double *dres_norm;          /* [L] ‖∂L/∂x_l‖ from the last backward with probe_grads set */
	int probe_grads;            /* caller sets: fill dres_norm during backward */
	int timing;                 /* caller sets: accumulate per-op times */
	double t_ops[GPT_T_COUNT];  /* seconds spent per op class while timing */
};

/* Allocates everything for spec s (batch size from the spec) on a pool of s->threads threads. */
int gpt_init(struct gpt *m, const struct spec *s, struct nl_err *err);
void gpt_free(struct gpt *m);

/* Initial values: N(0, init_std) weights (output projections /√(2L) with scaled_init), zero
 * biases, norm parameters per the kind, embedding scale √C. */
void gpt_init_params(struct gpt *m, const struct spec *s, struct rng *r);

/*
 * Forward over m->tokens/m->targets (B·T each). Returns the mean loss. With for_backward, the
 * logits buffer is turned into dlogits for gpt_backward; otherwise logits stay as they are.
 */
double gpt_forward(struct gpt *m, int for_backward);

/* Backward from the fused dlogits; ACCUMULATES into m->grads (zero them first). */
void gpt_backward(struct gpt *m);

/* Zeroes m->grads. */
void gpt_zero_grad(struct gpt *m);

#endif
