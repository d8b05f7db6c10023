/* SPDX-License-Identifier: MIT */
/*
 * nopbench: a libnexus client that attaches from the environment, posts
 * READY, then measures the null round trip (NX_OP_NOP) and prints
 * "bench: ..." with the median, min and max of 7 rounds.  Run it under
 * guest-realhost to measure the channel against nexusd's chan.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../libnexus.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	struct nx_guest *g;
	struct nx_reply cfg;
	int r = nx_attach_env(&g);
	if (r < 0 || (r = nx_ready(g, "nopbench", &cfg)) < 0) {
		fprintf(stderr, "nopbench: attach/ready failed: %d\n", r);
		return 1;
	}
	nx_reply_release(g, &cfg);
	for (int i = 0; i < 1000; i++)
		if (nx_nop(g) < 0)
			return 1;
	enum { ROUNDS = 7 };
	uint64_t per[ROUNDS];
	for (int k = 0; k < ROUNDS; k++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < n; i++)
			if (nx_nop(g) < 0)
				return 1;
		per[k] = (now_ns() - t0) / (uint64_t)n;
	}
	qsort(per, ROUNDS, sizeof per[0], cmp);
	printf("bench: libnexus null round trip against nexusd's chan.c: median %.2f us, min %.2f, max %.2f "
	       "(%d rounds x %d)\n", per[ROUNDS / 2] / 1e3, per[0] / 1e3, per[ROUNDS - 1] / 1e3, ROUNDS, n);
	nx_detach(g);
	return 0;
}
