/* SPDX-License-Identifier: MIT */
/* SigV4 verification for nexus-s3peer (sigv4.h). */
#include "sigv4.h"
#include "strbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_SKEW_S (15 * 60)   /* S3's RequestTimeTooSkewed limit */

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void hex_sha256(const void *p, size_t n, char out[65])
{
	unsigned char d[32];
	unsigned int dl = 0;
	EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
	hex(d, 32, out);
}

static void hmac(const void *key, size_t kl, const void *msg, size_t ml, unsigned char out[32])
{
	unsigned int ol = 32;
	HMAC(EVP_sha256(), key, (int)kl, msg, ml, out, &ol);
}

const char *hdr_get(const struct hdr *h, size_t nh, const char *name)
{
	for (size_t i = 0; i < nh; i++)
		if (strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

static int unhex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *pct_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *p = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*p++ = s[i];
			continue;
		}
		int a = i + 2 < n ? unhex(s[i + 1]) : -1;
		int b = i + 2 < n ? unhex(s[i + 2]) : -1;
		if (a < 0 || b < 0 || (a | b) == 0) {   /* %00 too: keys are C strings here */
			free(o);
			return NULL;
		}
		*p++ = (char)(a * 16 + b);
		i += 2;
	}
	*p = '\0';
	return o;
}

char *aws_encode(const char *s, bool keep_slash)
{
	size_t n = strlen(s);
	char *o = malloc(3 * n + 1), *p = o;
	if (!o)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
			*p++ = (char)c;
		} else {
			sprintf(p, "%%%02X", c);
			p += 3;
		}
	}
	*p = '\0';
	return o;
}

/* ---- canonical query: decode every name and value, re-encode, sort */
struct qp {
	char *name, *value;
};

static int qp_cmp(const void *a, const void *b)
{
	const struct qp *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(const char *q, struct sb *out)
{
	size_t n = 0, cap = 0;
	struct qp *v = NULL;
	int r = -1;
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len) {
			const char *eq = memchr(q, '=', len);
			size_t nl = eq ? (size_t)(eq - q) : len;
			char *dn = pct_decode(q, nl);
			char *dv = eq ? pct_decode(eq + 1, len - nl - 1) : strdup("");
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				struct qp *nv = realloc(v, cap * sizeof *nv);
				if (!nv) {
					free(dn);
					free(dv);
					goto out;
				}
				v = nv;
			}
			v[n].name = dn ? aws_encode(dn, false) : NULL;
			v[n].value = dv ? aws_encode(dv, false) : NULL;
			free(dn);
			free(dv);
			n++;
			if (!v[n - 1].name || !v[n - 1].value)
				goto out;
		}
		q = amp ? amp + 1 : q + len;
	}
	if (n)
		qsort(v, n, sizeof *v, qp_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_str(out, "&");
		sb_str(out, v[i].name);
		sb_str(out, "=");
		sb_str(out, v[i].value);
	}
	r = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	return r;
}

/* Header value as SigV4 wants it: trimmed, inner runs of spaces collapsed;
 * several headers of one name joined by ','. */
static int canonical_header(const struct hdr *h, size_t nh, const char *name, struct sb *out)
{
	bool any = false;
	for (size_t i = 0; i < nh; i++) {
		if (strcasecmp(h[i].name, name) != 0)
			continue;
		if (any)
			sb_str(out, ",");
		any = true;
		const char *s = h[i].value;
		while (*s == ' ' || *s == '\t')
			s++;
		const char *e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		for (bool sp = false; s < e; s++) {
			bool w = *s == ' ' || *s == '\t';
			if (w && sp)
				continue;
			sp = w;
			sb_add(out, w ? " " : s, 1);
		}
	}
	return any ? 0 : -1;
}

static int fail(struct sigv4_err *e, int status, const char *code, const char *msg)
{
	e->status = status;
	e->code = code;
	snprintf(e->msg, sizeof e->msg, "%s", msg);
	return -1;
}

/* "Name=value" inside the Authorization header, up to ',' or end. */
static int auth_field(const char *auth, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = auth; (p = strstr(p, name)); p++) {
		if ((p == auth || p[-1] == ' ' || p[-1] == ',') && p[nl] == '=') {
			p += nl + 1;
			size_t l = strcspn(p, ", ");
			if (l >= cap)
				return -1;
			memcpy(out, p, l);
			out[l] = '\0';
			return 0;
		}
	}
	return -1;
}

static time_t parse_amz_date(const char *d)
{
	struct tm tm = {0};
	if (strlen(d) != 16 || !strptime(d, "%Y%m%dT%H%M%SZ", &tm))
		return (time_t)-1;
	return timegm(&tm);
}

