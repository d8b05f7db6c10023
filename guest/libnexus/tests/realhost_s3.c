/* SPDX-License-Identifier: MIT */
/*
 * An in-memory stand-in for nexusd's S3 client (nexusd/s3.h: nx_s3_submit,
 * nx_s3_cancel) for realhost.c.  Requests complete asynchronously, on the
 * next loop iteration (nx_loop_post), like real transfers; GET bodies go
 * through the caller's sink_alloc into the region, as libcurl's would.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../nexusd/loop.h"
#include "../../../nexusd/s3.h"
#include <nexus/channel.h>

struct object {
	char *bucket, *key, *ctype;
	uint8_t *data;
	size_t len;
	unsigned gen;
	struct object *next;
};

struct nx_s3 {
	struct nx_loop *loop;
	struct object *objs;
	unsigned gen;
};

struct nx_s3_xfer {
	struct nx_s3 *s3;
	struct nx_s3_req req;
	char *bucket, *key, *range, *ctype, *src_bucket, *src_key, *prefix, *delimiter, *start;
	void *body;
	nx_s3_cb cb;
	void *arg;
	int cancelled;
};

struct nx_s3 *realhost_s3_new(struct nx_loop *loop)
{
	struct nx_s3 *s = calloc(1, sizeof *s);
	s->loop = loop;
	return s;
}

void realhost_s3_destroy(struct nx_s3 *s)
{
	while (s->objs) {
		struct object *o = s->objs;
		s->objs = o->next;
		free(o->bucket), free(o->key), free(o->ctype), free(o->data), free(o);
	}
	free(s);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static struct object *find(struct nx_s3 *s, const char *b, const char *k)
{
	for (struct object *o = s->objs; o; o = o->next)
		if (!strcmp(o->bucket, b) && !strcmp(o->key, k))
			return o;
	return NULL;
}

static void put(struct nx_s3 *s, const char *b, const char *k, const void *data, size_t len, const char *ct)
{
	struct object *o = find(s, b, k);
	if (!o) {
		o = calloc(1, sizeof *o);
		o->bucket = strdup(b);
		o->key = strdup(k);
		o->next = s->objs;
		s->objs = o;
	}
	free(o->data);
	free(o->ctype);
	o->data = malloc(len ? len : 1);
	memcpy(o->data, data, len);
	o->len = len;
	o->ctype = strdup(ct && *ct ? ct : "binary/octet-stream");
	o->gen = ++s->gen;
}

static void fill(struct nx_s3_result *r, const struct object *o)
{
	snprintf(r->etag, sizeof r->etag, "\"%08x\"", o->gen);
	snprintf(r->content_type, sizeof r->content_type, "%s", o->ctype);
	snprintf(r->last_modified, sizeof r->last_modified, "2026-01-01T00:00:00.000Z");
	r->content_length = o->len;
}

static void no_such_key(struct nx_s3_result *r)
{
	r->status = NX_S_STORAGE_ERROR;
	r->http_code = 404;
	snprintf(r->code, sizeof r->code, "NoSuchKey");
	snprintf(r->message, sizeof r->message, "The specified key does not exist.");
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp((*(struct object *const *)a)->key, (*(struct object *const *)b)->key);
}

static json_t *list(struct nx_s3 *s, const struct nx_s3_xfer *x)
{
	size_t n = 0;
	for (struct object *o = s->objs; o; o = o->next)
		n++;
	struct object **v = calloc(n + 1, sizeof *v);
	n = 0;
	for (struct object *o = s->objs; o; o = o->next)
		if (!strcmp(o->bucket, x->bucket))
			v[n++] = o;
	qsort(v, n, sizeof *v, cmp_obj);
	const char *prefix = x->prefix ? x->prefix : "", *after = x->start ? x->start : "";
	int max = x->req.max_keys > 0 ? x->req.max_keys : 1000, count = 0;
	json_t *contents = json_array(), *prefixes = json_array();
	const char *last = NULL;
	bool truncated = false;
	for (size_t i = 0; i < n; i++) {
		const char *k = v[i]->key;
		if (strncmp(k, prefix, strlen(prefix)) || strcmp(k, after) <= 0)
			continue;
		if (count == max) {
			truncated = true;
			break;
		}
		const char *rest = k + strlen(prefix), *d = x->delimiter ? strstr(rest, x->delimiter) : NULL;
		if (d) {
			char cp[1024];
			snprintf(cp, sizeof cp, "%.*s%s", (int)(d - k), k, x->delimiter);
			size_t np = json_array_size(prefixes);
			if (np && !strcmp(json_string_value(json_object_get(json_array_get(prefixes, np - 1), "Prefix")), cp))
				continue;
			json_array_append_new(prefixes, json_pack("{s:s}", "Prefix", cp));
		} else {
			char etag[32];
			snprintf(etag, sizeof etag, "\"%08x\"", v[i]->gen);
			json_array_append_new(contents, json_pack("{s:s, s:I, s:s, s:s}", "Key", k, "Size",
			                                          (json_int_t)v[i]->len, "ETag", etag, "LastModified",
			                                          "2026-01-01T00:00:00.000Z"));
		}
		last = k;
		count++;
	}
	json_t *r = json_pack("{s:o, s:o, s:b, s:i}", "Contents", contents, "CommonPrefixes", prefixes,
	                      "IsTruncated", truncated, "KeyCount", count);
	if (truncated && last)
		json_object_set_new(r, "NextContinuationToken", json_string(last));
	free(v);
	return r;
}

static void run(void *arg)
{
	struct nx_s3_xfer *x = arg;
	struct nx_s3 *s = x->s3;
	struct nx_s3_result r = { .status = NX_S_OK, .http_code = 200 };
	if (x->cancelled)
		goto out;
	struct object *o = NULL;
	switch (x->req.op) {
	case NX_S3_PUT:
		put(s, x->bucket, x->key, x->req.body, x->req.body_len, x->ctype);
		fill(&r, find(s, x->bucket, x->key));
		break;
	case NX_S3_GET:
	case NX_S3_HEAD:
		if (!(o = find(s, x->bucket, x->key))) {
			no_such_key(&r);
			break;
		}
		fill(&r, o);
		if (x->req.op == NX_S3_GET && o->len) {
			size_t first = 0, len = o->len;
			unsigned long a, b;
			if (x->range && sscanf(x->range, "bytes=%lu-%lu", &a, &b) == 2 && a <= b && a < o->len) {
				first = a;
				len = (b < o->len ? b : o->len - 1) - a + 1;
				snprintf(r.content_range, sizeof r.content_range, "bytes %lu-%lu/%zu", a, a + len - 1, o->len);
				r.content_length = len;
			}
			void *dst = x->req.sink_alloc(x->req.sink_arg, len);
			if (!dst) {
				r.status = NX_S_NO_SPACE;
				break;
			}
			memcpy(dst, o->data + first, len);
			r.body_len = len;
		}
		break;
	case NX_S3_DELETE:
		if ((o = find(s, x->bucket, x->key))) {
			for (struct object **p = &s->objs; *p; p = &(*p)->next) {
				if (*p == o) {
					*p = o->next;
					break;
				}
			}
			free(o->bucket), free(o->key), free(o->ctype), free(o->data), free(o);
		}
		r.http_code = 204;
		break;
	case NX_S3_COPY:
		if (!(o = find(s, x->src_bucket, x->src_key))) {
			no_such_key(&r);
			break;
		}
		put(s, x->bucket, x->key, o->data, o->len, o->ctype);
		fill(&r, find(s, x->bucket, x->key));
		break;
	case NX_S3_LIST:
		r.list = list(s, x);
		break;
	default:
		r.status = NX_S_UNSUPPORTED;
	}
	x->cb(x->arg, &r);
	json_decref(r.list);
out:
	free(x->bucket), free(x->key), free(x->range), free(x->ctype), free(x->src_bucket), free(x->src_key);
	free(x->prefix), free(x->delimiter), free(x->start);
	free(x);
}

struct nx_s3_xfer *nx_s3_submit(struct nx_s3 *s, const struct nx_s3_req *req, nx_s3_cb cb, void *arg)
{
	struct nx_s3_xfer *x = calloc(1, sizeof *x);
	x->s3 = s;
	x->req = *req;
	x->cb = cb;
	x->arg = arg;
	x->bucket = dup_or_null(req->bucket);
	x->key = dup_or_null(req->key);
	x->range = dup_or_null(req->range);
	x->ctype = dup_or_null(req->content_type);
	x->src_bucket = dup_or_null(req->src_bucket);
	x->src_key = dup_or_null(req->src_key);
	x->prefix = dup_or_null(req->prefix);
	x->delimiter = dup_or_null(req->delimiter);
	x->start = dup_or_null(req->cont_token ? req->cont_token : req->start_after);
	if (nx_loop_post(s->loop, run, x) < 0) {
		free(x);
		return NULL;
	}
	return x;
}

void nx_s3_cancel(struct nx_s3 *s, struct nx_s3_xfer *x)
{
	(void)s;
	x->cancelled = 1;   /* run() frees it without calling back */
}
