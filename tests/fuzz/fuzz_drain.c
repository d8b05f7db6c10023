/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: everything nexusd reads from a region.  A fresh channel
 * (nexusd/chan.c) gets fuzzer bytes as its to-host ring indices, descriptors
 * and guest-arena contents; the drain must survive anything without memory
 * errors (ASan/UBSan), leaks, or breaking its own accounting.  Storage is a
 * fake that completes at once (tests/unit/fake_s3.c).  After the first drain
 * the target plays an honest guest: consumes the completions, releases every
 * host buffer it was handed, and drains again — so the release path sees real
 * and forged offsets alike.
 *
 * Input: u32 head, u32 tail, u8 ndesc, u8 flags, ndesc * 64 descriptor
 * bytes, then bytes for the start of the guest arena.  Flags:
 *   0x01 storage answers with an error      0x02 GET bodies are empty
 *   0x04 guest sleeps on the to-guest ring  0x08 storage completes later, in
 *        (doorbell path)                         reverse order, after a retry
 *   0x10 guest corrupts the to-guest ring   0x20 the descriptors repeat to fill
 *        after the first drain                   the ring (floods, cheaply)
 *   0x40 GET bodies are 300 KiB (hole punching on release)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ring.h"
#include "nexusd/chan.h"
#include "nexusd/chan_validate.h"
#include "nexusd/loop.h"
#include "tests/unit/fake_s3.h"

