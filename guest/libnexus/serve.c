/* SPDX-License-Identifier: MIT */
/*
 * nx_serve: the invocation loop for C functions (the Python runtime's loop,
 * in C): READY, then { next invocation -> handler -> INVOKE_DONE } forever.
 */
#include "libnexus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON-escape src into a malloc'd string. */
static char *json_escape(const char *src)
{
	size_t n = strlen(src), o = 0;
	char *out = malloc(n * 6 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)sprintf(out + o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

static int report_error(struct nx_guest *g, uint64_t tag, const char *type, const char *msg)
{
	char *m = json_escape(msg ? msg : "the handler failed");
	size_t cap = strlen(type) + (m ? strlen(m) : 0) + 80;
	char *json = malloc(cap);
	if (!m || !json) {
		free(m);
		free(json);
		return -ENOMEM;
	}
	int len = snprintf(json, cap, "{\"errorMessage\":\"%s\",\"errorType\":\"%s\",\"stackTrace\":[]}", m, type);
	fprintf(stderr, "[ERROR] %s: %s\n", type, msg ? msg : "the handler failed");
	int r = nx_invoke_done(g, tag, NX_S_HANDLER_ERROR, json, (size_t)len);
	free(m);
	free(json);
	return r;
}

int nx_serve(const char *runtime, nx_handler_fn fn, void *arg)
{
	struct nx_guest *g;
	struct nx_reply cfg;
	int r = nx_attach_env(&g);
	if (r < 0)
		return r;
	if ((r = nx_ready(g, runtime, &cfg)) < 0)
		return r;
	nx_reply_release(g, &cfg);
	for (;;) {
		struct nx_invocation inv;
		if ((r = nx_next_invocation(g, &inv, -1)) < 0)
			return r;
		char *result = NULL;
		size_t len = 0;
		int failed = fn(g, &inv, &result, &len, arg);
		nx_invocation_release(g, &inv);
		if (failed) {
			r = report_error(g, inv.tag, "HandlerError", result);
		} else if (len > NX_PAYLOAD_MAX) {
			r = report_error(g, inv.tag, "Function.ResponseSizeTooLarge",
			                 "Response payload size exceeded maximum allowed payload size (6291456 bytes).");
		} else {
			r = result ? nx_invoke_done(g, inv.tag, NX_S_OK, result, len)
			           : nx_invoke_done(g, inv.tag, NX_S_OK, "null", 4);
		}
		free(result);
		if (r < 0)
			return r;
	}
}
