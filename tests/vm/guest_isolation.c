/* SPDX-License-Identifier: MIT */
/*
 * guest-isolation TOKEN: runs INSIDE a microVM while another instance runs the
 * same program with another TOKEN.  Fills this instance's guest arena with
 * "NXISO:<TOKEN>" records for a few seconds, then scans everything /dev/nexus
 * lets it map for a record of any other token.  Prints
 * "isolation: ok <n own records> ..." or "isolation: FAIL saw <token>"; exits 0
 * only when the region held its own records and nobody else's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include <nexus/nexus_dev.h>

#include "devnexus_map.h"

int main(int argc, char **argv)
{
	const char *tok = argc > 1 ? argv[1] : "?";
	struct nexus_dev_info info;
	int fd;   /* kept open: the mapping lives as long as the process */
	uint8_t *r = devnexus_map("isolation", &info, &fd);
	if (!r)
		return 2;
	const struct nx_region_hdr *h = (const void *)r;
	uint64_t off = h->guest_arena_off, len = h->guest_arena_size;
	if (off < NX_ARENAS_OFF || off > info.region_size || len > info.region_size - off)
		len = 0;
	char rec[64];
	int n = snprintf(rec, sizeof rec, "NXISO:%s;", tok);
	/* Write for ~4 s (the other instance does the same meanwhile), then scan. */
	for (int round = 0; round < 40; round++) {
		for (uint64_t o = 0; o + (uint64_t)n <= len; o += 4096)
			memcpy(r + off + o, rec, (size_t)n);
		usleep(100000);
	}
	long own = 0;
	for (uint64_t o = 0; o + 6 <= info.region_size; o++) {
		if (memcmp(r + o, "NXISO:", 6))
			continue;
		if (o + (uint64_t)n <= info.region_size && !memcmp(r + o, rec, (size_t)n)) {
			own++;
			continue;
		}
		printf("isolation: FAIL saw a foreign record at offset %llu: %.40s\n", (unsigned long long)o,
		       (const char *)r + o);
		return 1;
	}
	printf("isolation: %s %ld own records in a %llu-byte region, none from another instance\n",
	       own > 0 ? "ok" : "FAIL (no own records)", own, (unsigned long long)info.region_size);
	return own > 0 ? 0 : 1;
}
