/*
 * checkpoint.h — a trainer's whole state in one safetensors file: every parameter under its
 * PyTorch-style name (see model.h), the AdamW moments as "optim.m.<name>" / "optim.v.<name>",
 * the norm buffers (batch-statistic kinds: running statistics, counters, windows) as
 * "<site>.<buffer>" (e.g. "blocks.0.norm1.running_mean"), and metadata: format, step, the canonical spec and its hash, the data RNG state. Writes are
 * atomic (temp file + rename). Loading checks the spec hash and every shape, so a resumed run
 * continues bit-identically or refuses to start.
 *
 * Checksums: metadata "crc32c" holds one CRC-32C per tensor, 8 lower-case hex digits each,
 * comma-separated, in file order (ascending data offset, as st_get numbers them); "crc32c.meta"
 * is the CRC-32C of `key NUL value NUL` for format, step, spec, spec_hash, rng.data and loss in
 * that order. Both are verified before a byte is loaded, so a flipped bit anywhere in the tensor
 * data or those fields is refused with the file and tensor named. Files written before checksums
 * existed (neither key) still load; the caller is told they were not verified. Readers that
 * predate checksums ignore the two keys, so the format name stays normlab-ckpt-1.
 */
#ifndef CHECKPOINT_H
#define CHECKPOINT_H

#include "safetensors.h"
#include "train.h"

#define CKPT_FORMAT "normlab-ckpt-1"
#define CKPT_CRC_TENSORS "crc32c"
#define CKPT_CRC_META "crc32c.meta"

int ckpt_save(const struct trainer *t, const char *path, struct nl_err *err);

/*
 * t must be initialised from the same spec; on success its state is the checkpoint's. A checksum
 * mismatch is NL_EINVAL naming the file and the tensor, and leaves t untouched. *verified (may be
 * NULL) is set to 1 when the checksums were present and matched, 0 for an old file without them
 * (the caller should warn).
 */
int ckpt_load(struct trainer *t, const char *path, int *verified, struct nl_err *err);

/*
 * Checks the checksums of an opened checkpoint f (path is for messages). Returns 0 when they
 * match or are absent (*verified, may be NULL, says which), NL_EINVAL naming the tensor otherwise.
 */
int ckpt_verify(const struct st_file *f, const char *path, int *verified, struct nl_err *err);

/*
 * Loads only the parameters (and the norm buffers, which a batch-statistic norm's forward reads)
 * of a checkpoint (or of a `normlab grads` file) into model m (whose layout must match), for `normlab grads --ckpt`. The double build also accepts F32 tensors, so
 * it can compute reference gradients at a float run's parameters. Returns 0 or a negative
 * nl_code.
 */
int ckpt_load_params(struct model *m, const char *path, struct nl_err *err);

/*
 * Writes a checkpoint at step 0 for spec s whose parameters are params (host memory, lay's
 * layout, lay built from s): zero AdamW moments, the data RNG a fresh trainer of s starts from,
 * loss "nan", checksums as ckpt_save writes them. `normlab train SPEC --resume` in its directory
 * then trains from these parameters as if they had been the initial ones; ckpt_load_params reads
 * them too. For `normlab convert`. Returns 0 or a negative nl_code.
 */
int ckpt_save_initial(const struct model_layout *lay, const struct spec *s, const real *params,
		      const char *path, struct nl_err *err);

/*
 * A child run's start (spec.init_from, or the daemon's parent run): the parent's parameters from
 * checkpoint `path` into m (same layout; dtype as built, no widening), after verifying the file's
 * checksums and, when want_hash is non-empty, that it was written for that spec hash. The
 * optimizer starts fresh and the step at 0. Returns 0 or a negative nl_code.
 */
int ckpt_load_init(struct model *m, const char *path, const char *want_hash, struct nl_err *err);

/* The canonical spec (*spec, caller frees with nl_free) and spec hash of a checkpoint, after its
 * checksums are verified: how the CLI resolves init_from. Returns 0 or a negative nl_code. */
int ckpt_read_spec(const char *path, char **spec, char hash[65], struct nl_err *err);

/* A child's checkpoint also holds its LN-removal state ("lnremove.ema", "lnremove.sigma0"
 * [n_sites], "lnremove.sigma" [n_sites, 2]); ckpt_load restores it and the removed paths. */

#endif
