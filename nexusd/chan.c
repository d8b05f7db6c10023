/* SPDX-License-Identifier: MIT */
/*
 * The host side of one instance's channel (chan.h).
 *
 * Trust model: the region is shared with a hostile guest.  nexusd
 *  - keeps the layout in private memory (struct nx_chan_layout) and never
 *    reads the header back;
 *  - copies each descriptor out of the to-host ring once (nx_ring_pop) and
 *    validates the private copy (nx_chan_check_desc) before acting;
 *  - copies TLV arguments, INVOKE_DONE payloads and PUT bodies out of the
 *    guest arena into private memory once, and only then parses or uses them;
 *  - accepts NX_OP_RELEASE only for the exact start of a live host-arena
 *    allocation that has already been handed to the guest.
 *
 * Flow control: completions go through a private FIFO (the backlog) before
 * the to-guest ring, so a full ring never drops or blocks a completion; the
 * backlog is retried on a short timer.  While in-flight operations plus queued
 * completions reach NX_CHAN_MAX_OUTSTANDING the host stops popping requests
 * (the guest's ring fills up and it waits): a flooding guest only slows
 * itself down and cannot grow nexusd's memory without bound.
 *
 * Re-entrancy: ops callbacks (ready, invoke_done, violation) may call
 * nx_chan_invoke or even nx_chan_destroy.  Every entry point (doorbell,
 * timer, storage completion, nx_chan_invoke) runs between chan_enter() and
 * chan_leave(); a destroy in between tears down everything external at once and
 * the outermost chan_leave() frees the struct.
 */
#include "chan_internal.h"
#include "loop.h"
#include "s3.h"
#include "aio.h"

#pragma weak nx_aio_cancel   /* aio.c: write-back and prefetch, when linked in */
#pragma weak pf_chan_created

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/arena.h"
#include "../common/ring.h"
#include "../common/tlv.h"


/* One storage request in flight. */
void *nx_chan_region(const struct nx_chan *c) { return c->base; }
const struct nx_chan_layout *nx_chan_get_layout(const struct nx_chan *c) { return &c->lay; }
int nx_chan_region_fd(const struct nx_chan *c) { return c->memfd; }
int nx_chan_kick_host_fd(const struct nx_chan *c) { return c->kick_host; }
int nx_chan_kick_guest_fd(const struct nx_chan *c) { return c->kick_guest; }

void nx_chan_stats(const struct nx_chan *c, struct nx_chan_stats *out)
{
	*out = c->st;
	out->host_arena_used = nx_arena_used(c->host_arena);
}

/* ---------------------------------------------------------- host arena */

int chan_host_alloc(struct nx_chan *c, uint64_t len, uint64_t *off)
{
	int r = nx_arena_alloc(c->host_arena, len, off);
	if (r == 0) {
		uint64_t used = nx_arena_used(c->host_arena);
		if (used > c->st.host_arena_peak)
			c->st.host_arena_peak = used;
	}
	return r;
}

static void trim_range(void *arg, uint64_t off, uint64_t len)
{
	struct nx_chan *c = arg;
	if (len < NX_CHAN_PUNCH_MIN)
		return;
	uint64_t start = (off + 4095) & ~(uint64_t)4095, end = (off + len) & ~(uint64_t)4095;
	if (end > start && fallocate(c->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
	                             (off_t)(end - start)) == 0)
		c->st_punched += end - start;
}

static void on_trim(void *arg)
{
	struct nx_chan *c = arg;
	c->trim_timer = NULL;
	nx_arena_for_each_free(c->host_arena, trim_range, c);
}

/* Free a host buffer.  Large free ranges give their pages back to the system
 * (the guest's mapping then reads zero pages), but only once the channel has
 * released no large buffer for NX_CHAN_TRIM_MS: an instance reading object
 * after object reuses warm pages — first-touching fresh shared pages costs
 * ~4-6 ms per MiB on this VM, more than the transfer itself (punching at
 * every release made a 1 MiB get_object 2-4x slower) — while an idle
 * instance's memory still shrinks. */
