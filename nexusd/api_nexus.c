/* SPDX-License-Identifier: MIT */
/*
 * nexusd's own endpoints: /health, /metrics (Prometheus text),
 * /nexus/v1/status (JSON) and /nexus/v1/functions/{name}/logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "funclog.h"
#include "http.h"
#include "instance.h"
#include "loop.h"
#include "metrics.h"
#include "registry.h"

enum MHD_Result nxd_api_health(struct MHD_Connection *c, struct nxd_req *r)
{
	if (nxd_stopping)
		return nxd_reply(c, r, 503, "text/plain", strdup("stopping\n"), 9);
	return nxd_reply(c, r, 200, "text/plain", strdup("ok\n"), 3);
}

struct render {
	char *text;
	size_t len;
	json_t *json;
};

static void render_metrics(void *p)
{
	struct render *m = p;
	m->text = nxd_metrics_render(&m->len);
}

enum MHD_Result nxd_api_metrics(struct MHD_Connection *c, struct nxd_req *r)
{
	struct render m = {0};
	if (nxd_call_on_loop(render_metrics, &m) < 0 || !m.text) {
		free(m.text);
		return nxd_reply_error(c, r, 503, "ServiceException", "metrics unavailable (shutting down?)");
	}
	return nxd_reply(c, r, 200, "text/plain; version=0.0.4", m.text, m.len);
}

static void render_status(void *p)
{
	struct render *m = p;
	m->json = nxd_im_status_json();
}

enum MHD_Result nxd_api_status(struct MHD_Connection *c, struct nxd_req *r)
{
	struct render m = {0};
	if (nxd_call_on_loop(render_status, &m) < 0 || !m.json)
		return nxd_reply_error(c, r, 503, "ServiceException", "status unavailable (shutting down?)");
	json_t *pools = json_object_get(m.json, "pools");
	size_t n;
	struct nxd_function **v = nxd_fn_list(&n);
	json_t *fns = json_array();
	for (size_t i = 0; v && i < n; i++) {
		struct nxd_function *f = v[i];
		json_t *buckets = json_array();
		for (char **b = f->buckets; b && *b; b++)
			json_array_append_new(buckets, json_string(*b));
		json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:s,s:i,s:o}", "name", f->name, "runtime", f->runtime,
		                      "handler", f->handler, "memory_mb", (int)f->memory_mb, "timeout_s", (int)f->timeout_s,
		                      "mode", f->mode == NX_MODE_NEXUS ? "nexus" : "baseline", "sandbox", f->driver->name,
		                      "max_instances", (int)f->max_instances, "buckets", buckets);
		json_t *pl = json_object_get(pools, f->name);
		json_object_set(o, "instances", pl ? pl : json_pack("{s:i,s:i,s:i,s:i,s:i}", "starting", 0, "idle", 0,
		                                                       "busy", 0, "stopping", 0, "queued", 0));
		if (!pl)
			json_decref(json_object_get(o, "instances"));
		json_array_append_new(fns, o);
	}
	nxd_fn_list_free(v, n);
	json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s},s:o,s:O,s:{s:i,s:i,s:i}}", "ingress", nxd_cfg.ingress_url,
	                      "state_dir", nxd_cfg.state_dir, "s3", "endpoint", nxd_cfg.s3.endpoint, "region",
	                      nxd_cfg.s3.region, "functions", fns, "instances", json_object_get(m.json, "instances"),
	                      "limits", "keep_alive_s", (int)nxd_cfg.keep_alive_s, "max_instances",
	                      (int)nxd_cfg.max_instances, "queue_depth", (int)nxd_cfg.queue_depth);
	json_decref(m.json);
	return nxd_reply_json(c, r, 200, o);
}

/* Worker thread: reading up to 8 MiB of log is disk work. */
static enum MHD_Result logs_work(struct MHD_Connection *c, struct nxd_req *r)
{
	size_t len = 0;
	char *text = nxd_funclog_read(r->name, r->arg, &len);
	if (!text) {
		if (errno == ENOENT)
			return nxd_reply(c, r, 200, "text/plain; charset=utf-8", NULL, 0);
		return nxd_reply_error(c, r, 500, "ServiceException", "cannot read the log: %s", strerror(errno));
	}
	return nxd_reply(c, r, 200, "text/plain; charset=utf-8", text, len);
}

enum MHD_Result nxd_api_logs(struct MHD_Connection *c, struct nxd_req *r)
{
	char name[80];
	struct nxd_function *f = NULL;
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) == 0)
		f = nxd_fn_get(name);
	if (!f)
		return nxd_reply_error(c, r, 404, "ResourceNotFoundException", "Function not found: %s", r->name);
	nxd_fn_unref(f);
	const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tail");
	r->arg = t ? strtol(t, NULL, 10) : 0;
	snprintf(r->name, sizeof r->name, "%s", name);
	return nxd_offload(c, r, logs_work);
}
