/*
 * checkpoint.h — a trainer's whole state in one safetensors file: every parameter under its
 * PyTorch-style name (see model.h), the AdamW moments as "optim.m.<name>" / "optim.v.<name>",
 * and metadata: format, step, the canonical spec and its hash, the data RNG state. Writes are
 * atomic (temp file + rename). Loading checks the spec hash and every shape, so a resumed run
 * continues bit-identically or refuses to start.
 */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "train.h"

#define CKPT_FORMAT "normlab-ckpt-1"

int ckpt_save(const struct trainer *t, const char *path, struct nl_err *err);

/* t must be initialised from the same spec; on success its state is the checkpoint's. */
int ckpt_load(struct trainer *t, const char *path, struct nl_err *err);

/*
 * Loads only the parameters of a checkpoint (or of a `normlab grads` file) into model m (whose
 * layout must match), for `normlab grads --ckpt`. The double build also accepts F32 tensors, so
 * it can compute reference gradients at a float run's parameters. Returns 0 or a negative
 * nl_code.
 */
int ckpt_load_params(struct model *m, const char *path, struct nl_err *err);

#endif
