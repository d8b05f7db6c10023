/* SPDX-License-Identifier: MIT */
/*
 * nx_serve: the invocation loop for C functions (the Python runtime's loop,
 * in C): READY, then { next invocation -> handler -> INVOKE_DONE } forever.
 * After a snapshot restore it sets the guest's wall clock from the first
 * invocation, as the Python runtime does (clock_after_restore below).
 */
#include "libnexus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A microVM restored from a snapshot comes back with the wall clock of the
 * moment the snapshot was taken (docs/vmm.md, "Clock": monotonic, never
 * jumping, but lagging by the snapshot's age).  The rule is the Python
 * runtime's (nexusrt/runtime.py, sync_clock_after_restore): once per
 * re-attach (libnexus counts them), the first invocation's context carries
 * the host's time as its deadline minus the function's timeout (nexusd
 * computes the deadline that way); when that differs from the guest's clock
 * by a second or more, the clock is set to it.  No deadline or no timeout_s
 * in the READY config: nothing is done.  Returns 1 with *set_ms = the time to
 * set, else 0.  Pure, so the host test can drive it (tests/test_serve_clock.c). */
static int clock_after_restore(uint64_t reattaches, uint64_t *seen, const char *ctx, size_t ctx_len,
                               double timeout_s, int64_t now_ms, int64_t *set_ms)
{
	if (reattaches == *seen)
		return 0;
	*seen = reattaches;
	char num[32], *end;
	if (timeout_s < 0 || !ctx || nx_meta_field(ctx, ctx_len, "deadline_ms", num, sizeof num) <= 0)
		return 0;
	errno = 0;
	double deadline = strtod(num, &end);
	if (*end || errno || deadline != deadline || deadline < 0 || deadline > 9e15)
		return 0;   /* not a number nexusd would send */
	int64_t host_ms = (int64_t)(deadline - 1000.0 * timeout_s);
	int64_t diff = host_ms - now_ms;
	if (host_ms <= 0 || (diff < 1000 && diff > -1000))
		return 0;
	*set_ms = host_ms;
	return 1;
}

/* timeout_s of the READY config (a number), or -1. */
static double config_timeout_s(const struct nx_reply *cfg)
{
	char num[32], *end;
	if (!cfg->meta || nx_meta_field(cfg->meta, cfg->meta_len, "timeout_s", num, sizeof num) <= 0)
		return -1;
	double t = strtod(num, &end);
	return *end || t != t || t < 0 || t > 1e6 ? -1 : t;
}

static int64_t realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* clock_settime(CLOCK_REALTIME): the runtime is root inside its microVM.  The
 * host test replaces it (it must never set the host's clock). */
#ifndef NX_SERVE_SET_REALTIME
static int set_realtime(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	return clock_settime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0;
}
#define NX_SERVE_SET_REALTIME set_realtime
#endif

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
	double timeout_s = config_timeout_s(&cfg);
	nx_reply_release(g, &cfg);
	uint64_t reattaches_seen = nx_reattach_count(g);
	for (;;) {
		struct nx_invocation inv;
		if ((r = nx_next_invocation(g, &inv, -1)) < 0)
			return r;
		int64_t set_ms;
		if (clock_after_restore(nx_reattach_count(g), &reattaches_seen, inv.context, inv.context_len, timeout_s,
		                        realtime_ms(), &set_ms)) {
			int e = NX_SERVE_SET_REALTIME(set_ms);
			if (e < 0)
				fprintf(stderr, "[WARN] nexus runtime: cannot set the clock after a snapshot restore: %s\n",
				        strerror(-e));
		}
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
