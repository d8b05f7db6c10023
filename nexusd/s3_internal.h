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

#endif
