/* SPDX-License-Identifier: MIT */
/*
 * The host side of one instance's channel: the memfd region, the two
 * doorbell eventfds, the host-arena allocator, and the dispatcher that turns
 * validated guest requests into storage operations and completions.
 *
 * Every descriptor is copied out of the region once and validated (opcode,
 * flags, buffer ranges against the guest arena, releases against the host
 * arena's live allocations, TLV arguments, bucket allow-list) before use.  A
 * guest that breaks the protocol badly (impossible ring indices, a flood of
 * invalid descriptors) is reported through ops->violation; the instance
 * manager then stops it.  Everything runs on the loop thread.
 */
#ifndef NEXUSD_CHAN_H
#define NEXUSD_CHAN_H

#include <stddef.h>
#include <stdint.h>

struct nx_loop;
struct nx_s3;
struct nx_chan;

struct nx_chan_ops {
	/* The runtime posted NX_OP_READY. */
	void (*ready)(void *owner, const char *runtime);
	/* The runtime finished invocation inv_id; status is NX_S_OK or
	 * NX_S_HANDLER_ERROR; payload (JSON) is valid during the call only. */
	void (*invoke_done)(void *owner, uint64_t inv_id, int status, const void *payload, size_t len);
	/* The guest broke the protocol; why is a short human-readable reason. */
	void (*violation)(void *owner, const char *why);
};

struct nx_chan_config {
	size_t region_size;            /* bytes, NX_REGION_MIN..NX_REGION_MAX */
	const char *const *buckets;    /* allow-list, NULL-terminated; NULL = none */
	const char *ready_meta_json;   /* completion meta for NX_OP_READY: the function's
	                                  config for the runtime, e.g. {"function_name",
	                                  "handler","memory_mb","timeout_s","mode"} */
	uint64_t generation;           /* written to the header */
};

struct nx_chan *nx_chan_new(struct nx_loop *loop, struct nx_s3 *s3, const struct nx_chan_config *cfg,
                            const struct nx_chan_ops *ops, void *owner);
/* Cancels in-flight storage operations, unmaps and closes everything. */
void nx_chan_destroy(struct nx_chan *c);

/* The fds handed to the sandbox (the sandbox driver dups them). */
int nx_chan_region_fd(const struct nx_chan *c);
int nx_chan_kick_host_fd(const struct nx_chan *c);   /* guest writes, host polls */
int nx_chan_kick_guest_fd(const struct nx_chan *c);  /* host writes, guest polls */

/* Deliver an invocation: copies event (JSON, <= NX_PAYLOAD_MAX) and context
 * (JSON) into the host arena and posts NX_OP_INVOKE with tag inv_id.
 * Returns 0, -ENOSPC (arena or ring full), -EPROTO (channel broken). */
int nx_chan_invoke(struct nx_chan *c, uint64_t inv_id, const void *event, size_t event_len,
                   const char *context_json);

/* Host buffers filled before the guest asks for them (prefetch.c: the S3
 * client writes a hinted object straight into the region of the instance
 * being started).  nx_chan_reserve allocates one in the host arena (at most
 * len <= half the host arena, 8 at a time) and returns its address, or NULL.
 * The guest cannot RELEASE it.  Exactly one of these ends a reservation:
 *  - nx_chan_unreserve: freed (miss, stale, failed fetch, cancelled claim);
 *  - nx_chan_sink_adopt: it becomes the body sink of the channel's GET whose
 *    S3 request carried sink_arg (the channel's own op); that GET's
 *    completion then owns it (handed to the guest, or freed on error).
 *    -ENOENT (no such live GET, or off is not reserved): nothing changed,
 *    the caller still holds the reservation.
 * Reservations die with the channel (destroy, reset). */
void *nx_chan_reserve(struct nx_chan *c, size_t len, uint64_t *off);
void nx_chan_unreserve(struct nx_chan *c, uint64_t off);
int  nx_chan_sink_adopt(struct nx_chan *c, void *sink_arg, uint64_t off);

/* prefetch.c, when linked in (a weak reference from nx_chan_new): a channel
 * exists now, before its sandbox starts. */
void pf_chan_created(struct nx_chan *c);

struct nx_chan_stats {
	uint64_t requests, completions, invalid, host_arena_used, host_arena_peak;
};
void nx_chan_stats(const struct nx_chan *c, struct nx_chan_stats *out);

#endif
