/* SPDX-License-Identifier: MIT */
/*
 * nexusd/chan.c: the descriptor validator and the drain path, with the test
 * playing a hostile guest through the region (fake S3: tests/unit/fake_s3.c,
 * re-runnable event loop: tests/unit/mini_loop.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ring.h"
#include "common/tlv.h"
#include "nexusd/chan.h"
#include "nexusd/chan_validate.h"
#include "nexusd/loop.h"
#include "fake_s3.h"

struct owner {
	int ready, done, violations;
	char runtime[64], why[128];
	uint64_t inv;
	int inv_status;
	char payload[256];
	bool destroy_on_violation;
};

static struct nx_loop *L;
static struct nx_chan *C;
static struct owner O;
static uint8_t *R;
static const struct nx_chan_layout *LAY;
static struct nx_ring *TH, *TG;
static uint64_t gnext;

static void o_ready(void *owner, const char *runtime)
{
	struct owner *o = owner;
	o->ready++;
	snprintf(o->runtime, sizeof(o->runtime), "%s", runtime);
}

static void o_done(void *owner, uint64_t inv, int status, const void *p, size_t len)
{
	struct owner *o = owner;
	o->done++;
	o->inv = inv;
	o->inv_status = status;
	snprintf(o->payload, sizeof(o->payload), "%.*s", (int)len, (const char *)p);
}

static void o_violation(void *owner, const char *why)
{
	struct owner *o = owner;
	o->violations++;
	snprintf(o->why, sizeof(o->why), "%s", why);
	if (o->destroy_on_violation) {
		nx_chan_destroy(C);   /* what the instance manager may well do */
		C = NULL;
	}
}

static const struct nx_chan_ops OPS = { o_ready, o_done, o_violation };
static const char *const BUCKETS[] = { "allowed", "b2", NULL };

static int setup(void **state)
{
	(void)state;
	fake_s3_reset();
	memset(&O, 0, sizeof(O));
	L = nx_loop_new();
	struct nx_chan_config cfg = { .region_size = NX_REGION_MIN, .buckets = BUCKETS,
	                              .ready_meta_json = "{\"function_name\":\"f\",\"timeout_s\":3}",
	                              .generation = 7 };
	C = nx_chan_new(L, (struct nx_s3 *)1, &cfg, &OPS, &O);
	if (!L || !C)
		return -1;
	R = nx_chan_region(C);
	LAY = nx_chan_get_layout(C);
	TH = (struct nx_ring *)(R + NX_TO_HOST_RING_OFF);
	TG = (struct nx_ring *)(R + NX_TO_GUEST_RING_OFF);
	gnext = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nx_chan_destroy(C);
	C = NULL;
	nx_loop_destroy(L);
	fake_s3_reset();
	return 0;
}

/* Guest-side helpers. */
static uint64_t gput(const void *p, size_t n)
{
	uint64_t off = LAY->guest_off + gnext;
	memcpy(R + off, p, n);
	gnext += (n + 63) & ~(size_t)63;
	return off;
}

static struct nx_buf args(unsigned t1, const char *v1, unsigned t2, const char *v2)
{
	uint8_t b[NX_ARGS_MAX];
	size_t pos = 0;
	if (t1)
		assert_int_equal(nx_tlv_put(b, sizeof(b), &pos, t1, v1, strlen(v1)), 0);
	if (t2)
		assert_int_equal(nx_tlv_put(b, sizeof(b), &pos, t2, v2, strlen(v2)), 0);
	return (struct nx_buf){ gput(b, pos), pos };
}

static void post(struct nx_desc d) { assert_int_equal(nx_ring_push(TH, &d), 0); }

static struct nx_desc one_completion(struct nx_desc d)
{
	post(d);
	nx_chan_drain(C);
	struct nx_desc out;
	assert_int_equal(nx_ring_pop(TG, &out), 0);
	assert_int_equal(out.flags, NX_F_COMPLETION);
	assert_int_equal(out.opcode, d.opcode);
	assert_int_equal(out.tag, d.tag);
	return out;
}

static json_t *meta_of(const struct nx_desc *d)
{
	assert_true(d->buf[0].len > 0);
	assert_true(d->buf[0].off >= LAY->host_off);
	json_t *j = json_loadb((const char *)R + d->buf[0].off, d->buf[0].len, 0, NULL);
	assert_non_null(j);
	return j;
}

static void release(uint64_t off)
{
	post((struct nx_desc){ .opcode = NX_OP_RELEASE, .buf = { { off, 0 } } });
	nx_chan_drain(C);
}

static uint64_t invalid_count(void)
{
	struct nx_chan_stats st;
	nx_chan_stats(C, &st);
	return st.invalid;
}

static uint64_t host_used(void)
{
	struct nx_chan_stats st;
	nx_chan_stats(C, &st);
	return st.host_arena_used;
}

static void stop_loop(void *arg) { nx_loop_stop(arg); }

static void run_loop_ms(unsigned ms)
{
	nx_loop_timer(L, ms, stop_loop, L);
	nx_loop_run(L);
}

/* ------------------------------------------------------------------ tests */

