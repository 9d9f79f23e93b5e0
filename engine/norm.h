/*
 * norm.h — the norm table: every normalization variant is one file (norm_<name>.c) that defines
 * one `const struct norm_kind`, plus one row in norm_table.c. Nothing else changes to add one.
 *
 * A norm site normalizes N tokens of width d. Its parameters live in the model's one parameter
 * allocation, laid out as the tensors the kind declares, in declaration order (γ [d], β [d],
 * α [1], s [1] as the kind has them). Kernels are pure functions over flat arrays: no I/O, no
 * allocation, no globals; each call handles a token range, so callers split rows across threads.
 *
 * Batch-statistic kinds (batchnorm, powernorm, un) also declare buffers (running statistics,
 * counters, windows: saved in checkpoints, never optimized), behave differently in training and
 * evaluation (enum norm_mode), and reduce over every row of the batch: they give passes
 * (struct norm_batch_ops) instead of one per-token forward/backward. All of it is optional and
 * zero for per-token kinds.
 */
#ifndef NORM_H
#define NORM_H

#include "nl.h"

#define NORM_MAX_TENSORS 4

/* Which site a norm instance sits at: decides the α0 a DyT/Derf instance starts from. */
enum norm_site_kind {
	NORM_SITE_ATTN,   /* before (or, post/peri, around) attention */
	NORM_SITE_FFN,    /* before (or around) the MLP */
	NORM_SITE_FINAL,  /* before the head */
	NORM_SITE_EMBED,  /* Peri-LN's optional embedding norm: uses the attention α0 */
};

/* Hyper-parameters of one instance, resolved from the spec. */
struct norm_cfg {
	double eps;
	double alpha0;  /* DyT/Derf initial α for this site */
	double shift0;  /* Derf initial s */
	/* batch-statistic kinds (NORMS.md §5, §6, §10); the spec's norm.momentum, norm.pn.*,
	 * norm.un.* */
	double momentum;        /* batchnorm: weight of the new batch (PyTorch's 0.1) */
	double pn_alpha_fwd, pn_alpha_bkw;
	long pn_warmup;
	int pn_groups;
	int un_window;          /* W_f = W_b */
	long un_warmup, un_r_free_after;
	int un_outlier;         /* adaptive outlier filtration on */
	double un_momentum, un_r_max;
};

/*
 * Train vs eval. A forward runs in one mode; kinds without buffers or batch statistics ignore it.
 * TRAIN is one training iteration: batch statistics, buffers updated (counters, running
 * statistics). EVAL uses the running statistics and touches no buffer; its output for a row does
 * not depend on the other rows. BATCH computes exactly what TRAIN would (as if this were the next
 * iteration) but writes no buffer: a train-mode number without side effects (the train-mode
 * validation loss, finite differences in the gradient checks).
 */
enum norm_mode {
	NORM_MODE_EVAL,
	NORM_MODE_TRAIN,
	NORM_MODE_BATCH,
};

/*
 * A buffer: per-instance state that is not a parameter (no optimizer, no gradient) but is saved
 * in checkpoints under "<site>.<name>" and shown by `normlab grads`. Stored as reals; counters
 * are integers held exactly (a float holds every integer up to 2^24, above train.steps' cap).
 */
enum norm_buffer_shape {
	NORM_BUF_D,          /* [d] */
	NORM_BUF_SCALAR,     /* [1] */
	NORM_BUF_WINDOW_D,   /* [cfg->un_window, d] */
};

struct norm_buffer {
	const char *name;    /* "running_mean", "iters", ... */
	enum norm_buffer_shape shape;
	double init;
};

#define NORM_MAX_BUFFERS 8
#define NORM_MAX_PROBES 8
#define NORM_MAX_HPARAMS 8

/*
 * One call of a batch-statistic kind: everything its passes read and write. Rows are tokens
 * (N = B·T, every token of the batch; vit: patches and cls). chan is per-site scratch that lives
 * from a forward to the backward after it (per-channel statistics and coefficients; the kind
 * lays it out, chan_per_channel·d + chan_scalars reals). dparam ACCUMULATES (+=) the parameter
 * gradients; dinp ACCUMULATES the input gradient.
 */
