/* SPDX-License-Identifier: MIT */
/*
 * The guest side of one channel: attach (map, check the header), post
 * requests, match completions to waiters, queue invocations, release host
 * buffers.  The concurrency model is described in libnexus.h.
 *
 * Re-attach: after a microVM snapshot restore the region is a fresh one with
 * a different header generation, mapped where the old one was (same guest-
 * physical address, so the same mapping here).  Whoever notices first — the
 * transport's wait (/dev/nexus: ESTALE/POLLPRI) or a post that finds the
 * header's generation changed — re-reads the header, resets the ring
 * pointers and the guest arena, fails requests that were in flight with
 * -ESTALE (their buffers belonged to the old region), drops queued
 * invocations, and posts READY again (as the pending READY, if one waits).
 *
 * INVOKE_DONE does not wait for its acknowledgement (it would cost a host
 * kick and a wake-up per invocation, and the runtime's next step is to wait
 * for the next INVOKE anyway).  The posted result is remembered as an
 * unacknowledged "done" (struct done_ack): whichever thread drains the
 * to-guest ring later — the next nx_next_invocation, a storage call — files
 * its completion there, frees the result buffer (the host has copied it by
 * then) and logs a non-OK status.  nexusd writes that completion without
 * ringing the doorbell; the next INVOKE's doorbell delivers both.
 */
#include "libnexus.h"
#include "request_buf.h"
#include "transport.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/arena.h"
#include "../../common/ring.h"
#include "../../common/tlv.h"

#define INVQ_CAP 8          /* the host sends one invocation at a time */
#define DRAIN_BATCH 32
#define DONE_ACK_CAP 16     /* nexusd keeps at most 16 invocations pending */

/* An INVOKE_DONE posted without waiting: its result buffer (guest arena, 0 =
 * none) is freed when the host's completion for tag is filed. */
struct done_ack {
	uint64_t tag;
	uint64_t off;
};

/* A thread waiting for the completion of (opcode, tag). */
struct pending {
	uint16_t opcode;
	uint64_t tag;
	bool done;
	int err;                     /* -ESTALE: the region changed under the request */
	struct nx_desc d;
	struct pending *next;
};

struct nx_guest {
	struct nx_transport tp;
	struct nx_ring *tx;          /* to-host: we produce */
	struct nx_ring *rx;          /* to-guest: we consume */
	struct nx_arena *arena;      /* guest arena, private metadata */
	uint64_t host_off, host_size;
	uint64_t generation;
	uint64_t spin_ns;
	char runtime[64];            /* the last READY's RUNTIME, re-sent on re-attach */
	uint64_t reready_tag;        /* the re-attach READY: its args buffer */
	uint64_t reready_args;
	uint64_t reattaches;
	bool spin_yield;

	pthread_mutex_t lock;        /* tx ring, arena, pending list, invq */
	pthread_cond_t cv;           /* the poller finished a round */
	bool polling;                /* some thread is draining rx */
	bool broken;                 /* the host broke the protocol */
	uint64_t next_tag;
	struct pending *pending;
	struct nx_desc invq[INVQ_CAP];
	unsigned invq_head, invq_len;
	struct done_ack acks[DONE_ACK_CAP];  /* INVOKE_DONEs not yet acknowledged */
	unsigned n_acks;
	bool done_wait;              /* NEXUS_INVOKE_DONE_WAIT=1: wait for the ack (old protocol) */
	bool release_unkicked;       /* a RELEASE went out without a doorbell since the last one */
	uint64_t done_failures;      /* INVOKE_DONEs the host refused (status != OK) */
	uint32_t done_last_status;
};

/* Lock held.  The channel is unusable from now on (every call returns
 * EPROTO); say why once, on stderr (the function's log), because the
 * EPROTO the caller sees does not. */
