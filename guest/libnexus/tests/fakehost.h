/* SPDX-License-Identifier: MIT */
/*
 * A host-side test double for libnexus: creates a region and the two
 * doorbells as nexusd does, and serves requests on a thread from an
 * in-memory object store, using the same common/ ring, arena and TLV code.
 * The host arena is tracked with common/arena.c, so every RELEASE the guest
 * sends is checked against live allocations (bad ones count as violations).
 */
#ifndef LIBNEXUS_TEST_FAKEHOST_H
#define LIBNEXUS_TEST_FAKEHOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fakehost;

struct fakehost *fakehost_new(size_t region_size);
void fakehost_destroy(struct fakehost *h);
void fakehost_fds(const struct fakehost *h, int *region, int *kick_host, int *kick_guest);
void *fakehost_region(const struct fakehost *h);

/* How INVOKE_DONE is acknowledged: quiet = as nexusd does it (an OK ack rings
 * no doorbell; the next INVOKE's does), status = the ack's status (default
 * NX_S_OK, quiet off). */
void fakehost_ack_mode(struct fakehost *h, bool quiet, uint32_t status);
/* How long the idle host sleeps on its doorbell before it looks at the ring
 * anyway (default 50 ms; long = only a kick wakes it). */
void fakehost_idle_poll(struct fakehost *h, int ms);
/* Stop / resume serving (to fill the to-host ring). */
void fakehost_pause(struct fakehost *h, bool paused);
/* Post an invocation; fakehost_wait_done waits for its INVOKE_DONE and returns
 * the status, with the payload copied into buf (len in *len). */
int fakehost_invoke(struct fakehost *h, uint64_t tag, const char *event, const char *ctx);
int fakehost_wait_done(struct fakehost *h, uint64_t tag, char *buf, size_t *len, int timeout_ms);

size_t fakehost_live_buffers(struct fakehost *h);  /* host-arena allocations not yet released */
unsigned fakehost_violations(struct fakehost *h);
uint64_t fakehost_releases(struct fakehost *h);
/* What a snapshot restore does to the guest: the region's contents become a
 * fresh region's (rings and arenas reset, generation + 1) under the same
 * mapping, the host forgets every buffer, and the guest is kicked once. */
void fakehost_new_generation(struct fakehost *h);
uint64_t fakehost_readies(struct fakehost *h);     /* READY requests served */
/* Corrupt the to-guest ring's head (a broken host). */
void fakehost_break_ring(struct fakehost *h);

#endif
