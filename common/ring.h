/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer descriptor rings in the shared region
 * (layout in include/nexus/channel.h).  Used by both sides: nexusd (which
 * treats everything the guest wrote as hostile) and libnexus in the guest.
 *
 * The consumer copies each descriptor out of shared memory exactly once
 * (nx_ring_pop) and works on its private copy; the producer writes a whole
 * descriptor before publishing head with release semantics.
 */
#ifndef NEXUS_COMMON_RING_H
#define NEXUS_COMMON_RING_H

#include <stdbool.h>
#include <nexus/channel.h>

/* Zero a ring's indices and flags (region creation only). */
void nx_ring_init(struct nx_ring *r);

/* Producer: copy *d into the next slot and publish it.
 * Returns 0, -EAGAIN when full, -EPROTO when the consumer's tail is
 * impossible (the other side is corrupt or hostile). */
int nx_ring_push(struct nx_ring *r, const struct nx_desc *d);

/* Producer, after one or more pushes: full barrier, then returns true (and
 * clears the flag) when the consumer announced it is going to sleep — the
 * caller must then ring the doorbell. */
bool nx_ring_kick_needed(struct nx_ring *r);

/* Consumer: copy the next descriptor into *out and advance tail.
 * Returns 0, -EAGAIN when empty, -EPROTO when head is impossible. */
int nx_ring_pop(struct nx_ring *r, struct nx_desc *out);

/* Consumer, before sleeping on its doorbell: announce sleep, full barrier,
 * re-check.  Returns true when the ring is still empty and the caller may
 * sleep; false when work arrived (the flag is cleared again). */
bool nx_ring_prepare_sleep(struct nx_ring *r);

/* Number of descriptors waiting (consumer view); -1 when head is impossible. */
int nx_ring_pending(const struct nx_ring *r);

#endif
