/* SPDX-License-Identifier: MIT */
/*
 * libcurl callbacks of one S3 transfer (s3_internal.h): response status and
 * headers, GET bodies straight into the caller's sink (sized from
 * Content-Length, allocated before the first byte, never overrun), other
 * response bodies into a bounded buffer, PUT bodies read from the caller's
 * private copy.
 */
#include "s3_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <nexus/channel.h>

void s3_fail_in_cb(struct nx_s3_xfer *x, int status, const char *code, const char *msg)
{
	if (x->fail_status)
		return;
	x->fail_status = status;
	snprintf(x->fail_code, sizeof(x->fail_code), "%s", code);
	snprintf(x->fail_msg, sizeof(x->fail_msg), "%s", msg);
}

static void hdr_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool hdr_is(const char *buf, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(buf, name, n) != 0 || buf[n] != ':')
		return false;
	*val = buf + n + 1;
	*vlen = len - n - 1;
	return true;
}

size_t s3_on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t len = size * nitems;
	const char *v;
	size_t vl;
	char tmp[64];
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (maybe after 100 Continue): forget the last one. */
		const char *sp = memchr(buf, ' ', len);
		x->hcode = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->have_clen = false;
		x->clen = 0;
		x->etag[0] = x->ctype[0] = x->lastmod[0] = x->crange[0] = '\0';
		return len;
	}
	if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
		/* End of headers: a successful GET learns where its body goes now. */
		if (x->op == NX_S3_GET && x->hcode >= 200 && x->hcode < 300 && !x->sink_ready) {
			if (!x->have_clen) {
				s3_fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "GET response without Content-Length");
				return 0;
			}
			if (x->clen > SIZE_MAX / 2) {
				s3_fail_in_cb(x, NX_S_TOO_LARGE, "EntityTooLarge", "object too large");
				return 0;
			}
			x->sink = x->sink_alloc ? x->sink_alloc(x->sink_arg, (size_t)x->clen) : NULL;
			if (!x->sink) {
				s3_fail_in_cb(x, NX_S_NO_SPACE, "NoSpace", "no room for the object in the instance's region");
				return 0;
			}
			x->sink_len = (size_t)x->clen;
			x->got = 0;
			x->sink_ready = true;
		}
		return len;
	}
	if (hdr_is(buf, len, "Content-Length", &v, &vl)) {
		hdr_value(tmp, sizeof(tmp), v, vl);
		char *end;
		errno = 0;
		unsigned long long n = strtoull(tmp, &end, 10);
		if (tmp[0] && !*end && errno == 0) {
			x->have_clen = true;
			x->clen = n;
		}
	} else if (hdr_is(buf, len, "ETag", &v, &vl)) {
		hdr_value(x->etag, sizeof(x->etag), v, vl);
	} else if (hdr_is(buf, len, "Content-Type", &v, &vl)) {
		hdr_value(x->ctype, sizeof(x->ctype), v, vl);
	} else if (hdr_is(buf, len, "Last-Modified", &v, &vl)) {
		hdr_value(x->lastmod, sizeof(x->lastmod), v, vl);
	} else if (hdr_is(buf, len, "Content-Range", &v, &vl)) {
		hdr_value(x->crange, sizeof(x->crange), v, vl);
	}
	return len;
}

size_t s3_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t len = size * nmemb;
	if (x->op == NX_S3_GET && x->hcode >= 200 && x->hcode < 300) {
		if (!x->sink_ready || len > x->sink_len - x->got) {
			s3_fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "response body larger than its Content-Length");
			return 0;
		}
		memcpy(x->sink + x->got, p, len);
		x->got += len;
		return len;
	}
	if (len > RESP_MAX - x->resp_len) {
		s3_fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "response too large");
		return 0;
	}
	if (x->resp_len + len + 1 > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 4096;
		while (cap < x->resp_len + len + 1)
			cap *= 2;
		char *n = realloc(x->resp, cap);
		if (!n)
			return 0;
		x->resp = n;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, p, len);
	x->resp_len += len;
	x->resp[x->resp_len] = '\0';
	return len;
}

size_t s3_on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t want = size * nitems, left = x->body_len - x->body_pos;
	if (want > left)
		want = left;
	if (want)
		memcpy(buf, x->body + x->body_pos, want);
	x->body_pos += want;
	return want;
}

int s3_on_seek(void *ud, curl_off_t off, int origin)
{
	struct nx_s3_xfer *x = ud;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

