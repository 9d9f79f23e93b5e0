/*
 * convert.h — Pre-LN → Pre-RMSNorm → Pre-CRMSNorm with the same function (NORMS.md §7; Jiang et
 * al. 2023), on a trained checkpoint:
 *   1. centre everything that writes to the residual stream over the stream's channels: token and
 *      position embeddings, vit's cls token, patch Linear (weight over its output dim, bias), and
 *      each block's attention and MLP output projections (weight over the output dim, bias). The
 *      stream is then zero-mean, so LN(x) = RMSNorm(x) with the same ε;
 *   2. LayerNorm's β goes into the bias of the Linear that reads the norm (qkv, MLP in, head):
 *      b ← b + s·W·β (s the LNS factor 1/√l where the placement has it, else 1). The target
 *      spec therefore has Linear biases (llama too) and, for gpt/llama, a head bias, and an
 *      untied head (the centred embedding and the head that reads the stream differ);
 *   3. to rmsnorm: γ stays the norm's weight (RMSNorm has one);
 *      to crmsnorm: γ is folded into the reader too, W ← W·diag(γ), the norm's weight is 1, and
 *      the stream is compressed to d−1 (§7.2): writers drop their last output channel, readers
 *      take W[:, :d−1] − W[:, d−1] (the dropped coordinate is −Σ of the others).
 * The source is a Pre-LN model (placement pre or lns: every reader of the stream is a norm), or,
 * for crmsnorm, a Pre-RMSNorm model whose writers are zero-mean (one this conversion wrote). The
 * arithmetic is in double; the result is stored in the build's precision.
 * Pure functions over caller-owned memory, except convert_checkpoint (files); thread-safe.
 */
#ifndef CONVERT_H
#define CONVERT_H

#include "model.h"
#include "spec.h"

struct convert_report {
	int centred;      /* writer tensors re-centred */
	int folded;       /* reader matrices that took a norm's β (and, to crmsnorm, γ) */
	int compressed;   /* tensors cut to d−1 */
	double max_mean;  /* rmsnorm source: the largest |mean|/rms of a writer line found */
};

/*
 * The spec of the converted model: `from` with norm.type = to_type ("rmsnorm" or "crmsnorm"),
 * its ε, Linear biases, a head bias (gpt, llama) and an untied head. NL_EINVAL with err naming
 * the spec field (norm.type, norm.placement) when `from` is not convertible.
 */
int convert_spec(struct spec *to, const struct spec *from, const char *to_type,
		 struct nl_err *err);

/*
 * dst [lt->n_params] from src [lf->n_params]: lf built from `from`, lt from convert_spec's
 * result. rep may be NULL. NL_EINVAL when an rmsnorm source's stream is not zero-mean.
 */
int convert_params(const struct spec *from, const struct model_layout *lf, const real *src,
		   const struct model_layout *lt, real *dst, struct convert_report *rep,
		   struct nl_err *err);

/*
 * Runs models a and b (host parameters pa, pb) on one batch of seeded random inputs (tokens, or
 * N(0,1) pixels) and sets *rel = ‖logits_a − logits_b‖∞ / ‖logits_a‖∞ and the two losses
 * (either may be NULL). The two specs must agree on arch, batch and sequence length.
 */
int convert_compare(const struct spec *a, const real *pa, const struct spec *b, const real *pb,
		    uint64_t seed, double *rel, double *loss_a, double *loss_b, struct nl_err *err);

/*
 * The command: reads checkpoint `in` (checksums verified; its spec from the metadata), converts,
 * writes out_dir/checkpoint.safetensors (ckpt_save_initial: `normlab train out_dir/spec.json
 * --out out_dir --resume` fine-tunes it) and out_dir/spec.json (canonical), and compares the two
 * models on one random batch into *rel (NULL: not compared). out_dir must exist.
 */
int convert_checkpoint(const char *in, const char *to_type, const char *out_dir,
		       struct convert_report *rep, double *rel, struct nl_err *err);

#endif
