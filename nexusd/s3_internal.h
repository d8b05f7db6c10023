/* SPDX-License-Identifier: MIT */
/*
 * Private helpers of the S3 client, shared by s3.c (transfers), s3_sign.c
 * (URL/query canonicalization for SigV4, payload hashes, dates) and s3_xml.c
 * (libxml2 parsing of S3's XML responses).  Not for the rest of nexusd.
 */
#ifndef NEXUSD_S3_INTERNAL_H
#define NEXUSD_S3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>
#include <curl/curl.h>

#include "s3.h"

/* ---- s3_sign.c */

/* Write s percent-encoded the way SigV4 canonicalizes it (RFC 3986
 * unreserved characters kept, everything else %XX upper-case); '/' is kept
 * when keep_slash (object keys in paths). */
void nx_s3_pct_encode(FILE *out, const char *s, bool keep_slash);

/* One query parameter; value NULL = absent (skipped). */
struct nx_s3_qparam { const char *name, *value; };

/* Write "?a=1&b=2" with the present parameters sorted by name and encoded
 * (libcurl 7.88's SigV4 signs the query string as sent, so it must already
 * be canonical).  Writes nothing when no parameter is present. */
void nx_s3_write_query(FILE *out, struct nx_s3_qparam *p, size_t n);

/* Lower-case hex SHA-256 of data (OpenSSL), for x-amz-content-sha256. */
void nx_s3_sha256_hex(const void *data, size_t len, char out[65]);

/* "Wed, 21 Oct 2015 07:28:00 GMT" -> "2015-10-21T07:28:00.000Z".
 * Returns 0, or -1 (out then holds a copy of the input). */
int nx_s3_http_date_to_iso(const char *http, char *out, size_t cap);

/* True when s is safe in an HTTP header value: no control characters. */
bool nx_s3_header_safe(const char *s);

/* Bucket names as S3 allows them (3-63 of [a-z0-9.-], plus legacy upper
 * case and '_', up to 255).  Anything else never reaches a URL. */
bool nx_s3_bucket_name_ok(const char *b);

/* ---- s3_xml.c */

/* <Error><Code/><Message/></Error>: returns 0 and fills code/message, or -1. */
int nx_s3_xml_error(const char *buf, size_t len, char *code, size_t ccap, char *msg, size_t mcap);

/* ListObjectsV2 result as the JSON the channel hands to the guest:
 * {"Contents":[{"Key","Size","ETag","LastModified"}...],"CommonPrefixes":[{"Prefix"}],
 *  "IsTruncated":bool,"KeyCount":int,"NextContinuationToken"?:str, and
 *  "Name","Prefix","Delimiter","MaxKeys","ContinuationToken","StartAfter" when sent}.
 * NULL when buf is not a ListBucketResult. */
json_t *nx_s3_xml_list(const char *buf, size_t len);

/* <CopyObjectResult><ETag/><LastModified/></CopyObjectResult>: returns 0;
 * 1 when the document is an <Error> (S3 can send one with 200 OK); -1 when
 * it is neither. */
int nx_s3_xml_copy(const char *buf, size_t len, char *etag, size_t ecap, char *lm, size_t lcap);

/* ---- the client's state, shared by s3.c, s3_http.c and s3_request.c */

#define RESP_MAX       (16u << 20)  /* XML/error bodies we are willing to buffer */
#define POOL_MAX       64
#define BACKOFF_MS     100

struct sock {
	struct nx_s3 *s;
	int fd;
	struct sock *prev, *next;
};

struct nx_s3_xfer {
	struct nx_s3 *s;
	struct nx_s3_xfer *prev, *next;
	CURL *easy;
	bool in_multi;
	enum nx_s3_op op;
	char *url;
	struct curl_slist *hdrs;
	nx_s3_cb cb;
	void *arg;

	/* PUT: the caller's bytes (kept valid by the caller until the callback). */
	const uint8_t *body;
	size_t body_len, body_pos;

	/* GET: where the body goes. */
	void *(*sink_alloc)(void *arg, size_t len);
	void *sink_arg;
	uint8_t *sink;
	size_t sink_len, got;
	bool sink_ready;

	/* Other responses (XML, errors). */
	char *resp;
	size_t resp_len, resp_cap;

	/* Response headers of the current attempt. */
	long hcode;
	bool have_clen;
	uint64_t clen;
	char etag[128], ctype[128], lastmod[64], crange[96];

	/* A failure we decided on inside a callback (ends the request, no retry). */
	int fail_status;
	char fail_code[64], fail_msg[160];

	int attempt;
	struct nx_timer *timer;   /* retry backoff or deferred failure */
	bool cancelled;           /* cancelled while check_done was dispatching */
};

struct nx_s3 {
	struct nx_loop *loop;
	struct nx_s3_config cfg;
	char sigv4[96];
	CURLM *multi;
	struct nx_timer *timer;
	struct sock *socks;
	CURL *pool[POOL_MAX];
	size_t npool;
	struct nx_s3_xfer *active;
	struct nx_s3_xfer *zombies;   /* cancelled during dispatch, freed after it */
	int dispatching;
	struct nx_s3_stats st;
	unsigned rnd;
};


/* ---- s3_http.c: libcurl callbacks of one transfer */

/* Record a failure decided inside a callback (ends the request, no retry). */
void s3_fail_in_cb(struct nx_s3_xfer *x, int status, const char *code, const char *msg);
size_t s3_on_header(char *buf, size_t size, size_t nitems, void *ud);  /* status, headers, GET sink */
size_t s3_on_body(char *p, size_t size, size_t nmemb, void *ud);       /* GET sink or response buffer */
size_t s3_on_read(char *buf, size_t size, size_t nitems, void *ud);    /* PUT body */
int    s3_on_seek(void *ud, curl_off_t off, int origin);

/* ---- s3_request.c: building a request */

/* NULL when the request is acceptable, else why not. */
const char *s3_check_req(const struct nx_s3_req *r);
/* ENDPOINT/BUCKET/KEY, or ENDPOINT/BUCKET?canonical-query for LIST (malloc'd). */
char *s3_build_url(const struct nx_s3 *s, const struct nx_s3_req *r);
/* Append "name: val"; *ok turns false on failure (then l is returned as is). */
struct curl_slist *s3_add_hdr(struct curl_slist *l, bool *ok, const char *name, const char *val);

#endif
