/* SPDX-License-Identifier: MIT */
/*
 * nexus-s3peer's S3 REST API: path-style requests only (http://host/bucket/key,
 * which is what boto3 uses for an IP endpoint and what nexusd sends).
 *
 *   GET /                              ListBuckets
 *   PUT|DELETE|HEAD /b                 CreateBucket, DeleteBucket, HeadBucket
 *   GET /b?list-type=2 | GET /b        ListObjectsV2 | ListObjects (prefix,
 *                                      delimiter, max-keys, continuation/marker,
 *                                      encoding-type=url)
 *   PUT /b/k                           PutObject (Content-MD5, x-amz-content-sha256
 *                                      and aws-chunked bodies checked)
 *   PUT /b/k + x-amz-copy-source       CopyObject
 *   GET|HEAD /b/k (Range)              GetObject, HeadObject
 *   DELETE /b/k                        DeleteObject
 *
 * Every request must carry a valid SigV4 header signature (sigv4.c).  Errors
 * are S3's XML <Error> documents with S3's status codes.
 */
#include "s3api.h"
#include "sigv4.h"
#include "store.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

static const struct s3api_config *cfg;
static unsigned long long req_counter;

#define MAX_HDRS 64
#define XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct req {
	char *uri;               /* the request target as received */
	char *raw_path;          /* up to '?' */
	char *raw_query;         /* after '?' or NULL */
	char *bucket, *key;      /* decoded; NULL when absent */
	char rid[17];
	int started;
	struct hdr h[MAX_HDRS];
	size_t nh;
	struct sigv4_ctx sig;
	uint8_t *body;
	size_t len, cap;
	int refused;             /* a response went out before the body */
};

/* ------------------------------------------------------------ helpers */

static void xml_esc(struct sb *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': sb_str(b, "&amp;"); break;
		case '<': sb_str(b, "&lt;"); break;
		case '>': sb_str(b, "&gt;"); break;
		case '"': sb_str(b, "&quot;"); break;
		case '\'': sb_str(b, "&apos;"); break;
		default: sb_add(b, s, 1);
		}
	}
}

/* A key or prefix in a listing: URL-encoded when the client asked for it. */
static void xml_key(struct sb *b, const char *s, int url)
{
	if (!url) {
		xml_esc(b, s);
		return;
	}
	char *e = aws_encode(s, true);
	if (!e) {
		b->oom = true;
		return;
	}
	xml_esc(b, e);
	free(e);
}

static void iso_time(time_t t, char *out, size_t cap)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void http_time(time_t t, char *out, size_t cap)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static enum MHD_Result reply(struct MHD_Connection *c, struct req *r, unsigned status,
                            struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "x-amz-request-id", r->rid);
	MHD_add_response_header(resp, "Server", "nexus-s3peer");
	enum MHD_Result ok = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

