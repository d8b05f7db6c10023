/* SPDX-License-Identifier: MIT */
/*
 * c-linecount: a C function on libnexus (Lambda runtime "provided": this
 * program is /var/task/bootstrap).  It reads an S3 object in place — the
 * body is a pointer into the shared region, never copied — counts its
 * lines, words and bytes, and writes the counts as JSON to another object.
 *
 * Event: {"bucket": B, "key": K, "output_key": O (optional), "text": T (optional:
 * written to K first, so the function can be tried without uploading anything)}.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nexus/libnexus.h>

/* Keys go back into JSON: refuse the characters that would need escaping. */
static int plain(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

static int fail(char **result, const char *what, const struct nx_reply *rep)
{
	char code[64] = "", msg[256] = "";
	if (rep && rep->meta) {
		nx_meta_field(rep->meta, rep->meta_len, "Code", code, sizeof code);
		nx_meta_field(rep->meta, rep->meta_len, "Message", msg, sizeof msg);
	}
	if (asprintf(result, "%s failed: %s %s %s", what, rep ? nx_status_name(rep->status) : "", code, msg) < 0)
		*result = NULL;
	return 1;
}

static int handler(struct nx_guest *g, const struct nx_invocation *inv, char **result, size_t *len, void *arg)
{
	(void)arg;
	char bucket[256], key[1024], out_key[1100], text[4096];
	if (nx_meta_field(inv->event, inv->event_len, "bucket", bucket, sizeof bucket) <= 0 ||
	    nx_meta_field(inv->event, inv->event_len, "key", key, sizeof key) <= 0 || !plain(key)) {
		*result = strdup("the event needs \"bucket\" and \"key\" (plain strings)");
		return 1;
	}
	if (nx_meta_field(inv->event, inv->event_len, "output_key", out_key, sizeof out_key) <= 0)
		snprintf(out_key, sizeof out_key, "%s.counts.json", key);
	if (!plain(out_key)) {
		*result = strdup("output_key must be a plain string");
		return 1;
	}
	struct nx_reply rep;
	int n = nx_meta_field(inv->event, inv->event_len, "text", text, sizeof text);
	if (n >= 0) {
		if (nx_s3_put(g, bucket, key, text, (size_t)n, "text/plain", &rep) < 0 || rep.status != NX_S_OK)
			return fail(result, "PutObject (text)", &rep);
		nx_reply_release(g, &rep);
	}

	if (nx_s3_get(g, bucket, key, NULL, NULL, &rep) < 0)
		return fail(result, "GetObject", NULL);
	if (rep.status != NX_S_OK) {
		int r = fail(result, "GetObject", &rep);
		nx_reply_release(g, &rep);
		return r;
	}
	unsigned long lines = 0, words = 0, bytes = rep.body_len;
	int in_word = 0;
	for (size_t i = 0; i < rep.body_len; i++) {     /* straight over the region */
		unsigned char c = rep.body[i];
		lines += c == '\n';
		if (isspace(c))
			in_word = 0;
		else if (!in_word) {
			in_word = 1;
			words++;
		}
	}
	nx_reply_release(g, &rep);                      /* the body goes back to nexusd */

	char counts[256];
	int clen = snprintf(counts, sizeof counts, "{\"lines\":%lu,\"words\":%lu,\"bytes\":%lu}", lines, words, bytes);
	if (nx_s3_put(g, bucket, out_key, counts, (size_t)clen, "application/json", &rep) < 0 || rep.status != NX_S_OK)
		return fail(result, "PutObject (counts)", &rep);
	nx_reply_release(g, &rep);

	int rlen = asprintf(result, "{\"input\":\"%s\",\"output\":\"%s\",\"lines\":%lu,\"words\":%lu,\"bytes\":%lu}",
	                    key, out_key, lines, words, bytes);
	if (rlen < 0)
		return 1;
	*len = (size_t)rlen;
	return 0;
}

int main(void)
{
	int r = nx_serve("c", handler, NULL);
	fprintf(stderr, "c-linecount: the channel failed (%d): exiting\n", r);
	return 1;
}
