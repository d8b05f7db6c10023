/* SPDX-License-Identifier: MIT */
/*
 * SPSC descriptor rings in the shared region (ABI: include/nexus/channel.h).
 *
 * Memory ordering
 *   The producer fills a slot, then publishes head with a release store; the
 *   consumer loads head with acquire, so the slot's bytes are visible before
 *   it copies them.  Symmetrically the consumer copies the slot out, then
 *   publishes tail with release; the producer loads tail with acquire before
 *   reusing a slot.  Indices are free-running uint32 counters; the slot is
 *   index & (entries - 1), so even a corrupt index can never address memory
 *   outside the ring.  (head - tail) > entries is impossible for an honest
 *   peer and is reported as -EPROTO.
 *
 * Sleep/wake handshake (no lost wake-ups)
 *   Consumer (nx_ring_prepare_sleep):  store sleeping=1; FULL FENCE; load head
 *   Producer (push + kick_needed):     store head;       FULL FENCE; load sleeping
 *   This is Dekker's pattern.  The two fences are totally ordered (seq_cst),
 *   so at least one side observes the other's store:
 *     - if the producer's fence comes first, the consumer's re-check of head
 *       sees the new descriptor and it does not sleep;
 *     - if the consumer's fence comes first, the producer sees sleeping == 1,
 *       clears it and rings the doorbell, and the consumer's sleep on its
 *       eventfd returns (the eventfd counter latches a kick that arrives
 *       before the consumer actually blocks).
 *   Either way a published descriptor is never left unnoticed while the
 *   consumer sleeps.  Spurious kicks are harmless: the consumer drains,
 *   finds nothing and goes back to sleep.  A hostile peer can only flip the
 *   flag to cause extra doorbells to itself or to miss its own wake-ups.
 *
 * Every index in shared memory is read exactly once per call into a local.
 */
#include <errno.h>
#include <string.h>

#include "ring.h"

#define RING_MASK (NX_RING_ENTRIES - 1u)

void nx_ring_init(struct nx_ring *r)
{
	__atomic_store_n(&r->head, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->tail, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->consumer_sleeping, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int nx_ring_push(struct nx_ring *r, const struct nx_desc *d)
{
	uint32_t head = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
	uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	uint32_t used = head - tail;

	if (used > NX_RING_ENTRIES)
		return -EPROTO;
	if (used == NX_RING_ENTRIES)
		return -EAGAIN;
	memcpy(&r->desc[head & RING_MASK], d, sizeof(*d));
	__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
	return 0;
}

bool nx_ring_kick_needed(struct nx_ring *r)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->consumer_sleeping, __ATOMIC_RELAXED) == 0)
		return false;
	/* Clear it so a burst of pushes rings the doorbell once; exchange so two
	 * checks never both skip a kick the consumer is waiting for. */
	return __atomic_exchange_n(&r->consumer_sleeping, 0, __ATOMIC_SEQ_CST) != 0;
}

int nx_ring_pop(struct nx_ring *r, struct nx_desc *out)
{
	uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint32_t avail = head - tail;

	if (avail > NX_RING_ENTRIES)
		return -EPROTO;
	if (avail == 0)
		return -EAGAIN;
	/* The one and only read of this slot: everything after works on *out. */
	memcpy(out, &r->desc[tail & RING_MASK], sizeof(*out));
	__atomic_store_n(&r->tail, tail + 1, __ATOMIC_RELEASE);
	return 0;
}

bool nx_ring_prepare_sleep(struct nx_ring *r)
{
	__atomic_store_n(&r->consumer_sleeping, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	if (head != tail) {
		/* Work arrived (or head is impossible: let pop report it). */
		__atomic_store_n(&r->consumer_sleeping, 0, __ATOMIC_RELAXED);
		return false;
	}
	return true;
}

int nx_ring_pending(const struct nx_ring *r)
{
	uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
	uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint32_t avail = head - tail;
	return avail > NX_RING_ENTRIES ? -1 : (int)avail;
}