static int violations;
static void v_ready(void *o, const char *rt) { (void)o; (void)rt; }
static void v_done(void *o, uint64_t id, int st, const void *p, size_t n)
{
	(void)o; (void)id; (void)st;
	volatile uint8_t x = 0;
	for (size_t i = 0; i < n; i++)   /* touch the whole payload copy */
		x ^= ((const uint8_t *)p)[i];
}
static void v_violation(void *o, const char *why) { (void)o; (void)why; violations++; }
static const struct nx_chan_ops OPS = { v_ready, v_done, v_violation };
static const char *const BUCKETS[] = { "allowed", NULL };
static struct nx_loop *L;

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char body[] = "fuzzed object body";
	static char big[300 << 10];
	if (size < 10)
		return 0;
	if (!L)
		L = nx_loop_new();
	fake_s3_reset();
	uint8_t flags = data[9];
	fake_s3_sync = !(flags & 0x08);
	fake_s3_status = (flags & 1) ? NX_S_STORAGE_ERROR : NX_S_OK;
	fake_s3_get_body = (flags & 0x40) ? big : body;
	fake_s3_get_len = (flags & 2) ? 0 : (flags & 0x40) ? sizeof(big) : sizeof(body) - 1;
	violations = 0;

	/* One channel for the whole run (munmap is slow here), reset per input. */
	static struct nx_chan *c;
	if (!c) {
		struct nx_chan_config cfg = { .region_size = NX_REGION_MIN, .buckets = BUCKETS,
		                              .ready_meta_json = "{\"function_name\":\"fz\"}" };
		c = nx_chan_new(L, (struct nx_s3 *)1, &cfg, &OPS, NULL);
		if (!c)
			abort();
	}
	nx_chan_reset(c);
	uint8_t *R = nx_chan_region(c);
	const struct nx_chan_layout *lay = nx_chan_get_layout(c);
	struct nx_ring *th = (struct nx_ring *)(R + NX_TO_HOST_RING_OFF);
	struct nx_ring *tg = (struct nx_ring *)(R + NX_TO_GUEST_RING_OFF);
	/* Each input starts from the same region: no descriptors or guest bytes
	 * left over from the previous one (reproducers must be self-contained). */
	static size_t dirty;
	memset(th->desc, 0, sizeof(th->desc));
	memset(tg->desc, 0, sizeof(tg->desc));
	memset(R + lay->guest_off, 0, dirty);

	/* An invocation in flight so INVOKE_DONE with tag 1 is meaningful. */
	nx_chan_invoke(c, 1, "{\"e\":1}", 7, "{}");
	struct nx_desc inv;
	int have_inv = nx_ring_pop(tg, &inv) == 0;

	uint32_t head = rd32(data), tail = rd32(data + 4);
	size_t ndesc = data[8], pos = 10;
	th->tail = tail;
	size_t given = 0;
	for (; given < ndesc && pos + sizeof(struct nx_desc) <= size; given++, pos += sizeof(struct nx_desc))
		memcpy(&th->desc[(tail + given) & (NX_RING_ENTRIES - 1)], data + pos, sizeof(struct nx_desc));
	if ((flags & 0x20) && given)
		for (size_t i = given; i < NX_RING_ENTRIES; i++)
			th->desc[(tail + i) & (NX_RING_ENTRIES - 1)] = th->desc[(tail + i % given) & (NX_RING_ENTRIES - 1)];
	if (flags & 0x04)
		nx_ring_prepare_sleep(tg);
	size_t rest = size - pos;
	if (rest > lay->guest_size)
		rest = lay->guest_size;
	memcpy(R + lay->guest_off, data + pos, rest);
	dirty = rest;   /* only this harness writes the guest arena */
	__atomic_store_n(&th->head, head, __ATOMIC_RELEASE);

	nx_chan_drain(c);
	if (flags & 0x10)
		tg->tail = tg->head + NX_RING_ENTRIES + 1;
	if (flags & 0x08) {
		/* Deferred storage: a first attempt's sink, then the real completion
		 * (the channel sees a retry), newest first. */
		for (int i = fake_s3_ncalls - 1; i >= 0; i--) {
			struct fake_call *f = &fake_s3_calls[i];
			if (f->cancelled || f->done)
				continue;
			if (f->req.sink_alloc)
				f->req.sink_alloc(f->req.sink_arg, 5);
			fake_s3_complete(i, fake_s3_status);
		}
	}

	/* Honest guest: take completions and give back every host buffer they
	 * carried (and the invocation's), draining until nothing new comes. */
	if (have_inv) {
		for (int k = 0; k < 2; k++) {
			struct nx_desc rel = { .opcode = NX_OP_RELEASE, .buf = { { inv.buf[k].off, 0 } } };
			if (inv.buf[k].len)
				nx_ring_push(th, &rel);
		}
	}
	struct nx_desc d;
	for (int round = 0; round < 16; round++) {
		nx_chan_drain(c);
		int got = 0;
		while (nx_ring_pop(tg, &d) == 0) {
			got++;
			for (int k = 0; k < 3; k++) {
				if (!d.buf[k].len)
					continue;
				if (d.buf[k].off < lay->host_off || d.buf[k].off - lay->host_off >= lay->host_size ||
				    d.buf[k].len > lay->host_size - (d.buf[k].off - lay->host_off))
					abort();   /* the host handed out a buffer outside its arena */
				struct nx_desc rel = { .opcode = NX_OP_RELEASE, .buf = { { d.buf[k].off, 0 } } };
				while (nx_ring_push(th, &rel) == -EAGAIN)
					nx_chan_drain(c);
			}
		}
		if (!got && nx_ring_pending(th) == 0)
			break;
	}
	/* Unless the guest was cut off for a violation (or broke its own ring
	 * and so could not take its completions), every buffer the host handed
	 * out came back: forged releases freed nothing they should not have, and
	 * nothing leaked in the host arena. */
	struct nx_chan_stats st;
	nx_chan_stats(c, &st);
	if (!violations && !(flags & 0x10) && nx_ring_pending(th) == 0 && st.host_arena_used != 0)
		abort();
	nx_chan_reset(c);   /* cancels what is still in flight */
	fake_s3_reset();    /* free this input's allocations within the input */
	uint64_t v;
	if (read(nx_chan_kick_guest_fd(c), &v, sizeof(v)) < 0) { /* no doorbell rung */ }
	return 0;
}