static void test_region_setup(void **state)
{
	(void)state;
	const struct nx_region_hdr *h = (const void *)R;
	assert_int_equal(h->magic, NX_MAGIC);
	assert_int_equal(h->abi_major, NX_ABI_MAJOR);
	assert_int_equal(h->region_size, NX_REGION_MIN);
	assert_int_equal(h->generation, 7);
	assert_int_equal(h->ring_entries, NX_RING_ENTRIES);
	assert_int_equal(h->to_host_ring_off, NX_TO_HOST_RING_OFF);
	assert_int_equal(h->to_guest_ring_off, NX_TO_GUEST_RING_OFF);
	assert_int_equal(h->guest_arena_off, NX_ARENAS_OFF);
	assert_int_equal(h->host_arena_off, h->guest_arena_off + h->guest_arena_size);
	assert_int_equal(h->host_arena_off + h->host_arena_size, NX_REGION_MIN);
	assert_int_equal(h->host_arena_off % 4096, 0);
	int fd = nx_chan_region_fd(C);
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_true(ftruncate(fd, 4096) < 0);           /* the guest cannot shrink it */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(nx_chan_kick_host_fd(C), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(nx_chan_kick_guest_fd(C), F_GETFL) & O_NONBLOCK);
	/* Lying in the header changes nothing for the host: it never reads it back. */
	memset(R, 0xff, 4096);
	struct nx_desc d = one_completion((struct nx_desc){ .opcode = NX_OP_NOP, .tag = 1 });
	assert_int_equal(d.status, NX_S_OK);
}

static void test_nop_and_doorbell(void **state)
{
	(void)state;
	/* Guest announces it sleeps on the to-guest ring: the host must kick. */
	assert_true(nx_ring_prepare_sleep(TG));
	struct nx_desc d = one_completion((struct nx_desc){ .opcode = NX_OP_NOP, .tag = 42 });
	assert_int_equal(d.status, NX_S_OK);
	assert_int_equal(d.buf[0].len, 0);
	uint64_t v = 0;
	assert_int_equal(read(nx_chan_kick_guest_fd(C), &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	/* Host went to sleep on the to-host ring after draining. */
	assert_int_equal(TH->consumer_sleeping, 1);
	/* And a kick through the loop drains it. */
	post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = 43 });
	uint64_t one = 1;
	assert_int_equal(write(nx_chan_kick_host_fd(C), &one, sizeof(one)), sizeof(one));
	run_loop_ms(20);
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	assert_int_equal(d.tag, 43);
}

static void test_ready(void **state)
{
	(void)state;
	struct nx_desc d = one_completion((struct nx_desc){ .opcode = NX_OP_READY, .tag = 1,
	                                  .buf = { args(NX_ARG_RUNTIME, "python3", 0, NULL) } });
	assert_int_equal(d.status, NX_S_OK);
	assert_int_equal(O.ready, 1);
	assert_string_equal(O.runtime, "python3");
	json_t *m = meta_of(&d);
	assert_string_equal(json_string_value(json_object_get(m, "function_name")), "f");
	json_decref(m);
	uint64_t used = host_used();
	assert_true(used > 0);
	release(d.buf[0].off);
	assert_int_equal(host_used(), 0);
	/* No arguments at all: an empty buffer's offset is ignored (found by fuzz_drain). */
	d = one_completion((struct nx_desc){ .opcode = NX_OP_READY, .tag = 2, .buf = { { 0xfff4000000000000ull, 0 } } });
	assert_int_equal(d.status, NX_S_OK);
	assert_int_equal(O.ready, 2);
	assert_string_equal(O.runtime, "");
	release(d.buf[0].off);
}

static void expect_invalid(struct nx_desc d, uint32_t status)
{
	uint64_t before = invalid_count();
	struct nx_desc c = one_completion(d);
	assert_int_equal(c.status, status);
	assert_int_equal(invalid_count(), before + 1);
	if (c.buf[0].len)
		release(c.buf[0].off);
}

