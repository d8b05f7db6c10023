/* SPDX-License-Identifier: MIT */
/*
 * c-clock: a C function (runtime "provided", this program is /var/task/bootstrap)
 * for in-l1-snapshot.sh's snapshot:c-clock case.  It answers with the guest's
 * wall clock and libnexus's re-attach count, so the test can check that
 * nx_serve set the clock after a snapshot restore (guest/libnexus/serve.c).
 * Built by make vm-tests (tests/vm/build.mk) against build/runtime.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <nexus/libnexus.h>

static int handler(struct nx_guest *g, const struct nx_invocation *inv, char **result, size_t *len, void *arg)
{
	(void)inv;
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int n = asprintf(result, "{\"now_ms\":%lld,\"reattaches\":%llu}",
	                 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (unsigned long long)nx_reattach_count(g));
	if (n < 0)
		return 1;
	*len = (size_t)n;
	return 0;
}

int main(void)
{
	int r = nx_serve("c", handler, NULL);
	fprintf(stderr, "c-clock: the channel failed (%d): exiting\n", r);
	return 1;
}