struct norm_batch {
	real *out;                 /* [N,d] forward output */
	real *cache;               /* [N,cache_per_token] */
	const real *inp;           /* [N,d] the forward's input */
	const real *p;             /* parameters */
	real *buf;                 /* the instance's buffers, back to back (norm_buffer_offset) */
	real *chan;                /* per-channel scratch, see above */
	real *dinp;                /* [N,d] backward */
	const real *dout;          /* [N,d] backward: ∂L/∂y */
	real *dparam;              /* gradients of p (+=) */
	int N, d;
	enum norm_mode mode;
	const struct norm_cfg *cfg;
};

/*
 * The passes of a batch-statistic kind. A forward is: stats over row ranges (each range ADDS
 * per-channel double partial sums, n_fwd_stats·d of them, into part; the caller sums the ranges'
 * partials in a fixed order), then finish once on the sums of all N rows (serial: coefficients
 * into chan; TRAIN updates the buffers), then apply over row ranges (out, cache). EVAL skips the
 * stats pass (sum is NULL): finish takes its coefficients from the buffers. A backward is the
 * same with bwd_stats/bwd_finish/bwd_apply; bwd_finish adds the parameter gradients and updates
 * buffers the backward owns (PowerNorm's Γ, UN's gradient window); bwd_apply may be NULL when
 * bwd_stats already wrote dinp. Each pass function handles only its rows [t0, t1): no I/O, no
 * allocation, no globals, so a backend may run ranges on any threads (or ports them as ops).
 */
struct norm_batch_ops {
	int n_fwd_stats, n_bwd_stats;
	void (*fwd_stats)(double *part, const struct norm_batch *b, int t0, int t1);
	void (*fwd_finish)(const struct norm_batch *b, const double *sum);
	void (*fwd_apply)(const struct norm_batch *b, int t0, int t1);
	void (*bwd_stats)(double *part, const struct norm_batch *b, int t0, int t1);
	void (*bwd_finish)(const struct norm_batch *b, const double *sum);
	void (*bwd_apply)(const struct norm_batch *b, int t0, int t1);
};

enum norm_tensor_shape {
	NORM_SHAPE_D,       /* [d] per channel */
	NORM_SHAPE_SCALAR,  /* [1] */
};

enum norm_tensor_init {
	NORM_INIT_ONE,
	NORM_INIT_ZERO,
	NORM_INIT_ALPHA0,
	NORM_INIT_SHIFT0,
};

struct norm_tensor {
	const char *name;           /* "weight", "bias", "alpha", "shift": the checkpoint suffix */
	enum norm_tensor_shape shape;
	enum norm_tensor_init init;
};

/*
 * forward:  out [N,d], cache [N,cache_per_token], inp [N,d], p = the instance's parameters
 *           (tensors back to back). Writes out and cache for tokens [t0,t1).
 * backward: ACCUMULATES (+=) into dinp [N,d] for tokens [t0,t1), and into the double partial
 *           sums dp (one double per parameter element, same layout as p) — the caller reduces the
 *           per-thread dp in a fixed order, which keeps results bit-reproducible.
 *           dout [N,d] is the upstream gradient.
 * pre_affine: the normalized value before the affine map at (token n, channel c), for the
 *           input→output samples (LN/RMS: x̂, DyT: tanh(αx), Derf: erf(αx+s)).
 * saturated: 1 when element x counts as saturated (|αx+s| > 2), NULL for kinds without it.
 */