static void test_validator_offsets(void **state)
{
	(void)state;
	struct nx_buf ok = args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k");
	uint64_t g0 = LAY->guest_off, gs = LAY->guest_size;
	struct nx_buf bad[] = {
		{ 0, 16 },                            /* header */
		{ NX_TO_HOST_RING_OFF, 16 },          /* the rings */
		{ LAY->host_off, 16 },                /* host arena */
		{ g0 + gs - 8, 16 },                  /* straddles the end */
		{ g0 - 8, 16 },                       /* straddles the start */
		{ g0 + 64, UINT64_MAX - 32 },         /* off + len overflows */
		{ UINT64_MAX - 8, 16 },
		{ LAY->region_size + 4096, 8 },       /* past the region */
		{ g0, NX_ARGS_MAX + 1 },              /* over the args limit */
		{ g0, 0 },                            /* S3 ops need arguments */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nx_desc d = { .opcode = NX_OP_S3_GET, .tag = 100 + i, .buf = { bad[i] } };
		assert_int_equal(nx_chan_check_desc(LAY, &d), NX_S_INVALID);
		expect_invalid(d, NX_S_INVALID);
	}
	/* PUT body checked too. */
	struct nx_desc put = { .opcode = NX_OP_S3_PUT, .tag = 9, .buf = { ok, { LAY->host_off, 100 } } };
	assert_int_equal(nx_chan_check_desc(LAY, &put), NX_S_INVALID);
	put.buf[1] = (struct nx_buf){ g0 + gs, 1 };
	assert_int_equal(nx_chan_check_desc(LAY, &put), NX_S_INVALID);
	put.buf[1] = (struct nx_buf){ g0 + gs - 1, 1 };
	assert_int_equal(nx_chan_check_desc(LAY, &put), NX_S_OK);
	put.buf[1] = (struct nx_buf){ 12345, 0 };        /* empty: offset irrelevant */
	assert_int_equal(nx_chan_check_desc(LAY, &put), NX_S_OK);
	/* INVOKE_DONE payload limit and status. */
	struct nx_desc done = { .opcode = NX_OP_INVOKE_DONE, .buf = { { 0, 0 }, { g0, NX_PAYLOAD_MAX + 1 } } };
	assert_int_equal(nx_chan_check_desc(LAY, &done), NX_S_INVALID);
	done.buf[1].len = 10;
	done.status = NX_S_STORAGE_ERROR;
	assert_int_equal(nx_chan_check_desc(LAY, &done), NX_S_INVALID);
	done.status = NX_S_HANDLER_ERROR;
	assert_int_equal(nx_chan_check_desc(LAY, &done), NX_S_OK);
	/* RELEASE must point into the host arena. */
	struct nx_desc rel = { .opcode = NX_OP_RELEASE, .buf = { { g0, 0 } } };
	assert_int_equal(nx_chan_check_desc(LAY, &rel), NX_S_INVALID);
	rel.buf[0].off = LAY->region_size;
	assert_int_equal(nx_chan_check_desc(LAY, &rel), NX_S_INVALID);
	rel.buf[0].off = LAY->host_off;
	assert_int_equal(nx_chan_check_desc(LAY, &rel), NX_S_OK);
	assert_int_equal(fake_s3_ncalls, 0);   /* nothing reached storage */
	/* The valid one does. */
	fake_s3_sync = true;
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = 5, .buf = { ok } });
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(fake_s3_ncalls, 1);
	assert_string_equal(fake_s3_calls[0].bucket, "allowed");
	assert_string_equal(fake_s3_calls[0].key, "k");
}

static void test_validator_opcodes_flags(void **state)
{
	(void)state;
	expect_invalid((struct nx_desc){ .opcode = 99, .tag = 1 }, NX_S_UNSUPPORTED);
	expect_invalid((struct nx_desc){ .opcode = 0xffff, .tag = 2 }, NX_S_UNSUPPORTED);
	expect_invalid((struct nx_desc){ .opcode = 5, .tag = 3 }, NX_S_UNSUPPORTED);
	expect_invalid((struct nx_desc){ .opcode = NX_OP_INVOKE, .tag = 4 }, NX_S_INVALID);
	expect_invalid((struct nx_desc){ .opcode = NX_OP_NOP, .flags = NX_F_COMPLETION, .tag = 5 }, NX_S_INVALID);
	expect_invalid((struct nx_desc){ .opcode = NX_OP_NOP, .flags = 0x8000, .tag = 6 }, NX_S_INVALID);
	expect_invalid((struct nx_desc){ .opcode = NX_OP_NOP, .status = 3, .tag = 7 }, NX_S_INVALID);
	/* INVOKE_DONE for an invocation that is not pending */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 77 }, NX_S_INVALID);
	assert_int_equal(O.done, 0);
	assert_int_equal(O.violations, 0);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	fake_s3_sync = true;
	uint8_t garbage[64];
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 37 + 11);
	struct nx_buf g = { gput(garbage, sizeof(garbage)), sizeof(garbage) };
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 1, .buf = { g } }, NX_S_INVALID);
	/* no key */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 2,
	                .buf = { args(NX_ARG_BUCKET, "allowed", 0, NULL) } }, NX_S_INVALID);
	/* empty key */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_PUT, .tag = 3,
	                .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "") } }, NX_S_INVALID);
	/* no bucket */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_LIST, .tag = 4,
	                .buf = { args(NX_ARG_PREFIX, "p", 0, NULL) } }, NX_S_INVALID);
	/* bad MAX_KEYS */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_LIST, .tag = 5,
	                .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_MAX_KEYS, "12x") } }, NX_S_INVALID);
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_LIST, .tag = 6,
	                .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_MAX_KEYS, "-1") } }, NX_S_INVALID);
	/* COPY without source */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_S3_COPY, .tag = 7,
	                .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k") } }, NX_S_INVALID);
	/* garbage READY args */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_READY, .tag = 8, .buf = { g } }, NX_S_INVALID);
	assert_int_equal(fake_s3_ncalls, 0);
	/* The error meta says why. */
	post((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 9, .buf = { g } });
	nx_chan_drain(C);
	struct nx_desc c;
	assert_int_equal(nx_ring_pop(TG, &c), 0);
	json_t *m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "Code")), "InvalidRequest");
	json_decref(m);
	/* A valid LIST goes through. */
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_LIST, .tag = 10,
	                   .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_MAX_KEYS, "5") } });
	assert_int_equal(c.status, NX_S_OK);
	m = meta_of(&c);
	assert_true(json_is_array(json_object_get(m, "Contents")));
	json_decref(m);
}

