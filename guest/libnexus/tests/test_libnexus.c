/* SPDX-License-Identifier: MIT */
/*
 * libnexus against the C fake host (fakehost.c): attach checks, every
 * request type, invocations, buffer accounting, many threads, a full ring, a
 * broken host — and the null round trip, measured and printed.
 * Prints one line per check and ends with "passed=N failed=N".
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../libnexus.h"
#include "fakehost.h"

#include "check.h"

static struct nx_guest *attach(struct fakehost *h)
{
	int r, k, g;
	struct nx_guest *gst = NULL;
	fakehost_fds(h, &r, &k, &g);
	int rc = nx_attach_fds(r, k, g, &gst);
	CHECK(rc == 0, "attach: %d", rc);
	return gst;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Let the host catch up before its books are checked.  A RELEASE rings no
 * doorbell (the host takes it before the next request), so post one. */
static void settle(struct nx_guest *g)
{
	CHECK(nx_nop(g) == 0, "a NOP after the releases");
	usleep(20000);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_attach_checks(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	int r, k, g;
	struct nx_guest *gst = NULL;
	fakehost_fds(h, &r, &k, &g);
	uint32_t *magic = fakehost_region(h);
	uint32_t saved = *magic;
	*magic = 0x12345678;
	CHECK(nx_attach_fds(r, k, g, &gst) == -EPROTO, "bad magic must be refused");
	*magic = saved;
	uint16_t *abi = (uint16_t *)((char *)fakehost_region(h) + 4);
	*abi = NX_ABI_MAJOR + 1;
	CHECK(nx_attach_fds(r, k, g, &gst) == -EPROTO, "other ABI major must be refused");
	*abi = NX_ABI_MAJOR;
	CHECK(nx_attach_fds(-1, k, g, &gst) == -EBADF, "bad fd");
	unsetenv("NEXUS_REGION_FD");
	CHECK(nx_attach_env(&gst) == -ENOENT, "no environment: -ENOENT");
	char buf[16];
	/* attach_env adopts the fds; give it duplicates so the host keeps its own. */
	int r2 = dup(r), k2 = dup(k), g2 = dup(g);
	snprintf(buf, sizeof buf, "%d", r2);
	setenv("NEXUS_REGION_FD", buf, 1);
	snprintf(buf, sizeof buf, "%d", k2);
	setenv("NEXUS_KICK_HOST_FD", buf, 1);
	snprintf(buf, sizeof buf, "%d", g2);
	setenv("NEXUS_KICK_GUEST_FD", buf, 1);
	int rc = nx_attach_env(&gst);
	CHECK(rc == 0, "attach from env: %d", rc);
	if (rc == 0) {
		CHECK(nx_generation(gst) == 7, "generation from header");
		CHECK(nx_region_size(gst) == 8u << 20, "region size");
		CHECK(nx_nop(gst) == 0, "nop after env attach");
		nx_detach(gst);
	}
	fakehost_destroy(h);
}

static void test_requests(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	struct nx_reply rep;
	char v[256];

	CHECK(nx_ready(g, "c", &rep) == 0 && rep.status == NX_S_OK, "ready");
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "function_name", v, sizeof v) == 4 && !strcmp(v, "c-fn"),
	      "config function_name: %s", v);
	nx_reply_release(g, &rep);

	CHECK(nx_s3_put(g, "test-bucket", "k1", "hello world", 11, "text/plain", &rep) == 0 && rep.status == NX_S_OK,
	      "put");
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "ETag", v, sizeof v) == 4 && !strcmp(v, "\"e1\""), "etag %s", v);
	nx_reply_release(g, &rep);

	CHECK(nx_s3_get(g, "test-bucket", "k1", NULL, NULL, &rep) == 0 && rep.status == NX_S_OK, "get");
	CHECK(rep.body_len == 11 && !memcmp(rep.body, "hello world", 11), "get body");
	CHECK((const char *)rep.body >= (const char *)nx_region_base(g) &&
	      (const char *)rep.body < (const char *)nx_region_base(g) + nx_region_size(g), "body is in the region");
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "ContentLength", v, sizeof v) == 2 && !strcmp(v, "11"),
	      "content length %s", v);
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "ContentType", v, sizeof v) > 0 && !strcmp(v, "text/plain"),
	      "content type %s", v);
	nx_reply_release(g, &rep);

	CHECK(nx_s3_get(g, "test-bucket", "k1", "bytes=6-10", NULL, &rep) == 0 && rep.body_len == 5 &&
	      !memcmp(rep.body, "world", 5), "ranged get");
	nx_reply_release(g, &rep);

	CHECK(nx_s3_head(g, "test-bucket", "k1", &rep) == 0 && rep.status == NX_S_OK && !rep.body, "head");
	nx_reply_release(g, &rep);

	CHECK(nx_s3_get(g, "test-bucket", "missing", NULL, NULL, &rep) == 0 && rep.status == NX_S_STORAGE_ERROR,
	      "missing key is a storage error");
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "Code", v, sizeof v) > 0 && !strcmp(v, "NoSuchKey"), "code %s", v);
	nx_reply_release(g, &rep);

	CHECK(nx_s3_get(g, "other", "k", NULL, NULL, &rep) == 0 && rep.status == NX_S_ACCESS_DENIED, "access denied");
	nx_reply_release(g, &rep);

	CHECK(nx_s3_copy(g, "test-bucket", "k1", "test-bucket", "k2", &rep) == 0 && rep.status == NX_S_OK, "copy");
	nx_reply_release(g, &rep);

	struct nx_list_args la = { .prefix = "k", .max_keys = 10 };
	CHECK(nx_s3_list(g, "test-bucket", &la, &rep) == 0 && rep.status == NX_S_OK, "list");
	CHECK(rep.meta && memmem(rep.meta, rep.meta_len, "\"k2\"", 4), "list sees the copy");
	CHECK(nx_meta_field(rep.meta, rep.meta_len, "KeyCount", v, sizeof v) > 0 && !strcmp(v, "2"), "keycount %s", v);
	nx_reply_release(g, &rep);

	CHECK(nx_s3_delete(g, "test-bucket", "k2", &rep) == 0 && rep.status == NX_S_OK, "delete");
	nx_reply_release(g, &rep);

	/* Zero-copy PUT: the body is written straight into a guest-arena buffer. */
	uint64_t off;
	void *p;
	CHECK(nx_alloc(g, 1 << 20, &off, &p) == 0, "alloc 1 MiB");
	memset(p, 'z', 1 << 20);
	CHECK(nx_s3_put_buf(g, "test-bucket", "big", off, 1 << 20, NULL, &rep) == 0 && rep.status == NX_S_OK, "put_buf");
	nx_reply_release(g, &rep);
	CHECK(nx_free(g, off) == 0, "free");
	CHECK(nx_free(g, off) == -ENOENT, "double free refused");
	CHECK(nx_s3_get(g, "test-bucket", "big", NULL, NULL, &rep) == 0 && rep.body_len == 1 << 20 &&
	      rep.body[12345] == 'z', "big get");
	nx_reply_release(g, &rep);

	CHECK(nx_s3_get(g, "", "k", NULL, NULL, &rep) == -EINVAL, "empty bucket refused locally");
	char longkey[5000];
	memset(longkey, 'a', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	CHECK(nx_s3_get(g, "test-bucket", longkey, NULL, NULL, &rep) == -E2BIG, "over-long key refused locally");
	CHECK(nx_alloc(g, 1ull << 40, &off, NULL) == -ENOSPC, "arena exhaustion is -ENOSPC");

	settle(g);
	CHECK(fakehost_live_buffers(h) == 0, "every host buffer released (%zu live)", fakehost_live_buffers(h));
	CHECK(fakehost_violations(h) == 0, "no protocol violations (%u)", fakehost_violations(h));
	CHECK(!strcmp(nx_status_name(NX_S_ACCESS_DENIED), "ACCESS_DENIED") && !strcmp(nx_status_name(99), "UNKNOWN"),
	      "status names");
	nx_detach(g);
	fakehost_destroy(h);
}

