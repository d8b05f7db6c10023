/* SPDX-License-Identifier: MIT */
/* SPSC rings: basic semantics, hostile indices, and a two-thread stress test
 * of the spin-then-sleep doorbell handshake over real eventfds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/ring.h"

static struct nx_ring *ring_new(void)
{
	struct nx_ring *r = aligned_alloc(64, sizeof(*r));
	assert_non_null(r);
	memset(r, 0xa5, sizeof(*r));
	nx_ring_init(r);
	return r;
}

static void test_push_pop_order(void **state)
{
	(void)state;
	struct nx_ring *r = ring_new();
	struct nx_desc d = { 0 }, out;
	assert_int_equal(nx_ring_pop(r, &out), -EAGAIN);
	assert_int_equal(nx_ring_pending(r), 0);
	for (unsigned i = 0; i < NX_RING_ENTRIES; i++) {
		d.tag = i;
		d.opcode = (uint16_t)(i % 7);
		assert_int_equal(nx_ring_push(r, &d), 0);
	}
	assert_int_equal(nx_ring_push(r, &d), -EAGAIN);   /* full */
	assert_int_equal(nx_ring_pending(r), NX_RING_ENTRIES);
	for (unsigned i = 0; i < NX_RING_ENTRIES; i++) {
		assert_int_equal(nx_ring_pop(r, &out), 0);
		assert_int_equal(out.tag, i);
		assert_int_equal(out.opcode, i % 7);
	}
	assert_int_equal(nx_ring_pop(r, &out), -EAGAIN);
	free(r);
}

static void test_wraparound_free_running(void **state)
{
	(void)state;
	struct nx_ring *r = ring_new();
	/* Start just below the uint32 wrap: indices are free-running. */
	r->head = r->tail = UINT32_MAX - 10;
	struct nx_desc d = { 0 }, out;
	for (uint64_t i = 0; i < 3 * NX_RING_ENTRIES; i++) {
		d.tag = i;
		assert_int_equal(nx_ring_push(r, &d), 0);
		assert_int_equal(nx_ring_pending(r), 1);
		assert_int_equal(nx_ring_pop(r, &out), 0);
		assert_int_equal(out.tag, i);
	}
	assert_true(r->head < 1000);   /* it did wrap */
	free(r);
}

static void test_impossible_indices(void **state)
{
	(void)state;
	struct nx_ring *r = ring_new();
	struct nx_desc d = { 0 }, out;
	/* Hostile producer: head far ahead of tail. */
	r->head = NX_RING_ENTRIES + 1;
	r->tail = 0;
	assert_int_equal(nx_ring_pop(r, &out), -EPROTO);
	assert_int_equal(nx_ring_pending(r), -1);
	/* Head behind tail (wraps to a huge count). */
	r->head = 5;
	r->tail = 6;
	assert_int_equal(nx_ring_pop(r, &out), -EPROTO);
	/* Hostile consumer: tail ahead of head, seen by the producer. */
	assert_int_equal(nx_ring_push(r, &d), -EPROTO);
	/* Exactly full is legal. */
	r->head = 1000 + NX_RING_ENTRIES;
	r->tail = 1000;
	assert_int_equal(nx_ring_pending(r), NX_RING_ENTRIES);
	assert_int_equal(nx_ring_push(r, &d), -EAGAIN);
	assert_int_equal(nx_ring_pop(r, &out), 0);
	free(r);
}

static void test_sleep_flag(void **state)
{
	(void)state;
	struct nx_ring *r = ring_new();
	struct nx_desc d = { 0 };
	assert_false(nx_ring_kick_needed(r));
	assert_true(nx_ring_prepare_sleep(r));     /* empty: may sleep */
	assert_int_equal(r->consumer_sleeping, 1);
	assert_int_equal(nx_ring_push(r, &d), 0);
	assert_true(nx_ring_kick_needed(r));       /* consumer asleep: kick */
	assert_int_equal(r->consumer_sleeping, 0);
	assert_false(nx_ring_kick_needed(r));      /* only once */
	assert_false(nx_ring_prepare_sleep(r));    /* work pending: do not sleep */
	assert_int_equal(r->consumer_sleeping, 0);
	free(r);
}

/* ------------------------------------------------------ two-thread stress */

#define STREAM_N   2000000u
#define PINGPONG_N 100000u
#define WAIT_MS    10000    /* a lost wake-up shows up as this timeout */

struct side {
	struct nx_ring *rx, *tx;   /* consume rx, produce tx */
	int rx_fd, tx_fd;          /* rx doorbell (we sleep on it), tx doorbell (we ring it) */
	unsigned spin;             /* polls before sleeping */
	int failed;
	uint64_t sleeps;
};

