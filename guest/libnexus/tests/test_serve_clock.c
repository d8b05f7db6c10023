/* SPDX-License-Identifier: MIT */
/*
 * Host test of nx_serve's clock rule after a snapshot restore (serve.c,
 * clock_after_restore): the same rule as the Python runtime's
 * sync_clock_after_restore (guest/python/nexusrt/runtime.py), case by case.
 * serve.c is included so its static functions are reachable; the clock
 * setter is replaced (a host test must never set the host's clock).
 *
 *   cc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Iguest/libnexus \
 *      guest/libnexus/tests/test_serve_clock.c guest/libnexus/s3.c guest/libnexus/guest.c \
 *      guest/libnexus/transport_*.c common/ring.c common/arena.c common/tlv.c -pthread
 */
#include <stdint.h>

static int64_t fake_set_ms = -1;
static int fake_set_realtime(int64_t ms)
{
	fake_set_ms = ms;
	return 0;
}
#define NX_SERVE_SET_REALTIME fake_set_realtime
#include "../serve.c"

#include "check.h"

#define NOW 1790000000000LL   /* the guest's (lagging) clock, ms */

static int rule(uint64_t reattaches, uint64_t *seen, const char *ctx, double timeout_s, int64_t *out)
{
	*out = -1;
	return clock_after_restore(reattaches, seen, ctx, ctx ? strlen(ctx) : 0, timeout_s, NOW, out);
}

int main(void)
{
	int64_t ms;
	uint64_t seen = 0;
	char ctx[256];
	/* The host is 1 h ahead (the snapshot is an hour old); timeout 120 s. */
	snprintf(ctx, sizeof ctx, "{\"aws_request_id\":\"r1\",\"deadline_ms\":%lld,\"function_name\":\"f\"}",
	         NOW + 3600000LL + 120000LL);
	CHECK(rule(0, &seen, ctx, 120, &ms) == 0, "no re-attach yet: the clock is left alone");
	CHECK(rule(1, &seen, ctx, 120, &ms) == 1 && ms == NOW + 3600000LL, "after a re-attach: set to %lld", (long long)ms);
	CHECK(seen == 1, "re-attach %llu consumed", (unsigned long long)seen);
	CHECK(rule(1, &seen, ctx, 120, &ms) == 0, "only the first invocation after it");
	/* Within a second of the guest's clock: not set (either side); at 1 s: set. */
	snprintf(ctx, sizeof ctx, "{\"deadline_ms\":%lld}", NOW + 999LL + 3000LL);
	CHECK(rule(2, &seen, ctx, 3, &ms) == 0, "999 ms ahead: left alone");
	snprintf(ctx, sizeof ctx, "{\"deadline_ms\":%lld}", NOW - 999LL + 3000LL);
	CHECK(rule(3, &seen, ctx, 3, &ms) == 0, "999 ms behind: left alone");
	snprintf(ctx, sizeof ctx, "{\"deadline_ms\":%lld}", NOW + 1000LL + 3000LL);
	CHECK(rule(4, &seen, ctx, 3, &ms) == 1 && ms == NOW + 1000LL, "1 s ahead: set");
	/* The guest ahead of the host (never after a restore, but the rule is symmetric). */
	snprintf(ctx, sizeof ctx, "{\"deadline_ms\":%lld}", NOW - 5000LL + 3000LL);
	CHECK(rule(5, &seen, ctx, 3, &ms) == 1 && ms == NOW - 5000LL, "5 s behind: set back");
	/* Fractional timeout, spaces in the JSON. */
	snprintf(ctx, sizeof ctx, "{ \"deadline_ms\" : %lld }", NOW + 60000LL + 1500LL);
	CHECK(rule(6, &seen, ctx, 1.5, &ms) == 1 && ms == NOW + 60000LL, "timeout 1.5 s: %lld", (long long)ms);
	/* Nothing to go by: no deadline, a string, garbage, a nested one, no timeout: left alone,
	 * and the re-attach is consumed all the same (as in the Python runtime). */
	const char *bad[] = { "{}", "{\"deadline_ms\":\"soon\"}", "{\"deadline_ms\":12x}", "{\"x\":{\"deadline_ms\":5}}",
	                      "{\"deadline_ms\":-5}", "{\"deadline_ms\":1e300}", "not json", NULL };
	uint64_t n = 10;
	for (int i = 0; bad[i]; i++, n++)
		CHECK(rule(n, &seen, bad[i], 3, &ms) == 0 && seen == n, "context %s: left alone", bad[i]);
	snprintf(ctx, sizeof ctx, "{\"deadline_ms\":%lld}", NOW + 3600000LL);
	CHECK(rule(n, &seen, ctx, -1, &ms) == 0 && seen == n, "no timeout_s in the READY config: left alone");
	CHECK(rule(n + 1, &seen, NULL, 3, &ms) == 0, "no context: left alone");

	/* timeout_s from the READY config. */
	struct nx_reply cfg = { .meta = "{\"function_name\":\"f\",\"memory_mb\":128,\"timeout_s\":120}" };
	cfg.meta_len = strlen(cfg.meta);
	CHECK(config_timeout_s(&cfg) == 120, "timeout_s 120");
	cfg.meta = "{\"function_name\":\"f\"}";
	cfg.meta_len = strlen(cfg.meta);
	CHECK(config_timeout_s(&cfg) == -1, "no timeout_s");
	cfg.meta = "{\"timeout_s\":\"x\"}";
	cfg.meta_len = strlen(cfg.meta);
	CHECK(config_timeout_s(&cfg) == -1, "timeout_s not a number");
	cfg.meta = NULL;
	CHECK(config_timeout_s(&cfg) == -1, "no config");
	CHECK(fake_set_ms == -1, "the rule itself never sets the clock");

	printf("test-serve-clock: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