static void test_invocations(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	struct nx_invocation inv;
	uint64_t t0 = now_ns();
	CHECK(nx_next_invocation(g, &inv, 50) == -ETIMEDOUT, "no invocation: timeout");
	CHECK(now_ns() - t0 >= 45000000ull, "the timeout was waited");
	for (uint64_t tag = 100; tag < 110; tag++) {
		fakehost_invoke(h, tag, "{\"n\":1}", "{\"aws_request_id\":\"r\"}");
		int rc = nx_next_invocation(g, &inv, 2000);
		CHECK(rc == 0 && inv.tag == tag, "invocation %d tag %lu", rc, (unsigned long)inv.tag);
		if (rc)
			break;
		CHECK(inv.event_len == 7 && !memcmp(inv.event, "{\"n\":1}", 7), "event");
		CHECK(inv.context_len > 0 && memmem(inv.context, inv.context_len, "aws_request_id", 14), "context");
		nx_invocation_release(g, &inv);
		const char *res = tag == 105 ? "{\"errorMessage\":\"x\"}" : "42";
		CHECK(nx_invoke_done(g, tag, tag == 105 ? NX_S_HANDLER_ERROR : NX_S_OK, res, strlen(res)) == 0, "done");
		char buf[64];
		size_t len = sizeof buf;
		int st = fakehost_wait_done(h, tag, buf, &len, 2000);
		CHECK(st == (tag == 105 ? NX_S_HANDLER_ERROR : NX_S_OK) && len == strlen(res) && !memcmp(buf, res, len),
		      "host got result (status %d)", st);
	}
	settle(g);
	CHECK(fakehost_live_buffers(h) == 0, "invocation buffers released");
	nx_detach(g);
	fakehost_destroy(h);
}

