/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher between the channel and the S3 client (aio.h): which
 * requests write-back and prefetch take, our own operation handles, and the
 * per-channel policy (function, write-back mode, allow-list).
 */
#include "aio.h"
#include "chan.h"
#include "invocation.h"
#include "loop.h"
#include "registry.h"
#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define AIO_MAGIC 0x4e58414fu

static struct aio_op *live_ops;

struct aio_chan {
	struct aio_chan *next;
	struct nx_chan *c;
	char fn[65];
	enum aio_wb wb;
	char **buckets;
	void *pf;
};
static struct aio_chan *chans;

/* ------------------------------------------------------------ ops */

static char *dup_or_null(const char *s, char **slot)
{
	*slot = s ? strdup(s) : NULL;
	return *slot;
}

struct aio_op *aio_op_new(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg)
{
	struct aio_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->magic = AIO_MAGIC;
	op->chan = c;
	op->s3 = s3;
	op->cb = cb;
	op->arg = arg;
	op->t0 = nx_now_ns();
	op->req = *req;
	int i = 0;
	op->req.bucket = dup_or_null(req->bucket, &op->strs[i++]);
	op->req.key = dup_or_null(req->key, &op->strs[i++]);
	op->req.range = dup_or_null(req->range, &op->strs[i++]);
	op->req.if_match = dup_or_null(req->if_match, &op->strs[i++]);
	op->req.content_type = dup_or_null(req->content_type, &op->strs[i++]);
	op->req.src_bucket = dup_or_null(req->src_bucket, &op->strs[i++]);
	op->req.src_key = dup_or_null(req->src_key, &op->strs[i++]);
	op->req.prefix = dup_or_null(req->prefix, &op->strs[i++]);
	op->req.delimiter = dup_or_null(req->delimiter, &op->strs[i++]);
	op->req.cont_token = dup_or_null(req->cont_token, &op->strs[i++]);
	op->req.start_after = dup_or_null(req->start_after, &op->strs[i++]);
	op->next = live_ops;
	if (live_ops)
		live_ops->prev = op;
	live_ops = op;
	return op;
}

void aio_op_free(struct aio_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		live_ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	for (size_t i = 0; i < sizeof op->strs / sizeof op->strs[0]; i++)
		free(op->strs[i]);
	if (op->gone)
		*op->gone = true;
	op->magic = 0;
	free(op);
}

void aio_op_finish(struct aio_op *op, struct nx_s3_result *res)
{
	nx_s3_cb cb = op->cb;
	void *arg = op->arg;
	aio_op_free(op);
	if (cb)
		cb(arg, res);
}

