/* SPDX-License-Identifier: MIT */
/*
 * S3 operations for C functions: each one encodes its TLV arguments and makes
 * one nx_call.  Bodies travel in the region: GET bodies are read in place,
 * PUT bodies are copied into the guest arena once (or not at all with
 * nx_s3_put_buf).
 */
#include "libnexus.h"
#include "request_buf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../../common/tlv.h"

struct args {
	uint8_t buf[NX_ARGS_MAX];
	size_t pos;
	int err;
};

static void put(struct args *a, unsigned tag, const char *s)
{
	if (!s || a->err)
		return;
	if (nx_tlv_put(a->buf, sizeof a->buf, &a->pos, tag, s, strlen(s)) < 0)
		a->err = -E2BIG;
}

static int need(const char *s)
{
	return s && *s ? 0 : -EINVAL;
}

static int call(struct nx_guest *g, uint16_t op, struct args *a, uint64_t boff, uint64_t blen,
                struct nx_reply *out)
{
	if (a->err)
		return a->err;
	return nx_call(g, op, a->buf, a->pos, boff, blen, out);
}

/* Starts the arguments of a request on one object: bucket and key, both required. */
static int object_args(struct args *a, const char *bucket, const char *key)
{
	if (need(bucket) || need(key))
		return -EINVAL;
	*a = (struct args){ .pos = 0 };
	put(a, NX_ARG_BUCKET, bucket);
	put(a, NX_ARG_KEY, key);
	return 0;
}

/* A request on one object that takes nothing but its bucket and key. */
static int object_call(struct nx_guest *g, uint16_t op, const char *bucket, const char *key, struct nx_reply *out)
{
	struct args a;
	if (object_args(&a, bucket, key) < 0)
		return -EINVAL;
	return call(g, op, &a, 0, 0, out);
}

int nx_s3_get(struct nx_guest *g, const char *bucket, const char *key, const char *range,
              const char *if_match, struct nx_reply *out)
{
	struct args a;
	if (object_args(&a, bucket, key) < 0)
		return -EINVAL;
	put(&a, NX_ARG_RANGE, range);
	put(&a, NX_ARG_IF_MATCH, if_match);
	return call(g, NX_OP_S3_GET, &a, 0, 0, out);
}

int nx_s3_put_buf(struct nx_guest *g, const char *bucket, const char *key, uint64_t body_off,
                  uint64_t body_len, const char *content_type, struct nx_reply *out)
{
	struct args a;
	if (object_args(&a, bucket, key) < 0)
		return -EINVAL;
	put(&a, NX_ARG_CONTENT_TYPE, content_type);
	return call(g, NX_OP_S3_PUT, &a, body_off, body_len, out);
}

int nx_s3_put(struct nx_guest *g, const char *bucket, const char *key, const void *data, size_t len,
              const char *content_type, struct nx_reply *out)
{
	uint64_t off;
	int r = request_buf_copy(g, data, len, &off);
	if (r < 0)
		return r;
	r = nx_s3_put_buf(g, bucket, key, off, len, content_type, out);
	request_buf_done(g, off, r);
	return r;
}

int nx_s3_head(struct nx_guest *g, const char *bucket, const char *key, struct nx_reply *out)
{
	return object_call(g, NX_OP_S3_HEAD, bucket, key, out);
}

int nx_s3_delete(struct nx_guest *g, const char *bucket, const char *key, struct nx_reply *out)
{
	return object_call(g, NX_OP_S3_DELETE, bucket, key, out);
}

int nx_s3_list(struct nx_guest *g, const char *bucket, const struct nx_list_args *la, struct nx_reply *out)
{
	if (need(bucket))
		return -EINVAL;
	struct args a = { .pos = 0 };
	put(&a, NX_ARG_BUCKET, bucket);
	if (la) {
		put(&a, NX_ARG_PREFIX, la->prefix);
		put(&a, NX_ARG_DELIMITER, la->delimiter);
		put(&a, NX_ARG_CONT_TOKEN, la->cont_token);
		put(&a, NX_ARG_START_AFTER, la->start_after);
		if (la->max_keys > 0) {
			char n[16];
			snprintf(n, sizeof n, "%d", la->max_keys);
			put(&a, NX_ARG_MAX_KEYS, n);
		}
	}
	return call(g, NX_OP_S3_LIST, &a, 0, 0, out);
}