struct thr {
	struct nx_guest *g;
	int n, errors;
};

struct rel_args {
	struct nx_guest *g;
	struct nx_reply *r;
	int n;
};

static void *release_all(void *a)
{
	struct rel_args *ra = a;
	for (int i = 0; i < ra->n; i++)
		nx_reply_release(ra->g, &ra->r[i]);
	return NULL;
}

static void *nop_thread(void *arg)
{
	struct thr *t = arg;
	for (int i = 0; i < t->n; i++) {
		if (i % 10 == 0) {
			struct nx_reply rep;
			if (nx_s3_head(t->g, "test-bucket", "k", &rep) != 0 || rep.status != NX_S_STORAGE_ERROR)
				t->errors++;
			nx_reply_release(t->g, &rep);
		} else if (nx_nop(t->g) != 0) {
			t->errors++;
		}
	}
	return NULL;
}

static void test_threads_and_full_ring(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	pthread_t th[6];
	struct thr t[6];
	for (int i = 0; i < 6; i++) {
		t[i] = (struct thr){ .g = g, .n = 2000 };
		pthread_create(&th[i], NULL, nop_thread, &t[i]);
	}
	int errors = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		errors += t[i].errors;
	}
	CHECK(errors == 0, "6 threads x 2000 requests: %d errors", errors);

	/* More releases than ring slots while the host is not consuming: the
	 * producer must wait for room, not fail or overwrite. */
	struct nx_reply reps[300];
	int got = 0;
	for (int i = 0; i < 300; i++) {
		if (nx_s3_get(g, "test-bucket", "missing", NULL, NULL, &reps[i]) == 0)
			got++;
	}
	CHECK(got == 300, "300 replies held");
	fakehost_pause(h, true);
	pthread_t rel;
	struct rel_args ra = { g, reps, 300 };
	pthread_create(&rel, NULL, release_all, &ra);
	usleep(50000);
	fakehost_pause(h, false);
	pthread_join(rel, NULL);
	settle(g);
	CHECK(fakehost_live_buffers(h) == 0, "all 300 released through a full ring (%zu live)",
	      fakehost_live_buffers(h));
	CHECK(fakehost_violations(h) == 0, "no violations (%u)", fakehost_violations(h));
	nx_detach(g);
	fakehost_destroy(h);
}

static void test_broken_host(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	CHECK(nx_nop(g) == 0, "nop before");
	fakehost_break_ring(h);
	CHECK(nx_nop(g) == -EPROTO, "impossible ring index: -EPROTO");
	CHECK(nx_nop(g) == -EPROTO, "and it stays broken");
	nx_detach(g);
	fakehost_destroy(h);
}

