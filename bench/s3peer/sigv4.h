/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4, server side, for nexus-s3peer: rebuild the
 * canonical request from what arrived on the wire and compare signatures
 * (header-signed requests; presigned query strings are refused), and check
 * the per-chunk signatures of aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
 * uploads.  OpenSSL does the HMAC and SHA-256.
 */
#ifndef S3PEER_SIGV4_H
#define S3PEER_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hdr {
	const char *name;        /* as sent; compared case-insensitively */
	const char *value;
};

struct sigv4_ctx {
	unsigned char key[32];   /* the signing key of this request's scope */
	char seed_sig[65];       /* the request's signature: chunk 1's previous signature */
	char amz_date[17];       /* YYYYMMDDTHHMMSSZ */
	char scope[160];         /* date/region/s3/aws4_request */
	const char *payload;     /* x-amz-content-sha256 as sent */
};

struct sigv4_err {
	int status;              /* HTTP status */
	const char *code;        /* S3 error code */
	char msg[200];
};

/* Verify the request's Authorization header.  raw_path and raw_query are the
 * request target exactly as received (percent-encoded; query without '?').
 * 0 on success (ctx filled), -1 with *e set otherwise. */
int sigv4_verify(const char *method, const char *raw_path, const char *raw_query,
                 const struct hdr *h, size_t nh, const char *access_key, const char *secret,
                 struct sigv4_ctx *ctx, struct sigv4_err *e);

/* The signature a chunk must carry, given the previous one (hex, 64 chars). */
void sigv4_chunk_sig(const struct sigv4_ctx *ctx, const char *prev, const uint8_t *data, size_t len,
                     char out[65]);

/* Percent-decode n bytes of s into a new string (NULL on bad escapes or NUL). */
char *pct_decode(const char *s, size_t n);
/* AWS URI-encoding of s (unreserved kept; '/' kept when keep_slash); malloc'd. */
char *aws_encode(const char *s, bool keep_slash);

void hex_sha256(const void *p, size_t n, char out[65]);
const char *hdr_get(const struct hdr *h, size_t nh, const char *name);

#endif
