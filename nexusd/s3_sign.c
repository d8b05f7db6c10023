/* SPDX-License-Identifier: MIT */
/*
 * Canonical URL pieces for SigV4 and small encoding helpers (s3_internal.h).
 * libcurl's CURLOPT_AWS_SIGV4 (7.88) signs the path and query exactly as we
 * send them and takes the payload hash from our x-amz-content-sha256 header,
 * so everything here produces the canonical form up front.
 */
#include "s3_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

void nx_s3_pct_encode(FILE *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep_slash && *p == '/')) {
			fputc(*p, out);
		} else {
			fputc('%', out);
			fputc(hex[*p >> 4], out);
			fputc(hex[*p & 15], out);
		}
	}
}

static int cmp_param(const void *a, const void *b)
{
	const struct nx_s3_qparam *x = a, *y = b;
	return strcmp(x->name, y->name);
}

void nx_s3_write_query(FILE *out, struct nx_s3_qparam *p, size_t n)
{
	/* Names are fixed ASCII identifiers, so sorting raw names sorts encoded ones. */
	qsort(p, n, sizeof(*p), cmp_param);
	char sep = '?';
	for (size_t i = 0; i < n; i++) {
		if (!p[i].value)
			continue;
		fputc(sep, out);
		sep = '&';
		nx_s3_pct_encode(out, p[i].name, false);
		fputc('=', out);
		nx_s3_pct_encode(out, p[i].value, false);
	}
}

void nx_s3_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char hex[] = "0123456789abcdef";
	if (!EVP_Digest(data ? data : "", len, md, &n, EVP_sha256(), NULL))
		n = 0;
	for (unsigned i = 0; i < n && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[n ? 64 : 0] = '\0';
}

int nx_s3_http_date_to_iso(const char *http, char *out, size_t cap)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(http, "%a, %d %b %Y %H:%M:%S", &tm);
	if (!end || strftime(out, cap, "%Y-%m-%dT%H:%M:%S.000Z", &tm) == 0) {
		snprintf(out, cap, "%s", http);
		return -1;
	}
	return 0;
}

bool nx_s3_header_safe(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

bool nx_s3_bucket_name_ok(const char *b)
{
	size_t n = strlen(b);
	if (n < 1 || n > 255)
		return false;
	for (const unsigned char *p = (const unsigned char *)b; *p; p++)
		if (!isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
			return false;
	return true;
}