static void test_allow_list(void **state)
{
	(void)state;
	fake_s3_sync = true;
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 1,
	                                  .buf = { args(NX_ARG_BUCKET, "secret", NX_ARG_KEY, "k") } });
	assert_int_equal(c.status, NX_S_ACCESS_DENIED);
	json_t *m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "Code")), "AccessDenied");
	assert_int_equal(json_integer_value(json_object_get(m, "HTTPStatusCode")), 403);
	json_decref(m);
	/* a bucket name that is not UTF-8 still gets a clean JSON error */
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 5,
	                   .buf = { args(NX_ARG_BUCKET, "\xff\xfe\x01", NX_ARG_KEY, "k") } });
	assert_int_equal(c.status, NX_S_ACCESS_DENIED);
	m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "Code")), "AccessDenied");
	assert_non_null(strstr(json_string_value(json_object_get(m, "Message")), "'\?\?\?'"));
	json_decref(m);
	/* prefix of an allowed name is not allowed */
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = 2,
	                   .buf = { args(NX_ARG_BUCKET, "allow", NX_ARG_KEY, "k") } });
	assert_int_equal(c.status, NX_S_ACCESS_DENIED);
	/* COPY from a forbidden bucket into an allowed one */
	uint8_t b[256];
	size_t pos = 0;
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_SRC_BUCKET, "secret", 6);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_SRC_KEY, "s", 1);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_BUCKET, "allowed", 7);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_KEY, "k", 1);
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_COPY, .tag = 3, .buf = { { gput(b, pos), pos } } });
	assert_int_equal(c.status, NX_S_ACCESS_DENIED);
	assert_int_equal(fake_s3_ncalls, 0);   /* no storage request at all */
	/* allowed COPY passes */
	pos = 0;
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_SRC_BUCKET, "b2", 2);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_SRC_KEY, "s", 1);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_BUCKET, "allowed", 7);
	nx_tlv_put(b, sizeof(b), &pos, NX_ARG_KEY, "k", 1);
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_COPY, .tag = 4, .buf = { { gput(b, pos), pos } } });
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(fake_s3_ncalls, 1);
	assert_string_equal(fake_s3_calls[0].src_bucket, "b2");
}

static void test_get_body_in_host_arena(void **state)
{
	(void)state;
	fake_s3_sync = true;
	static char body[300000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	fake_s3_get_body = body;
	fake_s3_get_len = sizeof(body);
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 1,
	                                  .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "big") } });
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(c.buf[1].len, sizeof(body));
	assert_true(c.buf[1].off >= LAY->host_off);
	assert_memory_equal(R + c.buf[1].off, body, sizeof(body));
	json_t *m = meta_of(&c);
	assert_int_equal(json_integer_value(json_object_get(m, "ContentLength")), sizeof(body));
	assert_string_equal(json_string_value(json_object_get(m, "ETag")), "\"etag\"");
	json_decref(m);
	/* Releasing a large buffer keeps its pages warm for the next GET, and
	 * gives them back once the channel has been quiet for NX_CHAN_TRIM_MS. */
	assert_int_equal(nx_chan_punched_bytes(C), 0);
	release(c.buf[1].off);
	assert_int_equal(nx_chan_punched_bytes(C), 0);
	assert_int_equal(R[c.buf[1].off + 8192], body[8192]);   /* still resident */
	run_loop_ms(NX_CHAN_TRIM_MS + 100);
	assert_true(nx_chan_punched_bytes(C) >= 256 * 1024);
	assert_int_equal(R[c.buf[1].off + 8192], 0);   /* the hole reads as zeros */
	release(c.buf[0].off);
	assert_int_equal(host_used(), 0);
	assert_int_equal(invalid_count(), 0);
	/* Empty object: no body buffer at all. */
	fake_s3_get_len = 0;
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 2,
	                   .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "empty") } });
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(c.buf[1].len, 0);
	release(c.buf[0].off);
	assert_int_equal(host_used(), 0);
	/* Larger than the host arena: TOO_LARGE, nothing allocated. */
	fake_s3_get_len = LAY->host_size + 1;
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 3,
	                   .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "huge") } });
	assert_int_equal(c.status, NX_S_TOO_LARGE);
	release(c.buf[0].off);
	assert_int_equal(host_used(), 0);
}

static void test_host_arena_full(void **state)
{
	(void)state;
	fake_s3_sync = true;
	static char body[700 << 10];
	fake_s3_get_body = body;
	fake_s3_get_len = sizeof(body);
	struct nx_buf a = args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k");
	struct nx_desc held[8];
	int n = 0;
	for (;;) {
		struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = (uint64_t)n, .buf = { a } });
		if (c.status != NX_S_OK) {
			/* The guest holds everything: the next GET has no room. */
			assert_int_equal(c.status, NX_S_NO_SPACE);
			if (c.buf[0].len)
				release(c.buf[0].off);
			break;
		}
		assert_true(n < 8);
		held[n++] = c;
	}
	assert_true(n >= 2);
	for (int i = 0; i < n; i++) {
		release(held[i].buf[0].off);
		release(held[i].buf[1].off);
	}
	assert_int_equal(host_used(), 0);
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 99, .buf = { a } });
	assert_int_equal(c.status, NX_S_OK);   /* room again */
	assert_int_equal(invalid_count(), 0);
}