int nx_s3_copy(struct nx_guest *g, const char *src_bucket, const char *src_key, const char *bucket,
               const char *key, struct nx_reply *out)
{
	if (need(src_bucket) || need(src_key) || need(bucket) || need(key))
		return -EINVAL;
	struct args a = { .pos = 0 };
	put(&a, NX_ARG_SRC_BUCKET, src_bucket);
	put(&a, NX_ARG_SRC_KEY, src_key);
	put(&a, NX_ARG_BUCKET, bucket);
	put(&a, NX_ARG_KEY, key);
	return call(g, NX_OP_S3_COPY, &a, 0, 0, out);
}

const char *nx_status_name(uint32_t status)
{
	static const char *const names[] = {
		[NX_S_OK] = "OK",
		[NX_S_HANDLER_ERROR] = "HANDLER_ERROR",
		[NX_S_STORAGE_ERROR] = "STORAGE_ERROR",
		[NX_S_ACCESS_DENIED] = "ACCESS_DENIED",
		[NX_S_INVALID] = "INVALID",
		[NX_S_NO_SPACE] = "NO_SPACE",
		[NX_S_UNSUPPORTED] = "UNSUPPORTED",
		[NX_S_IO_ERROR] = "IO_ERROR",
		[NX_S_TOO_LARGE] = "TOO_LARGE",
	};
	return status < sizeof names / sizeof names[0] && names[status] ? names[status] : "UNKNOWN";
}

/* ------------------------------------------------------ meta lookup */

/* A deliberately small scanner for the flat metadata objects the host
 * sends: finds "name": at nesting depth 1 and copies a string (with the
 * simple escapes decoded; \u sequences are kept verbatim) or a bare token. */
int nx_meta_field(const char *json, size_t len, const char *name, char *dst, size_t cap)
{
	size_t nlen = strlen(name);
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		char c = json[i];
		if (c == '{' || c == '[') {
			depth++;
			continue;
		}
		if (c == '}' || c == ']') {
			depth--;
			continue;
		}
		if (c != '"')
			continue;
		/* A string: find its end. */
		size_t s = i + 1, e = s;
		while (e < len && json[e] != '"')
			e += json[e] == '\\' ? 2 : 1;
		if (e >= len)
			return -ENOENT;
		i = e;
		size_t k = e + 1;
		while (k < len && (json[k] == ' ' || json[k] == '\t' || json[k] == '\n' || json[k] == '\r'))
			k++;
		bool is_key = k < len && json[k] == ':';
		if (!is_key || depth != 1 || e - s != nlen || memcmp(json + s, name, nlen))
			continue;
		k++;
		while (k < len && (json[k] == ' ' || json[k] == '\t' || json[k] == '\n' || json[k] == '\r'))
			k++;
		size_t o = 0;
		if (k < len && json[k] == '"') {
			for (k++; k < len && json[k] != '"'; k++) {
				char ch = json[k];
				if (ch == '\\' && k + 1 < len) {
					ch = json[++k];
					if (ch == 'n')
						ch = '\n';
					else if (ch == 't')
						ch = '\t';
					else if (ch == 'r')
						ch = '\r';
					else if (ch == 'u') {
						if (o + 2 >= cap)
							return -E2BIG;
						dst[o++] = '\\';
					}
				}
				if (o + 1 >= cap)
					return -E2BIG;
				dst[o++] = ch;
			}
		} else {
			for (; k < len && json[k] != ',' && json[k] != '}' && json[k] != ' '; k++) {
				if (o + 1 >= cap)
					return -E2BIG;
				dst[o++] = json[k];
			}
		}
		if (cap == 0)
			return -E2BIG;
		dst[o] = '\0';
		return (int)o;
	}
	return -ENOENT;
}
