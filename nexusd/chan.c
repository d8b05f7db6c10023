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
 * timer, storage completion, nx_chan_invoke) runs between enter() and
 * leave(); a destroy in between tears down everything external at once and
 * the outermost leave() frees the struct.
 */
#include "chan.h"
#include "chan_validate.h"
#include "loop.h"
#include "s3.h"

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

#define BUCKET_MAX   256              /* longer names never match the allow-list */
#define RETRY_MS     1                /* backlog retry while the to-guest ring is full, */
#define RETRY_MAX_MS 64               /* doubling while the guest takes nothing */
#define DRAIN_BATCH  256              /* requests per loop turn before yielding */
#define MAX_PENDING_INV 16

/* One storage request in flight. */
struct op {
	struct nx_chan *c;
	struct op *prev, *next;
	struct nx_s3_xfer *x;
	uint16_t opcode;
	uint64_t tag;
	void *put_body;            /* private copy of the guest's PUT bytes */
	uint64_t put_len;
	uint64_t sink_off;         /* GET: host-arena buffer being written */
	bool sink_live, too_large;
	bool submitting, finished; /* callback ran inside nx_s3_submit */
};

struct nx_chan {
	struct nx_loop *loop;
	struct nx_s3 *s3;
	const struct nx_chan_ops *ops;
	void *owner;

	int memfd, kick_host, kick_guest;
	uint8_t *base;
	struct nx_chan_layout lay;
	struct nx_ring *to_host, *to_guest;
	struct nx_arena *host_arena;

	char **buckets;
	size_t nbuckets;
	char *ready_meta;

	struct nx_desc *bl;        /* backlog: completions not yet on the ring */
	size_t bl_head, bl_len, bl_cap;

	struct op *ops_list;
	size_t n_ops;
	uint64_t put_bytes;        /* private PUT copies in flight (bounded) */
	uint64_t pending_inv[MAX_PENDING_INV];
	size_t n_inv;

	struct nx_timer *timer;    /* backlog retry / drain continuation */
	bool fd_watched;
	bool stalled;              /* stopped popping because of MAX_OUTSTANDING */
	bool broken, dead;
	int busy;
	unsigned invalid_streak;
	uint64_t st_punched;       /* bytes given back with PUNCH_HOLE (tests) */
	unsigned retry_ms;         /* current backlog retry delay */
	struct nx_chan_stats st;
};

static uint8_t empty_sink[1];  /* sink for zero-length GET bodies */

/* --------------------------------------------------------------- layout */

void nx_chan_layout_for(uint64_t size, struct nx_chan_layout *l)
{
	uint64_t arenas = size - NX_ARENAS_OFF;
	l->region_size = size;
	l->guest_off = NX_ARENAS_OFF;
	l->guest_size = (arenas / 2) & ~(uint64_t)4095;
	l->host_off = l->guest_off + l->guest_size;
	l->host_size = size - l->host_off;
}

bool nx_chan_in_guest_arena(const struct nx_chan_layout *l, uint64_t off, uint64_t len)
{
	if (len == 0)
		return true;
	if (off < l->guest_off)
		return false;
	uint64_t rel = off - l->guest_off;
	return rel < l->guest_size && len <= l->guest_size - rel;
}

static bool in_host_arena(const struct nx_chan_layout *l, uint64_t off)
{
	return off >= l->host_off && off - l->host_off < l->host_size;
}

int nx_chan_check_desc(const struct nx_chan_layout *l, const struct nx_desc *d)
{
	if (d->flags != 0)
		return NX_S_INVALID;  /* the guest never posts completions */
	if (d->opcode != NX_OP_INVOKE_DONE && d->status != 0)
		return NX_S_INVALID;
	const struct nx_buf *b = d->buf;
	switch (d->opcode) {
	case NX_OP_NOP:
		return NX_S_OK;
	case NX_OP_READY:
		return b[0].len <= NX_ARGS_MAX && nx_chan_in_guest_arena(l, b[0].off, b[0].len)
		       ? NX_S_OK : NX_S_INVALID;
	case NX_OP_INVOKE:
		return NX_S_INVALID;  /* host-to-guest only */
	case NX_OP_INVOKE_DONE:
		if (d->status != NX_S_OK && d->status != NX_S_HANDLER_ERROR)
			return NX_S_INVALID;
		return b[1].len <= NX_PAYLOAD_MAX && nx_chan_in_guest_arena(l, b[1].off, b[1].len)
		       ? NX_S_OK : NX_S_INVALID;
	case NX_OP_RELEASE:
		return in_host_arena(l, b[0].off) ? NX_S_OK : NX_S_INVALID;
	case NX_OP_S3_PUT:
		if (!nx_chan_in_guest_arena(l, b[1].off, b[1].len))
			return NX_S_INVALID;
		/* fall through */
	case NX_OP_S3_GET:
	case NX_OP_S3_HEAD:
	case NX_OP_S3_DELETE:
	case NX_OP_S3_LIST:
	case NX_OP_S3_COPY:
		return b[0].len > 0 && b[0].len <= NX_ARGS_MAX && nx_chan_in_guest_arena(l, b[0].off, b[0].len)
		       ? NX_S_OK : NX_S_INVALID;
	default:
		return NX_S_UNSUPPORTED;
	}
}

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

