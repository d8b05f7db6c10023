/* SPDX-License-Identifier: MIT */
/*
 * guest-hostile: runs INSIDE a microVM and attacks its host peer through the
 * Nexus device, bypassing libnexus: scribbles over the whole region (header,
 * rings, arenas), posts descriptors with unknown opcodes, out-of-range and
 * overflowing buffers and a runaway head index, and rings the doorbell in a
 * tight loop.  The host (nexusd's chan.c in guest-realhost) must survive,
 * report a protocol violation and stop this VM; if it is still running after
 * the attack, the program exits 0 (the test then fails: nobody stopped it).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nexus/channel.h>
#include <nexus/nexus_dev.h>

#include "devnexus_map.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

int main(void)
{
	struct nexus_dev_info info;
	int fd;
	uint8_t *r = devnexus_map("hostile", &info, &fd);
	if (!r)
		return 2;
	printf("hostile: region %llu bytes mapped; attacking\n", (unsigned long long)info.region_size);
	fflush(stdout);
	struct nx_ring *th = (struct nx_ring *)(r + NX_TO_HOST_RING_OFF);
	uint64_t one = 1;
	for (int round = 0; round < 100; round++) {
		/* Out-of-range, overflowing and unknown-opcode descriptors. */
		for (unsigned i = 0; i < NX_RING_ENTRIES; i++) {
			struct nx_desc *d = &th->desc[i];
			d->opcode = (uint16_t)(next_rand() % 64);
			d->flags = (uint16_t)next_rand();
			d->tag = next_rand();
			for (int b = 0; b < 3; b++) {
				d->buf[b].off = (i & 1) ? next_rand() : info.region_size - 8;
				d->buf[b].len = (i & 2) ? UINT64_MAX - 4 : next_rand() % (1u << 30);
			}
		}
		/* A head that runs away from the tail, then one that goes backwards. */
		__atomic_store_n(&th->head, th->tail + (round & 1 ? 100000u : NX_RING_ENTRIES / 2), __ATOMIC_RELEASE);
		/* Garbage over the header and the arenas. */
		for (uint64_t off = 0; off < info.region_size; off += 4096)
			*(uint64_t *)(r + off + (next_rand() & 4088)) = next_rand();
		for (int k = 0; k < 1000; k++)
			if (write(fd, &one, sizeof one) != sizeof one)
				perror("hostile: doorbell");
	}
	printf("hostile: attack finished and still running (nobody stopped this VM)\n");
	return 0;
}