struct norm_kind {
	const char *name;
	double default_eps;
	int wants_embed_scale;    /* DyT/Derf LMs learn a scalar c = √d after the embedding */
	int n_tensors;
	struct norm_tensor tensors[NORM_MAX_TENSORS];
	int cache_per_token;      /* reals saved per token for backward */
	void (*forward)(real *out, real *cache, const real *inp, const real *p,
			int t0, int t1, int d, const struct norm_cfg *cfg);
	void (*backward)(real *dinp, double *dp, const real *dout, const real *cache,
			 const real *inp, const real *p, int t0, int t1, int d,
			 const struct norm_cfg *cfg);
	real (*pre_affine)(const real *inp_row, const real *cache_row, const real *p, int d, int c);
	int (*saturated)(real x, const real *p, int d);
	/*
	 * 1 for a kind that keeps the residual stream compressed (CRMSNorm, NORMS.md §7.2): the
	 * stream holds the first d_model − 1 coordinates of a zero-mean d_model-vector, so the
	 * stream, every norm site and every matrix that writes to or reads from the stream are
	 * d_model − 1 wide (the heads and the MLP keep d_model and d_ff). A site's `d` is then
	 * d_model − 1, and the kind knows the full width is d + 1. 0 for every other kind.
	 */
	int compressed;

	/* ---- optional (zero for per-token kinds): buffers, batch statistics, probes ---- */
	int n_buffers;
	struct norm_buffer buffers[NORM_MAX_BUFFERS];
	/* Non-NULL: a batch-statistic kind. forward/backward above are then NULL; the backend runs
	 * these passes instead, and pre_affine gets the site's chan as its cache_row. */
	const struct norm_batch_ops *batch;
	int chan_per_channel, chan_scalars;   /* the size of chan */
	int approx_backward;      /* 1: the backward is the paper's approximation, not the exact
				   * gradient (gradient checks compare it with a reference instead) */
	/* Spec keys of the hyper-parameters this kind reads beyond norm.eps (NULL-terminated): the
	 * schema lists them, and the canonical spec carries them only for this kind. */
	const char *hparams[NORM_MAX_HPARAMS];
	/* Per-site diagnostics after a training forward (train.c logs "<slot>.<name>" per depth and
	 * "<site>.<name>" for outer sites): v[i] for probe_names[i], from chan and the buffers. */
	int n_probes;
	const char *probe_names[NORM_MAX_PROBES];
	void (*probe)(double *v, const real *chan, const real *buf, int d,
		      const struct norm_cfg *cfg);
};

/*
 * Parameter gradients in a backward: per-channel sums over the call's rows are formed in `real`
 * over blocks of NORM_ROW_BLOCK rows (a stack buffer, d ≤ NORM_MAX_D), then added to the double
 * partials dp. A block sum is short enough for float; the double add per block (not per
 * element) keeps the long sums exact enough and the loops free of conversions.
 */
#define NORM_MAX_D 4096      /* spec limit on model.d_model */
#define NORM_ROW_BLOCK 32

/* Whether row t ends a block of the call's rows [t0, t1): flush the block sums after it. */
static inline int norm_block_end(int t, int t0, int t1)
{
	return (t - t0) % NORM_ROW_BLOCK == NORM_ROW_BLOCK - 1 || t == t1 - 1;
}

/* dp[i] += acc[i]; acc[i] = 0 for i < n */
static inline void norm_flush(double *restrict dp, real *restrict acc, int n)
{
#pragma omp simd
	for (int i = 0; i < n; i++) {
		dp[i] += acc[i];
		acc[i] = 0;
	}
}

/*
 * Backwards over activations that stream from DRAM: the hardware prefetcher alone left the
 * compute-heavy kernels at ~50% of the bandwidth bound (they issue loads too slowly to keep
 * enough misses in flight). Above NORM_STREAM_BYTES of x, dout and dinp per call, a backward
 * walks each row in NORM_CHUNK columns and prefetches its three streams NORM_PF_AHEAD elements
 * ahead (rows are contiguous, so this runs on into the next row; past the end of the arrays it
 * is harmless: a prefetch never faults). Below it, where the data sits in cache, the chunking
 * would only cost, and the row is one loop.
 */
#define NORM_STREAM_BYTES ((size_t)16 << 20)
#define NORM_CHUNK 64
#define NORM_PF_AHEAD 1024