static void test_put_body_copied_once(void **state)
{
	(void)state;
	char body[1000];
	memset(body, 'P', sizeof(body));
	uint64_t boff = gput(body, sizeof(body));
	post((struct nx_desc){ .opcode = NX_OP_S3_PUT, .tag = 1,
	       .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k"), { boff, sizeof(body) } } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, 1);
	const uint8_t *p = fake_s3_calls[0].body_ptr;
	/* The client got private memory, not a pointer into the region. */
	assert_true(p < R || p >= R + LAY->region_size);
	memset(R + boff, 'X', sizeof(body));   /* guest scribbles mid-upload */
	assert_memory_equal(p, body, sizeof(body));
	fake_s3_complete(0, NX_S_OK);
	struct nx_desc c;
	assert_int_equal(nx_ring_pop(TG, &c), 0);
	assert_int_equal(c.status, NX_S_OK);
	json_t *m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "ETag")), "\"etag\"");
	json_decref(m);
}

static void test_put_bytes_bounded(void **state)
{
	(void)state;
	/* PUTs naming the whole guest arena: nexusd copies at most two arenas'
	 * worth at a time, then answers NO_SPACE instead of allocating more. */
	struct nx_buf a = args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k");
	struct nx_buf whole = { LAY->guest_off, LAY->guest_size };
	for (int i = 0; i < 2; i++)
		post((struct nx_desc){ .opcode = NX_OP_S3_PUT, .tag = (uint64_t)i, .buf = { a, whole } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, 2);
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_PUT, .tag = 2, .buf = { a, whole } });
	assert_int_equal(c.status, NX_S_NO_SPACE);
	json_t *m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "Code")), "SlowDown");
	json_decref(m);
	assert_int_equal(fake_s3_ncalls, 2);
	fake_s3_complete(0, NX_S_OK);
	assert_int_equal(nx_ring_pop(TG, &c), 0);
	assert_int_equal(c.tag, 0);
	post((struct nx_desc){ .opcode = NX_OP_S3_PUT, .tag = 3, .buf = { a, whole } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, 3);   /* room again */
}