int chan_host_free(struct nx_chan *c, uint64_t off)
{
	uint64_t len;
	int r = nx_arena_release(c->host_arena, off, &len);
	if (r < 0 || len < NX_CHAN_PUNCH_MIN)
		return r;
	if (c->trim_timer)
		nx_timer_cancel(c->loop, c->trim_timer);
	c->trim_timer = c->dead ? NULL : nx_loop_timer(c->loop, NX_CHAN_TRIM_MS, on_trim, c);
	return 0;
}

/* Is this host buffer still the host's (a GET being written, a completion
 * not yet posted)?  Then the guest may not release it. */
static bool host_still_owns(const struct nx_chan *c, uint64_t off)
{
	for (const struct op *o = c->ops_list; o; o = o->next)
		if (o->sink_live && o->sink_off == off)
			return true;
	for (size_t i = 0; i < c->n_reserved; i++)
		if (c->reserved[i] == off)
			return true;
	for (size_t i = 0; i < c->bl_len; i++) {
		const struct nx_desc *d = &c->bl[(c->bl_head + i) % c->bl_cap];
		for (int k = 0; k < 3; k++)
			if (d->buf[k].len && d->buf[k].off == off)
				return true;
	}
	return false;
}

/* ------------------------------------------------ reserved host buffers */

void *nx_chan_reserve(struct nx_chan *c, size_t len, uint64_t *off)
{
	if (c->dead || c->broken || !len || len > c->lay.host_size / 2 || c->n_reserved == MAX_RESERVED ||
	    chan_host_alloc(c, len, off) < 0)
		return NULL;
	c->reserved[c->n_reserved++] = *off;
	return c->base + *off;
}

static bool unlist_reserved(struct nx_chan *c, uint64_t off)
{
	for (size_t i = 0; i < c->n_reserved; i++)
		if (c->reserved[i] == off) {
			c->reserved[i] = c->reserved[--c->n_reserved];
			return true;
		}
	return false;
}

void nx_chan_unreserve(struct nx_chan *c, uint64_t off)
{
	if (unlist_reserved(c, off))
		chan_host_free(c, off);
}

int nx_chan_sink_adopt(struct nx_chan *c, void *sink_arg, uint64_t off)
{
	struct op *o = c->ops_list;
	while (o && (o != sink_arg || o->opcode != NX_OP_S3_GET))
		o = o->next;
	if (!o)
		return -ENOENT;
	size_t i = 0;
	while (i < c->n_reserved && c->reserved[i] != off)
		i++;
	if (i == c->n_reserved)
		return -ENOENT;
	unlist_reserved(c, off);
	if (o->sink_live)   /* cannot happen for a claimed GET (no S3 transfer ran); be exact anyway */
		chan_host_free(c, o->sink_off);
	o->sink_off = off;
	o->sink_live = true;
	o->too_large = false;
	return 0;
}

/* ------------------------------------------------------- completions */

static void violate(struct nx_chan *c, const char *why)
{
	if (c->broken)
		return;
	c->broken = true;
	if (c->fd_watched) {
		nx_loop_del_fd(c->loop, c->kick_host);
		c->fd_watched = false;
	}
	if (c->ops && c->ops->violation)
		c->ops->violation(c->owner, why);
}

static void on_timer(void *arg);

static void arm_timer(struct nx_chan *c, uint64_t ms)
{
	if (!c->timer && !c->dead)
		c->timer = nx_loop_timer(c->loop, ms, on_timer, c);
}

static int backlog_add(struct nx_chan *c, const struct nx_desc *d)
{
	if (c->bl_len == c->bl_cap) {
		size_t cap = c->bl_cap ? c->bl_cap * 2 : 64;
		struct nx_desc *n = malloc(cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < c->bl_len; i++)
			n[i] = c->bl[(c->bl_head + i) % c->bl_cap];
		free(c->bl);
		c->bl = n;
		c->bl_cap = cap;
		c->bl_head = 0;
	}
	c->bl[(c->bl_head + c->bl_len++) % c->bl_cap] = *d;
	return 0;
}

