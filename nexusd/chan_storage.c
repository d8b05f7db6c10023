/* SPDX-License-Identifier: MIT */
/*
 * Storage requests of the channel host side: TLV arguments copied out of the
 * guest arena and parsed, the bucket allow-list, PUT bodies copied once, GET
 * bodies written by the S3 client straight into a host-arena buffer
 * (sink_alloc), and the completion with its meta JSON.
 */
#include "chan_internal.h"
#include "s3.h"
#include "aio.h"

/* Write-back and prefetch (aio.c) sit between the channel and S3 when they
 * are linked in (nexusd); the unit tests link the channel without them. */
#pragma weak nx_aio_submit

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/tlv.h"

static uint8_t empty_sink[1];  /* sink for zero-length GET bodies */

void chan_op_unlink(struct nx_chan *c, struct op *o)
{
	c->put_bytes -= o->put_len;
	o->put_len = 0;
	if (o->prev)
		o->prev->next = o->next;
	else
		c->ops_list = o->next;
	if (o->next)
		o->next->prev = o->prev;
	c->n_ops--;
}

void chan_op_free(struct op *o)
{
	free(o->put_body);
	free(o);
}

static void *sink_alloc(void *arg, size_t len)
{
	struct op *o = arg;
	struct nx_chan *c = o->c;
	if (o->sink_live) {   /* a retry: start over with a fresh buffer */
		chan_host_free(c, o->sink_off);
		o->sink_live = false;
	}
	if (len == 0)
		return empty_sink;
	if (len > nx_arena_size(c->host_arena)) {
		o->too_large = true;
		return NULL;
	}
	uint64_t off;
	if (chan_host_alloc(c, len, &off) < 0)
		return NULL;
	o->sink_off = off;
	o->sink_live = true;
	return c->base + off;
}

static json_t *success_meta(const struct op *o, const struct nx_s3_result *res)
{
	switch (o->opcode) {
	case NX_OP_S3_GET:
	case NX_OP_S3_HEAD: {
		json_t *m = json_pack("{s:I, s:s, s:s, s:s}", "ContentLength", (json_int_t)res->content_length,
		                      "ETag", res->etag, "ContentType", res->content_type,
		                      "LastModified", res->last_modified);
		if (m && res->content_range[0])
			json_object_set_new(m, "ContentRange", json_string(res->content_range));
		return m;
	}
	case NX_OP_S3_PUT:
		return json_pack("{s:s}", "ETag", res->etag);
	case NX_OP_S3_COPY:
		return json_pack("{s:s, s:s}", "ETag", res->etag, "LastModified", res->last_modified);
	case NX_OP_S3_LIST:
		return res->list ? json_incref(res->list) : json_object();
	default:
		return json_object();
	}
}

static void on_s3_done(void *arg, struct nx_s3_result *res)
{
	struct op *o = arg;
	struct nx_chan *c = o->c;
	/* Unlinked first: a destroy triggered while completing must not cancel
	 * this transfer, which the client has already finished. */
	chan_op_unlink(c, o);
	chan_enter(c);
	struct nx_buf body = { 0, 0 };
	uint32_t status = (uint32_t)res->status;
	if (o->too_large && status != NX_S_OK)
		status = NX_S_TOO_LARGE;
	if (status == NX_S_OK && o->opcode == NX_OP_S3_GET && o->sink_live && res->body_len) {
		body = (struct nx_buf){ o->sink_off, res->body_len };
		o->sink_live = false;   /* handed to the guest with the completion */
	}
	if (o->sink_live) {
		chan_host_free(c, o->sink_off);
		o->sink_live = false;
	}
	json_t *meta;
	if (status == NX_S_OK) {
		meta = success_meta(o, res);
		if (!meta)   /* a field that is not UTF-8: still answer, with what we have */
			meta = json_pack("{s:I}", "ContentLength", (json_int_t)res->content_length);
	} else {
		const char *code = res->code[0] ? res->code
		                   : status == NX_S_TOO_LARGE ? "EntityTooLarge"
		                   : status == NX_S_NO_SPACE ? "NoSpace" : "InternalError";
		meta = chan_error_meta(code, res->message, res->http_code);
	}
	chan_complete_meta(c, o->opcode, o->tag, status, meta, body);
	if (o->submitting)
		o->finished = true;   /* nx_s3_submit is still on the stack: it frees */
	else
		chan_op_free(o);
	chan_leave(c);
}

