/* SPDX-License-Identifier: MIT */
/*
 * Building one S3 request (s3_internal.h): argument checks (nothing from the
 * guest reaches a header with a control character in it), the path-style URL
 * with a canonical query string, and header lists.
 */
#include "s3_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *s3_build_url(const struct nx_s3 *s, const struct nx_s3_req *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fputs(s->cfg.endpoint, f);
	fputc('/', f);
	nx_s3_pct_encode(f, r->bucket, false);
	if (r->op == NX_S3_LIST) {
		char mk[16];
		snprintf(mk, sizeof(mk), "%d", r->max_keys);
		struct nx_s3_qparam q[] = {
			{ "list-type", "2" },
			{ "prefix", r->prefix },
			{ "delimiter", r->delimiter && *r->delimiter ? r->delimiter : NULL },
			{ "continuation-token", r->cont_token && *r->cont_token ? r->cont_token : NULL },
			{ "start-after", r->start_after && *r->start_after ? r->start_after : NULL },
			{ "max-keys", r->max_keys > 0 ? mk : NULL },
		};
		nx_s3_write_query(f, q, sizeof(q) / sizeof(q[0]));
	} else {
		fputc('/', f);
		nx_s3_pct_encode(f, r->key, true);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct curl_slist *s3_add_hdr(struct curl_slist *l, bool *ok, const char *name, const char *val)
{
	char *h;
	if (!*ok || asprintf(&h, "%s: %s", name, val) < 0) {
		*ok = false;
		return l;
	}
	struct curl_slist *n = curl_slist_append(l, h);
	free(h);
	if (!n) {
		*ok = false;
		return l;
	}
	return n;
}

const char *s3_check_req(const struct nx_s3_req *r)
{
	if ((unsigned)r->op >= NX_S3__OPS)
		return "unknown operation";
	if (!r->bucket || !nx_s3_bucket_name_ok(r->bucket))
		return "invalid bucket name";
	if (r->op != NX_S3_LIST && (!r->key || !*r->key || strlen(r->key) > 4096))
		return "invalid key";
	if (r->op == NX_S3_COPY && (!r->src_bucket || !nx_s3_bucket_name_ok(r->src_bucket) ||
	                            !r->src_key || !*r->src_key))
		return "invalid copy source";
	const char *hv[] = { r->range, r->if_match, r->content_type };
	for (size_t i = 0; i < 3; i++)
		if (hv[i] && !nx_s3_header_safe(hv[i]))
			return "control character in a header value";
	if (r->op == NX_S3_GET && !r->sink_alloc)
		return "GET without a sink";
	if (r->max_keys < 0 || r->max_keys > 1000)
		return "invalid MaxKeys";
	return NULL;
}