static size_t outstanding(const struct nx_chan *c) { return c->n_ops + c->bl_len; }

/* Does the guest need waking for d?  Not for the acknowledgement of a
 * successful INVOKE_DONE: the runtime does not wait for it (it waits for the
 * next INVOKE, whose doorbell delivers the ack too), and a wake-up per
 * invocation is what it would cost.  A runtime that does wait for it gets it
 * with the next doorbell.  A refused INVOKE_DONE still rings: the guest
 * should hear about a lost result now. */
static bool wakes_guest(const struct nx_desc *d)
{
	return !(d->opcode == NX_OP_INVOKE_DONE && (d->flags & NX_F_COMPLETION) && d->status == NX_S_OK);
}

/* Move queued completions onto the to-guest ring and ring the doorbell if
 * the guest is asleep and one of them is worth waking it for.  Runs at the
 * end of every drain and after every asynchronous completion. */
static void flush(struct nx_chan *c)
{
	if (c->broken || c->dead)
		return;
	bool pushed = false, wake = false;
	while (c->bl_len) {
		int r = nx_ring_push(c->to_guest, &c->bl[c->bl_head]);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			violate(c, "impossible to-guest ring indices");
			return;
		}
		wake = wake || wakes_guest(&c->bl[c->bl_head]);
		c->bl_head = (c->bl_head + 1) % c->bl_cap;
		c->bl_len--;
		c->st.completions++;
		pushed = true;
	}
	/* Without a wake-worthy descriptor the sleep flag stays set, so the
	 * next push that matters rings the doorbell. */
	if (wake && nx_ring_kick_needed(c->to_guest)) {
		uint64_t one = 1;
		if (write(c->kick_guest, &one, sizeof(one)) < 0) {
			/* EAGAIN: counter saturated, the guest has a pending wake-up anyway. */
		}
	}
	if (c->bl_len) {
		/* A guest that stopped consuming costs a timer that backs off, not a
		 * 1 kHz poll forever. */
		c->retry_ms = pushed || !c->retry_ms ? RETRY_MS
		              : c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
		arm_timer(c, c->retry_ms);
	}
	else if (c->stalled && outstanding(c) < NX_CHAN_MAX_OUTSTANDING)
		arm_timer(c, 0);
}

/* Queue a completion.  Every entry point (doorbell, timer, storage
 * callback, nx_chan_invoke) runs between chan_enter() and chan_leave(), and chan_leave()
 * flushes: a batch of completions costs one doorbell. */
static void complete(struct nx_chan *c, const struct nx_desc *d)
{
	if (c->broken || c->dead)
		return;
	if (backlog_add(c, d) < 0)
		violate(c, "out of memory queueing completions");
}

static void chan_free(struct nx_chan *c);

/* Entry points hold `busy` so that an owner callback that destroys the
 * channel (violation -> instance stopped) only marks it dead; the outermost
 * chan_leave() frees it.  Returns false when the channel is gone. */
void chan_enter(struct nx_chan *c) { c->busy++; }

bool chan_leave(struct nx_chan *c)
{
	if (c->busy == 1 && !c->dead)
		flush(c);            /* still busy: a destroy inside is deferred too */
	c->busy--;
	if (c->dead) {
		if (!c->busy)
			chan_free(c);
		return false;
	}
	return true;
}

void chan_complete_plain(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status)
{
	struct nx_desc d = { .opcode = opcode, .flags = NX_F_COMPLETION, .status = status, .tag = tag };
	complete(c, &d);
}

/* Complete with meta JSON (stolen) copied into the host arena and an
 * optional body buffer already in the host arena. */