static void test_forged_releases(void **state)
{
	(void)state;
	uint64_t used0 = host_used();
	/* nothing handed out yet */
	release(LAY->host_off);
	assert_int_equal(invalid_count(), 1);
	/* a GET in flight: its sink is not the guest's yet */
	static const char body[] = "0123456789";
	fake_s3_get_body = body;
	fake_s3_get_len = 10;
	post((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 1,
	       .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k") } });
	nx_chan_drain(C);
	/* Deferred: allocate the sink by hand as the real client would, via the callback. */
	void *sink = fake_s3_calls[0].req.sink_alloc(fake_s3_calls[0].req.sink_arg, 10);
	assert_non_null(sink);
	uint64_t sink_off = (uint64_t)((uint8_t *)sink - R);
	release(sink_off);
	assert_int_equal(invalid_count(), 2);
	/* complete it (the fake calls sink_alloc again, like a retry) */
	fake_s3_complete(0, NX_S_OK);
	struct nx_desc c;
	assert_int_equal(nx_ring_pop(TG, &c), 0);
	assert_int_equal(c.status, NX_S_OK);
	assert_memory_equal(R + c.buf[1].off, body, 10);
	/* middle of a live buffer, guest-arena offset, past the end */
	release(c.buf[1].off + 1);
	release(c.buf[1].off + 32);
	release(LAY->guest_off);
	release(LAY->region_size - 1);
	release(UINT64_MAX);
	assert_int_equal(invalid_count(), 7);
	/* the real ones, then a double release */
	release(c.buf[1].off);
	release(c.buf[0].off);
	assert_int_equal(invalid_count(), 7);
	assert_int_equal(host_used(), used0);
	release(c.buf[1].off);
	assert_int_equal(invalid_count(), 8);
	assert_int_equal(O.violations, 0);
	/* releases never produce completions */
	assert_int_equal(nx_ring_pop(TG, &c), -EAGAIN);
}

/* Host buffers reserved before the guest asks (prefetch into the region):
 * the guest can never release one, unreserve frees it exactly once, and a
 * GET can adopt one as its body without a copy. */
static void test_reserved_buffers(void **state)
{
	(void)state;
	uint64_t used0 = host_used(), off, offs[9];
	assert_null(nx_chan_reserve(C, 0, &off));
	assert_null(nx_chan_reserve(C, LAY->host_size / 2 + 1, &off));   /* at most half the host arena */
	assert_int_equal(host_used(), used0);
	uint8_t *p = nx_chan_reserve(C, 1000, &off);
	assert_non_null(p);
	assert_true(off >= LAY->host_off && off + 1000 <= LAY->host_off + LAY->host_size);
	assert_ptr_equal(p, R + off);
	assert_true(host_used() > used0);
	/* The guest forging a RELEASE of it: invalid, and it stays reserved. */
	uint64_t used1 = host_used();
	release(off);
	assert_int_equal(invalid_count(), 1);
	assert_int_equal(host_used(), used1);
	nx_chan_unreserve(C, off);
	assert_int_equal(host_used(), used0);
	nx_chan_unreserve(C, off);   /* a second unreserve is a no-op, not a double free */
	assert_int_equal(host_used(), used0);
	/* At most 8 at a time. */
	for (int i = 0; i < 8; i++)
		assert_non_null(nx_chan_reserve(C, 64, &offs[i]));
	assert_null(nx_chan_reserve(C, 64, &offs[8]));
	for (int i = 0; i < 8; i++)
		nx_chan_unreserve(C, offs[i]);
	assert_int_equal(host_used(), used0);

	/* Adoption: a reserved buffer filled by "prefetch" becomes the GET's body. */
	static const char body[] = "prefetched body bytes";
	p = nx_chan_reserve(C, sizeof body, &off);
	assert_non_null(p);
	memcpy(p, body, sizeof body);
	post((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 5,
	       .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "hinted") } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, 1);
	struct fake_call *f = &fake_s3_calls[0];
	assert_int_equal(nx_chan_sink_adopt(C, (void *)1, off), -ENOENT);            /* no such GET */
	assert_int_equal(nx_chan_sink_adopt(C, f->req.sink_arg, off + 64), -ENOENT); /* not reserved */
	assert_int_equal(nx_chan_sink_adopt(C, f->req.sink_arg, off), 0);
	assert_int_equal(nx_chan_sink_adopt(C, f->req.sink_arg, off), -ENOENT);      /* not twice */
	release(off);   /* adopted, but not the guest's until the completion is posted */
	assert_int_equal(invalid_count(), 2);
	/* Complete it with the body already in place (no sink_alloc): what a hit does. */
	f->done = true;   /* as if the client's transfer ended with this result */
	struct nx_s3_result res = { .status = NX_S_OK, .http_code = 200, .body_len = sizeof body,
	                            .content_length = sizeof body };
	strcpy(res.etag, "\"e\"");
	f->cb(f->arg, &res);
	struct nx_desc c;
	assert_int_equal(nx_ring_pop(TG, &c), 0);
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(c.buf[1].off, off);   /* zero copy: the reserved buffer itself */
	assert_int_equal(c.buf[1].len, sizeof body);
	assert_memory_equal(R + c.buf[1].off, body, sizeof body);
	release(c.buf[1].off);
	release(c.buf[0].off);
	assert_int_equal(invalid_count(), 2);
	assert_int_equal(host_used(), used0);
	assert_int_equal(O.violations, 0);
	/* Reservations die with the channel: teardown destroys it with one held (ASan: no leak). */
	assert_non_null(nx_chan_reserve(C, 4096, &off));
}

static void test_impossible_indices(void **state)
{
	(void)state;
	TH->head = TH->tail + NX_RING_ENTRIES + 1;
	nx_chan_drain(C);
	assert_int_equal(O.violations, 1);
	assert_string_equal(O.why, "impossible to-host ring indices");
	/* once broken it stays quiet */
	nx_chan_drain(C);
	assert_int_equal(O.violations, 1);
	assert_int_equal(nx_chan_invoke(C, 1, "{}", 2, "{}"), -EPROTO);
}

static void test_impossible_to_guest_indices(void **state)
{
	(void)state;
	TG->tail = TG->head + 1000;   /* hostile consumer index */
	post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = 1 });
	nx_chan_drain(C);
	assert_int_equal(O.violations, 1);
	assert_string_equal(O.why, "impossible to-guest ring indices");
}

static void test_garbage_flood_violation(void **state)
{
	(void)state;
	O.destroy_on_violation = true;   /* and the owner destroys us from the callback */
	struct nx_desc d;
	unsigned seed = 1;
	for (unsigned i = 0; i < NX_RING_ENTRIES; i++) {
		uint8_t *p = (uint8_t *)&d;
		for (size_t k = 0; k < sizeof(d); k++)
			p[k] = (uint8_t)rand_r(&seed);
		d.opcode = (uint16_t)(200 + (i % 1000));   /* never valid */
		post(d);
	}
	nx_chan_drain(C);   /* frees the channel inside; must not touch it afterwards */
	assert_int_equal(O.violations, 1);
	assert_string_equal(O.why, "too many invalid descriptors in a row");
	assert_null(C);
}

