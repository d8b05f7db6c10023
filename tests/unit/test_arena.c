/* SPDX-License-Identifier: MIT */
/* The arena allocator: alignment, first fit, coalescing, exact-start release,
 * and a randomized run checked against a shadow model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include <nexus/channel.h>

#define BASE 40960u
#define SIZE (1u << 20)

static void test_basic(void **state)
{
	(void)state;
	struct nx_arena *a = nx_arena_new(BASE, SIZE);
	assert_non_null(a);
	assert_int_equal(nx_arena_size(a), SIZE);
	uint64_t o1, o2, o3, len;
	assert_int_equal(nx_arena_alloc(a, 1, &o1), 0);
	assert_int_equal(o1, BASE);
	assert_int_equal(nx_arena_alloc(a, 100, &o2), 0);
	assert_int_equal(o2, BASE + 64);            /* NX_ALIGN granularity */
	assert_int_equal(nx_arena_alloc(a, 64, &o3), 0);
	assert_int_equal(o3, BASE + 64 + 128);
	assert_int_equal(nx_arena_live(a), 3);
	assert_int_equal(nx_arena_used(a), 64 + 128 + 64);
	assert_int_equal(o1 % NX_ALIGN, 0);
	assert_int_equal(o2 % NX_ALIGN, 0);

	assert_int_equal(nx_arena_release(a, o2, &len), 0);
	assert_int_equal(len, 100);
	assert_int_equal(nx_arena_release(a, o2, NULL), -ENOENT);   /* double free */
	assert_int_equal(nx_arena_release(a, o1 + 1, NULL), -ENOENT);/* not a start */
	assert_int_equal(nx_arena_release(a, o3 + 64, NULL), -ENOENT);/* free space */
	assert_int_equal(nx_arena_release(a, 0, NULL), -ENOENT);
	assert_int_equal(nx_arena_release(a, UINT64_MAX, NULL), -ENOENT);
	/* first fit reuses the hole */
	uint64_t o4;
	assert_int_equal(nx_arena_alloc(a, 128, &o4), 0);
	assert_int_equal(o4, o2);
	assert_int_equal(nx_arena_alloc(a, 0, &o4), -ENOSPC);
	nx_arena_destroy(a);
}

static void test_exhaustion_and_coalescing(void **state)
{
	(void)state;
	struct nx_arena *a = nx_arena_new(BASE, SIZE);
	uint64_t off[16];
	for (int i = 0; i < 16; i++)
		assert_int_equal(nx_arena_alloc(a, SIZE / 16, &off[i]), 0);
	uint64_t x;
	assert_int_equal(nx_arena_alloc(a, 1, &x), -ENOSPC);
	assert_int_equal(nx_arena_used(a), SIZE);
	/* Free every other block: no room for two blocks in a row yet. */
	for (int i = 0; i < 16; i += 2)
		assert_int_equal(nx_arena_release(a, off[i], NULL), 0);
	assert_int_equal(nx_arena_alloc(a, 2 * (SIZE / 16), &x), -ENOSPC);
	/* Free the rest in an order that coalesces both ways. */
	for (int i = 15; i > 0; i -= 2)
		assert_int_equal(nx_arena_release(a, off[i], NULL), 0);
	assert_int_equal(nx_arena_used(a), 0);
	assert_int_equal(nx_arena_live(a), 0);
	assert_int_equal(nx_arena_alloc(a, SIZE, &x), 0);   /* whole arena again */
	assert_int_equal(x, BASE);
	assert_int_equal(nx_arena_alloc(a, SIZE + 1, &x), -ENOSPC);
	assert_int_equal(nx_arena_alloc(a, UINT64_MAX, &x), -ENOSPC);
	nx_arena_reset(a);
	assert_int_equal(nx_arena_live(a), 0);
	assert_int_equal(nx_arena_release(a, BASE, NULL), -ENOENT);
	assert_int_equal(nx_arena_alloc(a, SIZE, &x), 0);
	nx_arena_destroy(a);
}

static void test_contains(void **state)
{
	(void)state;
	struct nx_arena *a = nx_arena_new(BASE, SIZE);
	assert_true(nx_arena_contains(a, BASE, SIZE));
	assert_true(nx_arena_contains(a, BASE, 0));
	assert_true(nx_arena_contains(a, BASE + SIZE, 0));
	assert_true(nx_arena_contains(a, BASE + 10, SIZE - 10));
	assert_false(nx_arena_contains(a, BASE + 10, SIZE - 9));
	assert_false(nx_arena_contains(a, BASE - 1, 1));
	assert_false(nx_arena_contains(a, BASE + SIZE + 1, 0));
	assert_false(nx_arena_contains(a, BASE + 64, UINT64_MAX));          /* overflow */
	assert_false(nx_arena_contains(a, UINT64_MAX, 2));
	assert_false(nx_arena_contains(a, UINT64_MAX - 10, 20));
	nx_arena_destroy(a);
}