static int host_alloc(struct nx_chan *c, uint64_t len, uint64_t *off)
{
	int r = nx_arena_alloc(c->host_arena, len, off);
	if (r == 0) {
		uint64_t used = nx_arena_used(c->host_arena);
		if (used > c->st.host_arena_peak)
			c->st.host_arena_peak = used;
	}
	return r;
}

/* Free a host buffer; a large one gives its pages back to the system so an
 * idle instance's memory shrinks (the guest's mapping sees zero pages). */
static int host_free(struct nx_chan *c, uint64_t off)
{
	uint64_t len;
	int r = nx_arena_release(c->host_arena, off, &len);
	if (r < 0 || len < NX_CHAN_PUNCH_MIN)
		return r;
	uint64_t start = (off + 4095) & ~(uint64_t)4095, end = (off + len) & ~(uint64_t)4095;
	if (end > start && fallocate(c->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
	                             (off_t)(end - start)) == 0)
		c->st_punched += end - start;
	return 0;
}

/* Is this host buffer still the host's (a GET being written, a completion
 * not yet posted)?  Then the guest may not release it. */
static bool host_still_owns(const struct nx_chan *c, uint64_t off)
{
	for (const struct op *o = c->ops_list; o; o = o->next)
		if (o->sink_live && o->sink_off == off)
			return true;
	for (size_t i = 0; i < c->bl_len; i++) {
		const struct nx_desc *d = &c->bl[(c->bl_head + i) % c->bl_cap];
		for (int k = 0; k < 3; k++)
			if (d->buf[k].len && d->buf[k].off == off)
				return true;
	}
	return false;
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

/* Move queued completions onto the to-guest ring and ring the doorbell if
 * the guest is asleep.  Runs at the end of every drain and after every
 * asynchronous completion. */
static void flush(struct nx_chan *c)
{
	if (c->broken || c->dead)
		return;
	bool pushed = false;
	while (c->bl_len) {
		int r = nx_ring_push(c->to_guest, &c->bl[c->bl_head]);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			violate(c, "impossible to-guest ring indices");
			return;
		}
		c->bl_head = (c->bl_head + 1) % c->bl_cap;
		c->bl_len--;
		c->st.completions++;
		pushed = true;
	}
	if (pushed && nx_ring_kick_needed(c->to_guest)) {
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
 * callback, nx_chan_invoke) runs between enter() and leave(), and leave()
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
 * leave() frees it.  Returns false when the channel is gone. */
static void enter(struct nx_chan *c) { c->busy++; }

static bool leave(struct nx_chan *c)
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

static void complete_plain(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status)
{
	struct nx_desc d = { .opcode = opcode, .flags = NX_F_COMPLETION, .status = status, .tag = tag };
	complete(c, &d);
}

/* Complete with meta JSON (stolen) copied into the host arena and an
 * optional body buffer already in the host arena. */
static void complete_meta(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status,
                          json_t *meta, struct nx_buf body)
{
	struct nx_desc d = { .opcode = opcode, .flags = NX_F_COMPLETION, .status = status, .tag = tag };
	char *s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	uint64_t off;
	size_t len = s ? strlen(s) : 0;
	if (!s || host_alloc(c, len, &off) < 0) {
		if (body.len)
			host_free(c, body.off);
		d.status = NX_S_NO_SPACE;
	} else {
		memcpy(c->base + off, s, len);
		d.buf[0] = (struct nx_buf){ off, len };
		d.buf[1] = body;
	}
	free(s);
	complete(c, &d);
}

static json_t *error_meta(const char *code, const char *msg, long http)
{
	json_t *m = json_pack("{s:s, s:s, s:I}", "Code", code, "Message", msg, "HTTPStatusCode", (json_int_t)http);
	if (!m)   /* not UTF-8 (e.g. a guest-chosen name in the message) */
		m = json_pack("{s:s, s:s, s:I}", "Code", code, "Message", "", "HTTPStatusCode", (json_int_t)http);
	return m;
}

/* Guest-chosen bytes quoted in a message: printable ASCII only. */
static void ascii_clean(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* A malformed request: counted, answered with NX_S_INVALID, and reported as
 * a violation when the guest sends nothing but garbage. */
static void reject(struct nx_chan *c, const struct nx_desc *d, uint32_t status, const char *why)
{
	c->st.invalid++;
	if (++c->invalid_streak >= NX_CHAN_INVALID_STREAK) {
		violate(c, "too many invalid descriptors in a row");
		return;
	}
	if (d->opcode == NX_OP_RELEASE)
		return;   /* releases never get completions */
	complete_meta(c, d->opcode, d->tag, status,
	              error_meta(status == NX_S_UNSUPPORTED ? "NotImplemented" : "InvalidRequest", why, 400),
	              (struct nx_buf){ 0, 0 });
}

/* ------------------------------------------------------------ storage */

static void op_unlink(struct nx_chan *c, struct op *o)
{
	c->put_bytes -= o->put_len;
	o->put_len = 0;
	if (o->prev)
		o->prev->next = o->next;
	else
		c->ops_list = o->next;
	if (o->next)
		o->next->prev = o->prev;
	c->n_ops--;
}

static void op_free(struct op *o)
{
	free(o->put_body);
	free(o);
}

static void *sink_alloc(void *arg, size_t len)
{
	struct op *o = arg;
	struct nx_chan *c = o->c;
	if (o->sink_live) {   /* a retry: start over with a fresh buffer */
		host_free(c, o->sink_off);
		o->sink_live = false;
	}
	if (len == 0)
		return empty_sink;
	if (len > nx_arena_size(c->host_arena)) {
		o->too_large = true;
		return NULL;
	}
	uint64_t off;
	if (host_alloc(c, len, &off) < 0)
		return NULL;
	o->sink_off = off;
	o->sink_live = true;
	return c->base + off;
}

static json_t *success_meta(const struct op *o, const struct nx_s3_result *res)
{
	switch (o->opcode) {
	case NX_OP_S3_GET:
	case NX_OP_S3_HEAD: {
		json_t *m = json_pack("{s:I, s:s, s:s, s:s}", "ContentLength", (json_int_t)res->content_length,
		                      "ETag", res->etag, "ContentType", res->content_type,
		                      "LastModified", res->last_modified);
		if (m && res->content_range[0])
			json_object_set_new(m, "ContentRange", json_string(res->content_range));
		return m;
	}
	case NX_OP_S3_PUT:
		return json_pack("{s:s}", "ETag", res->etag);
	case NX_OP_S3_COPY:
		return json_pack("{s:s, s:s}", "ETag", res->etag, "LastModified", res->last_modified);
	case NX_OP_S3_LIST:
		return res->list ? json_incref(res->list) : json_object();
	default:
		return json_object();
	}
}

static void on_s3_done(void *arg, struct nx_s3_result *res)
{
	struct op *o = arg;
	struct nx_chan *c = o->c;
	/* Unlinked first: a destroy triggered while completing must not cancel
	 * this transfer, which the client has already finished. */
	op_unlink(c, o);
	enter(c);
	struct nx_buf body = { 0, 0 };
	uint32_t status = (uint32_t)res->status;
	if (o->too_large && status != NX_S_OK)
		status = NX_S_TOO_LARGE;
	if (status == NX_S_OK && o->opcode == NX_OP_S3_GET && o->sink_live && res->body_len) {
		body = (struct nx_buf){ o->sink_off, res->body_len };
		o->sink_live = false;   /* handed to the guest with the completion */
	}
	if (o->sink_live) {
		host_free(c, o->sink_off);
		o->sink_live = false;
	}
	json_t *meta;
	if (status == NX_S_OK) {
		meta = success_meta(o, res);
		if (!meta)   /* a field that is not UTF-8: still answer, with what we have */
			meta = json_pack("{s:I}", "ContentLength", (json_int_t)res->content_length);
	} else {
		const char *code = res->code[0] ? res->code
		                   : status == NX_S_TOO_LARGE ? "EntityTooLarge"
		                   : status == NX_S_NO_SPACE ? "NoSpace" : "InternalError";
		meta = error_meta(code, res->message, res->http_code);
	}
	complete_meta(c, o->opcode, o->tag, status, meta, body);
	if (o->submitting)
		o->finished = true;   /* nx_s3_submit is still on the stack: it frees */
	else
		op_free(o);
	leave(c);
}

/* Copy a TLV string argument; returns false when absent or too long. */
static bool arg(const struct nx_args *a, unsigned t, char *dst, size_t cap)
{
	return nx_args_str(a, t, dst, cap) >= 0;
}

static bool bucket_allowed(const struct nx_chan *c, const char *b)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		if (strcmp(c->buckets[i], b) == 0)
			return true;
	return false;
}

/* Strings of one request, private (copied from the TLV view). */
struct req_strs {
	char bucket[BUCKET_MAX], src_bucket[BUCKET_MAX];
	char key[NX_FIELD_MAX + 1], src_key[NX_FIELD_MAX + 1];
	char range[128], if_match[256], content_type[256];
	char prefix[NX_FIELD_MAX + 1], delimiter[64], cont_token[NX_FIELD_MAX + 1], start_after[NX_FIELD_MAX + 1];
	char max_keys[16];
};

static void handle_s3(struct nx_chan *c, const struct nx_desc *d)
{
	/* TLV arguments: copied out of the region once, then parsed strictly. */
	uint8_t raw[NX_ARGS_MAX];
	memcpy(raw, c->base + d->buf[0].off, d->buf[0].len);
	struct nx_args a;
	if (nx_tlv_parse(raw, d->buf[0].len, &a) < 0) {
		reject(c, d, NX_S_INVALID, "malformed request arguments");
		return;
	}
	struct req_strs *s = malloc(sizeof(*s));   /* fields are read only once set */
	if (!s) {
		complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
		return;
	}
	struct nx_s3_req req = { 0 };
	bool ok = arg(&a, NX_ARG_BUCKET, s->bucket, sizeof(s->bucket)) && s->bucket[0];
	req.bucket = s->bucket;
	switch (d->opcode) {
	case NX_OP_S3_GET:
		req.op = NX_S3_GET;
		if (a.val[NX_ARG_RANGE]) {
			ok = ok && arg(&a, NX_ARG_RANGE, s->range, sizeof(s->range));
			req.range = s->range;
		}
		if (a.val[NX_ARG_IF_MATCH]) {
			ok = ok && arg(&a, NX_ARG_IF_MATCH, s->if_match, sizeof(s->if_match));
			req.if_match = s->if_match;
		}
		break;
	case NX_OP_S3_PUT:
		req.op = NX_S3_PUT;
		if (a.val[NX_ARG_CONTENT_TYPE]) {
			ok = ok && arg(&a, NX_ARG_CONTENT_TYPE, s->content_type, sizeof(s->content_type));
			req.content_type = s->content_type;
		}
		break;
	case NX_OP_S3_HEAD: req.op = NX_S3_HEAD; break;
	case NX_OP_S3_DELETE: req.op = NX_S3_DELETE; break;
	case NX_OP_S3_LIST:
		req.op = NX_S3_LIST;
#define OPT(tag, field) \
		if (a.val[tag]) { ok = ok && arg(&a, tag, s->field, sizeof(s->field)); req.field = s->field; }
		OPT(NX_ARG_PREFIX, prefix)
		OPT(NX_ARG_DELIMITER, delimiter)
		OPT(NX_ARG_CONT_TOKEN, cont_token)
		OPT(NX_ARG_START_AFTER, start_after)
#undef OPT
		if (a.val[NX_ARG_MAX_KEYS]) {
			char *end;
			ok = ok && arg(&a, NX_ARG_MAX_KEYS, s->max_keys, sizeof(s->max_keys));
			long v = strtol(s->max_keys, &end, 10);
			ok = ok && s->max_keys[0] && !*end && v >= 0 && v <= 1000;
			req.max_keys = (int)v;
		}
		break;
	case NX_OP_S3_COPY:
		req.op = NX_S3_COPY;
		ok = ok && arg(&a, NX_ARG_SRC_BUCKET, s->src_bucket, sizeof(s->src_bucket)) && s->src_bucket[0];
		ok = ok && arg(&a, NX_ARG_SRC_KEY, s->src_key, sizeof(s->src_key)) && s->src_key[0];
		req.src_bucket = s->src_bucket;
		req.src_key = s->src_key;
		break;
	}
	if (d->opcode != NX_OP_S3_LIST) {
		ok = ok && arg(&a, NX_ARG_KEY, s->key, sizeof(s->key)) && s->key[0];
		req.key = s->key;
	}
	if (!ok) {
		free(s);
		reject(c, d, NX_S_INVALID, "missing or malformed request argument");
		return;
	}
	c->invalid_streak = 0;   /* a well-formed request */
	if (!bucket_allowed(c, s->bucket) || (req.op == NX_S3_COPY && !bucket_allowed(c, s->src_bucket))) {
		char msg[BUCKET_MAX + 64];
		snprintf(msg, sizeof(msg), "Access Denied: bucket '%s' is not allowed for this function",
		         bucket_allowed(c, s->bucket) ? s->src_bucket : s->bucket);
		ascii_clean(msg);
		free(s);
		complete_meta(c, d->opcode, d->tag, NX_S_ACCESS_DENIED, error_meta("AccessDenied", msg, 403),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	struct op *o = calloc(1, sizeof(*o));
	if (!o) {
		free(s);
		complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
		return;
	}
	o->c = c;
	o->opcode = d->opcode;
	o->tag = d->tag;
	if (req.op == NX_S3_PUT && d->buf[1].len > 2 * c->lay.guest_size - c->put_bytes) {
		/* Honest PUT bodies live in distinct guest-arena buffers, so their sum
		 * stays below the arena size; a guest naming its whole arena in 256
		 * PUTs at once must not make nexusd copy gigabytes. */
		free(s);
		free(o);
		complete_meta(c, d->opcode, d->tag, NX_S_NO_SPACE,
		              error_meta("SlowDown", "too many PUT bytes in flight for this instance", 503),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	if (req.op == NX_S3_PUT && d->buf[1].len) {
		/* The guest could rewrite its PUT bytes while libcurl is still sending
		 * them (or between a first attempt and a retry, so the signature's
		 * payload hash would no longer match): copy them out once, here,
		 * and upload only the private copy. */
		o->put_body = malloc(d->buf[1].len);
		if (!o->put_body) {
			free(s);
			free(o);
			complete_plain(c, d->opcode, d->tag, NX_S_NO_SPACE);
			return;
		}
		memcpy(o->put_body, c->base + d->buf[1].off, d->buf[1].len);
		o->put_len = d->buf[1].len;
		c->put_bytes += o->put_len;
		req.body = o->put_body;
		req.body_len = d->buf[1].len;
	}
	if (req.op == NX_S3_GET) {
		req.sink_alloc = sink_alloc;
		req.sink_arg = o;
	}
	o->next = c->ops_list;
	if (c->ops_list)
		c->ops_list->prev = o;
	c->ops_list = o;
	c->n_ops++;
	o->submitting = true;
	struct nx_s3_xfer *x = nx_s3_submit(c->s3, &req, on_s3_done, o);
	o->submitting = false;
	free(s);
	if (o->finished) {            /* completed synchronously */
		op_free(o);
		return;
	}
	if (!x) {
		op_unlink(c, o);
		if (o->sink_live)
			host_free(c, o->sink_off);
		op_free(o);
		complete_meta(c, d->opcode, d->tag, NX_S_IO_ERROR,
		              error_meta("InternalError", "storage request could not be started", 500),
		              (struct nx_buf){ 0, 0 });
		return;
	}
	o->x = x;
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
		reject(c, d, NX_S_INVALID, "malformed READY arguments");
		return;
	}
	c->invalid_streak = 0;
	json_t *meta = json_loads(c->ready_meta ? c->ready_meta : "{}", 0, NULL);
	complete_meta(c, NX_OP_READY, d->tag, NX_S_OK, meta ? meta : json_object(), (struct nx_buf){ 0, 0 });
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
		reject(c, d, NX_S_INVALID, "INVOKE_DONE for an invocation that is not pending");
		return;
	}
	c->invalid_streak = 0;
	c->pending_inv[i] = c->pending_inv[--c->n_inv];
	/* The result is copied out of the guest arena once, before anyone reads it. */
	size_t len = d->buf[1].len;
	char *payload = malloc(len + 1);
	if (!payload) {
		complete_plain(c, NX_OP_INVOKE_DONE, d->tag, NX_S_NO_SPACE);
		return;
	}
	if (len)
		memcpy(payload, c->base + d->buf[1].off, len);
	payload[len] = '\0';
	complete_plain(c, NX_OP_INVOKE_DONE, d->tag, NX_S_OK);
	if (c->ops && c->ops->invoke_done)
		c->ops->invoke_done(c->owner, d->tag, (int)d->status, payload, len);
	free(payload);
}

static void handle_release(struct nx_chan *c, const struct nx_desc *d)
{
	uint64_t off = d->buf[0].off;
	/* Only the exact start of a live allocation the guest was handed. */
	if (host_still_owns(c, off) || host_free(c, off) < 0) {
		reject(c, d, NX_S_INVALID, "release of a buffer the guest does not hold");
		return;
	}
	c->invalid_streak = 0;
}

static void handle(struct nx_chan *c, const struct nx_desc *d)
{
	c->st.requests++;
	int v = nx_chan_check_desc(&c->lay, d);
	if (v != NX_S_OK) {
		reject(c, d, (uint32_t)v, v == NX_S_UNSUPPORTED ? "unknown opcode" : "invalid descriptor");
		return;
	}
	switch (d->opcode) {
	case NX_OP_NOP:
		c->invalid_streak = 0;
		complete_plain(c, NX_OP_NOP, d->tag, NX_S_OK);
		break;
	case NX_OP_READY: handle_ready(c, d); break;
	case NX_OP_INVOKE_DONE: handle_invoke_done(c, d); break;
	case NX_OP_RELEASE: handle_release(c, d); break;
	default: handle_s3(c, d); break;
	}
}

void nx_chan_drain(struct nx_chan *c)
{
	if (c->broken || c->dead)
		return;
	enter(c);
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
	leave(c);
}

static void on_kick(void *arg, uint32_t events)
{
	struct nx_chan *c = arg;
	uint64_t v;
	(void)events;
	if (read(c->kick_host, &v, sizeof(v)) < 0) {
		/* EAGAIN: a spurious wake-up; drain anyway. */
	}
	nx_chan_drain(c);
}

static void on_timer(void *arg)
{
	struct nx_chan *c = arg;
	c->timer = NULL;
	if (c->stalled || nx_ring_pending(c->to_host) != 0) {
		nx_chan_drain(c);
	} else {
		enter(c);
		leave(c);   /* flushes the backlog */
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
	if (event_len && host_alloc(c, event_len, &eoff) < 0)
		return -ENOSPC;
	if (ctx_len && host_alloc(c, ctx_len, &coff) < 0) {
		if (event_len)
			host_free(c, eoff);
		return -ENOSPC;
	}
	if (event_len)
		memcpy(c->base + eoff, event, event_len);
	if (ctx_len)
		memcpy(c->base + coff, context_json, ctx_len);
	struct nx_desc d = { .opcode = NX_OP_INVOKE, .tag = inv_id,
	                     .buf = { { eoff, event_len }, { coff, ctx_len } } };
	c->pending_inv[c->n_inv++] = inv_id;
	enter(c);
	complete(c, &d);
	bool broken = c->broken;
	if (!leave(c))
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

	if (nx_loop_add_fd(loop, c->kick_host, EPOLLIN, on_kick, c) < 0)
		goto fail;
	c->fd_watched = true;
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
		op_unlink(c, o);
		if (o->x)
			nx_s3_cancel(c->s3, o->x);
		op_free(o);
	}
}

void nx_chan_reset(struct nx_chan *c)
{
	cancel_all(c);
	if (c->timer) {
		nx_timer_cancel(c->loop, c->timer);
		c->timer = NULL;
	}
	c->bl_head = c->bl_len = 0;
	c->n_inv = 0;
	c->stalled = c->broken = false;
	c->invalid_streak = 0;
	nx_arena_reset(c->host_arena);
	nx_ring_init(c->to_host);
	nx_ring_init(c->to_guest);
	__atomic_store_n(&c->to_host->consumer_sleeping, 1, __ATOMIC_SEQ_CST);
	if (!c->fd_watched && nx_loop_add_fd(c->loop, c->kick_host, EPOLLIN, on_kick, c) == 0)
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
	if (c->fd_watched) {
		nx_loop_del_fd(c->loop, c->kick_host);
		c->fd_watched = false;
	}
	cancel_all(c);
	if (!c->busy)
		chan_free(c);
}

uint64_t nx_chan_punched_bytes(const struct nx_chan *c) { return c->st_punched; }