static void mark_broken(struct nx_guest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_broken(struct nx_guest *g, const char *fmt, ...)
{
	if (!g->broken) {
		va_list ap;
		va_start(ap, fmt);
		fputs("[ERROR] nexus channel: broken: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputs("; every later call fails with EPROTO\n", stderr);
		va_end(ap);
	}
	g->broken = true;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* ------------------------------------------------------------- attach */

static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int check_header(const struct nx_region_hdr *h, uint64_t mapped)
{
	if (h->magic != NX_MAGIC || h->abi_major != NX_ABI_MAJOR)
		return -EPROTO;
	if (h->region_size > mapped || h->ring_entries != NX_RING_ENTRIES)
		return -EPROTO;
	uint64_t sz = h->region_size;
	if (!range_ok(h->to_host_ring_off, NX_RING_BYTES, sz) ||
	    !range_ok(h->to_guest_ring_off, NX_RING_BYTES, sz) ||
	    !range_ok(h->guest_arena_off, h->guest_arena_size, sz) ||
	    !range_ok(h->host_arena_off, h->host_arena_size, sz))
		return -EPROTO;
	if ((h->to_host_ring_off | h->to_guest_ring_off | h->guest_arena_off) % NX_CACHELINE)
		return -EPROTO;
	if (h->guest_arena_size == 0 || h->host_arena_size == 0)
		return -EPROTO;
	return 0;
}

/* Adopt a checked header's layout: rings, host arena, a fresh guest arena. */
static int use_layout(struct nx_guest *g, const struct nx_region_hdr *h)
{
	struct nx_arena *a = nx_arena_new(h->guest_arena_off, h->guest_arena_size);
	if (!a)
		return -ENOMEM;
	if (g->arena)
		nx_arena_destroy(g->arena);
	g->arena = a;
	g->tx = (struct nx_ring *)((char *)g->tp.base + h->to_host_ring_off);
	g->rx = (struct nx_ring *)((char *)g->tp.base + h->to_guest_ring_off);
	g->host_off = h->host_arena_off;
	g->host_size = h->host_arena_size;
	g->generation = h->generation;
	return 0;
}

/* The header's generation as the host wrote it now (read each time). */
static uint64_t region_generation(const struct nx_guest *g)
{
	const struct nx_region_hdr *h = g->tp.base;
	return __atomic_load_n(&h->generation, __ATOMIC_ACQUIRE);
}

static int attach(struct nx_guest **out, struct nx_transport *tp)
{
	struct nx_guest *g = calloc(1, sizeof *g);
	if (!g) {
		tp->close(tp);
		return -ENOMEM;
	}
	g->tp = *tp;
	/* Copy the header once: the layout is fixed for this region. */
	struct nx_region_hdr h;
	memcpy(&h, g->tp.base, sizeof h);
	int r = check_header(&h, g->tp.size);
	if (r < 0)
		goto fail;
	r = use_layout(g, &h);
	if (r < 0)
		goto fail;
	g->spin_ns = nx_transport_spin_ns();          /* policy: transport_common.c */
	g->spin_yield = nx_transport_spin_yield();
	const char *dw = getenv("NEXUS_INVOKE_DONE_WAIT");
	g->done_wait = dw && *dw && strcmp(dw, "0") != 0;
	g->next_tag = 1;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
	*out = g;
	return 0;
fail:
	g->tp.close(&g->tp);
	free(g);
	return r;
}

int nx_attach_env(struct nx_guest **out)
{
	struct nx_transport tp;
	int r = nx_transport_eventfd_open_env(&tp);
	if (r == -ENOENT && access(NX_DEVNEXUS_PATH, F_OK) == 0)   /* in a microVM */
		r = nx_transport_devnexus_open(&tp, NULL);
	return r < 0 ? r : attach(out, &tp);
}

int nx_attach_fds(int region_fd, int kick_host_fd, int kick_guest_fd, struct nx_guest **out)
{
	struct nx_transport tp;
	int r = nx_transport_eventfd_open(&tp, region_fd, kick_host_fd, kick_guest_fd, 1);
	return r < 0 ? r : attach(out, &tp);
}

void nx_detach(struct nx_guest *g)
{
	if (!g)
		return;
	nx_arena_destroy(g->arena);
	g->tp.close(&g->tp);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void *nx_region_base(const struct nx_guest *g) { return g->tp.base; }
uint64_t nx_region_size(const struct nx_guest *g) { return g->tp.size; }
/* Written under the lock, read without it (a word: atomic). */
uint64_t nx_generation(const struct nx_guest *g) { return __atomic_load_n(&g->generation, __ATOMIC_RELAXED); }
uint64_t nx_reattach_count(const struct nx_guest *g) { return __atomic_load_n(&g->reattaches, __ATOMIC_RELAXED); }

uint64_t nx_invoke_done_failures(struct nx_guest *g, uint32_t *last_status)
{
	pthread_mutex_lock(&g->lock);
	uint64_t n = g->done_failures;
	if (last_status)
		*last_status = g->done_last_status;
	pthread_mutex_unlock(&g->lock);
	return n;
}

unsigned nx_invoke_done_unacked(struct nx_guest *g)
{
	pthread_mutex_lock(&g->lock);
	unsigned n = g->n_acks;
	pthread_mutex_unlock(&g->lock);
	return n;
}

/* ------------------------------------------------------------ posting */

/* Lock held.  Push one descriptor, waiting for room if the host lags. */
static int reattach_locked(struct nx_guest *g);

static int post_locked(struct nx_guest *g, const struct nx_desc *d)
{
	if (g->broken)
		return -EPROTO;
	/* Never post into a region we have not attached to (after a restore the
	 * host of the fresh region would take our old offsets for violations). */
	if (region_generation(g) != g->generation) {
		int r = reattach_locked(g);
		if (r < 0)
			return r;
		/* d names buffers of the old region: a RELEASE has nothing left to
		 * give back, a READY was just re-sent, anything else is void. */
		return d->opcode == NX_OP_RELEASE || d->opcode == NX_OP_READY ? 0 : -ESTALE;
	}
	for (unsigned tries = 0;; tries++) {
		int r = nx_ring_push(g->tx, d);
		if (r == 0)
			break;
		if (r != -EAGAIN) {
			mark_broken(g, "to-host ring refused a descriptor (%d): head %u, tail %u (the host's)", r,
			            __atomic_load_n(&g->tx->head, __ATOMIC_RELAXED),
			            __atomic_load_n(&g->tx->tail, __ATOMIC_RELAXED));
			return -EPROTO;
		}
		/* Full: make sure the host is awake, then give it time. */
		g->tp.kick(&g->tp);
		struct timespec ts = { 0, tries < 100 ? 10000 : 1000000 };
		pthread_mutex_unlock(&g->lock);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&g->lock);
	}
	/* A RELEASE needs no doorbell: nothing waits for it, and the host drains
	 * the ring in order, so it is taken before the next request (which does
	 * ring, and may need the space) or the next INVOKE_DONE.  A doorbell per
	 * release was a host wake-up per released buffer.  The sleep flag stays
	 * set, so the next post that matters rings — or, if none comes first,
	 * the next wait on the to-guest ring does (poll_round_locked). */
	if (d->opcode == NX_OP_RELEASE) {
		g->release_unkicked = true;
		return 0;
	}
	g->release_unkicked = false;   /* this doorbell covers the releases before it */
	if (nx_ring_kick_needed(g->tx))
		g->tp.kick(&g->tp);
	return 0;
}

int nx_release(struct nx_guest *g, uint64_t off)
{
	if (!off)
		return 0;
	struct nx_desc d = { .opcode = NX_OP_RELEASE, .buf = { { off, 0 } } };
	pthread_mutex_lock(&g->lock);
	int r = post_locked(g, &d);
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* ------------------------------------------------------------ receiving */

/* Lock held: the acknowledgement of an INVOKE_DONE that nobody waits for.
 * Returns false when d answers no such INVOKE_DONE. */
static bool settle_done_locked(struct nx_guest *g, const struct nx_desc *d)
{
	for (unsigned i = 0; i < g->n_acks; i++) {
		if (g->acks[i].tag != d->tag)
			continue;
		/* The host copied the result before it completed: the buffer is free. */
		if (g->acks[i].off)
			nx_arena_release(g->arena, g->acks[i].off, NULL);
		g->acks[i] = g->acks[--g->n_acks];
		if (d->status != NX_S_OK) {
			/* The result did not reach nexusd (e.g. NO_SPACE: it could not
			 * copy it); the invocation will time out there.  Say so in the
			 * function's log, and count it (nx_invoke_done_failures). */
			g->done_failures++;
			g->done_last_status = d->status;
			fprintf(stderr, "[ERROR] nexus channel: the result of invocation %llu was refused by the host "
			        "(status %u)\n", (unsigned long long)d->tag, d->status);
		}
		return true;
	}
	return false;
}

/* Lock held: file one descriptor the host posted. */
static void dispatch_locked(struct nx_guest *g, const struct nx_desc *d)
{
	if (d->flags & NX_F_COMPLETION) {
		if (d->opcode == NX_OP_INVOKE_DONE && settle_done_locked(g, d))
			return;
		if (d->opcode == NX_OP_READY && g->reready_args && d->tag == g->reready_tag) {
			nx_arena_release(g->arena, g->reready_args, NULL);
			g->reready_args = 0;
		}
		for (struct pending *p = g->pending; p; p = p->next) {
			if (!p->done && p->tag == d->tag && p->opcode == d->opcode) {
				p->d = *d;
				p->done = true;
				return;
			}
		}
		/* Nobody asked: give back whatever it carried. */
		for (int i = 0; i < 3; i++) {
			if (d->buf[i].off && d->buf[i].len) {
				struct nx_desc rel = { .opcode = NX_OP_RELEASE, .buf = { d->buf[i] } };
				post_locked(g, &rel);
			}
		}
		return;
	}
	if (d->opcode == NX_OP_INVOKE && g->invq_len < INVQ_CAP) {
		g->invq[(g->invq_head + g->invq_len++) % INVQ_CAP] = *d;
		return;
	}
	/* Unknown host request or invocation overflow: the host is broken. */
	mark_broken(g, "%s, opcode %u", d->opcode != NX_OP_INVOKE ? "unknown request from the host" :
	            "more invocations queued than the queue holds", (unsigned)d->opcode);
}

/* Lock held.  The region's generation changed: adopt the fresh region (see
 * the top of this file).  Idempotent: nothing to do if already attached. */
static int reattach_locked(struct nx_guest *g)
{
	uint64_t gen = region_generation(g);
	if (gen == g->generation)
		return 0;
	int r = g->tp.reattach ? g->tp.reattach(&g->tp) : 0;
	struct nx_region_hdr h;
	memcpy(&h, g->tp.base, sizeof h);
	if (r == 0)
		r = check_header(&h, g->tp.size);
	if (r == 0)
		r = use_layout(g, &h);
	if (r < 0) {
		mark_broken(g, "re-attach to the restored region failed (%d)", r);
		return r;
	}
	g->reattaches++;
	g->invq_len = 0;              /* invocations of the old region */
	g->reready_args = 0;          /* lived in the old arena */
	g->n_acks = 0;                /* their results lived in the old arena; the
	                                 old host had them or lost them with the region */
	uint64_t ready_tag = 0;
	for (struct pending *p = g->pending; p; p = p->next) {
		if (p->done)
			continue;
		if (p->opcode == NX_OP_READY && !ready_tag) {
			ready_tag = p->tag;   /* the re-sent READY answers it */
			continue;
		}
		p->done = true;
		p->err = -ESTALE;
	}
	if (!g->runtime[0])
		return 0;                 /* never said READY: the runtime will */
	uint8_t a[128];
	size_t pos = 0;
	uint64_t off;
	if (nx_tlv_put(a, sizeof a, &pos, NX_ARG_RUNTIME, g->runtime, strlen(g->runtime)) < 0 ||
	    nx_arena_alloc(g->arena, pos, &off) < 0) {
		mark_broken(g, "no room for READY after re-attach (%d)", -ENOMEM);
		return -ENOMEM;
	}
	memcpy((char *)g->tp.base + off, a, pos);
	g->reready_tag = ready_tag ? ready_tag : g->next_tag++;
	g->reready_args = off;
	struct nx_desc d = { .opcode = NX_OP_READY, .tag = g->reready_tag, .buf = { { off, pos } } };
	return post_locked(g, &d);
}

/* Become the poller for one round: drain the to-guest ring (without the lock),
 * spinning and then sleeping when it is empty, until something arrives or the
 * deadline (0 = none) passes.  Lock held on entry and exit. */
static int poll_round_locked(struct nx_guest *g, uint64_t deadline)
{
	struct nx_desc d[DRAIN_BATCH];
	int n = 0, r = 0;
	uint64_t gen0 = g->generation;
	/* Releases posted since the last doorbell (e.g. a buffer the runtime's
	 * garbage collector gave back after INVOKE_DONE) must not wait in the
	 * ring while this guest sleeps until its next invocation: the host
	 * would hold the memory all that idle time.  Ring now if it sleeps. */
	if (g->release_unkicked) {
		g->release_unkicked = false;
		if (nx_ring_kick_needed(g->tx))
			g->tp.kick(&g->tp);
	}
	g->polling = true;
	pthread_mutex_unlock(&g->lock);

	uint64_t spin_until = now_ns() + g->spin_ns;
	for (unsigned i = 0;; i++) {
		while (n < DRAIN_BATCH && (r = nx_ring_pop(g->rx, &d[n])) == 0)
			n++;
		if (r == -EPROTO)
			break;
		r = 0;
		if (n)
			break;
		if ((i & 63) != 63) {
			cpu_relax();
			continue;
		}
		if (now_ns() < spin_until) {
			/* On an oversubscribed machine the host thread we wait for may
			 * need this very CPU: offer it now and then. */
			if (g->spin_yield)
				sched_yield();
			continue;
		}
		if (!nx_ring_prepare_sleep(g->rx))
			continue;
		int ms = -1;
		if (deadline) {
			uint64_t t = now_ns();
			if (t >= deadline) {
				r = -ETIMEDOUT;
				break;
			}
			ms = (int)((deadline - t + 999999) / 1000000);
		}
		r = g->tp.wait(&g->tp, ms);
		if (r == -ESTALE || region_generation(g) != gen0) {
			r = -ESTALE;          /* re-attach, under the lock */
			break;
		}
		if (r == -ETIMEDOUT)
			continue; /* re-check the ring once more, then the deadline */
		if (r < 0)
			break;
		r = 0;
		spin_until = now_ns() + g->spin_ns;
	}

	/* Here r is 0, -ETIMEDOUT, -ESTALE, -EPROTO or a doorbell error. */
	pthread_mutex_lock(&g->lock);
	if (r == -ESTALE || region_generation(g) != g->generation) {
		int e = reattach_locked(g);
		r = e < 0 ? e : 0;
	}
	if (g->generation != gen0)
		n = 0;                    /* drained from the old region: void now */
	if (r < 0 && r != -ETIMEDOUT)
		mark_broken(g, "%s (%d)", r == -EPROTO ? "to-guest ring indices out of range" : "waiting on the doorbell failed", r);
	for (int i = 0; i < n; i++)
		dispatch_locked(g, &d[i]);
	g->polling = false;
	pthread_cond_broadcast(&g->cv);
	return n || g->generation != gen0 ? 0 : r;
}

/* Lock held.  Wait until *flag is true (flag == NULL: an invocation is
 * queued), or the deadline (0 = none) passes. */
static int wait_locked(struct nx_guest *g, const bool *flag, uint64_t deadline)
{
	for (;;) {
		if (flag ? *flag : g->invq_len > 0)
			return 0;
		if (g->broken)
			return -EPROTO;
		if (deadline && now_ns() >= deadline)
			return -ETIMEDOUT;
		if (!g->polling) {
			int r = poll_round_locked(g, deadline);
			if (r < 0 && r != -ETIMEDOUT)
				return r;
		} else if (deadline) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t left = deadline - now_ns();
			if (deadline <= now_ns())
				left = 0;
			uint64_t ns = (uint64_t)ts.tv_nsec + left;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			pthread_cond_timedwait(&g->cv, &g->lock, &ts);
		} else {
			pthread_cond_wait(&g->cv, &g->lock);
		}
	}
}

/* Fill a reply from a completion, checking the buffers lie in the host arena
 * (the host is trusted, but a wild pointer here would crash the function). */
static void fill_reply(struct nx_guest *g, const struct nx_desc *d, struct nx_reply *out)
{
	char *base = g->tp.base;
	memset(out, 0, sizeof *out);
	out->status = d->status;
	out->opcode = d->opcode;
	for (int i = 0; i < 2; i++) {
		const struct nx_buf *b = &d->buf[i];
		if (!b->off || !b->len)
			continue;
		if (b->off < g->host_off || !range_ok(b->off - g->host_off, b->len, g->host_size)) {
			out->status = NX_S_INVALID;
			continue;
		}
		if (i == 0) {
			out->meta = base + b->off;
			out->meta_len = b->len;
			out->meta_off = b->off;
		} else {
			out->body = (const uint8_t *)base + b->off;
			out->body_len = b->len;
			out->body_off = b->off;
		}
	}
}

/* Post d (tag assigned here) and wait for its completion.  -ESTALE: the
 * region changed meanwhile, so d's guest-arena buffers are gone with it
 * (the caller must not free them); a READY is answered anyway (re-sent). */
static int roundtrip(struct nx_guest *g, struct nx_desc *d, struct nx_reply *out, bool *old_region)
{
	struct pending p = { .opcode = d->opcode };
	pthread_mutex_lock(&g->lock);
	uint64_t gen = g->generation;
	if (d->opcode == NX_OP_INVOKE_DONE) {
		p.tag = d->tag;
	} else {
		p.tag = d->tag = g->next_tag++;
	}
	p.next = g->pending;
	g->pending = &p;
	int r = post_locked(g, d);
	if (r == 0)
		r = wait_locked(g, &p.done, 0);
	if (r == 0 && p.err)
		r = p.err;
	if (old_region)
		*old_region = g->generation != gen;
	for (struct pending **pp = &g->pending; *pp; pp = &(*pp)->next) {
		if (*pp == &p) {
			*pp = p.next;
			break;
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (r == 0 && out)
		fill_reply(g, &p.d, out);
	else if (r == 0)
		for (int i = 0; i < 2; i++)
			nx_release(g, p.d.buf[i].len ? p.d.buf[i].off : 0);
	return r;
}

/* ------------------------------------------------------------ arena */

int nx_alloc(struct nx_guest *g, uint64_t len, uint64_t *off, void **ptr)
{
	if (!len)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	int r = nx_arena_alloc(g->arena, len, off);
	pthread_mutex_unlock(&g->lock);
	if (r == 0 && ptr)
		*ptr = (char *)g->tp.base + *off;
	return r;
}

int nx_free(struct nx_guest *g, uint64_t off)
{
	pthread_mutex_lock(&g->lock);
	int r = nx_arena_release(g->arena, off, NULL);
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* ------------------------------------------------------------ requests */

int request_buf_copy(struct nx_guest *g, const void *data, size_t len, uint64_t *off)
{
	*off = 0;
	if (!len)
		return 0;
	void *p;
	int r = nx_alloc(g, len, off, &p);
	if (r < 0)
		return r;
	memcpy(p, data, len);
	return 0;
}

void request_buf_done(struct nx_guest *g, uint64_t off, int r)
{
	/* After a broken channel the host may still read it: leak rather than reuse.
	 * After a re-attach (-ESTALE) it belonged to the old region's arena. */
	if (off && r != -EPROTO && r != -ESTALE)
		nx_free(g, off);
}

int nx_call(struct nx_guest *g, uint16_t opcode, const void *args, size_t args_len,
            uint64_t body_off, uint64_t body_len, struct nx_reply *out)
{
	if (args_len > NX_ARGS_MAX)
		return -E2BIG;
	struct nx_desc d = { .opcode = opcode };
	uint64_t aoff = 0;
	int r = request_buf_copy(g, args, args_len, &aoff);
	if (r < 0)
		return r;
	if (args_len)
		d.buf[0] = (struct nx_buf){ aoff, args_len };
	if (body_len)
		d.buf[1] = (struct nx_buf){ body_off, body_len };
	bool old = false;
	r = roundtrip(g, &d, out, &old);
	request_buf_done(g, aoff, old ? -ESTALE : r);
	return r;
}

int nx_nop(struct nx_guest *g)
{
	struct nx_desc d = { .opcode = NX_OP_NOP };
	struct nx_reply rep;
	int r = roundtrip(g, &d, &rep, NULL);
	if (r == 0) {
		nx_reply_release(g, &rep);
		if (rep.status != NX_S_OK)
			r = -EIO;
	}
	return r;
}

int nx_ready(struct nx_guest *g, const char *runtime, struct nx_reply *out)
{
	uint8_t a[256];
	size_t pos = 0;
	if (strlen(runtime) >= sizeof g->runtime ||
	    nx_tlv_put(a, sizeof a, &pos, NX_ARG_RUNTIME, runtime, strlen(runtime)) < 0)
		return -E2BIG;
	pthread_mutex_lock(&g->lock);
	snprintf(g->runtime, sizeof g->runtime, "%s", runtime);
	pthread_mutex_unlock(&g->lock);
	return nx_call(g, NX_OP_READY, a, pos, 0, 0, out);
}

int nx_next_invocation(struct nx_guest *g, struct nx_invocation *inv, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? 0 : now_ns() + (uint64_t)timeout_ms * 1000000u + 1;
	pthread_mutex_lock(&g->lock);
	int r = wait_locked(g, NULL, deadline);
	struct nx_desc d;
	if (r == 0) {
		d = g->invq[g->invq_head];
		g->invq_head = (g->invq_head + 1) % INVQ_CAP;
		g->invq_len--;
	}
	pthread_mutex_unlock(&g->lock);
	if (r < 0)
		return r;
	struct nx_reply rep;
	fill_reply(g, &d, &rep);
	memset(inv, 0, sizeof *inv);
	inv->tag = d.tag;
	inv->event = rep.meta;
	inv->event_len = rep.meta_len;
	inv->event_off = rep.meta_off;
	inv->context = (const char *)rep.body;
	inv->context_len = rep.body_len;
	inv->context_off = rep.body_off;
	return 0;
}

/* Lock held.  Post an INVOKE_DONE without waiting for its acknowledgement;
 * the result buffer off is freed when it arrives (settle_done_locked).
 * Returns 1 when there is no room to remember it (wait instead). */
static int post_done_locked(struct nx_guest *g, struct nx_desc *d, uint64_t off)
{
	if (g->n_acks == DONE_ACK_CAP)
		return 1;
	for (unsigned i = 0; i < g->n_acks; i++)
		if (g->acks[i].tag == d->tag)
			return 1;   /* the same tag twice (a confused caller): keep them apart */
	int r = post_locked(g, d);
	if (r == 0)         /* nothing can have answered yet: the lock was held since the push */
		g->acks[g->n_acks++] = (struct done_ack){ d->tag, off };
	return r;
}

int nx_invoke_done(struct nx_guest *g, uint64_t tag, uint32_t status, const void *payload, size_t len)
{
	if (len > NX_PAYLOAD_MAX)
		return -E2BIG;
	struct nx_desc d = { .opcode = NX_OP_INVOKE_DONE, .status = status, .tag = tag };
	uint64_t off = 0;
	int r = request_buf_copy(g, payload, len, &off);
	if (r < 0)
		return r;
	if (len)
		d.buf[1] = (struct nx_buf){ off, len };
	if (!g->done_wait) {
		pthread_mutex_lock(&g->lock);
		uint64_t gen = g->generation;
		r = post_done_locked(g, &d, off);
		bool old = g->generation != gen;
		pthread_mutex_unlock(&g->lock);
		if (r <= 0) {
			/* Posted: the buffer is the ack's now.  Failed: free it, unless it
			 * belonged to a region that is gone (-ESTALE) or the channel broke. */
			if (r < 0)
				request_buf_done(g, off, old ? -ESTALE : r);
			return r;
		}
	}
	bool old = false;
	r = roundtrip(g, &d, NULL, &old);
	request_buf_done(g, off, old ? -ESTALE : r);
	return r;
}

void nx_reply_release(struct nx_guest *g, struct nx_reply *r)
{
	nx_release(g, r->meta_off);
	nx_release(g, r->body_off);
	r->meta = NULL;
	r->body = NULL;
	r->meta_off = r->body_off = r->meta_len = r->body_len = 0;
}

void nx_invocation_release(struct nx_guest *g, struct nx_invocation *inv)
{
	nx_release(g, inv->event_off);
	nx_release(g, inv->context_off);
	inv->event = inv->context = NULL;
	inv->event_off = inv->context_off = inv->event_len = inv->context_len = 0;
}