void chan_complete_meta(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status,
                          json_t *meta, struct nx_buf body)
{
	struct nx_desc d = { .opcode = opcode, .flags = NX_F_COMPLETION, .status = status, .tag = tag };
	char *s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	uint64_t off;
	size_t len = s ? strlen(s) : 0;
	if (!s || chan_host_alloc(c, len, &off) < 0) {
		if (body.len)
			chan_host_free(c, body.off);
		d.status = NX_S_NO_SPACE;
	} else {
		memcpy(c->base + off, s, len);
		d.buf[0] = (struct nx_buf){ off, len };
		d.buf[1] = body;
	}
	free(s);
	complete(c, &d);
}

json_t *chan_error_meta(const char *code, const char *msg, long http)
{
	json_t *m = json_pack("{s:s, s:s, s:I}", "Code", code, "Message", msg, "HTTPStatusCode", (json_int_t)http);
	if (!m)   /* not UTF-8 (e.g. a guest-chosen name in the message) */
		m = json_pack("{s:s, s:s, s:I}", "Code", code, "Message", "", "HTTPStatusCode", (json_int_t)http);
	return m;
}

/* Guest-chosen bytes quoted in a message: printable ASCII only. */
void chan_ascii_clean(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* A malformed request: counted, answered with NX_S_INVALID, and reported as
 * a violation when the guest sends nothing but garbage. */
void chan_reject(struct nx_chan *c, const struct nx_desc *d, uint32_t status, const char *why)
{
	c->st.invalid++;
	if (++c->invalid_streak >= NX_CHAN_INVALID_STREAK) {
		violate(c, "too many invalid descriptors in a row");
		return;
	}
	if (d->opcode == NX_OP_RELEASE)
		return;   /* releases never get completions */
	chan_complete_meta(c, d->opcode, d->tag, status,
	              chan_error_meta(status == NX_S_UNSUPPORTED ? "NotImplemented" : "InvalidRequest", why, 400),
	              (struct nx_buf){ 0, 0 });
}

/* ------------------------------------------------------------ requests */

static void handle_ready(struct nx_chan *c, const struct nx_desc *d)
{
	uint8_t raw[NX_ARGS_MAX];
	struct nx_args a;
	char runtime[256] = "";
	if (d->buf[0].len)   /* an empty buffer's offset is meaningless: never form a pointer from it */
		memcpy(raw, c->base + d->buf[0].off, d->buf[0].len);
	if (nx_tlv_parse(raw, d->buf[0].len, &a) < 0 ||
	    (a.val[NX_ARG_RUNTIME] && nx_args_str(&a, NX_ARG_RUNTIME, runtime, sizeof(runtime)) < 0)) {
		chan_reject(c, d, NX_S_INVALID, "malformed READY arguments");
		return;
	}
	c->invalid_streak = 0;
	json_t *meta = json_loads(c->ready_meta ? c->ready_meta : "{}", 0, NULL);
	chan_complete_meta(c, NX_OP_READY, d->tag, NX_S_OK, meta ? meta : json_object(), (struct nx_buf){ 0, 0 });
	if (c->ops && c->ops->ready)
		c->ops->ready(c->owner, runtime);
}

static void handle_invoke_done(struct nx_chan *c, const struct nx_desc *d)
{
	size_t i;
	for (i = 0; i < c->n_inv; i++)
		if (c->pending_inv[i] == d->tag)
			break;
	if (i == c->n_inv) {
		chan_reject(c, d, NX_S_INVALID, "INVOKE_DONE for an invocation that is not pending");
		return;
	}
	c->invalid_streak = 0;
	c->pending_inv[i] = c->pending_inv[--c->n_inv];
	/* The result is copied out of the guest arena once, before anyone reads it. */
	size_t len = d->buf[1].len;
	char *payload = malloc(len + 1);
	if (!payload) {
		/* The result is lost: tell the guest (this completion rings its
		 * doorbell, see wakes_guest) and end the invocation now rather than
		 * at its timeout. */
		static const char lost[] = "{\"errorMessage\":\"nexusd could not take the result (out of memory)\","
		                           "\"errorType\":\"Runtime.ResultLost\"}";
		chan_complete_plain(c, NX_OP_INVOKE_DONE, d->tag, NX_S_NO_SPACE);
		if (c->ops && c->ops->invoke_done)
			c->ops->invoke_done(c->owner, d->tag, NX_S_HANDLER_ERROR, lost, sizeof lost - 1);
		return;
	}
	if (len)
		memcpy(payload, c->base + d->buf[1].off, len);
	payload[len] = '\0';
	chan_complete_plain(c, NX_OP_INVOKE_DONE, d->tag, NX_S_OK);
	if (c->ops && c->ops->invoke_done)
		c->ops->invoke_done(c->owner, d->tag, (int)d->status, payload, len);
	free(payload);
}

static void handle_release(struct nx_chan *c, const struct nx_desc *d)
{
	uint64_t off = d->buf[0].off;
	/* Only the exact start of a live allocation the guest was handed. */
	if (host_still_owns(c, off) || chan_host_free(c, off) < 0) {
		chan_reject(c, d, NX_S_INVALID, "release of a buffer the guest does not hold");
		return;
	}
	c->invalid_streak = 0;
}

static void handle(struct nx_chan *c, const struct nx_desc *d)
{
	c->st.requests++;
	int v = nx_chan_check_desc(&c->lay, d);
	if (v != NX_S_OK) {
		chan_reject(c, d, (uint32_t)v, v == NX_S_UNSUPPORTED ? "unknown opcode" : "invalid descriptor");
		return;
	}
	switch (d->opcode) {
	case NX_OP_NOP:
		c->invalid_streak = 0;
		chan_complete_plain(c, NX_OP_NOP, d->tag, NX_S_OK);
		break;
	case NX_OP_READY: handle_ready(c, d); break;
	case NX_OP_INVOKE_DONE: handle_invoke_done(c, d); break;
	case NX_OP_RELEASE: handle_release(c, d); break;
	default: chan_handle_s3(c, d); break;
	}
}

void nx_chan_drain(struct nx_chan *c)
{
	if (c->broken || c->dead)
		return;
	chan_enter(c);
	c->stalled = false;
	for (unsigned n = 0;;) {
		if (outstanding(c) >= NX_CHAN_MAX_OUTSTANDING) {
			c->stalled = true;   /* resumed by flush() once work completes */
			break;
		}
		if (n >= DRAIN_BATCH) {
			arm_timer(c, 0);     /* let other instances run, then continue */
			break;
		}
		struct nx_desc d;
		int r = nx_ring_pop(c->to_host, &d);
		if (r == -EPROTO) {
			violate(c, "impossible to-host ring indices");
			break;
		}
		if (r == -EAGAIN) {
			if (nx_ring_prepare_sleep(c->to_host))
				break;       /* empty: the guest kicks us next time */
			continue;
		}
		n++;
		handle(c, &d);
		if (c->broken || c->dead)
			break;
	}
	chan_leave(c);
}

/* The guest's doorbell is watched edge-triggered (KICK_EVENTS): every write
 * to an eventfd (a guest's write, KVM's ioeventfd signal) is a new edge, so
 * the counter is never read — a syscall per kick saved.  It only grows; at
 * saturation (2^64 kicks) the guest's write fails with EAGAIN, which it
 * ignores, and KVM's signal saturates quietly: both still wake us. */
#define KICK_EVENTS (EPOLLIN | EPOLLET)

static void on_kick(void *arg, uint32_t events)
{
	(void)events;
	nx_chan_drain(arg);
}

static void on_timer(void *arg)
{
	struct nx_chan *c = arg;
	c->timer = NULL;
	if (c->stalled || nx_ring_pending(c->to_host) != 0) {
		nx_chan_drain(c);
	} else {
		chan_enter(c);
		chan_leave(c);   /* flushes the backlog */
	}
}

/* ------------------------------------------------------------ invocations */

int nx_chan_invoke(struct nx_chan *c, uint64_t inv_id, const void *event, size_t event_len,
                   const char *context_json)
{
	if (c->broken || c->dead)
		return -EPROTO;
	if (event_len > NX_PAYLOAD_MAX)
		return -E2BIG;
	if (c->n_inv >= MAX_PENDING_INV || c->bl_len >= NX_CHAN_MAX_OUTSTANDING)
		return -ENOSPC;
	size_t ctx_len = context_json ? strlen(context_json) : 0;
	uint64_t eoff = 0, coff = 0;
	if (event_len && chan_host_alloc(c, event_len, &eoff) < 0)
		return -ENOSPC;
	if (ctx_len && chan_host_alloc(c, ctx_len, &coff) < 0) {
		if (event_len)
			chan_host_free(c, eoff);
		return -ENOSPC;
	}
	if (event_len)
		memcpy(c->base + eoff, event, event_len);
	if (ctx_len)
		memcpy(c->base + coff, context_json, ctx_len);
	struct nx_desc d = { .opcode = NX_OP_INVOKE, .tag = inv_id,
	                     .buf = { { eoff, event_len }, { coff, ctx_len } } };
	c->pending_inv[c->n_inv++] = inv_id;
	chan_enter(c);
	complete(c, &d);
	bool broken = c->broken;
	if (!chan_leave(c))
		return -EPROTO;   /* the owner destroyed the channel meanwhile */
	return broken ? -EPROTO : 0;
}

/* ------------------------------------------------------------ lifecycle */

static uint64_t clamp_region(size_t want)
{
	uint64_t s = want ? want : NX_REGION_DEFAULT;
	if (s < NX_REGION_MIN)
		s = NX_REGION_MIN;
	if (s > NX_REGION_MAX)
		s = NX_REGION_MAX;
	return (s + 4095) & ~(uint64_t)4095;
}

struct nx_chan *nx_chan_new(struct nx_loop *loop, struct nx_s3 *s3, const struct nx_chan_config *cfg,
                            const struct nx_chan_ops *ops, void *owner)
{
	struct nx_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = loop;
	c->s3 = s3;
	c->ops = ops;
	c->owner = owner;
	c->memfd = c->kick_host = c->kick_guest = -1;
	c->base = MAP_FAILED;
	nx_chan_layout_for(clamp_region(cfg->region_size), &c->lay);

	if (cfg->buckets)
		while (cfg->buckets[c->nbuckets])
			c->nbuckets++;
	c->buckets = calloc(c->nbuckets + 1, sizeof(char *));
	if (!c->buckets)
		goto fail;
	for (size_t i = 0; i < c->nbuckets; i++)
		if (!(c->buckets[i] = strdup(cfg->buckets[i])))
			goto fail;
	if (cfg->ready_meta_json && !(c->ready_meta = strdup(cfg->ready_meta_json)))
		goto fail;

	c->memfd = memfd_create("nexus-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->memfd < 0 || ftruncate(c->memfd, (off_t)c->lay.region_size) < 0)
		goto fail;
	/* The guest holds the fd: it must not shrink the file under our mapping
	 * (SIGBUS in nexusd) nor grow it.  Hole punching stays allowed. */
	if (fcntl(c->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	c->base = mmap(NULL, c->lay.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
	if (c->base == MAP_FAILED)
		goto fail;
	c->kick_host = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->kick_guest = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->kick_host < 0 || c->kick_guest < 0)
		goto fail;
	c->host_arena = nx_arena_new(c->lay.host_off, c->lay.host_size);
	if (!c->host_arena)
		goto fail;

	/* Header: written once from the private layout, never read back. */
	struct nx_region_hdr *h = (struct nx_region_hdr *)c->base;
	h->magic = NX_MAGIC;
	h->abi_major = NX_ABI_MAJOR;
	h->abi_minor = NX_ABI_MINOR;
	h->region_size = c->lay.region_size;
	h->generation = cfg->generation;
	h->ring_entries = NX_RING_ENTRIES;
	h->flags = 0;
	h->to_host_ring_off = NX_TO_HOST_RING_OFF;
	h->to_guest_ring_off = NX_TO_GUEST_RING_OFF;
	h->guest_arena_off = c->lay.guest_off;
	h->guest_arena_size = c->lay.guest_size;
	h->host_arena_off = c->lay.host_off;
	h->host_arena_size = c->lay.host_size;
	c->to_host = (struct nx_ring *)(c->base + NX_TO_HOST_RING_OFF);
	c->to_guest = (struct nx_ring *)(c->base + NX_TO_GUEST_RING_OFF);
	nx_ring_init(c->to_host);
	nx_ring_init(c->to_guest);
	/* The host starts asleep: the guest's first post must kick it. */
	__atomic_store_n(&c->to_host->consumer_sleeping, 1, __ATOMIC_SEQ_CST);

	if (nx_loop_add_fd(loop, c->kick_host, KICK_EVENTS, on_kick, c) < 0)
		goto fail;
	c->fd_watched = true;
	if (pf_chan_created)
		pf_chan_created(c);
	return c;
fail:
	chan_free(c);
	return NULL;
}

static void chan_free(struct nx_chan *c)
{
	if (c->base != MAP_FAILED)
		munmap(c->base, c->lay.region_size);
	if (c->memfd >= 0)
		close(c->memfd);
	if (c->kick_host >= 0)
		close(c->kick_host);
	if (c->kick_guest >= 0)
		close(c->kick_guest);
	nx_arena_destroy(c->host_arena);
	for (size_t i = 0; c->buckets && i < c->nbuckets; i++)
		free(c->buckets[i]);
	free(c->buckets);
	free(c->ready_meta);
	free(c->bl);
	free(c);
}

static void cancel_all(struct nx_chan *c)
{
	/* Cancel transfers first: after nx_s3_cancel libcurl never touches a
	 * GET sink in the region again, so unmapping afterwards is safe. */
	while (c->ops_list) {
		struct op *o = c->ops_list;
		chan_op_unlink(c, o);
		if (o->x)
			nx_aio_cancel ? nx_aio_cancel(c->s3, o->x) : nx_s3_cancel(c->s3, o->x);
		chan_op_free(o);
	}
}

void nx_chan_reset(struct nx_chan *c)
{
	cancel_all(c);
	if (c->timer) {
		nx_timer_cancel(c->loop, c->timer);
		c->timer = NULL;
	}
	if (c->trim_timer) {
		nx_timer_cancel(c->loop, c->trim_timer);
		c->trim_timer = NULL;
	}
	c->bl_head = c->bl_len = 0;
	c->n_inv = 0;
	c->n_reserved = 0;   /* the arena is reset below */
	c->stalled = c->broken = false;
	c->invalid_streak = 0;
	nx_arena_reset(c->host_arena);
	nx_ring_init(c->to_host);
	nx_ring_init(c->to_guest);
	__atomic_store_n(&c->to_host->consumer_sleeping, 1, __ATOMIC_SEQ_CST);
	if (!c->fd_watched && nx_loop_add_fd(c->loop, c->kick_host, KICK_EVENTS, on_kick, c) == 0)
		c->fd_watched = true;
}

void nx_chan_destroy(struct nx_chan *c)
{
	if (!c || c->dead)
		return;
	c->dead = true;
	if (c->timer) {
		nx_timer_cancel(c->loop, c->timer);
		c->timer = NULL;
	}
	if (c->trim_timer) {
		nx_timer_cancel(c->loop, c->trim_timer);
		c->trim_timer = NULL;
	}
	if (c->fd_watched) {
		nx_loop_del_fd(c->loop, c->kick_host);
		c->fd_watched = false;
	}
	cancel_all(c);
	if (!c->busy)
		chan_free(c);
}

uint64_t nx_chan_punched_bytes(const struct nx_chan *c) { return c->st_punched; }