static void test_meta_field(void)
{
	const char *j = "{\"a\": {\"ETag\": \"inner\"}, \"ETag\": \"\\\"x\\\"\", \"N\": 12, \"L\": [1, 2], \"S\": \"a\\nb\"}";
	char v[32];
	CHECK(nx_meta_field(j, strlen(j), "ETag", v, sizeof v) == 3 && !strcmp(v, "\"x\""), "top-level only: %s", v);
	CHECK(nx_meta_field(j, strlen(j), "N", v, sizeof v) == 2 && !strcmp(v, "12"), "number");
	CHECK(nx_meta_field(j, strlen(j), "S", v, sizeof v) == 3 && !strcmp(v, "a\nb"), "escape");
	CHECK(nx_meta_field(j, strlen(j), "missing", v, sizeof v) == -ENOENT, "absent");
	CHECK(nx_meta_field(j, strlen(j), "ETag", v, 2) == -E2BIG, "too small");
	CHECK(nx_meta_field("{\"ETag", 6, "ETag", v, sizeof v) == -ENOENT, "truncated");
}

static void bench_nop(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	enum { ROUNDS = 7, N = 20000 };
	uint64_t per[ROUNDS];
	for (int i = 0; i < 1000; i++)
		nx_nop(g);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < N; i++)
			nx_nop(g);
		per[r] = (now_ns() - t0) / N;
	}
	qsort(per, ROUNDS, sizeof per[0], cmp_u64);
	printf("bench: libnexus null round trip (C fake host thread, spinning): median %.2f us, min %.2f, max %.2f "
	       "(%d rounds x %d)\n", per[ROUNDS / 2] / 1000.0, per[0] / 1000.0, per[ROUNDS - 1] / 1000.0, ROUNDS, N);
	CHECK(per[ROUNDS / 2] < 1000000, "null round trip under 1 ms");
	nx_detach(g);
	fakehost_destroy(h);
}

/* A snapshot restore as the guest sees it: the region's contents are replaced
 * by a fresh region (generation + 1) under the same mapping. */
struct regen { struct fakehost *h; int delay_ms; bool invoke; };

static void *regen_later(void *arg)
{
	struct regen *rg = arg;
	usleep((useconds_t)rg->delay_ms * 1000);
	uint64_t before = fakehost_readies(rg->h);
	fakehost_new_generation(rg->h);
	for (int i = 0; i < 2000 && fakehost_readies(rg->h) == before; i++)
		usleep(1000);
	if (rg->invoke)
		fakehost_invoke(rg->h, 200, "{\"after\":\"restore\"}", "{}");
	return NULL;
}

struct nop_arg { struct nx_guest *g; int rc; };
static void *nop_once(void *arg)
{
	struct nop_arg *na = arg;
	na->rc = nx_nop(na->g);
	return NULL;
}