/* Block until rx has something; false on a lost wake-up (timeout). */
static int wait_rx(struct side *s)
{
	for (;;) {
		for (unsigned i = 0; i < s->spin; i++)
			if (nx_ring_pending(s->rx) != 0)
				return 1;
		if (!nx_ring_prepare_sleep(s->rx))
			return 1;
		s->sleeps++;
		struct pollfd p = { .fd = s->rx_fd, .events = POLLIN };
		int n = poll(&p, 1, WAIT_MS);
		if (n == 0)
			return 0;
		uint64_t v;
		if (read(s->rx_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return 0;
		if (nx_ring_pending(s->rx) != 0)
			return 1;
	}
}

static void send_one(struct side *s, const struct nx_desc *d)
{
	while (nx_ring_push(s->tx, d) == -EAGAIN)
		;   /* full: the other side is draining */
	if (nx_ring_kick_needed(s->tx)) {
		uint64_t one = 1;
		if (write(s->tx_fd, &one, sizeof(one)) != sizeof(one))
			s->failed = 1;
	}
}

struct stream_arg { struct side s; unsigned n; };

static void *stream_consumer(void *p)
{
	struct stream_arg *a = p;
	struct nx_desc d;
	for (uint64_t expect = 0; expect < a->n;) {
		if (!wait_rx(&a->s)) {
			a->s.failed = 2;   /* lost wake-up */
			break;
		}
		while (nx_ring_pop(a->s.rx, &d) == 0) {
			if (d.tag != expect || d.buf[0].off != ~expect)
				a->s.failed = 3;
			expect++;
		}
	}
	return NULL;
}

static void run_stream(unsigned spin)
{
	struct nx_ring *r = ring_new();
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(fd >= 0);
	struct stream_arg c = { .s = { .rx = r, .rx_fd = fd, .spin = spin }, .n = STREAM_N };
	struct side prod = { .tx = r, .tx_fd = fd };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stream_consumer, &c), 0);
	struct nx_desc d = { 0 };
	unsigned seed = 12345;
	for (uint64_t i = 0; i < STREAM_N; i++) {
		d.tag = i;
		d.buf[0].off = ~i;
		send_one(&prod, &d);
		/* Irregular bursts so the consumer keeps falling asleep. */
		if ((rand_r(&seed) & 1023) == 0)
			usleep(rand_r(&seed) % 50);
	}
	pthread_join(t, NULL);
	assert_int_equal(prod.failed, 0);
	assert_int_equal(c.s.failed, 0);
	print_message("stream: %u descriptors, consumer slept %lu times\n", STREAM_N, (unsigned long)c.s.sleeps);
	assert_true(c.s.sleeps > 0);   /* the sleep path was exercised */
	close(fd);
	free(r);
}

static void test_stress_stream_nospin(void **state) { (void)state; run_stream(0); }
static void test_stress_stream_spin(void **state) { (void)state; run_stream(64); }

/* Ping-pong: each side waits for the other after every message, so nearly
 * every message crosses a sleep/wake-up — the worst case for the handshake. */
static void *ponger(void *p)
{
	struct side *s = p;
	struct nx_desc d;
	for (unsigned i = 0; i < PINGPONG_N; i++) {
		if (!wait_rx(s)) {
			s->failed = 2;
			return NULL;
		}
		if (nx_ring_pop(s->rx, &d) != 0 || d.tag != i) {
			s->failed = 3;
			return NULL;
		}
		d.flags = NX_F_COMPLETION;
		send_one(s, &d);
	}
	return NULL;
}

static void test_stress_pingpong(void **state)
{
	(void)state;
	struct nx_ring *a = ring_new(), *b = ring_new();
	int fa = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), fb = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct side ping = { .rx = b, .tx = a, .rx_fd = fb, .tx_fd = fa, .spin = 0 };
	struct side pong = { .rx = a, .tx = b, .rx_fd = fa, .tx_fd = fb, .spin = 0 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ponger, &pong), 0);
	struct nx_desc d = { .opcode = NX_OP_NOP }, out;
	for (unsigned i = 0; i < PINGPONG_N && !ping.failed; i++) {
		d.tag = i;
		send_one(&ping, &d);
		if (!wait_rx(&ping)) {
			ping.failed = 2;
			break;
		}
		if (nx_ring_pop(ping.rx, &out) != 0 || out.tag != i || out.flags != NX_F_COMPLETION)
			ping.failed = 3;
		/* vary the spin budget so both fast and sleeping paths interleave */
		ping.spin = (i % 3) * 20;
	}
	pthread_join(t, NULL);
	assert_int_equal(ping.failed, 0);
	assert_int_equal(pong.failed, 0);
	print_message("pingpong: %u round trips, sleeps %lu/%lu\n", PINGPONG_N,
	              (unsigned long)ping.sleeps, (unsigned long)pong.sleeps);
	assert_true(pong.sleeps > 0);
	close(fa);
	close(fb);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_pop_order),
		cmocka_unit_test(test_wraparound_free_running),
		cmocka_unit_test(test_impossible_indices),
		cmocka_unit_test(test_sleep_flag),
		cmocka_unit_test(test_stress_stream_nospin),
		cmocka_unit_test(test_stress_stream_spin),
		cmocka_unit_test(test_stress_pingpong),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
