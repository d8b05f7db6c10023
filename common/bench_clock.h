/* The monotonic clock and the sort that the small round-trip benchmarks in the
 * guest (bench/vm, tests/vm, libnexus's nopbench) share: each times ROUNDS
 * batches and reports the median, minimum and maximum per operation. */
#ifndef NEXUS_COMMON_BENCH_CLOCK_H
#define NEXUS_COMMON_BENCH_CLOCK_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort v ascending: then v[0] is the minimum, v[n / 2] the median, v[n - 1] the maximum. */
static inline void bench_sort_u64(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, bench_u64_cmp);
}

#endif