int sigv4_verify(const char *method, const char *raw_path, const char *raw_query,
                 const struct hdr *h, size_t nh, const char *access_key, const char *secret,
                 struct sigv4_ctx *ctx, struct sigv4_err *e)
{
	const char *auth = hdr_get(h, nh, "Authorization");
	if (raw_query && (strstr(raw_query, "X-Amz-Signature=") || strstr(raw_query, "X-Amz-Credential=")))
		return fail(e, 403, "AccessDenied", "presigned URLs are not supported by this peer");
	if (!auth)
		return fail(e, 403, "AccessDenied", "anonymous access is not allowed");
	if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0)
		return fail(e, 400, "InvalidArgument", "only AWS4-HMAC-SHA256 authorization is supported");
	char cred[256], signed_hdrs[1024], sig[80];
	if (auth_field(auth + 17, "Credential", cred, sizeof cred) < 0 ||
	    auth_field(auth + 17, "SignedHeaders", signed_hdrs, sizeof signed_hdrs) < 0 ||
	    auth_field(auth + 17, "Signature", sig, sizeof sig) < 0 || strlen(sig) != 64)
		return fail(e, 400, "AuthorizationHeaderMalformed", "the authorization header is malformed");
	/* Credential = AKID/date/region/service/aws4_request */
	char *parts[5] = {0}, *save = NULL;
	int np = 0;
	for (char *t = strtok_r(cred, "/", &save); t && np < 5; t = strtok_r(NULL, "/", &save))
		parts[np++] = t;
	if (np != 5 || strcmp(parts[3], "s3") != 0 || strcmp(parts[4], "aws4_request") != 0 || strlen(parts[1]) != 8)
		return fail(e, 400, "AuthorizationHeaderMalformed", "the credential scope is malformed");
	if (strcmp(parts[0], access_key) != 0)
		return fail(e, 403, "InvalidAccessKeyId", "the access key id does not exist in our records");
	const char *date = hdr_get(h, nh, "x-amz-date");
	if (!date || parse_amz_date(date) == (time_t)-1)
		return fail(e, 403, "AccessDenied", "x-amz-date is missing or malformed");
	if (strncmp(date, parts[1], 8) != 0)
		return fail(e, 403, "SignatureDoesNotMatch", "the credential date does not match x-amz-date");
	time_t skew = time(NULL) - parse_amz_date(date);
	if (skew > MAX_SKEW_S || skew < -MAX_SKEW_S)
		return fail(e, 403, "RequestTimeTooSkewed", "the request time is too far from the server's time");
	const char *payload = hdr_get(h, nh, "x-amz-content-sha256");
	if (!payload)
		return fail(e, 400, "InvalidRequest", "x-amz-content-sha256 is required");

	struct sb cr = {0};
	sb_str(&cr, method);
	sb_str(&cr, "\n");
	char *dpath = pct_decode(raw_path, strlen(raw_path));
	char *cpath = dpath ? aws_encode(dpath, true) : NULL;
	free(dpath);
	if (!cpath) {
		free(cr.p);
		return fail(e, 400, "InvalidURI", "the request path could not be decoded");
	}
	sb_str(&cr, cpath);
	free(cpath);
	sb_str(&cr, "\n");
	if (canonical_query(raw_query, &cr) < 0) {
		free(cr.p);
		return fail(e, 400, "InvalidURI", "the query string could not be decoded");
	}
	sb_str(&cr, "\n");
	/* SignedHeaders is lower-case, ';'-separated, sorted (the signer's job). */
	bool has_host = false;
	char sh[1024];
	snprintf(sh, sizeof sh, "%s", signed_hdrs);
	save = NULL;
	for (char *t = strtok_r(sh, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		has_host |= strcmp(t, "host") == 0;
		sb_str(&cr, t);
		sb_str(&cr, ":");
		if (canonical_header(h, nh, t, &cr) < 0) {
			free(cr.p);
			return fail(e, 403, "AccessDenied", "a signed header is missing from the request");
		}
		sb_str(&cr, "\n");
	}
	if (!has_host) {
		free(cr.p);
		return fail(e, 403, "AccessDenied", "the host header must be signed");
	}
	sb_str(&cr, "\n");
	sb_str(&cr, signed_hdrs);
	sb_str(&cr, "\n");
	sb_str(&cr, payload);
	if (cr.oom) {
		free(cr.p);
		return fail(e, 500, "InternalError", "out of memory");
	}
	char crhash[65];
	hex_sha256(cr.p, cr.n, crhash);
	free(cr.p);

	snprintf(ctx->scope, sizeof ctx->scope, "%s/%s/s3/aws4_request", parts[1], parts[2]);
	snprintf(ctx->amz_date, sizeof ctx->amz_date, "%s", date);
	char sts[400];
	int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, ctx->scope, crhash);
	char k0[300];
	int kl = snprintf(k0, sizeof k0, "AWS4%s", secret);
	unsigned char k1[32], k2[32], k3[32];
	hmac(k0, (size_t)kl, parts[1], 8, k1);
	hmac(k1, 32, parts[2], strlen(parts[2]), k2);
	hmac(k2, 32, "s3", 2, k3);
	hmac(k3, 32, "aws4_request", 12, ctx->key);
	unsigned char mac[32];
	hmac(ctx->key, 32, sts, (size_t)sl, mac);
	char want[65];
	hex(mac, 32, want);
	if (CRYPTO_memcmp(want, sig, 64) != 0)
		return fail(e, 403, "SignatureDoesNotMatch",
		            "the request signature we calculated does not match the signature you provided");
	memcpy(ctx->seed_sig, sig, 65);
	ctx->payload = payload;
	return 0;
}

void sigv4_chunk_sig(const struct sigv4_ctx *ctx, const char *prev, const uint8_t *data, size_t len,
                     char out[65])
{
	static const char empty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	char dh[65];
	hex_sha256(data, len, dh);
	char sts[512];
	int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", ctx->amz_date,
	                  ctx->scope, prev, empty, dh);
	unsigned char mac[32];
	hmac(ctx->key, 32, sts, (size_t)sl, mac);
	hex(mac, 32, out);
}
