/* SPDX-License-Identifier: MIT */
/*
 * The channel end to end, without a sandbox: nexusd's host side (chan.c +
 * s3.c, on a loop thread) and the guest's libnexus.so (this thread) share
 * one region, and every S3 operation goes to a real local s3rver.  Proves
 * the two sides agree on the ABI and the runtime protocol, and that every
 * host buffer the guest was handed comes back.  Also measures the channel's
 * null round trip.  Skipped loudly without s3rver.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/libnexus/libnexus.h"
#include "nexusd/chan.h"
#include "nexusd/loop.h"
#include "nexusd/s3.h"
#include "s3rver.h"

static struct nx_loop *L;
static struct nx_s3 *S3;
static struct nx_chan *C;
static struct nx_guest *G;
static pthread_t loop_thread;

struct owner { int ready, done, violations; char runtime[32]; uint64_t inv; char payload[128]; };
static struct owner O;

static void o_ready(void *o, const char *rt) { (void)o; O.ready++; snprintf(O.runtime, sizeof(O.runtime), "%s", rt); }
static void o_done(void *o, uint64_t id, int st, const void *p, size_t n)
{
	(void)o; (void)st;
	O.done++;
	O.inv = id;
	snprintf(O.payload, sizeof(O.payload), "%.*s", (int)n, (const char *)p);
}
static void o_violation(void *o, const char *why) { (void)o; O.violations++; fprintf(stderr, "violation: %s\n", why); }
static const struct nx_chan_ops OPS = { o_ready, o_done, o_violation };
static const char *const BUCKETS[] = { "test", "other", NULL };
#define READY_META "{\"function_name\":\"e2e\",\"handler\":\"m.h\",\"memory_mb\":128,\"timeout_s\":3,\"mode\":\"nexus\"}"

static void *loop_main(void *arg) { (void)arg; nx_loop_run(L); return NULL; }
static void stop(void *arg) { (void)arg; nx_loop_stop(L); }

static int setup(void **state)
{
	(void)state;
	if (skip_reason[0])
		return 0;
	memset(&O, 0, sizeof(O));
	L = nx_loop_new();
	struct nx_s3_config c = { .max_retries = 1 };
	snprintf(c.endpoint, sizeof(c.endpoint), "http://127.0.0.1:%d", s3rver_port);
	snprintf(c.region, sizeof(c.region), "us-east-1");
	snprintf(c.access_key, sizeof(c.access_key), "S3RVER");
	snprintf(c.secret_key, sizeof(c.secret_key), "S3RVER");
	S3 = nx_s3_new(L, &c);
	struct nx_chan_config cc = { .region_size = 16u << 20, .buckets = BUCKETS, .ready_meta_json = READY_META,
	                             .generation = 3 };
	C = nx_chan_new(L, S3, &cc, &OPS, NULL);
	if (!L || !S3 || !C)
		return -1;
	if (nx_attach_fds(nx_chan_region_fd(C), nx_chan_kick_host_fd(C), nx_chan_kick_guest_fd(C), &G) != 0)
		return -1;
	return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static int teardown(void **state)
{
	(void)state;
	if (!L)
		return 0;
	nx_loop_post(L, stop, NULL);
	pthread_join(loop_thread, NULL);
	nx_detach(G);
	nx_chan_destroy(C);
	nx_s3_destroy(S3);
	nx_loop_destroy(L);
	L = NULL;
	return 0;
}

static json_t *meta(const struct nx_reply *r)
{
	assert_non_null(r->meta);
	json_t *j = json_loadb(r->meta, r->meta_len, 0, NULL);
	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void post_invoke(void *arg)
{
	(void)arg;
	const char *ctx = "{\"aws_request_id\":\"req-1\"}";
	if (nx_chan_invoke(C, 77, "{\"n\":41}", 8, ctx) != 0)
		O.violations += 100;
}

static void test_channel_end_to_end(void **state)
{
	(void)state;
	if (skip_reason[0])
		skip();
	struct nx_reply r;
	/* READY: the completion's meta is the function config. */
	assert_int_equal(nx_ready(G, "c-test", &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	assert_int_equal(r.meta_len, strlen(READY_META));
	assert_memory_equal(r.meta, READY_META, r.meta_len);
	nx_reply_release(G, &r);
	assert_int_equal(nx_generation(G), 3);

	/* The channel's null round trip. */
	enum { N = 2000 };
	static uint64_t ns[N];
	for (int i = 0; i < N; i++) {
		uint64_t t0 = nx_now_ns();
		assert_int_equal(nx_nop(G), 0);
		ns[i] = nx_now_ns() - t0;
	}
	qsort(ns, N, sizeof(ns[0]), cmp_u64);
	print_message("NOP round trip over the channel: median %.1f us, min %.1f us, max %.1f us (%d runs)\n",
	              ns[N / 2] / 1e3, ns[0] / 1e3, ns[N - 1] / 1e3, N);

	/* PUT, GET (whole and ranged), HEAD */
	assert_int_equal(nx_s3_put(G, "test", "e2e/hello", "hello channel", 13, "text/plain", &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	json_t *m = meta(&r);
	char etag[64];
	snprintf(etag, sizeof(etag), "%s", jstr(m, "ETag"));
	assert_true(strlen(etag) > 2);
	json_decref(m);
	nx_reply_release(G, &r);

	assert_int_equal(nx_s3_get(G, "test", "e2e/hello", NULL, NULL, &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	assert_int_equal(r.body_len, 13);
	assert_memory_equal(r.body, "hello channel", 13);
	m = meta(&r);
	assert_int_equal(json_integer_value(json_object_get(m, "ContentLength")), 13);
	assert_string_equal(jstr(m, "ETag"), etag);
	assert_string_equal(jstr(m, "ContentType"), "text/plain");
	assert_non_null(jstr(m, "LastModified"));
	json_decref(m);
	nx_reply_release(G, &r);

	assert_int_equal(nx_s3_get(G, "test", "e2e/hello", "bytes=6-12", NULL, &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, "channel", 7);
	m = meta(&r);
	assert_string_equal(jstr(m, "ContentRange"), "bytes 6-12/13");
	json_decref(m);
	nx_reply_release(G, &r);

	assert_int_equal(nx_s3_head(G, "test", "e2e/hello", &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	assert_int_equal(r.body_len, 0);
	nx_reply_release(G, &r);

	/* 3 MiB through the region both ways (host buffers get their pages back). */
	size_t big = 3u << 20;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 11));
	assert_int_equal(nx_s3_put(G, "test", "e2e/big", data, big, NULL, &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	nx_reply_release(G, &r);
	assert_int_equal(nx_s3_get(G, "test", "e2e/big", NULL, NULL, &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	assert_int_equal(r.body_len, big);
	assert_true(memcmp(r.body, data, big) == 0);
	nx_reply_release(G, &r);
	free(data);

	/* Errors */
	assert_int_equal(nx_s3_get(G, "test", "e2e/missing", NULL, NULL, &r), 0);
	assert_int_equal(r.status, NX_S_STORAGE_ERROR);
	m = meta(&r);
	assert_string_equal(jstr(m, "Code"), "NoSuchKey");
	assert_int_equal(json_integer_value(json_object_get(m, "HTTPStatusCode")), 404);
	json_decref(m);
	nx_reply_release(G, &r);
	assert_int_equal(nx_s3_head(G, "test", "e2e/missing", &r), 0);
	m = meta(&r);
	assert_string_equal(jstr(m, "Code"), "NoSuchKey");
	json_decref(m);
	nx_reply_release(G, &r);
	assert_int_equal(nx_s3_get(G, "secret", "k", NULL, NULL, &r), 0);
	assert_int_equal(r.status, NX_S_ACCESS_DENIED);
	m = meta(&r);
	assert_string_equal(jstr(m, "Code"), "AccessDenied");
	json_decref(m);
	nx_reply_release(G, &r);

	/* LIST, COPY, DELETE */
	struct nx_list_args la = { .prefix = "e2e/", .max_keys = 1 };
	assert_int_equal(nx_s3_list(G, "test", &la, &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	m = meta(&r);
	assert_true(json_is_true(json_object_get(m, "IsTruncated")));
	assert_string_equal(jstr(json_array_get(json_object_get(m, "Contents"), 0), "Key"), "e2e/big");
	char token[512];
	snprintf(token, sizeof(token), "%s", jstr(m, "NextContinuationToken"));
	json_decref(m);
	nx_reply_release(G, &r);
	la.cont_token = token;
	assert_int_equal(nx_s3_list(G, "test", &la, &r), 0);
	m = meta(&r);
	assert_string_equal(jstr(json_array_get(json_object_get(m, "Contents"), 0), "Key"), "e2e/hello");
	json_decref(m);
	nx_reply_release(G, &r);

	assert_int_equal(nx_s3_copy(G, "test", "e2e/hello", "other", "e2e/copy", &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	m = meta(&r);
	assert_non_null(jstr(m, "ETag"));
	json_decref(m);
	nx_reply_release(G, &r);
	assert_int_equal(nx_s3_delete(G, "other", "e2e/copy", &r), 0);
	assert_int_equal(r.status, NX_S_OK);
	nx_reply_release(G, &r);
	assert_int_equal(nx_s3_head(G, "other", "e2e/copy", &r), 0);
	assert_int_equal(r.status, NX_S_STORAGE_ERROR);
	nx_reply_release(G, &r);

	/* An invocation: host -> guest -> host. */
	assert_int_equal(nx_loop_post(L, post_invoke, NULL), 0);
	struct nx_invocation inv;
	assert_int_equal(nx_next_invocation(G, &inv, 5000), 0);
	assert_int_equal(inv.tag, 77);
	assert_int_equal(inv.event_len, 8);
	assert_memory_equal(inv.event, "{\"n\":41}", 8);
	assert_memory_equal(inv.context, "{\"aws_request_id\":\"req-1\"}", inv.context_len);
	nx_invocation_release(G, &inv);
	assert_int_equal(nx_invoke_done(G, 77, NX_S_OK, "{\"r\":42}", 8), 0);

	/* FIFO: once this NOP completes, every release above was processed. */
	assert_int_equal(nx_nop(G), 0);
	nx_loop_post(L, stop, NULL);
	pthread_join(loop_thread, NULL);
	struct nx_chan_stats st;
	nx_chan_stats(C, &st);
	print_message("channel: %lu requests, %lu completions, %lu invalid, host arena peak %lu bytes\n",
	              (unsigned long)st.requests, (unsigned long)st.completions, (unsigned long)st.invalid,
	              (unsigned long)st.host_arena_peak);
	assert_int_equal(st.host_arena_used, 0);   /* everything handed out came back */
	assert_int_equal(st.invalid, 0);
	assert_int_equal(O.violations, 0);
	assert_int_equal(O.ready, 1);
	assert_string_equal(O.runtime, "c-test");
	assert_int_equal(O.done, 1);
	assert_int_equal(O.inv, 77);
	assert_string_equal(O.payload, "{\"r\":42}");
	struct nx_s3_stats s3st;
	nx_s3_stats(S3, &s3st);
	assert_int_equal(s3st.bytes_out, 13 + big);
	pthread_create(&loop_thread, NULL, loop_main, NULL);   /* teardown stops it again */
}

/* Several guest threads at once (libnexus is thread-safe): many storage
 * requests in flight on one channel, completions out of order. */
struct worker { int id, ok; };

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char key[64], val[64];
	for (int i = 0; i < 25; i++) {
		struct nx_reply r;
		snprintf(key, sizeof(key), "conc/%d/%d", w->id, i);
		int n = snprintf(val, sizeof(val), "value %d of worker %d", i, w->id);
		if (nx_s3_put(G, "test", key, val, (size_t)n, NULL, &r) != 0 || r.status != NX_S_OK)
			return NULL;
		nx_reply_release(G, &r);
		if (nx_s3_get(G, "test", key, NULL, NULL, &r) != 0 || r.status != NX_S_OK ||
		    r.body_len != (uint64_t)n || memcmp(r.body, val, (size_t)n) != 0)
			return NULL;
		nx_reply_release(G, &r);
		if (nx_nop(G) != 0)
			return NULL;
		w->ok++;
	}
	return NULL;
}

static void test_concurrent_guest_threads(void **state)
{
	(void)state;
	if (skip_reason[0])
		skip();
	enum { T = 6 };
	pthread_t th[T];
	struct worker w[T];
	for (int i = 0; i < T; i++) {
		w[i] = (struct worker){ .id = i };
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 25);
	}
	assert_int_equal(nx_nop(G), 0);   /* FIFO: all releases processed */
	nx_loop_post(L, stop, NULL);
	pthread_join(loop_thread, NULL);
	struct nx_chan_stats st;
	nx_chan_stats(C, &st);
	assert_int_equal(st.host_arena_used, 0);
	assert_int_equal(st.invalid, 0);
	assert_int_equal(O.violations, 0);
	pthread_create(&loop_thread, NULL, loop_main, NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	start_s3rver();
	if (skip_reason[0]) {
		printf("SKIP-REASON: %s\n", skip_reason);
		fprintf(stderr, "!! SKIPPING the channel end-to-end test: %s\n", skip_reason);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_channel_end_to_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_guest_threads, setup, teardown),
	};
	int r = cmocka_run_group_tests_name("chan-e2e", tests, NULL, NULL);
	stop_s3rver();
	return r;
}
