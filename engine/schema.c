/*
 * schema.c — the engine's tables as data (see schema.h). Nothing here lists a norm, placement,
 * arch or field by hand: each list is walked from the table that the parser and the model use,
 * and per-arch defaults come from parsing {"model":{"arch":X}} itself, so what the schema says
 * a default is, is what a run gets.
 */
#include "schema.h"

#include "model.h"
#include "nl.h"
#include "norm.h"
#include "spec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static const char *const tensor_shape_name[] = {
	[NORM_SHAPE_D] = "d", [NORM_SHAPE_SCALAR] = "scalar",
};
static const char *const tensor_init_name[] = {
	[NORM_INIT_ONE] = "one", [NORM_INIT_ZERO] = "zero", [NORM_INIT_ALPHA0] = "alpha0",
	[NORM_INIT_SHIFT0] = "shift0",
};

/* The spec fields a norm's hyper-parameters are: eps always; α0 and s0 where a tensor starts
 * from them; the embedding scale where the kind wants it. */
static cJSON *norm_json(const struct norm_kind *k)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", k->name);
	cJSON_AddNumberToObject(o, "default_eps", k->default_eps);
	cJSON_AddBoolToObject(o, "embed_scale", k->wants_embed_scale != 0);
	cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
	cJSON *hp = cJSON_AddArrayToObject(o, "hyperparameters");
	if (!ts || !hp) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToArray(hp, cJSON_CreateString("norm.eps"));
	for (int i = 0; i < k->n_tensors; i++) {
		cJSON *t = cJSON_CreateObject();
		if (!t)
			break;
		cJSON_AddStringToObject(t, "name", k->tensors[i].name);
		cJSON_AddStringToObject(t, "shape", tensor_shape_name[k->tensors[i].shape]);
		cJSON_AddStringToObject(t, "init", tensor_init_name[k->tensors[i].init]);
		cJSON_AddItemToArray(ts, t);
		if (k->tensors[i].init == NORM_INIT_ALPHA0) {
			cJSON_AddItemToArray(hp, cJSON_CreateString("norm.alpha0.attn"));
			cJSON_AddItemToArray(hp, cJSON_CreateString("norm.alpha0.ffn"));
			cJSON_AddItemToArray(hp, cJSON_CreateString("norm.alpha0.final"));
		} else if (k->tensors[i].init == NORM_INIT_SHIFT0) {
			cJSON_AddItemToArray(hp, cJSON_CreateString("norm.shift0"));
		}
	}
	if (k->wants_embed_scale)
		cJSON_AddItemToArray(hp, cJSON_CreateString("norm.embed_scale"));
	for (int i = 0; i < NORM_MAX_HPARAMS && k->hparams[i]; i++)
		cJSON_AddItemToArray(hp, cJSON_CreateString(k->hparams[i]));
	/* batch-statistic kinds: buffers (checkpointed, not optimized), their train/eval split and
	 * the per-site probes they log */
	cJSON_AddBoolToObject(o, "batch_statistics", k->batch != NULL);
	cJSON_AddBoolToObject(o, "approx_backward", k->approx_backward != 0);
	cJSON *bs = cJSON_AddArrayToObject(o, "buffers");
	for (int i = 0; bs && i < k->n_buffers; i++)
		cJSON_AddItemToArray(bs, cJSON_CreateString(k->buffers[i].name));
	cJSON *pr = cJSON_AddArrayToObject(o, "probes");
	for (int i = 0; pr && i < k->n_probes; i++)
		cJSON_AddItemToArray(pr, cJSON_CreateString(k->probe_names[i]));
	return o;
}

/* An arch: its data kind, its metrics, and the whole spec its {"model":{"arch":name}} resolves
 * to (the dashboard's template for it). */
static cJSON *arch_json(const char *name)
{
	const struct model_arch *a = model_arch_find(name);
	char json[96];
	struct spec s;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", name);
	int images = a && a->data == MODEL_DATA_IMAGES;
	cJSON_AddStringToObject(o, "data", images ? "images" : "text");
	cJSON *m = cJSON_AddArrayToObject(o, "metrics");
	static const char *const text_m[] = { "loss", "val_loss", NULL };
	static const char *const img_m[] = { "loss", "val_loss", "train_acc", "val_acc", NULL };
	for (const char *const *p = images ? img_m : text_m; m && *p; p++)
		cJSON_AddItemToArray(m, cJSON_CreateString(*p));
	snprintf(json, sizeof json, "{\"model\":{\"arch\":\"%s\"}}", name);
	if (spec_parse(&s, json, strlen(json), NULL, NULL) == 0) {
		char *canon = spec_canonical(&s);
		cJSON *d = canon ? cJSON_Parse(canon) : NULL;
		nl_free(canon);
		if (d)
			cJSON_AddItemToObject(o, "defaults", d);
	}
	return o;
}

static cJSON *names_json(const char *const *names)
{
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && names && names[i]; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
	return a;
}

cJSON *schema_json(void)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON *arches = cJSON_AddArrayToObject(o, "arches");
	const char *const *an = spec_field_enum("model.arch");
	for (int i = 0; arches && an && an[i]; i++)
		cJSON_AddItemToArray(arches, arch_json(an[i]));
	cJSON *norms = cJSON_AddArrayToObject(o, "norm_types");
	for (int i = 0; norms && i < norm_table_len; i++)
		cJSON_AddItemToArray(norms, norm_json(norm_table[i]));
	cJSON_AddItemToObject(o, "placements", names_json(spec_field_enum("norm.placement")));
	cJSON_AddItemToObject(o, "fields", spec_fields_json());
	/* A failed add above leaves a shorter array; say so rather than serve a partial schema. */
	if (!arches || !norms || cJSON_GetArraySize(arches) == 0 ||
	    cJSON_GetArraySize(norms) != norm_table_len || !cJSON_GetObjectItem(o, "fields") ||
	    !cJSON_GetObjectItem(o, "placements")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