static enum MHD_Result send_xml(struct MHD_Connection *c, struct req *r, unsigned status, struct sb *b)
{
	if (b->oom) {
		free(b->p);
		return MHD_NO;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(b->n, b->p, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(b->p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/xml");
	return reply(c, r, status, resp);
}

static enum MHD_Result send_empty(struct MHD_Connection *c, struct req *r, unsigned status)
{
	return reply(c, r, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

static enum MHD_Result send_error(struct MHD_Connection *c, struct req *r, const char *method,
                                  unsigned status, const char *code, const char *msg)
{
	if (cfg->verbose)
		fprintf(stderr, "s3peer: %s %s -> %u %s\n", method, r->uri, status, code);
	if (strcmp(method, "HEAD") == 0)   /* HEAD answers carry no body */
		return send_empty(c, r, status);
	struct sb b = {0};
	sb_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
	sb_str(&b, code);
	sb_str(&b, "</Code><Message>");
	xml_esc(&b, msg);
	sb_str(&b, "</Message>");
	if (r->bucket) {
		sb_str(&b, "<BucketName>");
		xml_esc(&b, r->bucket);
		sb_str(&b, "</BucketName>");
	}
	if (r->key) {
		sb_str(&b, "<Key>");
		xml_esc(&b, r->key);
		sb_str(&b, "</Key>");
	}
	sb_str(&b, "<Resource>");
	xml_esc(&b, r->raw_path ? r->raw_path : "/");
	sb_str(&b, "</Resource><RequestId>");
	sb_str(&b, r->rid);
	sb_str(&b, "</RequestId></Error>");
	return send_xml(c, r, status, &b);
}

static enum MHD_Result store_error(struct MHD_Connection *c, struct req *r, const char *method, int st)
{
	switch (st) {
	case ST_NO_BUCKET: return send_error(c, r, method, 404, "NoSuchBucket", "The specified bucket does not exist");
	case ST_NO_KEY: return send_error(c, r, method, 404, "NoSuchKey", "The specified key does not exist.");
	case ST_EXISTS:
		return send_error(c, r, method, 409, "BucketAlreadyOwnedByYou",
		                  "Your previous request to create the named bucket succeeded and you already own it.");
	case ST_NOT_EMPTY:
		return send_error(c, r, method, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
	default: return send_error(c, r, method, 500, "InternalError", "out of memory");
	}
}

/* Decoded value of query parameter name, or NULL (malloc'd). */
static char *qget(const struct req *r, const char *name)
{
	size_t nl = strlen(name);
	for (const char *q = r->raw_query; q && *q;) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len >= nl && strncmp(q, name, nl) == 0 && (len == nl || q[nl] == '='))
			return len == nl ? strdup("") : pct_decode(q + nl + 1, len - nl - 1);
		q = amp ? amp + 1 : q + len;
	}
	return NULL;
}

static int qhas(const struct req *r, const char *name)
{
	char *v = qget(r, name);
	free(v);
	return v != NULL;
}

static int bucket_name_ok(const char *n)
{
	size_t l = strlen(n);
	if (l < 3 || l > 63 || !isalnum((unsigned char)n[0]) || !isalnum((unsigned char)n[l - 1]))
		return 0;
	for (const char *p = n; *p; p++)
		if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
			return 0;
	return 1;
}

/* ------------------------------------------------------------ bodies */

/* The uploaded bytes as the object's content: aws-chunked bodies decoded (and
 * their chunk signatures checked), then x-amz-content-sha256 and Content-MD5
 * checked.  0, or -1 with code, msg and status set. */
static int decode_body(struct req *r, const char **code, const char **msg, unsigned *status)
{
	const char *payload = r->sig.payload;
	*status = 400;
	if (strncmp(payload, "STREAMING-", 10) == 0) {
		int signed_chunks = strncmp(payload, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", 34) == 0;
		if (!signed_chunks && strcmp(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") != 0) {
			*code = "InvalidArgument", *msg = "unsupported x-amz-content-sha256 streaming mode";
			return -1;
		}
		char prev[65];
		memcpy(prev, r->sig.seed_sig, 65);
		size_t in = 0, out = 0;
		for (;;) {
			const uint8_t *nl = memmem(r->body + in, r->len - in, "\r\n", 2);
			if (!nl)
				goto bad_chunk;
			size_t ll = (size_t)(nl - (r->body + in));
			char line[160];
			if (ll >= sizeof line)
				goto bad_chunk;
			memcpy(line, r->body + in, ll);
			line[ll] = '\0';
			in += ll + 2;
			char *end;
			unsigned long long sz = strtoull(line, &end, 16);
			if (end == line || sz > r->len - in)
				goto bad_chunk;
			if (signed_chunks) {
				const char *s = strstr(line, ";chunk-signature=");
				if (!s || strlen(s + 17) != 64)
					goto bad_chunk;
				char want[65];
				sigv4_chunk_sig(&r->sig, prev, r->body + in, sz, want);
				if (strcmp(want, s + 17) != 0) {
					*status = 403, *code = "SignatureDoesNotMatch",
					*msg = "a chunk signature does not match";
					return -1;
				}
				memcpy(prev, want, 65);
			}
			memmove(r->body + out, r->body + in, sz);   /* in place: out <= in */
			out += sz;
			in += sz;
			if (sz == 0)
				break;   /* trailers (checksums) after the last chunk are not checked */
			if (r->len - in < 2 || memcmp(r->body + in, "\r\n", 2) != 0)
				goto bad_chunk;
			in += 2;
		}
		const char *dl = hdr_get(r->h, r->nh, "x-amz-decoded-content-length");
		if (dl && strtoull(dl, NULL, 10) != out) {
			*code = "IncompleteBody", *msg = "the decoded length differs from x-amz-decoded-content-length";
			return -1;
		}
		r->len = out;
	} else if (strcmp(payload, "UNSIGNED-PAYLOAD") != 0) {
		char got[65];
		if (r->len)
			hex_sha256(r->body, r->len, got);
		else
			memcpy(got, EMPTY_SHA256, 65);
		if (strcasecmp(got, payload) != 0) {
			*code = "XAmzContentSHA256Mismatch",
			*msg = "The provided 'x-amz-content-sha256' header does not match what was computed.";
			return -1;
		}
	}
	const char *md5 = hdr_get(r->h, r->nh, "Content-MD5");
	if (md5) {
		unsigned char want[20], got[16];
		unsigned int gl = 0;
		int n = EVP_DecodeBlock(want, (const unsigned char *)md5, (int)strlen(md5));
		if (strlen(md5) != 24 || n != 18) {   /* 16 bytes + 2 padding */
			*code = "InvalidDigest", *msg = "The Content-MD5 you specified was invalid.";
			return -1;
		}
		EVP_Digest(r->body ? r->body : (uint8_t *)"", r->len, got, &gl, EVP_md5(), NULL);
		if (memcmp(want, got, 16) != 0) {
			*code = "BadDigest", *msg = "The Content-MD5 you specified did not match what we received.";
			return -1;
		}
	}
	return 0;
bad_chunk:
	*code = "IncompleteBody", *msg = "malformed aws-chunked body";
	return -1;
}

/* ------------------------------------------------------------ objects */

struct reader {
	struct s3obj *o;
	size_t start, n;         /* the range sent: n bytes from start */
};

static ssize_t read_obj(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reader *rd = cls;
	/* pos counts from the start of the response (the range's first byte). */
	if (pos >= rd->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = rd->n - (size_t)pos < max ? rd->n - (size_t)pos : max;
	memcpy(buf, rd->o->data + rd->start + pos, n);
	return (ssize_t)n;
}

static void free_reader(void *cls)
{
	struct reader *rd = cls;
	obj_unref(rd->o);
	free(rd);
}

static void object_headers(struct MHD_Response *resp, const struct s3obj *o)
{
	char etag[40], lm[64];
	snprintf(etag, sizeof etag, "\"%s\"", o->etag);
	http_time(o->mtime, lm, sizeof lm);
	MHD_add_response_header(resp, "ETag", etag);
	MHD_add_response_header(resp, "Last-Modified", lm);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	MHD_add_response_header(resp, "Content-Type", o->ctype ? o->ctype : "binary/octet-stream");
}

/* "bytes=a-b", "bytes=a-", "bytes=-n" against len: 0 ok, -1 unsatisfiable,
 * 1 ignore (malformed or several ranges: S3 sends the whole object). */
static int parse_range(const char *h, size_t len, size_t *a, size_t *b)
{
	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	const char *p = h + 6;
	char *e;
	if (*p == '-') {
		unsigned long long n = strtoull(p + 1, &e, 10);
		if (e == p + 1 || *e)
			return 1;
		if (n == 0 || len == 0)
			return -1;
		*a = n >= len ? 0 : len - n;
		*b = len - 1;
		return 0;
	}
	unsigned long long x = strtoull(p, &e, 10);
	if (e == p || *e != '-')
		return 1;
	p = e + 1;
	unsigned long long y = len ? len - 1 : 0;
	if (*p) {
		y = strtoull(p, &e, 10);
		if (*e || y < x)
			return 1;
	}
	if (x >= len)
		return -1;
	*a = x;
	*b = y >= len ? len - 1 : y;
	return 0;
}

static enum MHD_Result get_object(struct MHD_Connection *c, struct req *r, const char *method)
{
	struct s3obj *o;
	int st = store_get(r->bucket, r->key, &o);
	if (st)
		return store_error(c, r, method, st);
	size_t a = 0, b = o->len ? o->len - 1 : 0;
	unsigned status = 200;
	const char *range = hdr_get(r->h, r->nh, "Range");
	if (range) {
		int pr = parse_range(range, o->len, &a, &b);
		if (pr < 0) {
			obj_unref(o);
			return send_error(c, r, method, 416, "InvalidRange", "The requested range is not satisfiable");
		}
		if (pr == 0)
			status = 206;
	}
	size_t n = o->len ? b - a + 1 : 0;
	struct MHD_Response *resp;
	if (n == 0) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		object_headers(resp, o);
		obj_unref(o);
	} else {
		struct reader *rd = malloc(sizeof *rd);
		if (!rd) {
			obj_unref(o);
			return MHD_NO;
		}
		rd->o = o;
		rd->start = a;
		rd->n = n;
		resp = MHD_create_response_from_callback(n, 256 * 1024, read_obj, rd, free_reader);
		if (!resp) {
			free_reader(rd);
			return MHD_NO;
		}
		object_headers(resp, o);
		if (status == 206) {
			char cr[96];
			snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", a, b, o->len);
			MHD_add_response_header(resp, "Content-Range", cr);
		}
	}
	return reply(c, r, status, resp);
}

static char *copy_source(const char *src, char **key)
{
	char *d = pct_decode(src, strcspn(src, "?"));
	if (!d)
		return NULL;
	char *p = d + (*d == '/');
	char *slash = strchr(p, '/');
	if (!slash || !slash[1]) {
		free(d);
		return NULL;
	}
	*slash = '\0';
	*key = strdup(slash + 1);
	char *b = strdup(p);
	free(d);
	if (!*key || !b) {
		free(*key);
		free(b);
		return NULL;
	}
	return b;
}

static enum MHD_Result put_object(struct MHD_Connection *c, struct req *r, const char *method)
{
	const char *src = hdr_get(r->h, r->nh, "x-amz-copy-source");
	const char *ctype = hdr_get(r->h, r->nh, "Content-Type");
	if (src) {
		char *skey = NULL, *sbucket = copy_source(src, &skey);
		if (!sbucket)
			return send_error(c, r, method, 400, "InvalidArgument", "x-amz-copy-source is malformed");
		struct s3obj *so;
		int st = store_get(sbucket, skey, &so);
		free(sbucket);
		free(skey);
		if (st)
			return store_error(c, r, method, st);
		const char *dir = hdr_get(r->h, r->nh, "x-amz-metadata-directive");
		uint8_t *data = malloc(so->len ? so->len : 1);
		if (data)
			memcpy(data, so->data, so->len);   /* before obj_new: it hashes the bytes */
		struct s3obj *o = data ? obj_new(r->key, data, so->len, dir && !strcmp(dir, "REPLACE") ? ctype : so->ctype)
		                       : NULL;
		if (!o)
			free(data);
		obj_unref(so);
		if (!o)
			return store_error(c, r, method, ST_NOMEM);
		char lm[40], etag[33];
		iso_time(o->mtime, lm, sizeof lm);
		memcpy(etag, o->etag, 33);
		if ((st = store_put(r->bucket, o))) {
			obj_unref(o);
			return store_error(c, r, method, st);
		}
		struct sb b = {0};
		sb_fmt(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"" XMLNS "\">"
		           "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag></CopyObjectResult>", lm, etag);
		return send_xml(c, r, 200, &b);
	}
	const char *code, *msg;
	unsigned status;
	if (decode_body(r, &code, &msg, &status) < 0)
		return send_error(c, r, method, status, code, msg);
	uint8_t *data = r->body;
	r->body = NULL;
	struct s3obj *o = obj_new(r->key, data, r->len, ctype);
	if (!o) {
		free(data);
		return store_error(c, r, method, ST_NOMEM);
	}
	char etag[40];
	snprintf(etag, sizeof etag, "\"%s\"", o->etag);
	int st = store_put(r->bucket, o);
	if (st) {
		obj_unref(o);
		return store_error(c, r, method, st);
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp)
		MHD_add_response_header(resp, "ETag", etag);
	return reply(c, r, 200, resp);
}

/* ------------------------------------------------------------ listing */

static char *hex_token(const char *s)
{
	size_t n = strlen(s);
	char *t = malloc(2 * n + 1);
	if (t)
		for (size_t i = 0; i <= n; i++)
			sprintf(t + 2 * i, i < n ? "%02x" : "", (unsigned char)s[i]);
	return t;
}

static char *unhex_token(const char *t)
{
	size_t n = strlen(t);
	if (n % 2)
		return NULL;
	char *s = malloc(n / 2 + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(t + 2 * i, "%2x", &v) != 1 || v == 0) {
			free(s);
			return NULL;
		}
		s[i] = (char)v;
	}
	s[n / 2] = '\0';
	return s;
}

static enum MHD_Result list_objects(struct MHD_Connection *c, struct req *r, const char *method)
{
	int v2 = qhas(r, "list-type");
	char *prefix = qget(r, "prefix"), *delim = qget(r, "delimiter"), *mk = qget(r, "max-keys");
	char *enc = qget(r, "encoding-type"), *token = qget(r, "continuation-token");
	char *start_after = qget(r, v2 ? "start-after" : "marker");
	int url = enc && strcmp(enc, "url") == 0;
	long max = 1000;
	enum MHD_Result ret;
	if (mk) {
		char *e;
		max = strtol(mk, &e, 10);
		if (e == mk || *e || max < 0) {
			ret = send_error(c, r, method, 400, "InvalidArgument", "max-keys must be a non-negative integer");
			goto out;
		}
		if (max > 1000)
			max = 1000;
	}
	char *from = NULL;
	if (v2 && token) {
		if (!(from = unhex_token(token))) {
			ret = send_error(c, r, method, 400, "InvalidArgument", "The continuation token provided is incorrect");
			goto out;
		}
	}
	const char *pfx = prefix ? prefix : "";
	size_t pl = strlen(pfx), dl = delim ? strlen(delim) : 0;
	const char *after = from ? from : start_after;
	struct sb items = {0};
	long count = 0;
	int truncated = 0;
	const char *last = NULL;   /* last key consumed: the next page starts after it */
	store_rdlock();
	struct s3bucket *b = store_find_bucket_locked(r->bucket);
	if (!b) {
		store_unlock();
		free(from);
		ret = store_error(c, r, method, ST_NO_BUCKET);
		goto out;
	}
	size_t i = store_first_after_locked(b, after);
	/* Skip to the prefix's range. */
	if (pl && (i >= b->n || strcmp(b->objs[i]->key, pfx) < 0)) {
		size_t lo = i, hi = b->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(b->objs[mid]->key, pfx) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	char *lastbuf = NULL;
	for (; i < b->n; i++) {
		struct s3obj *o = b->objs[i];
		if (strncmp(o->key, pfx, pl) != 0)
			break;
		if (count == max) {
			truncated = 1;
			break;
		}
		const char *d = dl ? strstr(o->key + pl, delim) : NULL;
		if (d) {
			size_t cl = (size_t)(d - o->key) + dl;
			sb_str(&items, "<CommonPrefixes><Prefix>");
			char *cp = strndup(o->key, cl);
			if (!cp) {
				items.oom = true;
				break;
			}
			xml_key(&items, cp, url);
			sb_str(&items, "</Prefix></CommonPrefixes>");
			/* Consume every key under this common prefix. */
			while (i + 1 < b->n && strncmp(b->objs[i + 1]->key, cp, cl) == 0)
				i++;
			free(cp);
		} else {
			char lm[40];
			iso_time(o->mtime, lm, sizeof lm);
			sb_str(&items, "<Contents><Key>");
			xml_key(&items, o->key, url);
			sb_fmt(&items, "</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag><Size>%zu</Size>"
			               "<StorageClass>STANDARD</StorageClass></Contents>", lm, o->etag, o->len);
		}
		last = b->objs[i]->key;
		count++;
	}
	if (last && !(lastbuf = strdup(last)))
		items.oom = true;
	store_unlock();
	free(from);

	struct sb x = {0};
	sb_str(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"" XMLNS "\"><Name>");
	xml_esc(&x, r->bucket);
	sb_str(&x, "</Name><Prefix>");
	xml_key(&x, pfx, url);
	sb_str(&x, "</Prefix>");
	if (delim) {
		sb_str(&x, "<Delimiter>");
		xml_key(&x, delim, url);
		sb_str(&x, "</Delimiter>");
	}
	if (v2) {
		if (start_after) {
			sb_str(&x, "<StartAfter>");
			xml_key(&x, start_after, url);
			sb_str(&x, "</StartAfter>");
		}
		if (token) {
			sb_str(&x, "<ContinuationToken>");
			xml_esc(&x, token);
			sb_str(&x, "</ContinuationToken>");
		}
		sb_fmt(&x, "<KeyCount>%ld</KeyCount>", count);
	} else {
		sb_str(&x, "<Marker>");
		xml_key(&x, start_after ? start_after : "", url);
		sb_str(&x, "</Marker>");
	}
	sb_fmt(&x, "<MaxKeys>%ld</MaxKeys>", max);
	if (url)
		sb_str(&x, "<EncodingType>url</EncodingType>");
	sb_fmt(&x, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
	if (truncated && lastbuf) {
		if (v2) {
			char *t = hex_token(lastbuf);
			sb_str(&x, "<NextContinuationToken>");
			sb_str(&x, t ? t : "");
			sb_str(&x, "</NextContinuationToken>");
			x.oom |= !t;
			free(t);
		} else {
			sb_str(&x, "<NextMarker>");
			xml_key(&x, lastbuf, url);
			sb_str(&x, "</NextMarker>");
		}
	}
	free(lastbuf);
	if (items.n)
		sb_add(&x, items.p, items.n);
	x.oom |= items.oom;
	free(items.p);
	sb_str(&x, "</ListBucketResult>");
	ret = send_xml(c, r, 200, &x);
out:
	free(prefix);
	free(delim);
	free(mk);
	free(enc);
	free(token);
	free(start_after);
	return ret;
}

static enum MHD_Result list_buckets(struct MHD_Connection *c, struct req *r)
{
	struct sb x = {0};
	sb_str(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"" XMLNS "\">"
	           "<Owner><ID>nexus-s3peer</ID><DisplayName>nexus-s3peer</DisplayName></Owner><Buckets>");
	store_rdlock();
	size_t n;
	struct s3bucket *const *bs = store_buckets_locked(&n);
	for (size_t i = 0; i < n; i++) {
		char t[40];
		iso_time(bs[i]->ctime, t, sizeof t);
		sb_str(&x, "<Bucket><Name>");
		xml_esc(&x, bs[i]->name);
		sb_fmt(&x, "</Name><CreationDate>%s</CreationDate></Bucket>", t);
	}
	store_unlock();
	sb_str(&x, "</Buckets></ListAllMyBucketsResult>");
	return send_xml(c, r, 200, &x);
}

/* ------------------------------------------------------------ dispatch */

static enum MHD_Result dispatch(struct MHD_Connection *c, struct req *r, const char *m)
{
	if (!r->bucket) {
		if (!strcmp(m, "GET"))
			return list_buckets(c, r);
		return send_error(c, r, m, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
	}
	if (!r->key) {
		if (!strcmp(m, "PUT")) {
			if (!bucket_name_ok(r->bucket))
				return send_error(c, r, m, 400, "InvalidBucketName", "The specified bucket is not valid.");
			int st = store_bucket_create(r->bucket);
			if (st)
				return store_error(c, r, m, st);
			struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
			char loc[80];
			snprintf(loc, sizeof loc, "/%.70s", r->bucket);
			if (resp)
				MHD_add_response_header(resp, "Location", loc);
			return reply(c, r, 200, resp);
		}
		if (!strcmp(m, "DELETE")) {
			int st = store_bucket_delete(r->bucket);
			return st ? store_error(c, r, m, st) : send_empty(c, r, 204);
		}
		if (!strcmp(m, "HEAD"))
			return store_bucket_exists(r->bucket) ? send_empty(c, r, 200) : store_error(c, r, m, ST_NO_BUCKET);
		if (!strcmp(m, "GET")) {
			if (qhas(r, "location")) {
				if (!store_bucket_exists(r->bucket))
					return store_error(c, r, m, ST_NO_BUCKET);
				struct sb x = {0};
				sb_str(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"" XMLNS
				           "\"/>");
				return send_xml(c, r, 200, &x);
			}
			return list_objects(c, r, m);
		}
		return send_error(c, r, m, 501, "NotImplemented", "This peer does not implement that bucket operation.");
	}
	if (r->raw_query && (qhas(r, "uploads") || qhas(r, "uploadId") || qhas(r, "tagging") || qhas(r, "acl")))
		return send_error(c, r, m, 501, "NotImplemented", "This peer does not implement that object operation.");
	if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
		return get_object(c, r, m);
	if (!strcmp(m, "PUT"))
		return put_object(c, r, m);
	if (!strcmp(m, "DELETE")) {
		int st = store_delete(r->bucket, r->key);
		return st == ST_NO_BUCKET ? store_error(c, r, m, st) : send_empty(c, r, 204);
	}
	return send_error(c, r, m, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

static enum MHD_Result collect_hdr(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	struct req *r = cls;
	if (r->nh < MAX_HDRS)
		r->h[r->nh++] = (struct hdr){ k, v ? v : "" };
	return MHD_YES;
}

/* Split the target into raw path and query, and decode bucket and key. */
static int parse_target(struct req *r)
{
	char *q = strchr(r->uri, '?');
	r->raw_path = strndup(r->uri, q ? (size_t)(q - r->uri) : strlen(r->uri));
	r->raw_query = q ? strdup(q + 1) : NULL;
	if (!r->raw_path || (q && !r->raw_query) || r->raw_path[0] != '/')
		return -1;
	char *path = pct_decode(r->raw_path, strlen(r->raw_path));
	if (!path)
		return -1;
	char *p = path + 1, *slash = strchr(p, '/');
	if (*p) {
		r->bucket = strndup(p, slash ? (size_t)(slash - p) : strlen(p));
		if (slash && slash[1])
			r->key = strdup(slash + 1);
	}
	free(path);
	return 0;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	(void)cls, (void)c;
	struct req *r = calloc(1, sizeof *r);
	if (r && !(r->uri = strdup(uri))) {
		free(r);
		r = NULL;
	}
	if (r)
		snprintf(r->rid, sizeof r->rid, "%016llx", __atomic_add_fetch(&req_counter, 1, __ATOMIC_RELAXED));
	return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls, (void)c, (void)t;
	struct req *r = *con_cls;
	if (!r)
		return;
	free(r->uri);
	free(r->raw_path);
	free(r->raw_query);
	free(r->bucket);
	free(r->key);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upsz, void **con_cls)
{
	(void)cls, (void)url, (void)version;
	struct req *r = *con_cls;
	if (!r)
		return MHD_NO;
	if (!r->started) {
		r->started = 1;
		MHD_get_connection_values(c, MHD_HEADER_KIND, collect_hdr, r);
		if (parse_target(r) < 0) {
			r->refused = 1;
			return send_error(c, r, method, 400, "InvalidURI", "Couldn't parse the specified URI.");
		}
		struct sigv4_err e;
		if (sigv4_verify(method, r->raw_path, r->raw_query, r->h, r->nh, cfg->access_key, cfg->secret_key,
		                 &r->sig, &e) < 0) {
			r->refused = 1;
			return send_error(c, r, method, (unsigned)e.status, e.code, e.msg);
		}
		const char *cl = hdr_get(r->h, r->nh, "Content-Length");
		if (cl) {
			unsigned long long n = strtoull(cl, NULL, 10);
			if (n > cfg->max_object + 64 * 1024) {   /* aws-chunked framing on top */
				r->refused = 1;
				return send_error(c, r, method, 400, "EntityTooLarge",
				                  "Your proposed upload exceeds the maximum allowed size");
			}
			if (n && !(r->body = malloc(n))) {
				r->refused = 1;
				return send_error(c, r, method, 500, "InternalError", "out of memory");
			}
			r->cap = n;
		}
		return MHD_YES;
	}
	if (*upsz) {
		if (!r->refused) {
			if (r->len + *upsz > r->cap) {
				size_t nc = r->cap ? 2 * r->cap : 64 * 1024;
				while (nc < r->len + *upsz)
					nc *= 2;
				uint8_t *nb = nc <= cfg->max_object + 64 * 1024 ? realloc(r->body, nc) : NULL;
				if (!nb) {
					r->refused = 1;
					*upsz = 0;
					return send_error(c, r, method, 400, "EntityTooLarge",
					                  "Your proposed upload exceeds the maximum allowed size");
				}
				r->body = nb;
				r->cap = nc;
			}
			memcpy(r->body + r->len, upload, *upsz);
			r->len += *upsz;
		}
		*upsz = 0;
		return MHD_YES;
	}
	if (r->refused)
		return MHD_YES;   /* the error is already queued */
	if (cfg->verbose)
		fprintf(stderr, "s3peer: %s %s (%zu bytes)\n", method, r->uri, r->len);
	return dispatch(c, r, method);
}

struct MHD_Daemon *s3api_start(const struct s3api_config *conf, const char *addr, int port, unsigned threads,
                               int *bound)
{
	cfg = conf;
	store_init();
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return NULL;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_TIMEOUT, 300u,
		MHD_OPTION_CONNECTION_LIMIT, 4000u,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_END);
	if (!d)
		return NULL;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*bound = di ? di->port : port;
	return d;
}