static void test_destroy_from_async_completion(void **state)
{
	(void)state;
	/* Two storage requests in flight; the guest then corrupts the to-guest
	 * ring, so posting the first completion is a violation, and the owner
	 * destroys the channel from inside the storage callback. */
	struct nx_buf a = args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k");
	post((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = 1, .buf = { a } });
	post((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = 2, .buf = { a } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, 2);
	TG->tail = TG->head + 5000;
	O.destroy_on_violation = true;
	fake_s3_complete(0, NX_S_OK);
	assert_int_equal(O.violations, 1);
	assert_null(C);
	assert_true(fake_s3_calls[1].cancelled);    /* the other one was cancelled */
	assert_false(fake_s3_calls[0].cancelled);   /* the finished one was not */
}

static void test_valid_requests_reset_streak(void **state)
{
	(void)state;
	for (int i = 0; i < 10 * NX_CHAN_INVALID_STREAK; i++) {
		post((struct nx_desc){ .opcode = 99, .tag = (uint64_t)i });
		post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = (uint64_t)i });
		nx_chan_drain(C);
		struct nx_desc c;
		while (nx_ring_pop(TG, &c) == 0)
			if (c.buf[0].len)
				release(c.buf[0].off);
	}
	assert_int_equal(O.violations, 0);
	assert_int_equal(invalid_count(), 10 * NX_CHAN_INVALID_STREAK);
}

static void test_full_to_guest_ring_backlog(void **state)
{
	(void)state;
	/* The guest does not consume: 600 NOPs, more than the ring holds. */
	unsigned total = 600, got = 0, i = 0;
	for (; i < NX_RING_ENTRIES; i++)
		post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = i });
	nx_chan_drain(C);                                          /* onto the ring */
	for (; i < 2 * NX_RING_ENTRIES; i++)
		post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = i });
	nx_chan_drain(C);                                          /* into the backlog */
	for (; i < total; i++)
		post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = i });
	nx_chan_drain(C);                                          /* cap reached: left */
	assert_int_equal(nx_ring_pending(TG), NX_RING_ENTRIES);   /* full, nothing dropped... */
	assert_int_equal(nx_ring_pending(TH), total - 2 * NX_RING_ENTRIES);
	struct nx_desc c;
	for (int rounds = 0; got < total && rounds < 1000; rounds++) {
		while (nx_ring_pop(TG, &c) == 0) {
			assert_int_equal(c.tag, got);      /* ...and in order */
			got++;
		}
		run_loop_ms(2);   /* the retry timer refills, the drain resumes */
	}
	assert_int_equal(got, total);
	assert_int_equal(O.violations, 0);
}

static void test_outstanding_cap(void **state)
{
	(void)state;
	/* Deferred storage: the host stops taking requests at the cap. */
	struct nx_buf a = args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k");
	for (unsigned i = 0; i < NX_RING_ENTRIES; i++)
		post((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = i, .buf = { a } });
	nx_chan_drain(C);
	for (unsigned i = NX_RING_ENTRIES; i < NX_RING_ENTRIES + 10; i++)
		post((struct nx_desc){ .opcode = NX_OP_S3_HEAD, .tag = i, .buf = { a } });
	nx_chan_drain(C);
	assert_int_equal(fake_s3_ncalls, NX_CHAN_MAX_OUTSTANDING);
	assert_int_equal(nx_ring_pending(TH), 10);   /* left in the guest's ring */
	for (int i = 0; i < 5; i++)
		fake_s3_complete(i, NX_S_OK);
	struct nx_desc c;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(nx_ring_pop(TG, &c), 0);
		release(c.buf[0].off);
	}
	run_loop_ms(5);   /* resumes */
	assert_int_equal(fake_s3_ncalls, NX_CHAN_MAX_OUTSTANDING + 5);
	/* destroy with 256 transfers in flight: every one is cancelled */
	nx_chan_destroy(C);
	C = NULL;
	for (int i = 5; i < fake_s3_ncalls; i++)
		assert_true(fake_s3_calls[i].cancelled);
}

static void test_invocation(void **state)
{
	(void)state;
	const char *ev = "{\"x\":1}", *ctx = "{\"aws_request_id\":\"r\"}";
	assert_int_equal(nx_chan_invoke(C, 555, ev, strlen(ev), ctx), 0);
	struct nx_desc d;
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	assert_int_equal(d.opcode, NX_OP_INVOKE);
	assert_int_equal(d.flags, 0);
	assert_int_equal(d.tag, 555);
	assert_memory_equal(R + d.buf[0].off, ev, strlen(ev));
	assert_int_equal(d.buf[0].len, strlen(ev));
	assert_memory_equal(R + d.buf[1].off, ctx, strlen(ctx));
	release(d.buf[0].off);
	release(d.buf[1].off);
	assert_int_equal(host_used(), 0);
	const char *res = "{\"ok\":true}";
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 555,
	                                  .buf = { { 0, 0 }, { gput(res, strlen(res)), strlen(res) } } });
	assert_int_equal(c.status, NX_S_OK);
	assert_int_equal(O.done, 1);
	assert_int_equal(O.inv, 555);
	assert_int_equal(O.inv_status, NX_S_OK);
	assert_string_equal(O.payload, res);
	/* the same invocation cannot complete twice */
	expect_invalid((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 555 }, NX_S_INVALID);
	assert_int_equal(O.done, 1);
	assert_int_equal(nx_chan_invoke(C, 1, "x", NX_PAYLOAD_MAX + 1, "{}"), -E2BIG);
}

