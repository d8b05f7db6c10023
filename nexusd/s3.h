/* SPDX-License-Identifier: MIT */
/*
 * The S3 client of nexusd: libcurl's multi interface driven by the nexusd
 * loop, SigV4 signing (CURLOPT_AWS_SIGV4 plus x-amz-content-sha256), pooled
 * connections, per-request timeouts and bounded retries with backoff.
 * Credentials live here and nowhere else.
 *
 * All calls and callbacks happen on the loop thread.
 */
#ifndef NEXUSD_S3_H
#define NEXUSD_S3_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct nx_loop;
struct nx_s3;

struct nx_s3_config {
	char endpoint[256];    /* e.g. http://127.0.0.1:9071 (path-style addressing) */
	char region[64];       /* e.g. us-east-1 */
	char access_key[128];
	char secret_key[128];
	long timeout_ms;       /* whole-request timeout; 0 = default 30000 */
	long connect_timeout_ms; /* 0 = default 5000 */
	int  max_retries;      /* retries on 5xx / transport errors; 0 = default 3,
	                          negative = none */
};

/* Fill *c from the environment: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL,
 * AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY; fields already set are kept. */
void nx_s3_config_from_env(struct nx_s3_config *c);

enum nx_s3_op { NX_S3_GET, NX_S3_PUT, NX_S3_HEAD, NX_S3_DELETE, NX_S3_LIST, NX_S3_COPY, NX_S3__OPS };

struct nx_s3_req {
	enum nx_s3_op op;
	const char *bucket, *key;              /* all ops (LIST: bucket only) */
	const char *range;                     /* GET: "bytes=A-B" or NULL */
	const char *if_match;                  /* GET: ETag precondition or NULL */
	const char *content_type;              /* PUT */
	const char *src_bucket, *src_key;      /* COPY */
	const char *prefix, *delimiter, *cont_token, *start_after; /* LIST */
	int max_keys;                          /* LIST, 0 = default */
	const void *body; size_t body_len;     /* PUT: must stay valid until the callback */
	/* GET: called once the body size is known (before any body byte), and
	 * again on a retry; returns where exactly len bytes go (e.g. a buffer in
	 * the instance's region) or NULL to fail the request with NX_S_NO_SPACE.
	 * The body is written there directly, with no staging copy. */
	void *(*sink_alloc)(void *arg, size_t len);
	void *sink_arg;
};

struct nx_s3_result {
	int      status;            /* enum nx_status */
	long     http_code;
	char     code[64];          /* S3 error code (NoSuchKey, ...) when status != OK */
	char     message[256];
	char     etag[128];
	char     content_type[128];
	char     last_modified[64]; /* ISO 8601 */
	char     content_range[96]; /* ranged GET: "bytes A-B/TOTAL" (addition, v1.1) */
	uint64_t content_length;    /* HEAD/GET: object or range size */
	size_t   body_len;          /* GET: bytes written into the sink */
	json_t  *list;              /* LIST: {"Contents":[{"Key","Size","ETag","LastModified"}...],
	                               "CommonPrefixes":[{"Prefix"}], "IsTruncated", "KeyCount",
	                               "NextContinuationToken"?}; COPY: {"ETag"}; freed after the callback */
};

typedef void (*nx_s3_cb)(void *arg, struct nx_s3_result *res);

struct nx_s3 *nx_s3_new(struct nx_loop *loop, const struct nx_s3_config *cfg);
void nx_s3_destroy(struct nx_s3 *s);

/* Start a request; strings in req are copied.  cb runs exactly once, on the
 * loop thread, unless the request is cancelled first.  Returns a request
 * handle (for nx_s3_cancel) or NULL on immediate failure. */
struct nx_s3_xfer *nx_s3_submit(struct nx_s3 *s, const struct nx_s3_req *req, nx_s3_cb cb, void *arg);

/* Abort a request; its callback will not run and its sink is not touched again. */
void nx_s3_cancel(struct nx_s3 *s, struct nx_s3_xfer *x);

struct nx_s3_stats {
	uint64_t ops[NX_S3__OPS];     /* completed requests */
	uint64_t errors[NX_S3__OPS];
	uint64_t retries;
	uint64_t bytes_in, bytes_out; /* body bytes */
	uint64_t connections;         /* TCP connections opened (addition, v1.1):
	                                 far below the request count when reuse works */
};
void nx_s3_stats(const struct nx_s3 *s, struct nx_s3_stats *out);
const char *nx_s3_op_name(enum nx_s3_op op);

#endif