static void test_reattach(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	struct nx_reply rep;
	CHECK(nx_ready(g, "c-test", &rep) == 0 && rep.status == NX_S_OK, "READY");
	nx_reply_release(g, &rep);
	CHECK(nx_generation(g) == 7 && nx_reattach_count(g) == 0, "generation %lu", (unsigned long)nx_generation(g));

	/* 1. Blocked waiting for an invocation: wakes, re-attaches, says READY
	 *    again, and the next invocation comes from the fresh region. */
	pthread_t t;
	struct regen rg = { h, 50, true };
	pthread_create(&t, NULL, regen_later, &rg);
	struct nx_invocation inv;
	int rc = nx_next_invocation(g, &inv, 5000);
	pthread_join(t, NULL);
	CHECK(rc == 0 && inv.tag == 200, "invocation after re-attach: %d tag %lu", rc, (unsigned long)inv.tag);
	CHECK(nx_generation(g) == 8 && nx_reattach_count(g) == 1, "re-attached to generation %lu (%lu times)",
	      (unsigned long)nx_generation(g), (unsigned long)nx_reattach_count(g));
	CHECK(fakehost_readies(h) == 2, "READY sent again (%lu)", (unsigned long)fakehost_readies(h));
	if (rc == 0) {
		CHECK(inv.event_len == 19 && !memcmp(inv.event, "{\"after\":\"restore\"}", 19), "event of the fresh region");
		nx_invocation_release(g, &inv);
		CHECK(nx_invoke_done(g, 200, NX_S_OK, "1", 1) == 0, "INVOKE_DONE after re-attach");
		char buf[8];
		size_t len = sizeof buf;
		CHECK(fakehost_wait_done(h, 200, buf, &len, 2000) == NX_S_OK && len == 1, "host got the result");
	}

	/* 2. A request in flight when the region changes fails with -ESTALE. */
	fakehost_pause(h, true);
	struct nop_arg na = { g, 1 };
	pthread_create(&t, NULL, nop_once, &na);
	usleep(50000);
	fakehost_new_generation(h);    /* the NOP vanishes with the old region */
	fakehost_pause(h, false);
	pthread_join(t, NULL);
	for (int i = 0; i < 2000 && fakehost_readies(h) < 3; i++)
		usleep(1000);
	CHECK(na.rc == -ESTALE, "request in flight across the change: %d", na.rc);
	CHECK(nx_generation(g) == 9, "generation %lu", (unsigned long)nx_generation(g));

	/* 3. Noticed by a post (nobody was waiting): that request is void, the next works. */
	uint64_t readies = fakehost_readies(h);
	fakehost_new_generation(h);
	CHECK(nx_nop(g) == -ESTALE, "first request after an unnoticed change is void");
	CHECK(nx_nop(g) == 0, "the channel works on the fresh region");
	CHECK(nx_generation(g) == 10 && fakehost_readies(h) == readies + 1, "generation %lu, READY again",
	      (unsigned long)nx_generation(g));
	settle(g);
	CHECK(fakehost_violations(h) == 0, "the fresh host saw no violation (%u)", fakehost_violations(h));
	CHECK(fakehost_live_buffers(h) == 0, "no host buffer left (%zu)", fakehost_live_buffers(h));
	nx_detach(g);
	fakehost_destroy(h);
}

/* INVOKE_DONE does not wait for its ack: the next wait files it and frees the
 * result buffer.  Against a host that rings for the ack and one that does not
 * (nexusd).  64 results of 1 MiB would not fit in the 4 MiB guest arena if a
 * result buffer were kept. */
static void test_invoke_done_no_wait(void)
{
	static char big[1 << 20];
	memset(big, '7', sizeof big);
	for (int quiet = 0; quiet < 2; quiet++) {
		struct fakehost *h = fakehost_new(8u << 20);
		fakehost_ack_mode(h, quiet, NX_S_OK);
		struct nx_guest *g = attach(h);
		if (!g)
			return;
		int bad = 0;
		for (uint64_t tag = 1; tag <= 64 && !bad; tag++) {
			struct nx_invocation inv;
			fakehost_invoke(h, tag, "{}", "{}");
			bad |= nx_next_invocation(g, &inv, 2000) != 0 || inv.tag != tag;
			bad |= nx_invoke_done_unacked(g) != 0;    /* the last ack came with this INVOKE */
			nx_invocation_release(g, &inv);
			int rc = nx_invoke_done(g, tag, NX_S_OK, big, sizeof big);
			bad |= rc != 0 || nx_invoke_done_unacked(g) != 1;
			char buf[8];
			size_t len = sizeof buf;
			bad |= fakehost_wait_done(h, tag, buf, &len, 2000) != NX_S_OK || len != sizeof buf || buf[0] != '7';
			if (bad)
				printf("  invocation %lu: rc %d, unacked %u\n", (unsigned long)tag, rc, nx_invoke_done_unacked(g));
		}
		CHECK(!bad, "64 invocations with 1 MiB results, quiet acks %d", quiet);
		CHECK(nx_nop(g) == 0 && nx_invoke_done_unacked(g) == 0, "a request files the last ack (quiet %d)", quiet);
		CHECK(nx_invoke_done_failures(g, NULL) == 0, "no refused result");
		/* A refused result (NO_SPACE) is not lost: logged and counted when seen. */
		fakehost_ack_mode(h, quiet, NX_S_NO_SPACE);
		struct nx_invocation inv;
		fakehost_invoke(h, 100, "{}", "{}");
		CHECK(nx_next_invocation(g, &inv, 2000) == 0 && inv.tag == 100, "invocation 100");
		nx_invocation_release(g, &inv);
		CHECK(nx_invoke_done(g, 100, NX_S_OK, "1", 1) == 0, "INVOKE_DONE returns before the ack");
		uint32_t st = 0;
		CHECK(nx_nop(g) == 0 && nx_invoke_done_failures(g, &st) == 1 && st == NX_S_NO_SPACE,
		      "the refused ack is counted (status %u)", st);
		settle(g);
		CHECK(fakehost_live_buffers(h) == 0 && fakehost_violations(h) == 0, "no host buffer left, no violation");
		nx_detach(g);
		fakehost_destroy(h);
	}
}