/* Pending doorbell count (0 when nobody rang); resets it. */
static uint64_t guest_kicks(void)
{
	uint64_t v = 0;
	if (read(nx_chan_kick_guest_fd(C), &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;   /* EAGAIN: not rung */
	return v;
}

/* The INVOKE_DONE ack is written without ringing the doorbell of a sleeping
 * guest; the next INVOKE rings it and the guest finds both, in order.  A
 * guest that waits for the ack (the old protocol) therefore gets it with the
 * next invocation.  Other completions, and a refused INVOKE_DONE, still ring. */
static void test_invoke_done_ack_is_quiet(void **state)
{
	(void)state;
	const char *ctx = "{}";
	assert_int_equal(nx_chan_invoke(C, 1, "{}", 2, ctx), 0);
	struct nx_desc d;
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	release(d.buf[0].off);
	release(d.buf[1].off);
	(void)guest_kicks();
	/* The guest posts its result and goes to sleep. */
	assert_true(nx_ring_prepare_sleep(TG));
	post((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 1, .buf = { { 0, 0 }, { gput("7", 1), 1 } } });
	nx_chan_drain(C);
	assert_int_equal(O.done, 1);                   /* the host has the result at once */
	assert_string_equal(O.payload, "7");
	assert_int_equal(nx_ring_pending(TG), 1);      /* the ack is on the ring... */
	assert_int_equal(guest_kicks(), 0);            /* ...but the guest was not woken */
	assert_int_equal(TG->consumer_sleeping, 1);    /* and the next push will ring */
	/* The next invocation rings, and delivers the ack first. */
	assert_int_equal(nx_chan_invoke(C, 2, "{}", 2, ctx), 0);
	assert_int_equal(guest_kicks(), 1);
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	assert_int_equal(d.opcode, NX_OP_INVOKE_DONE);
	assert_int_equal(d.flags, NX_F_COMPLETION);
	assert_int_equal(d.tag, 1);
	assert_int_equal(d.status, NX_S_OK);
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	assert_int_equal(d.opcode, NX_OP_INVOKE);
	assert_int_equal(d.tag, 2);
	release(d.buf[0].off);
	release(d.buf[1].off);
	/* A refused INVOKE_DONE (not pending) wakes a sleeping guest. */
	assert_true(nx_ring_prepare_sleep(TG));
	post((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 99 });
	nx_chan_drain(C);
	assert_int_equal(guest_kicks(), 1);
	assert_int_equal(nx_ring_pop(TG, &d), 0);
	assert_int_equal(d.status, NX_S_INVALID);
	release(d.buf[0].off);
	/* An ack and a wake-worthy completion in one batch ring once. */
	assert_true(nx_ring_prepare_sleep(TG));
	post((struct nx_desc){ .opcode = NX_OP_INVOKE_DONE, .tag = 2 });
	post((struct nx_desc){ .opcode = NX_OP_NOP, .tag = 3 });
	nx_chan_drain(C);
	assert_int_equal(guest_kicks(), 1);
	assert_int_equal(nx_ring_pending(TG), 2);
	assert_int_equal(O.done, 2);
	assert_int_equal(host_used(), 0);
}

static void test_storage_error_and_submit_failure(void **state)
{
	(void)state;
	fake_s3_sync = true;
	fake_s3_status = NX_S_STORAGE_ERROR;
	struct nx_desc c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_GET, .tag = 1,
	                                  .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "nope") } });
	assert_int_equal(c.status, NX_S_STORAGE_ERROR);
	json_t *m = meta_of(&c);
	assert_string_equal(json_string_value(json_object_get(m, "Code")), "NoSuchKey");
	assert_int_equal(json_integer_value(json_object_get(m, "HTTPStatusCode")), 404);
	json_decref(m);
	release(c.buf[0].off);
	fake_s3_fail_submit = true;
	c = one_completion((struct nx_desc){ .opcode = NX_OP_S3_DELETE, .tag = 2,
	                   .buf = { args(NX_ARG_BUCKET, "allowed", NX_ARG_KEY, "k") } });
	assert_int_equal(c.status, NX_S_IO_ERROR);
	release(c.buf[0].off);
	assert_int_equal(host_used(), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_region_setup),
		T(test_nop_and_doorbell),
		T(test_ready),
		T(test_validator_offsets),
		T(test_validator_opcodes_flags),
		T(test_bad_arguments),
		T(test_allow_list),
		T(test_get_body_in_host_arena),
		T(test_host_arena_full),
		T(test_put_body_copied_once),
		T(test_put_bytes_bounded),
		T(test_forged_releases),
		T(test_reserved_buffers),
		T(test_impossible_indices),
		T(test_impossible_to_guest_indices),
		T(test_garbage_flood_violation),
		T(test_destroy_from_async_completion),
		T(test_valid_requests_reset_streak),
		T(test_full_to_guest_ring_backlog),
		T(test_outstanding_cap),
		T(test_invocation),
		T(test_invoke_done_ack_is_quiet),
		T(test_storage_error_and_submit_failure),
	};
	return cmocka_run_group_tests_name("chan", tests, NULL, NULL);
}
