/* SPDX-License-Identifier: MIT */
/*
 * Lambda's function management API: CreateFunction, GetFunction,
 * GetFunctionConfiguration, ListFunctions, DeleteFunction,
 * UpdateFunctionCode, UpdateFunctionConfiguration.  Shapes as Lambda's, so
 * awscli and boto3 work unchanged.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "http.h"
#include "instance.h"
#include "loop.h"
#include "registry.h"
#include "sandbox_vm.h"

static json_t *parse_body(struct nxd_req *r, struct nxd_error *e)
{
	json_error_t je;
	json_t *req = r->len ? json_loadb(r->body, r->len, 0, &je) : NULL;
	if (!req) {
		e->http = 400;
		e->type = "InvalidParameterValueException";
		snprintf(e->message, sizeof e->message, "request body is not a JSON object%s%s", r->len ? ": " : "",
		         r->len ? je.text : "");
	}
	return req;
}

static enum MHD_Result reply_err(struct MHD_Connection *c, struct nxd_req *r, const struct nxd_error *e)
{
	return nxd_reply_error(c, r, (unsigned)e->http, e->type, "%s", e->message);
}

static enum MHD_Result not_found(struct MHD_Connection *c, struct nxd_req *r)
{
	return nxd_reply_error(c, r, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:%s:%s:function:%s",
	                       nxd_cfg.s3.region, nxd_cfg.account_id, r->name);
}

/* Tell the instance manager (which owns the instances) about a change. */
static void notify(void (*fn)(void *), struct nxd_function *f)
{
	if (nx_loop_in_thread(nxd_loop))
		fn(f); /* handlers on the loop: at once, before the next request */
	else if (nx_loop_post(nxd_loop, fn, f) < 0)
		nxd_fn_unref(f);
}

static enum MHD_Result create_work(struct MHD_Connection *c, struct nxd_req *r)
{
	struct nxd_error e = {0};
	json_t *req = parse_body(r, &e);
	if (!req)
		return reply_err(c, r, &e);
	struct nxd_function *f = nxd_fn_create(req, &e);
	json_decref(req);
	if (!f)
		return reply_err(c, r, &e);
	json_t *cfg = nxd_fn_config_json(f);
	notify(nxd_im_fn_updated, f); /* a stale pool of an earlier namesake retires */
	return nxd_reply_json(c, r, 201, cfg);
}

/* Unzipping and writing code is slow: off the loop thread. */
enum MHD_Result nxd_api_create(struct MHD_Connection *c, struct nxd_req *r)
{
	return nxd_offload(c, r, create_work);
}

static struct nxd_function *lookup(struct nxd_req *r)
{
	char name[80];
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) < 0)
		return NULL;
	return nxd_fn_get(name);
}

enum MHD_Result nxd_api_get(struct MHD_Connection *c, struct nxd_req *r)
{
	struct nxd_function *f = lookup(r);
	if (!f)
		return not_found(c, r);
	char loc[512];
	snprintf(loc, sizeof loc, "%s/nexus/v1/functions/%s/code", nxd_cfg.ingress_url, f->name);
	json_t *o = json_pack("{s:o,s:{s:s,s:s},s:o}", "Configuration", nxd_fn_config_json(f), "Code",
	                      "RepositoryType", "S3", "Location", loc, "Tags", nxd_fn_tags_json(f));
	nxd_fn_unref(f);
	return nxd_reply_json(c, r, 200, o);
}

enum MHD_Result nxd_api_get_config(struct MHD_Connection *c, struct nxd_req *r)
{
	struct nxd_function *f = lookup(r);
	if (!f)
		return not_found(c, r);
	json_t *o = nxd_fn_config_json(f);
	nxd_fn_unref(f);
	return nxd_reply_json(c, r, 200, o);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct nxd_function *const *)a)->name, (*(struct nxd_function *const *)b)->name);
}

