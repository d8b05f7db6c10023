/* SPDX-License-Identifier: MIT */
#include "fake_s3.h"

#include <stdlib.h>
#include <string.h>
#include <nexus/channel.h>

bool fake_s3_sync;
int  fake_s3_status;
const void *fake_s3_get_body;
size_t fake_s3_get_len;
bool fake_s3_fail_submit;
int  fake_s3_ncalls;
struct fake_call fake_s3_calls[FAKE_S3_MAX];

struct nx_s3_xfer { int idx; };
static struct nx_s3_xfer handles[FAKE_S3_MAX];

void fake_s3_reset(void)
{
	for (int i = 0; i < fake_s3_ncalls; i++) {
		free(fake_s3_calls[i].body_copy);
		memset(&fake_s3_calls[i], 0, sizeof(fake_s3_calls[i]));
	}
	fake_s3_ncalls = 0;
	fake_s3_sync = false;
	fake_s3_status = NX_S_OK;
	fake_s3_get_body = NULL;
	fake_s3_get_len = 0;
	fake_s3_fail_submit = false;
}

static void cpy(char *dst, size_t cap, const char *s)
{
	if (s) {
		strncpy(dst, s, cap - 1);
		dst[cap - 1] = 0;
	}
}

void fake_s3_complete(int i, int status)
{
	struct fake_call *f = &fake_s3_calls[i];
	if (f->done || f->cancelled)
		abort();   /* the channel must never complete twice or after cancel */
	f->done = true;
	struct nx_s3_result res = { .status = status, .http_code = status == NX_S_OK ? 200 : 404 };
	if (status != NX_S_OK) {
		strcpy(res.code, "NoSuchKey");
		strcpy(res.message, "The specified key does not exist.");
	}
	strcpy(res.etag, "\"etag\"");
	strcpy(res.content_type, "application/octet-stream");
	strcpy(res.last_modified, "2026-01-01T00:00:00.000Z");
	if (f->op == NX_S3_GET && status == NX_S_OK && f->req.sink_alloc) {
		void *dst = f->req.sink_alloc(f->req.sink_arg, fake_s3_get_len);
		if (!dst) {
			res.status = NX_S_NO_SPACE;
		} else {
			if (fake_s3_get_len)
				memcpy(dst, fake_s3_get_body, fake_s3_get_len);
			res.body_len = fake_s3_get_len;
			res.content_length = fake_s3_get_len;
		}
	}
	if (f->op == NX_S3_LIST)
		res.list = json_pack("{s:[], s:[], s:b, s:i}", "Contents", "CommonPrefixes", "IsTruncated", 0, "KeyCount", 0);
	f->cb(f->arg, &res);
	json_decref(res.list);
}

struct nx_s3_xfer *nx_s3_submit(struct nx_s3 *s, const struct nx_s3_req *req, nx_s3_cb cb, void *arg)
{
	(void)s;
	if (fake_s3_fail_submit || fake_s3_ncalls >= FAKE_S3_MAX)
		return NULL;
	int i = fake_s3_ncalls++;
	struct fake_call *f = &fake_s3_calls[i];
	memset(f, 0, sizeof(*f));
	f->op = req->op;
	cpy(f->bucket, sizeof(f->bucket), req->bucket);
	cpy(f->key, sizeof(f->key), req->key);
	cpy(f->src_bucket, sizeof(f->src_bucket), req->src_bucket);
	cpy(f->range, sizeof(f->range), req->range);
	f->body_ptr = req->body;
	f->body_len = req->body_len;
	if (req->body_len) {
		f->body_copy = malloc(req->body_len);
		memcpy(f->body_copy, req->body, req->body_len);
	}
	f->req = *req;
	f->cb = cb;
	f->arg = arg;
	handles[i].idx = i;
	if (fake_s3_sync) {
		fake_s3_complete(i, fake_s3_status);
		/* A real client would return a handle that is dead after the callback;
		 * the channel must not use it. */
	}
	return &handles[i];
}

void nx_s3_cancel(struct nx_s3 *s, struct nx_s3_xfer *x)
{
	(void)s;
	struct fake_call *f = &fake_s3_calls[x->idx];
	if (f->done || f->cancelled)
		abort();   /* cancelling a finished request is a use-after-free in real life */
	f->cancelled = true;
}