static inline int norm_streaming(int t0, int t1, int d)
{
	return (size_t)(t1 - t0) * (size_t)d * 3 * sizeof(real) > NORM_STREAM_BYTES;
}

/* Columns [i0, i0 + NORM_CHUNK) of a row are next: fetch its streams NORM_PF_AHEAD ahead. */
static inline void norm_prefetch(const real *x, const real *dy, const real *dx, int i0)
{
	for (int j = 0; j < NORM_CHUNK; j += 64 / (int)sizeof(real)) {
		__builtin_prefetch(x + i0 + NORM_PF_AHEAD + j);
		__builtin_prefetch(dy + i0 + NORM_PF_AHEAD + j);
		__builtin_prefetch(dx + i0 + NORM_PF_AHEAD + j, 1);
	}
}

/* The end of the span of n columns that starts at column i0 of a row of d. */
static inline int norm_span_end(int i0, int n, int d)
{
	return i0 + n < d ? i0 + n : d;
}

/* RMSNorm's and CRMSNorm's first backward pass over columns [i0, i1) of one row (x̂ = x·r): the
 * γ block sums into ag, and the row sum of dy·x̂·γ into *mhx_out. */
static inline void norm_rms_bwd_sums(real *restrict ag, const real *restrict x,
				     const real *restrict dy, const real *restrict g, real r, int i0,
				     int i1, double *mhx_out)
{
	double mhx = 0;
#pragma omp simd reduction(+ : mhx)
	for (int i = i0; i < i1; i++) {
		real dxh = dy[i] * (x[i] * r);
		mhx += (double)(dxh * g[i]);
		ag[i] += dxh;
	}
	*mhx_out += mhx;
}

/* The table, in a fixed order (index = the kind's id). */
extern const struct norm_kind *const norm_table[];
extern const int norm_table_len;

/* Index of the kind named `name`, or -1. */
int norm_find(const char *name);

/* "layernorm, rmsnorm, ..." into buf (for error messages). */
void norm_names(char *buf, size_t cap);

/* Number of parameter reals one instance of kind k has at width d. */
size_t norm_param_count(const struct norm_kind *k, int d);

/* Number of reals in tensor i of kind k at width d. */
size_t norm_tensor_len(const struct norm_kind *k, int i, int d);

/* Writes the initial parameter values of one instance into p. */
void norm_param_init(const struct norm_kind *k, real *p, int d, const struct norm_cfg *cfg);

/* Offset (in reals) of the tensor called `name` inside an instance, or -1 if the kind has none. */
long norm_tensor_offset(const struct norm_kind *k, const char *name, int d);

/* Buffers: reals in buffer i, in all of an instance's buffers, offset of buffer `name` (-1 if
 * none), and their initial values into buf. */
size_t norm_buffer_len(const struct norm_kind *k, int i, int d, const struct norm_cfg *cfg);
size_t norm_buffer_count(const struct norm_kind *k, int d, const struct norm_cfg *cfg);
long norm_buffer_offset(const struct norm_kind *k, const char *name, int d,
			const struct norm_cfg *cfg);
void norm_buffer_init(const struct norm_kind *k, real *buf, int d, const struct norm_cfg *cfg);

/* Reals of per-channel scratch (chan) one site of kind k needs at width d; 0 per-token kinds. */
size_t norm_chan_reals(const struct norm_kind *k, int d);

/* The double partials a pass needs per thread: max(parameter count, stats·d). */
size_t norm_partials(const struct norm_kind *k, int d);

/*
 * A whole forward / backward of a batch kind over all b->N rows on the calling thread, with
 * `sum` scratch of norm_partials doubles (for tests and references; the backend splits the
 * passes across its threads itself). The backward follows the forward it belongs to.
 */
void norm_batch_forward_serial(const struct norm_kind *k, const struct norm_batch *b, double *sum);
void norm_batch_backward_serial(const struct norm_kind *k, const struct norm_batch *b, double *sum);

#endif