/* Resume the paused host after 100 ms (it then acknowledges the INVOKE_DONE
 * the guest posted, quietly: the guest is asleep by then), and once the host
 * has the result, post invocation tag delay_ms later.  (Posting it before the
 * host has the result would be a host that breaks its own order: the guest
 * would take the INVOKE, then sleep through the quiet ack.) */
/* A RELEASE rings no doorbell, but one posted after the invocation's last
 * request (a garbage-collected body) must not sit in the ring while the guest
 * sleeps until its next invocation: the wait rings for it. */
static void test_late_release_reaches_sleeping_host(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	struct nx_reply rep;
	CHECK(nx_s3_put(g, "test-bucket", "late", "0123456789", 10, NULL, &rep) == 0, "put");
	nx_reply_release(g, &rep);
	fakehost_idle_poll(h, 10000);    /* from here on only a doorbell wakes the host */
	struct nx_invocation inv;
	fakehost_invoke(h, 1, "{}", "{}");
	CHECK(nx_next_invocation(g, &inv, 2000) == 0 && inv.tag == 1, "invocation 1");
	nx_invocation_release(g, &inv);
	CHECK(nx_s3_get(g, "test-bucket", "late", NULL, NULL, &rep) == 0 && rep.body_len == 10, "get");
	CHECK(nx_invoke_done(g, 1, NX_S_OK, "1", 1) == 0, "done");
	usleep(20000);                   /* the host takes INVOKE_DONE and goes back to sleep */
	nx_reply_release(g, &rep);       /* late: after INVOKE_DONE, no doorbell */
	CHECK(nx_next_invocation(g, &inv, 100) == -ETIMEDOUT, "no invocation");
	CHECK(fakehost_live_buffers(h) == 0, "the sleeping host got the late releases (%zu live)",
	      fakehost_live_buffers(h));
	fakehost_idle_poll(h, 50);
	CHECK(fakehost_violations(h) == 0, "no violation");
	nx_detach(g);
	fakehost_destroy(h);
}

struct invoke_later { struct fakehost *h; uint64_t tag; int delay_ms; int status; };
static void *invoke_later(void *arg)
{
	struct invoke_later *il = arg;
	usleep(100000);
	fakehost_pause(il->h, false);
	char buf[8];
	size_t len = sizeof buf;
	il->status = fakehost_wait_done(il->h, 1, buf, &len, 5000);
	usleep((useconds_t)il->delay_ms * 1000);
	fakehost_invoke(il->h, il->tag, "{}", "{}");
	return NULL;
}

/* An older runtime that waits for the ack (NEXUS_INVOKE_DONE_WAIT=1 gives the
 * old behaviour) against a host that does not ring for it: it gets the ack
 * with the next invocation's doorbell, and that invocation is queued. */
