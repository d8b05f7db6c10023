/* SPDX-License-Identifier: MIT */
/*
 * POST /2015-03-31/functions/{name}/invocations — Lambda's Invoke.
 * RequestResponse waits for the loop thread to finish the invocation;
 * Event answers 202 at once; DryRun only checks the function exists.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <string.h>
#include <jansson.h>

#include "config.h"
#include "http.h"
#include "instance.h"
#include "invocation.h"
#include "aio.h"
#include "loop.h"
#include "registry.h"

/* X-Amz-Log-Result: base64 of the last 4 KB this invocation wrote to the
 * function's log (START..REPORT), as Lambda does for LogType Tail. */
static void add_log_tail(struct MHD_Response *resp, const struct nxd_invocation *inv)
{
	if (inv->log_start < 0 || inv->log_end <= inv->log_start)
		return;
	long long from = inv->log_end - inv->log_start > 4096 ? inv->log_end - 4096 : inv->log_start;
	char path[4200];
	nxd_fn_log_path(inv->fn->name, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	unsigned char buf[4096];
	ssize_t n = pread(fd, buf, (size_t)(inv->log_end - from), from);
	close(fd);
	if (n <= 0)
		return;
	char b64[4096 / 3 * 4 + 8];
	EVP_EncodeBlock((unsigned char *)b64, buf, (int)n);
	MHD_add_response_header(resp, "X-Amz-Log-Result", b64);
}

/* Build (and queue, or store for a deferred request) the invocation's answer. */
static enum MHD_Result reply_result(struct MHD_Connection *c, struct nxd_req *r, struct nxd_invocation *inv)
{
	const char *msg = inv->body ? inv->body : "internal error";
	switch (inv->result) {
	case NXD_INV_OK:
	case NXD_INV_HANDLER_ERROR:
	case NXD_INV_TIMEOUT:
	case NXD_INV_CRASH: {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			inv->body_len, inv->body ? inv->body : (char *)"", inv->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		inv->body = NULL; /* now owned by the response */
		MHD_add_response_header(resp, "Content-Type", "application/json");
		MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
		MHD_add_response_header(resp, "X-Amz-Executed-Version", "$LATEST");
		if (inv->result != NXD_INV_OK)
			MHD_add_response_header(resp, "X-Amz-Function-Error", "Unhandled");
		if (inv->want_log_tail)
			add_log_tail(resp, inv);
		return nxd_reply_raw(c, r, 200, resp);
	}
	case NXD_INV_THROTTLED:
		return nxd_reply_error(c, r, 429, "TooManyRequestsException", "%s", msg);
	case NXD_INV_GONE:
		return nxd_reply_error(c, r, 404, "ResourceNotFoundException", "%s", msg);
	case NXD_INV_FAILED:
	default:
		return nxd_reply_error(c, r, 500, "ServiceException", "%s", msg);
	}
}

/* Loop thread: the invocation finished; answer and wake the connection. */
static void invoke_done(struct nxd_invocation *inv)
{
	struct nxd_req *r = inv->ctx;
	reply_result(r->conn, r, inv);
	nxd_fn_unref(inv->fn);
	nxd_inv_fini(inv);
	free(inv);
	nxd_req_resume(r);
}

#define VALIDATE_INLINE_MAX (64u << 10)

/* Any thread: the payload must be JSON (Lambda's InvalidRequestContentException). */
static enum MHD_Result validate_work(struct MHD_Connection *c, struct nxd_req *r)
{
	if (!r->len)
		return MHD_YES;
	json_error_t je;
	json_t *ev = json_loadb(r->body, r->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (ev) {
		json_decref(ev);
		return MHD_YES;
	}
	nxd_fn_unref(r->ctx);
	r->ctx = NULL;
	r->then = NULL;
	return nxd_reply_error(c, r, 400, "InvalidRequestContentException",
	                       "Could not parse request body into json: %s (line %d column %d)", je.text, je.line,
	                       je.column);
}

/* X-Nexus-Prefetch: s3://bucket/key (several allowed): prefetch hints (aio.h). */
static enum MHD_Result prefetch_hint(void *cls, enum MHD_ValueKind kind, const char *name, const char *value)
{
	(void)kind;
	if (name && value && !strcasecmp(name, "X-Nexus-Prefetch"))
		nx_aio_hint_header(cls, value);
	return MHD_YES;
}

/* Loop thread, payload valid: hand the invocation to the instance manager.
 * Either a reply is stored in r now (Event, DryRun, 429, ...) or
 * invoke_done stores it later; a suspended request is resumed either way. */
static void start_invocation(struct nxd_req *r)
{
	struct nxd_function *fn = r->ctx;
	r->ctx = NULL;
	long kind = r->arg;
	if (kind == 2) { /* DryRun */
		nxd_fn_unref(fn);
		nxd_reply(r->conn, r, 204, NULL, NULL, 0);
		nxd_req_resume(r);
		return;
	}
	struct nxd_invocation *inv = malloc(sizeof *inv);
	if (!inv) {
		nxd_fn_unref(fn);
		nxd_reply_error(r->conn, r, 500, "ServiceException", "out of memory");
		nxd_req_resume(r);
		return;
	}
	nxd_inv_init(inv);
	inv->fn = fn;
	memcpy(inv->request_id, r->request_id, sizeof inv->request_id);
	inv->t_recv_ns = nx_now_ns();
	inv->want_log_tail = r->flag;
	if (kind == 1) { /* Event: the loop owns it, the caller gets 202 now */
		inv->async = true;
		inv->event = r->body;
		inv->event_len = r->len;
		r->body = NULL;
		r->len = 0;
		MHD_get_connection_values(r->conn, MHD_HEADER_KIND, prefetch_hint, inv);
		nxd_im_invoke(inv);
		nxd_reply(r->conn, r, 202, NULL, NULL, 0);
		nxd_req_resume(r);
		return;
	}
	inv->event = r->body;
	inv->event_len = r->len;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, prefetch_hint, inv);
	inv->on_done = invoke_done;
	inv->ctx = r;
	nxd_im_invoke(inv);
}

enum MHD_Result nxd_api_invoke(struct MHD_Connection *c, struct nxd_req *r)
{
	char name[80];
	struct nxd_function *fn = NULL;
	if (nxd_fn_name_from_arg(r->name, name, sizeof name) == 0)
		fn = nxd_fn_get(name);
	const char *qual = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "Qualifier");
	if (!fn || (qual && strcmp(qual, "$LATEST"))) {
		nxd_fn_unref(fn);
		return nxd_reply_error(c, r, 404, "ResourceNotFoundException",
		                       "Function not found: arn:aws:lambda:%s:%s:function:%s%s%s", nxd_cfg.s3.region,
		                       nxd_cfg.account_id, r->name, qual ? ":" : "", qual ? qual : "");
	}
	const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Invocation-Type");
	if (type && strcmp(type, "RequestResponse") && strcmp(type, "Event") && strcmp(type, "DryRun")) {
		nxd_fn_unref(fn);
		return nxd_reply_error(c, r, 400, "InvalidParameterValueException",
		                       "InvocationType must be RequestResponse, Event or DryRun");
	}
	if (nxd_stopping) {
		nxd_fn_unref(fn);
		return nxd_reply_error(c, r, 503, "ServiceException", "nexusd is shutting down");
	}
	r->ctx = fn; /* reference, released by start_invocation */
	r->arg = !type ? 0 : !strcmp(type, "Event") ? 1 : !strcmp(type, "DryRun") ? 2 : 0;
	const char *lt = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Log-Type");
	r->flag = lt && !strcmp(lt, "Tail");
	/* From here the reply is stored in r and sent when it exists. */
	r->deferred = true;
	if (r->len > VALIDATE_INLINE_MAX) {
		/* Parsing megabytes of JSON takes tens of milliseconds: not on the loop. */
		r->then = start_invocation;
		return nxd_offload(c, r, validate_work);
	}
	validate_work(c, r);
	if (!r->pending)
		start_invocation(r);
	if (r->pending) {
		enum MHD_Result ret = MHD_queue_response(c, r->pending_status, r->pending);
		MHD_destroy_response(r->pending);
		r->pending = NULL;
		return ret;
	}
	r->suspended = true;
	MHD_suspend_connection(c);
	return MHD_YES;
}
