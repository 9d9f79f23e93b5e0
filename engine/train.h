/*
 * train.h — one training run: model, AdamW state, data, RNG, step counter, and the probes it
 * reports through a sink of callbacks (the engine knows nothing of files, HTTP or SQLite).
 * A trainer is owned by one thread (the CLI's main thread, or a daemon worker); the sink's
 * callbacks run on that thread.
 */
#ifndef TRAIN_H
#define TRAIN_H

#include "data.h"
#include "data_fmnist.h"
#include "health.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "spec.h"

/*
 * Metric names (stable; the store and the dashboard key on them):
 *   scalars: loss, lr, grad_norm, tokens_per_s, val_loss (always in eval mode: running
 *            statistics); batch-statistic norms also val_loss_trainmode (and for images
 *            val_acc_trainmode): batch statistics, buffers untouched; images (vit) also train_acc (the
 *            batch's), val_acc (the test set's: val_batches batches, the whole of it at the last
 *            step) and epochs; grad.<tensor> for tensors outside the
 *            blocks; norm_f.alpha/.shift/.sat/.inv_std, norm_emb.* for DyT/Derf.
 *   depth (one value per block, index = block): resid.<stat> (block output x_{l+1}),
 *            <site>.in.<stat> (norm input; site ∈ norm1, norm2, norm1_out, norm2_out),
 *            <site>.<probe> for batch-statistic norms (norm_kind.probe_names: batchnorm
 *            fluct_mean, fluct_var = (1/d)‖μ_B − running_mean‖, (1/d)‖σ²_B − running_var‖;
 *            powernorm fluct_var = (1/d)‖q_B − ψ‖, q_mean, q_max; un fluct_var, amgm_gap,
 *            amgm_thresh, skip_counter, q_mean, q_max), norm_f.<probe>, norm_emb.<probe>,
 *            grad.block, grad.resid (‖∂L/∂x_l‖ at block input), angle (x_l → x_{l+1}),
 *            grad.<tensor suffix> (e.g. grad.attn.qkv.weight), and for DyT/Derf
 *            <site>.alpha, <site>.shift, <site>.sat, <site>.inv_std.
 *   stats: var, var_tok, rms, maxabs, medabs, top1_med, kurt.
 *   LN removal (a child with lnremove.mode other than none): see lnremove.h.
 *   samples (at step 1, every samples_every, and the last step): site "blocks.<l>.<site>",
 *            "norm_emb", "norm_f": x = norm input, y = the normalized
 *            value before the affine map, token = flat index b·T+t, channel.
 */
struct train_sink {
	void *ctx;
	void (*scalar)(void *ctx, long step, const char *name, double value);
	void (*depth)(void *ctx, long step, const char *name, const double *v, int n);
	void (*samples)(void *ctx, long step, const char *site, const float *x, const float *y,
			const int *token, const int *channel, int n);
};

struct trainer {
	struct spec spec;
	struct model model;
	struct adamw opt;
	struct data data;       /* text */
	struct fmnist img;      /* images */
	struct rng data_rng;
	long step;              /* steps completed */
	double loss;            /* last training loss */
	double val_loss;        /* last validation loss; NAN before the first */
	double train_acc;       /* images: accuracy on the last training batch */
	double val_acc;         /* images: last test accuracy; NAN before the first */
	double val_loss_trainmode;  /* batch-statistic norms: the validation loss with batch
				     * statistics (NORM_MODE_BATCH); NAN otherwise */
	double grad_norm;       /* last global gradient norm (before clipping) */
	double lr;              /* learning rate of the last step */
	double tok_per_s;       /* throughput over the last logging interval */
	long diverged_step;     /* step at which loss or gradient went non-finite; 0 if never */
	struct health health;   /* dead / stalled / spike / diverged, with step and reason */
	float *scratch;         /* probe scratch [N·C] */
	real *hx, *hcache;      /* host copies of two activations [2, N·C] and one norm cache */
	real *hgrad;            /* host copy of the gradients [n_params] */
	real *hp;               /* host copy of one site's parameters */
	real *hchan, *hbuf;     /* host copies of one site's per-channel scratch and buffers */
	int *htok, *htgt;       /* the next batch on the host: tokens/targets [N] (labels [B]) */
	real *himg;             /* images: [B, 784] */
	double *scratch_d;      /* probe scratch [max(C, L)] */
	float *sx, *sy;         /* sample buffers [probe.samples] */
	int *stok, *schan;
	double mark_time;       /* throughput bookkeeping */
	long mark_step;
	double t_step;          /* seconds in forward/backward/update, summed over steps */
	double t_depth, t_samples, t_val;   /* seconds in each probe kind, summed */
	long n_depth, n_samples, n_val;     /* how many times each ran */
};

/* Builds everything for spec s on corpus path `corpus` (already resolved; images: the data set's
 * directory, NULL for the default) and initialises the parameters from the seed. Returns 0 or a
 * negative nl_code with err filled. */
int trainer_init(struct trainer *t, const struct spec *s, const char *corpus, struct nl_err *err);
/* The same on a corpus already open on fd (borrowed; the caller closes it): messages name `label`
 * instead of a path. The daemon uses it with a file it opened safely inside a data root. */
int trainer_init_fd(struct trainer *t, const struct spec *s, int fd, const char *label,
		    struct nl_err *err);
void trainer_free(struct trainer *t);

/* 1 when every step of the spec is done, or the run diverged, or it is dead under
 * train.on_dead = stop. */
int trainer_done(const struct trainer *t);

/*
 * Runs one step and its probes. Returns 0, or NL_EDIVERGED (t->diverged_step set; parameters are
 * left as they were before the step), or NL_EDEAD (the step is done and the run is dead under
 * train.on_dead = stop: t->health says when and why).
 */
int trainer_step(struct trainer *t, const struct train_sink *sink, struct nl_err *err);

/* Mean loss over the spec's validation batches (does not touch parameters or the data RNG).
 * Images: over val_batches test batches, or the whole test set with `full`; *acc (may be NULL)
 * gets the accuracy (NAN for text). */
double trainer_val_loss(struct trainer *t);
double trainer_validate(struct trainer *t, int full, double *acc);
/* The same with the norms in train mode without side effects (NORM_MODE_BATCH): for
 * batch-statistic norms, what the model does with the batch's own statistics. */
double trainer_validate_trainmode(struct trainer *t, int full, double *acc);

/* Epochs the steps so far have drawn (images: steps·B / 60 000; text: 0). */
double trainer_epochs(const struct trainer *t);

/* Loads the batch for 0-based step `step` into the model's token buffers, as training would
 * (uses and advances the data RNG). */
void trainer_next_batch(struct trainer *t);

#endif