static void test_unaligned_base(void **state)
{
	(void)state;
	struct nx_arena *a = nx_arena_new(BASE + 3, 1000);
	uint64_t x;
	assert_int_equal(nx_arena_alloc(a, 1, &x), 0);
	assert_int_equal(x % NX_ALIGN, 0);
	assert_true(x >= BASE + 3);
	assert_true(nx_arena_size(a) <= 1000 - 61);
	nx_arena_destroy(a);
	a = nx_arena_new(BASE + 3, 10);   /* smaller than the alignment slack */
	assert_int_equal(nx_arena_size(a), 0);
	assert_int_equal(nx_arena_alloc(a, 1, &x), -ENOSPC);
	nx_arena_destroy(a);
}

/* Random alloc/free against a shadow model: no overlap, every live block
 * inside the arena, releases accepted exactly for live starts. */
struct free_list { uint64_t off[8], len[8]; int n; };

static void collect_free(void *arg, uint64_t off, uint64_t len)
{
	struct free_list *f = arg;
	assert_true(f->n < 8);
	f->off[f->n] = off;
	f->len[f->n++] = len;
}

/* nx_arena_for_each_free reports exactly the holes, in order (chan.c trims them). */
static void test_for_each_free(void **state)
{
	(void)state;
	struct nx_arena *a = nx_arena_new(4096, 4096);
	uint64_t x, y, z;
	assert_int_equal(nx_arena_alloc(a, 1024, &x), 0);
	assert_int_equal(nx_arena_alloc(a, 1024, &y), 0);
	assert_int_equal(nx_arena_alloc(a, 1024, &z), 0);
	assert_int_equal(nx_arena_release(a, x, NULL), 0);
	struct free_list f = {0};
	nx_arena_for_each_free(a, collect_free, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.off[0], 4096);
	assert_int_equal(f.len[0], 1024);
	assert_int_equal(f.off[1], z + 1024);
	assert_int_equal(f.len[1], 4096 - 3072);
	assert_int_equal(nx_arena_release(a, y, NULL), 0);
	assert_int_equal(nx_arena_release(a, z, NULL), 0);
	f.n = 0;
	nx_arena_for_each_free(a, collect_free, &f);
	assert_int_equal(f.n, 1);   /* coalesced back into one hole */
	assert_int_equal(f.off[0], 4096);
	assert_int_equal(f.len[0], 4096);
	nx_arena_destroy(a);
}

static void test_randomized(void **state)
{
	(void)state;
	enum { N = 512 };
	struct nx_arena *a = nx_arena_new(BASE, SIZE);
	struct { uint64_t off, len; int live; } blk[N] = { 0 };
	unsigned seed = 7;
	for (int step = 0; step < 200000; step++) {
		int i = rand_r(&seed) % N;
		if (blk[i].live) {
			uint64_t len;
			assert_int_equal(nx_arena_release(a, blk[i].off, &len), 0);
			assert_int_equal(len, blk[i].len);
			blk[i].live = 0;
			assert_int_equal(nx_arena_release(a, blk[i].off, &len), -ENOENT);
		} else {
			uint64_t len = 1 + (uint64_t)(rand_r(&seed) % 9000), off;
			if (nx_arena_alloc(a, len, &off) == 0) {
				assert_true(nx_arena_contains(a, off, len));
				assert_int_equal(off % NX_ALIGN, 0);
				for (int j = 0; j < N; j++)
					if (blk[j].live)
						assert_true(off + len <= blk[j].off || blk[j].off + blk[j].len <= off);
				blk[i].off = off;
				blk[i].len = len;
				blk[i].live = 1;
			}
		}
	}
	size_t live = 0;
	for (int j = 0; j < N; j++)
		if (blk[j].live) {
			live++;
			assert_int_equal(nx_arena_release(a, blk[j].off, NULL), 0);
		}
	(void)live;
	assert_int_equal(nx_arena_used(a), 0);
	uint64_t x;
	assert_int_equal(nx_arena_alloc(a, SIZE, &x), 0);   /* fully coalesced */
	nx_arena_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_exhaustion_and_coalescing),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_unaligned_base),
		cmocka_unit_test(test_randomized),
		cmocka_unit_test(test_for_each_free),
	};
	return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