void aio_result_error(struct nx_s3_result *res, int status, long http, const char *code, const char *fmt, ...)
{
	memset(res, 0, sizeof *res);
	res->status = status;
	res->http_code = http;
	snprintf(res->code, sizeof res->code, "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
}

static void inner_done(void *arg, struct nx_s3_result *res)
{
	struct aio_op *op = arg;
	op->inner = NULL;
	aio_op_finish(op, res);
}

void aio_op_submit_s3(struct aio_op *op)
{
	/* nx_s3_submit may complete synchronously (inner_done frees op): keep
	 * the handle only while op is still live. */
	bool gone = false;
	op->gone = &gone;
	struct nx_s3_xfer *x = nx_s3_submit(op->s3, &op->req, inner_done, op);
	if (gone)
		return;
	op->gone = NULL;
	if (!x) {
		struct nx_s3_result res;
		aio_result_error(&res, NX_S_IO_ERROR, 500, "InternalError", "storage request could not be started");
		aio_op_finish(op, &res);
		return;
	}
	op->inner = x;
}

static struct aio_op *find_op(struct nx_s3_xfer *x)
{
	for (struct aio_op *o = live_ops; o; o = o->next)
		if ((void *)o == (void *)x)
			return o;
	return NULL;
}

void nx_aio_cancel(struct nx_s3 *s3, struct nx_s3_xfer *x)
{
	struct aio_op *op = find_op(x);
	if (!op) {
		nx_s3_cancel(s3, x);
		return;
	}
	if (op->detach)
		op->detach(op);
	if (op->inner)
		nx_s3_cancel(s3, op->inner);
	aio_op_free(op);
}

/* --------------------------------------------------------- dispatch */

struct nx_s3_xfer *nx_aio_submit(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb,
                                 void *arg)
{
	struct aio_chan *ac = aio_chan_find(c);
	struct nx_s3_xfer *x = NULL;
	switch (req->op) {
	case NX_S3_GET:
		if (wb_read(req, cb, arg))
			return NULL;    /* completed synchronously */
		if (ac)
			pf_observe_get(c, req);
		if (ac && pf_get(c, s3, req, cb, arg, &x))
			return x;
		break;
	case NX_S3_HEAD:
		if (wb_read(req, cb, arg))
			return NULL;
		break;
	case NX_S3_PUT:
		if (ac && ac->wb == AIO_WB_ASYNC && wb_put_async(c, s3, req, cb, arg, &x))
			return x;
		/* fall through */
	case NX_S3_DELETE:
	case NX_S3_COPY:
		if (wb_barrier(c, s3, req, cb, arg, &x))
			return x;
		break;
	default:
		break;
	}
	return nx_s3_submit(s3, req, cb, arg);
}

/* ---------------------------------------------------------- channels */

struct aio_chan *aio_chan_find(const struct nx_chan *c)
{
	for (struct aio_chan *a = chans; a; a = a->next)
		if (a->c == c)
			return a;
	return NULL;
}

enum aio_wb aio_chan_wb(const struct aio_chan *ac) { return ac ? ac->wb : AIO_WB_SYNC; }
const char *aio_chan_function(const struct aio_chan *ac) { return ac->fn; }
void *aio_chan_pf(struct aio_chan *ac) { return ac->pf; }
void aio_chan_set_pf(struct aio_chan *ac, void *pf) { ac->pf = pf; }

bool aio_chan_bucket_ok(const struct aio_chan *ac, const char *bucket)
{
	for (size_t i = 0; ac->buckets && ac->buckets[i]; i++)
		if (!strcmp(ac->buckets[i], bucket))
			return true;
	return false;
}

void nx_aio_chan_attach(struct nx_chan *c, const struct nxd_function *fn)
{
	struct aio_chan *a = calloc(1, sizeof *a);
	if (!a)
		return;
	a->c = c;
	snprintf(a->fn, sizeof a->fn, "%s", fn->name);
	const char *wb = nxd_fn_tag(fn, "nexus:writeback");
	a->wb = wb && !strcmp(wb, "async") ? AIO_WB_ASYNC : AIO_WB_SYNC;
	size_t n = 0;
	while (fn->buckets && fn->buckets[n])
		n++;
	a->buckets = calloc(n + 1, sizeof *a->buckets);
	for (size_t i = 0; a->buckets && i < n; i++)
		a->buckets[i] = strdup(fn->buckets[i]);
	a->next = chans;
	chans = a;
}

void nx_aio_chan_detach(struct nx_chan *c)
{
	for (struct aio_chan **pp = &chans; *pp; pp = &(*pp)->next) {
		struct aio_chan *a = *pp;
		if (a->c != c)
			continue;
		pf_chan_detach(c);
		*pp = a->next;
		for (size_t i = 0; a->buckets && a->buckets[i]; i++)
			free(a->buckets[i]);
		free(a->buckets);
		free(a);
		return;
	}
}

void nx_aio_deliver(struct nx_chan *c, struct nxd_invocation *inv) { pf_deliver(c, inv); }
void nx_aio_cold_start(struct nxd_invocation *inv) { pf_cold_start(inv); }
void nx_aio_inv_end(struct nxd_invocation *inv) { pf_inv_end(inv); }
void nx_aio_hint_header(struct nxd_invocation *inv, const char *value) { pf_hint_header(inv, value); }

const char *nx_aio_check_tags(const char *writeback, const char *prefetch)
{
	if (writeback && strcmp(writeback, "sync") && strcmp(writeback, "async"))
		return "tag nexus:writeback must be 'sync' or 'async'";
	if (prefetch) {
		/* "bucketfield,keyfield": two non-empty event field names (dots for nesting) */
		const char *comma = strchr(prefetch, ',');
		if (!comma || comma == prefetch || !comma[1] || strchr(comma + 1, ','))
			return "tag nexus:prefetch must name the event fields of the input's bucket and key, e.g. 'bucket,key'";
	}
	return NULL;
}

/* ---------------------------------------------------------- lifecycle */

int nx_aio_init(struct nx_loop *loop, struct nx_s3 *s3, const char *state_dir, uint64_t journal_max_bytes)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/journal", state_dir);
	pf_init(loop, s3);
	return wb_init(loop, s3, dir, journal_max_bytes);
}

void nx_aio_shutdown(void)
{
	pf_shutdown();
	wb_shutdown();
	while (chans)
		nx_aio_chan_detach(chans->c);
}

void nx_aio_metrics(FILE *f)
{
	wb_metrics(f);
	pf_metrics(f);
}