enum MHD_Result nxd_api_list(struct MHD_Connection *c, struct nxd_req *r)
{
	size_t n;
	struct nxd_function **v = nxd_fn_list(&n);
	if (!v)
		return nxd_reply_error(c, r, 500, "ServiceException", "out of memory");
	qsort(v, n, sizeof *v, by_name);
	/* Marker/MaxItems pagination as Lambda: Marker is the last name returned. */
	const char *marker = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "Marker");
	const char *maxs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "MaxItems");
	long max = maxs ? strtol(maxs, NULL, 10) : 50;
	if (max <= 0 || max > 10000)
		max = 50;
	json_t *arr = json_array();
	size_t i = 0;
	if (marker && *marker)
		while (i < n && strcmp(v[i]->name, marker) <= 0)
			i++;
	long taken = 0;
	for (; i < n && taken < max; i++, taken++)
		json_array_append_new(arr, nxd_fn_config_json(v[i]));
	json_t *o = json_pack("{s:o}", "Functions", arr);
	if (i < n && taken > 0)
		json_object_set_new(o, "NextMarker", json_string(v[i - 1]->name));
	nxd_fn_list_free(v, n);
	return nxd_reply_json(c, r, 200, o);
}

enum MHD_Result nxd_api_delete(struct MHD_Connection *c, struct nxd_req *r)
{
	char name[80];
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) < 0)
		return not_found(c, r);
	struct nxd_error e = {0};
	struct nxd_function *f = nxd_fn_delete(name, &e);
	if (!f)
		return reply_err(c, r, &e);
	notify(nxd_im_fn_deleted, f);
	nx_vm_snapshot_forget(name);
	return nxd_reply(c, r, 204, NULL, NULL, 0);
}

static enum MHD_Result update(struct MHD_Connection *c, struct nxd_req *r,
                              struct nxd_function *(*op)(const char *, json_t *, struct nxd_error *))
{
	char name[80];
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) < 0)
		return not_found(c, r);
	struct nxd_error e = {0};
	json_t *req = parse_body(r, &e);
	if (!req)
		return reply_err(c, r, &e);
	struct nxd_function *f = op(name, req, &e);
	json_decref(req);
	if (!f)
		return reply_err(c, r, &e);
	json_t *cfg = nxd_fn_config_json(f);
	notify(nxd_im_fn_updated, f);
	return nxd_reply_json(c, r, 200, cfg);
}

static enum MHD_Result update_code_work(struct MHD_Connection *c, struct nxd_req *r)
{
	return update(c, r, nxd_fn_update_code);
}

enum MHD_Result nxd_api_update_code(struct MHD_Connection *c, struct nxd_req *r)
{
	return nxd_offload(c, r, update_code_work);
}

enum MHD_Result nxd_api_update_config(struct MHD_Connection *c, struct nxd_req *r)
{
	return update(c, r, nxd_fn_update_config);
}

/* ------------------------------------------------ tags (/2017-03-31/tags/{arn}) */

enum MHD_Result nxd_api_list_tags(struct MHD_Connection *c, struct nxd_req *r)
{
	struct nxd_function *f = lookup(r);
	if (!f)
		return not_found(c, r);
	json_t *o = json_pack("{s:o}", "Tags", nxd_fn_tags_json(f));
	nxd_fn_unref(f);
	return nxd_reply_json(c, r, 200, o);
}

static enum MHD_Result tags_change(struct MHD_Connection *c, struct nxd_req *r, json_t *set, const char *const *unset,
                                   size_t nunset)
{
	char name[80];
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) < 0)
		return not_found(c, r);
	struct nxd_error e = {0};
	struct nxd_function *f = nxd_fn_update_tags(name, set, unset, nunset, &e);
	if (!f)
		return nxd_reply_error(c, r, (unsigned)e.http, e.type, "%s", e.message);
	notify(nxd_im_fn_updated, f);
	return nxd_reply(c, r, 204, NULL, NULL, 0);
}

enum MHD_Result nxd_api_tag(struct MHD_Connection *c, struct nxd_req *r)
{
	struct nxd_error e = {0};
	json_t *req = parse_body(r, &e);
	if (!req)
		return reply_err(c, r, &e);
	json_t *tags = json_object_get(req, "Tags");
	enum MHD_Result ret = json_is_object(tags) ? tags_change(c, r, tags, NULL, 0)
	                                           : nxd_reply_error(c, r, 400, "InvalidParameterValueException",
	                                                             "Tags must be an object of strings");
	json_decref(req);
	return ret;
}

struct keys {
	const char *v[64];
	size_t n;
};

static enum MHD_Result collect_key(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct keys *k = cls;
	if (value && !strcmp(key, "tagKeys") && k->n < 64)
		k->v[k->n++] = value;
	return MHD_YES;
}

enum MHD_Result nxd_api_untag(struct MHD_Connection *c, struct nxd_req *r)
{
	struct keys k = {.n = 0};
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_key, &k);
	return tags_change(c, r, NULL, k.v, k.n);
}