/* Copy a TLV string argument; returns false when absent or too long. */
static bool arg(const struct nx_args *a, unsigned t, char *dst, size_t cap)
{
	return nx_args_str(a, t, dst, cap) >= 0;
}

static bool bucket_allowed(const struct nx_chan *c, const char *b)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		if (strcmp(c->buckets[i], b) == 0)
			return true;
	return false;
}

/* Strings of one request, private (copied from the TLV view). */
struct req_strs {
	char bucket[BUCKET_MAX], src_bucket[BUCKET_MAX];
	char key[NX_FIELD_MAX + 1], src_key[NX_FIELD_MAX + 1];
	char range[128], if_match[256], content_type[256];
	char prefix[NX_FIELD_MAX + 1], delimiter[64], cont_token[NX_FIELD_MAX + 1], start_after[NX_FIELD_MAX + 1];
	char max_keys[16];
};

void chan_handle_s3(struct nx_chan *c, const struct nx_desc *d)
{
	/* TLV arguments: copied out of the region once, then parsed strictly. */
	uint8_t raw[NX_ARGS_MAX];
	memcpy(raw, c->base + d->buf[0].off, d->buf[0].len);
	struct nx_args a;
	if (nx_tlv_parse(raw, d->buf[0].len, &a) < 0) {
		chan_reject(c, d, NX_S_INVALID, "malformed request arguments");
		return;
	}
	struct req_strs *s = malloc(sizeof(*s));   /* fields are read only once set */
	if (!s) {
		chan_complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
		return;
	}
	struct nx_s3_req req = { 0 };
	bool ok = arg(&a, NX_ARG_BUCKET, s->bucket, sizeof(s->bucket)) && s->bucket[0];
	req.bucket = s->bucket;
	switch (d->opcode) {
	case NX_OP_S3_GET:
		req.op = NX_S3_GET;
		if (a.val[NX_ARG_RANGE]) {
			ok = ok && arg(&a, NX_ARG_RANGE, s->range, sizeof(s->range));
			req.range = s->range;
		}
		if (a.val[NX_ARG_IF_MATCH]) {
			ok = ok && arg(&a, NX_ARG_IF_MATCH, s->if_match, sizeof(s->if_match));
			req.if_match = s->if_match;
		}
		break;
	case NX_OP_S3_PUT:
		req.op = NX_S3_PUT;
		if (a.val[NX_ARG_CONTENT_TYPE]) {
			ok = ok && arg(&a, NX_ARG_CONTENT_TYPE, s->content_type, sizeof(s->content_type));
			req.content_type = s->content_type;
		}
		break;
	case NX_OP_S3_HEAD: req.op = NX_S3_HEAD; break;
	case NX_OP_S3_DELETE: req.op = NX_S3_DELETE; break;
	case NX_OP_S3_LIST:
		req.op = NX_S3_LIST;
#define OPT(tag, field) \
		if (a.val[tag]) { ok = ok && arg(&a, tag, s->field, sizeof(s->field)); req.field = s->field; }
		OPT(NX_ARG_PREFIX, prefix)
		OPT(NX_ARG_DELIMITER, delimiter)
		OPT(NX_ARG_CONT_TOKEN, cont_token)
		OPT(NX_ARG_START_AFTER, start_after)
#undef OPT
		if (a.val[NX_ARG_MAX_KEYS]) {
			char *end;
			ok = ok && arg(&a, NX_ARG_MAX_KEYS, s->max_keys, sizeof(s->max_keys));
			long v = strtol(s->max_keys, &end, 10);
			ok = ok && s->max_keys[0] && !*end && v >= 0 && v <= 1000;
			req.max_keys = (int)v;
		}
		break;
	case NX_OP_S3_COPY:
		req.op = NX_S3_COPY;
		ok = ok && arg(&a, NX_ARG_SRC_BUCKET, s->src_bucket, sizeof(s->src_bucket)) && s->src_bucket[0];
		ok = ok && arg(&a, NX_ARG_SRC_KEY, s->src_key, sizeof(s->src_key)) && s->src_key[0];
		req.src_bucket = s->src_bucket;
		req.src_key = s->src_key;
		break;
	}
	if (d->opcode != NX_OP_S3_LIST) {
		ok = ok && arg(&a, NX_ARG_KEY, s->key, sizeof(s->key)) && s->key[0];
		req.key = s->key;
	}
	if (!ok) {
		free(s);
		chan_reject(c, d, NX_S_INVALID, "missing or malformed request argument");
		return;
	}
	c->invalid_streak = 0;   /* a well-formed request */
	if (!bucket_allowed(c, s->bucket) || (req.op == NX_S3_COPY && !bucket_allowed(c, s->src_bucket))) {
		char msg[BUCKET_MAX + 64];
		snprintf(msg, sizeof(msg), "Access Denied: bucket '%s' is not allowed for this function",
		         bucket_allowed(c, s->bucket) ? s->src_bucket : s->bucket);
		chan_ascii_clean(msg);
		free(s);
		chan_complete_meta(c, d->opcode, d->tag, NX_S_ACCESS_DENIED, chan_error_meta("AccessDenied", msg, 403),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	struct op *o = calloc(1, sizeof(*o));
	if (!o) {
		free(s);
		chan_complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
		return;
	}
	o->c = c;
	o->opcode = d->opcode;
	o->tag = d->tag;
	if (req.op == NX_S3_PUT && d->buf[1].len > 2 * c->lay.guest_size - c->put_bytes) {
		/* Honest PUT bodies live in distinct guest-arena buffers, so their sum
		 * stays below the arena size; a guest naming its whole arena in 256
		 * PUTs at once must not make nexusd copy gigabytes. */
		free(s);
		free(o);
		chan_complete_meta(c, d->opcode, d->tag, NX_S_NO_SPACE,
		              chan_error_meta("SlowDown", "too many PUT bytes in flight for this instance", 503),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	if (req.op == NX_S3_PUT && d->buf[1].len) {
		/* The guest could rewrite its PUT bytes while libcurl is still sending
		 * them (or between a first attempt and a retry, so the signature's
		 * payload hash would no longer match): copy them out once, here,
		 * and upload only the private copy. */
		o->put_body = malloc(d->buf[1].len);
		if (!o->put_body) {
			free(s);
			free(o);
			chan_complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
			return;
		}
		memcpy(o->put_body, c->base + d->buf[1].off, d->buf[1].len);
		o->put_len = d->buf[1].len;
		c->put_bytes += o->put_len;
		req.body = o->put_body;
		req.body_len = d->buf[1].len;
	}
	if (req.op == NX_S3_GET) {
		req.sink_alloc = sink_alloc;
		req.sink_arg = o;
	}
	o->next = c->ops_list;
	if (c->ops_list)
		c->ops_list->prev = o;
	c->ops_list = o;
	c->n_ops++;
	o->submitting = true;
	struct nx_s3_xfer *x = nx_aio_submit ? nx_aio_submit(c, c->s3, &req, on_s3_done, o)
	                                     : nx_s3_submit(c->s3, &req, on_s3_done, o);
	o->submitting = false;
	free(s);
	if (o->finished) {            /* completed synchronously */
		chan_op_free(o);
		return;
	}
	if (!x) {
		chan_op_unlink(c, o);
		if (o->sink_live)
			chan_host_free(c, o->sink_off);
		chan_op_free(o);
		chan_complete_meta(c, d->opcode, d->tag, NX_S_IO_ERROR,
		              chan_error_meta("InternalError", "storage request could not be started", 500),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	o->x = x;
}

