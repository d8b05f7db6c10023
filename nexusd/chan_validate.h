/* SPDX-License-Identifier: MIT */
/*
 * Internals of nexusd/chan.c exposed for the unit tests and the fuzzer
 * (tests/unit/test_chan.c, tests/fuzz/fuzz_drain.c).  Not an interface for
 * the rest of nexusd.
 */
#ifndef NEXUSD_CHAN_VALIDATE_H
#define NEXUSD_CHAN_VALIDATE_H

#include <stdbool.h>
#include <stdint.h>
#include <nexus/channel.h>

struct nx_chan;

/* The host's private copy of the region layout (never read back from it). */
struct nx_chan_layout {
	uint64_t region_size;
	uint64_t guest_off, guest_size;
	uint64_t host_off, host_size;
};

/* Compute the layout for a region of `size` bytes (already clamped). */
void nx_chan_layout_for(uint64_t size, struct nx_chan_layout *l);

/* True when [off, off+len) lies in the guest arena (len 0: always true —
 * an empty buffer is never dereferenced).  Overflow-safe. */
bool nx_chan_in_guest_arena(const struct nx_chan_layout *l, uint64_t off, uint64_t len);

/* Stateless checks on a descriptor copied out of the to-host ring: opcode,
 * direction, flags, status, and that every buffer the opcode uses lies in
 * the right arena within its size limit.  Returns NX_S_OK, NX_S_INVALID or
 * NX_S_UNSUPPORTED.  RELEASE offsets are then checked against the host
 * arena's live allocations, TLV arguments are parsed after copying them out,
 * and INVOKE_DONE tags are checked against pending invocations. */
int nx_chan_check_desc(const struct nx_chan_layout *l, const struct nx_desc *d);

/* What a doorbell does: drain the to-host ring now. */
void nx_chan_drain(struct nx_chan *c);

/* The region as mapped by nexusd (tests play the guest through it). */
void *nx_chan_region(const struct nx_chan *c);
const struct nx_chan_layout *nx_chan_get_layout(const struct nx_chan *c);
/* Bytes given back to the system with FALLOC_FL_PUNCH_HOLE so far. */
uint64_t nx_chan_punched_bytes(const struct nx_chan *c);

/* Back to the state right after nx_chan_new (in-flight storage cancelled,
 * queues and host arena emptied, rings zeroed, violation state cleared),
 * keeping the mapping: the fuzzer reuses one channel, since munmap is
 * expensive here.  Not for channels a guest still maps. */
void nx_chan_reset(struct nx_chan *c);

/* Thresholds (documented in chan.c). */
#define NX_CHAN_INVALID_STREAK  64    /* invalid descriptors in a row -> violation */
#define NX_CHAN_MAX_OUTSTANDING 256   /* in-flight ops + queued completions */
#define NX_CHAN_PUNCH_MIN       (256u << 10) /* free host ranges this big give pages back... */
#define NX_CHAN_TRIM_MS         500u         /* ...once no large buffer was released for this long */

#endif