static void test_invoke_done_old_waiting_guest(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	fakehost_ack_mode(h, true, NX_S_OK);
	setenv("NEXUS_INVOKE_DONE_WAIT", "1", 1);
	struct nx_guest *g = attach(h);
	unsetenv("NEXUS_INVOKE_DONE_WAIT");
	if (!g)
		return;
	struct nx_invocation inv;
	fakehost_invoke(h, 1, "{}", "{}");
	CHECK(nx_next_invocation(g, &inv, 2000) == 0 && inv.tag == 1, "invocation 1");
	nx_invocation_release(g, &inv);
	pthread_t t;
	struct invoke_later il = { h, 2, 100, -1 };
	fakehost_pause(h, true);   /* so the ack cannot come while the guest still spins */
	pthread_create(&t, NULL, invoke_later, &il);
	uint64_t t0 = now_ns();
	CHECK(nx_invoke_done(g, 1, NX_S_OK, "42", 2) == 0, "waiting INVOKE_DONE");
	uint64_t waited = now_ns() - t0;
	pthread_join(t, NULL);
	CHECK(waited >= 190000000ull, "it waited for the next doorbell (%.1f ms)", waited / 1e6);
	CHECK(nx_invoke_done_unacked(g) == 0, "nothing left unacknowledged");
	CHECK(nx_next_invocation(g, &inv, 0) == 0 && inv.tag == 2, "the next invocation was queued meanwhile");
	nx_invocation_release(g, &inv);
	CHECK(il.status == NX_S_OK, "the host got the result");
	settle(g);
	CHECK(fakehost_live_buffers(h) == 0 && fakehost_violations(h) == 0, "no host buffer left, no violation");
	nx_detach(g);
	fakehost_destroy(h);
}

/* An unacknowledged INVOKE_DONE across a region change (snapshot restore):
 * dropped with the old region, nothing freed twice, the fresh region works. */
static void test_invoke_done_unacked_reattach(void)
{
	struct fakehost *h = fakehost_new(8u << 20);
	fakehost_ack_mode(h, true, NX_S_OK);
	struct nx_guest *g = attach(h);
	if (!g)
		return;
	struct nx_reply rep;
	CHECK(nx_ready(g, "c-test", &rep) == 0, "READY");
	nx_reply_release(g, &rep);
	struct nx_invocation inv;
	fakehost_invoke(h, 1, "{}", "{}");
	CHECK(nx_next_invocation(g, &inv, 2000) == 0 && inv.tag == 1, "invocation 1");
	nx_invocation_release(g, &inv);
	CHECK(nx_invoke_done(g, 1, NX_S_OK, "1", 1) == 0 && nx_invoke_done_unacked(g) == 1, "done, not acknowledged");
	char buf[8];
	size_t len = sizeof buf;
	CHECK(fakehost_wait_done(h, 1, buf, &len, 2000) == NX_S_OK, "the host got the result");
	pthread_t t;
	struct regen rg = { h, 20, true };
	pthread_create(&t, NULL, regen_later, &rg);
	int rc = nx_next_invocation(g, &inv, 5000);
	pthread_join(t, NULL);
	CHECK(rc == 0 && inv.tag == 200 && nx_reattach_count(g) == 1, "invocation from the fresh region: %d", rc);
	CHECK(nx_invoke_done_unacked(g) == 0 && nx_invoke_done_failures(g, NULL) == 0, "the old ack was dropped");
	if (rc == 0) {
		nx_invocation_release(g, &inv);
		CHECK(nx_invoke_done(g, 200, NX_S_OK, "2", 1) == 0, "INVOKE_DONE in the fresh region");
		CHECK(nx_nop(g) == 0 && nx_invoke_done_unacked(g) == 0, "its ack is filed");
	}
	settle(g);
	CHECK(fakehost_violations(h) == 0, "no violation (%u)", fakehost_violations(h));
	nx_detach(g);
	fakehost_destroy(h);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct { const char *name; void (*fn)(void); } tests[] = {
		{ "attach_checks", test_attach_checks }, { "requests", test_requests },
		{ "invocations", test_invocations }, { "threads_and_full_ring", test_threads_and_full_ring },
		{ "broken_host", test_broken_host }, { "meta_field", test_meta_field }, { "reattach", test_reattach },
		{ "invoke_done_no_wait", test_invoke_done_no_wait },
		{ "invoke_done_old_waiting_guest", test_invoke_done_old_waiting_guest },
		{ "invoke_done_unacked_reattach", test_invoke_done_unacked_reattach },
		{ "late_release_reaches_sleeping_host", test_late_release_reaches_sleeping_host },
		{ "bench_nop", bench_nop },
	};
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		int f = failed;
		fprintf(stderr, "-- %s\n", tests[i].name);
		tests[i].fn();
		printf("%s %s\n", failed == f ? "ok  " : "FAIL", tests[i].name);
	}
	printf("passed=%d failed=%d\n", passed, failed);
	return failed ? 1 : 0;
}
