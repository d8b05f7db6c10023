/* SPDX-License-Identifier: MIT */
/*
 * Input prefetch overlapped with a cold start (aio.h).
 *
 * Hints: X-Nexus-Prefetch: s3://bucket/key request headers; the function's
 * "nexus:prefetch" tag ("bucketfield,keyfield": event fields, dots for
 * nesting); and learned hints: the first GET of an invocation is matched
 * against the event's string values, and after LEARN_N consecutive
 * invocations naming their first GET's bucket and key with the same two
 * fields, those fields are used as if declared (one mismatch forgets them).
 *
 * When an invocation needs a cold start (nx_aio_cold_start: the instance
 * manager is about to start a sandbox for it), each hinted object of an
 * allowed bucket is fetched at once into a buffer of nexusd's.  A hint for a
 * bucket outside the function's allow-list is dropped and counted (denied),
 * with no request.  Warm invocations do not prefetch: the instance is there
 * and its own GET starts as early as ours would.
 *
 * Where the fetch writes: the instance manager creates the new instance's
 * channel right after asking for the prefetch, and long before the response
 * headers arrive, so when the S3 client asks for a sink (pf_sink) the entry
 * binds to the newest channel of the function that has run nothing yet and
 * the body goes straight into a reserved host-arena buffer of that region
 * (nx_chan_reserve): no copy later, and the first touch of those pages
 * happens during the cold start instead of inside the guest's get_object.
 * Without such a channel (or room in it) the body goes into a heap buffer.
 *
 * The guest's GET of that bucket/key (whole object, during that invocation)
 * claims the buffer, waiting if the fetch is still in flight; at the same
 * moment a HEAD goes out, and the buffer is served only if the ETag the HEAD
 * sees now equals the prefetched one (hit).  Otherwise (stale, or the fetch
 * failed) the GET goes to S3 as usual.  So every read returns what S3 held
 * after the read was issued; a hit costs a HEAD round trip, and then either
 * hands the region buffer to the GET's completion (nx_chan_sink_adopt, when
 * the GET comes from the channel the entry is bound to) or, for a heap
 * buffer, one memcpy into the region.  A region buffer claimed from another
 * channel is not used (that region is another guest's to scribble on): the
 * GET goes to S3 (counted as elsewhere).  Unclaimed buffers are
 * dropped when the invocation ends (miss; their bytes count as wasted).
 */
#include "aio.h"
#include "chan.h"
#include "invocation.h"
#include "loop.h"
#include "metrics.h"
#include "registry.h"
#include "util.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define LEARN_N       3
#define PF_MAX_BYTES  (64u << 20)    /* one prefetched object */
#define PF_MAX_HELD   (256u << 20)   /* all prefetch buffers together */
#define PF_MAX_HINTS  4

struct pfe {                      /* one prefetched object */
	struct pfe *next;
	struct nxd_invocation *inv;
	char bucket[256], key[1025];
	void *buf;
	size_t len;
	struct nx_chan *chan;         /* buf is reserved in this channel's region (or NULL: heap) */
	uint64_t off;
	bool done, failed, too_big;
	struct nx_s3_xfer *x;
	struct nx_s3_result res;      /* etag, content type, ... of the fetch */
	struct aio_op *op;            /* the claiming GET, once claimed */
	uint64_t t_start, t_fetched, t_claimed;
};

struct hdr_hint {
	struct hdr_hint *next;
	struct nxd_invocation *inv;
	char bucket[256], key[1025];
};

struct pfc {                      /* per channel: the invocation it runs */
	struct pfc *next;
	struct nx_chan *c;
	struct nxd_invocation *inv;
	bool first_get_seen;
	bool fresh;                   /* created, no invocation delivered yet */
	struct nxd_invocation *bound; /* prefetches of this invocation write into its region */
	uint64_t t_created;
};

struct learn {
	struct learn *next;
	char fn[65];
	char bfield[128], kfield[128];
	unsigned count;
};

static struct {
	struct nx_loop *loop;
	struct nx_s3 *s3;
	struct pfe *entries;          /* unclaimed */
	struct pfe *claimed;          /* claimed by a GET (owned by its aio_op) */
	struct hdr_hint *hints;
	struct pfc *chans;
	struct learn *learned;
	uint64_t hit, miss, stale, denied, elsewhere, wasted_bytes, fetched_bytes, learned_used;
	uint64_t region_fetches;      /* fetches written straight into an instance's region */
	uint64_t held;                /* bytes of prefetch buffers alive */
} P;

/* ---------------------------------------------------------- helpers */

static bool split_s3_url(const char *v, char *bucket, size_t bcap, char *key, size_t kcap)
{
	while (*v == ' ')
		v++;
	if (strncmp(v, "s3://", 5))
		return false;
	v += 5;
	const char *slash = strchr(v, '/');
	if (!slash || slash == v || !slash[1] || (size_t)(slash - v) >= bcap || strlen(slash + 1) >= kcap)
		return false;
	memcpy(bucket, v, (size_t)(slash - v));
	bucket[slash - v] = 0;
	snprintf(key, kcap, "%s", slash + 1);
	size_t n = strlen(key);
	while (n && key[n - 1] == ' ')
		key[--n] = 0;
	return n > 0;
}

static const char *json_path_str(json_t *ev, const char *path)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", path);
	json_t *cur = ev;
	for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
		cur = json_is_object(cur) ? json_object_get(cur, t) : NULL;
	return json_is_string(cur) ? json_string_value(cur) : NULL;
}

static bool fn_bucket_ok(const struct nxd_function *fn, const char *b)
{
	for (size_t i = 0; fn->buckets && fn->buckets[i]; i++)
		if (!strcmp(fn->buckets[i], b))
			return true;
	return false;
}

static struct pfc *pfc_get(struct nx_chan *c, bool create)
{
	for (struct pfc *p = P.chans; p; p = p->next)
		if (p->c == c)
			return p;
	if (!create)
		return NULL;
	struct pfc *p = calloc(1, sizeof *p);
	if (p) {
		p->c = c;
		p->next = P.chans;
		P.chans = p;
	}
	return p;
}

static struct learn *learn_get(const char *fn, bool create)
{
	for (struct learn *l = P.learned; l; l = l->next)
		if (!strcmp(l->fn, fn))
			return l;
	if (!create)
		return NULL;
	struct learn *l = calloc(1, sizeof *l);
	if (l) {
		snprintf(l->fn, sizeof l->fn, "%s", fn);
		l->next = P.learned;
		P.learned = l;
	}
	return l;
}

/* Drop the body buffer (the fetch must no longer be writing it). */
static void pfe_drop_buf(struct pfe *e)
{
	if (e->chan)
		nx_chan_unreserve(e->chan, e->off);
	else if (e->buf) {
		P.held -= e->len;
		free(e->buf);
	}
	e->buf = NULL;
	e->chan = NULL;
}

/* The timeline of a hit, for the cold-start breakdown (bench/coldstart_breakdown.py reads it). */
static void log_hit(const struct pfe *e, const char *where)
{
	uint64_t now = nx_now_ns();
	nxd_debug("prefetch hit s3://%s/%s (%zu bytes%s): fetched %.1f ms after the invocation arrived, claimed at "
	          "%.1f ms, served at %.1f ms (the guest waited %.1f ms)",
	          e->bucket, e->key, e->len, where, (double)(e->t_fetched - e->t_start) / 1e6,
	          (double)(e->t_claimed - e->t_start) / 1e6, (double)(now - e->t_start) / 1e6,
	          (double)(now - e->t_claimed) / 1e6);
}

static void pfe_free(struct pfe *e)
{
	if (e->x)   /* first: libcurl must stop writing into the buffer */
		nx_s3_cancel(P.s3, e->x);
	e->x = NULL;
	pfe_drop_buf(e);
	free(e);
}

/* The channel the fetch for e should write into: one already running or
 * bound to e's invocation, else the newest one of the function that has run
 * nothing yet. */
static struct nx_chan *region_for(const struct pfe *e)
{
	struct pfc *best = NULL;
	bool best_mine = false;
	for (struct pfc *p = P.chans; p; p = p->next) {
		bool mine = p->bound == e->inv || p->inv == e->inv;
		if (!mine && (p->bound || !p->fresh))
			continue;
		struct aio_chan *ac = aio_chan_find(p->c);
		if (!ac || strcmp(aio_chan_function(ac), e->inv->fn->name))
			continue;
		if (!best || mine > best_mine || (mine == best_mine && p->t_created > best->t_created)) {
			best = p;
			best_mine = mine;
		}
	}
	if (best && !best->inv)
		best->bound = e->inv;
	return best ? best->c : NULL;
}

/* ---------------------------------------------------------- fetching */

static void *pf_sink(void *arg, size_t len)
{
	struct pfe *e = arg;
	pfe_drop_buf(e);   /* a retry starts over */
	struct nx_chan *c = len && len <= PF_MAX_BYTES ? region_for(e) : NULL;
	if (c && (e->buf = nx_chan_reserve(c, len, &e->off))) {
		e->chan = c;
		e->len = len;
		P.region_fetches++;
		return e->buf;
	}
	if (len > PF_MAX_BYTES || P.held + len > PF_MAX_HELD) {
		e->too_big = true;   /* the guest's own GET will read it */
		return NULL;
	}
	e->buf = malloc(len ? len : 1);
	if (e->buf) {
		e->len = len;
		P.held += len;
	}
	return e->buf;
}

static void claim_try(struct pfe *e);

static void on_fetched(void *arg, struct nx_s3_result *res)
{
	struct pfe *e = arg;
	e->x = NULL;
	e->done = true;
	e->res = *res;
	e->res.list = NULL;
	e->failed = res->status != NX_S_OK;
	e->t_fetched = nx_now_ns();
	if (!e->failed)
		P.fetched_bytes += res->body_len;
	else
		pfe_drop_buf(e);   /* never served: give the region (or heap) buffer back now */
	if (e->op)
		claim_try(e);
}

static void start_fetch(struct nxd_invocation *inv, const char *bucket, const char *key)
{
	for (struct pfe *e = P.entries; e; e = e->next)
		if (e->inv == inv && !strcmp(e->bucket, bucket) && !strcmp(e->key, key))
			return;   /* the same hint twice */
	if (!fn_bucket_ok(inv->fn, bucket)) {
		P.denied++;
		nxd_debug("prefetch: hint s3://%s/%s of %s denied: bucket not allowed", bucket, key, inv->fn->name);
		return;
	}
	struct pfe *e = calloc(1, sizeof *e);
	if (!e)
		return;
	e->inv = inv;
	e->t_start = nx_now_ns();
	snprintf(e->bucket, sizeof e->bucket, "%s", bucket);
	snprintf(e->key, sizeof e->key, "%s", key);
	struct nx_s3_req req = { .op = NX_S3_GET, .bucket = e->bucket, .key = e->key, .sink_alloc = pf_sink, .sink_arg = e };
	e->next = P.entries;
	P.entries = e;
	e->x = nx_s3_submit(P.s3, &req, on_fetched, e);
	if (!e->x && !e->done) {
		e->done = e->failed = true;
	}
}

void pf_cold_start(struct nxd_invocation *inv)
{
	if (!P.s3 || !inv->fn || inv->fn->mode != NX_MODE_NEXUS)
		return;
	unsigned n = 0;
	for (struct hdr_hint *h = P.hints; h && n < PF_MAX_HINTS; h = h->next)
		if (h->inv == inv) {
			start_fetch(inv, h->bucket, h->key);
			n++;
		}
	const char *tag = nxd_fn_tag(inv->fn, "nexus:prefetch");
	struct learn *l = learn_get(inv->fn->name, false);
	char bf[128] = "", kf[128] = "";
	bool learned = false;
	if (tag && strchr(tag, ',')) {
		snprintf(bf, sizeof bf, "%.*s", (int)(strchr(tag, ',') - tag), tag);
		snprintf(kf, sizeof kf, "%s", strchr(tag, ',') + 1);
	} else if (l && l->count >= LEARN_N) {
		snprintf(bf, sizeof bf, "%s", l->bfield);
		snprintf(kf, sizeof kf, "%s", l->kfield);
		learned = true;
	}
	if (!*bf || !inv->event_len || n >= PF_MAX_HINTS)
		return;
	json_t *ev = json_loadb(inv->event, inv->event_len, 0, NULL);
	const char *b = ev ? json_path_str(ev, bf) : NULL, *k = ev ? json_path_str(ev, kf) : NULL;
	if (b && k && *b && *k && strlen(b) < 256 && strlen(k) <= 1024) {
		start_fetch(inv, b, k);
		P.learned_used += learned;
	}
	json_decref(ev);
}

void pf_hint_header(struct nxd_invocation *inv, const char *value)
{
	/* one header may carry several, comma-separated */
	char tmp[2048];
	snprintf(tmp, sizeof tmp, "%s", value);
	for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct hdr_hint *h = calloc(1, sizeof *h);
		if (!h)
			return;
		if (!split_s3_url(t, h->bucket, sizeof h->bucket, h->key, sizeof h->key)) {
			free(h);
			continue;
		}
		h->inv = inv;
		h->next = P.hints;
		P.hints = h;
	}
}

/* ---------------------------------------------------------- claiming */

static void claimed_unlink(struct pfe *e)
{
	for (struct pfe **pp = &P.claimed; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			return;
		}
}

static void claim_detach(struct aio_op *op)
{
	struct pfe *e = op->on;
	claimed_unlink(e);
	e->op = NULL;
	pfe_free(e);   /* cancels the fetch if it is still running */
}

static void on_head(void *arg, struct nx_s3_result *res)
{
	struct aio_op *op = arg;
	op->inner = NULL;
	op->head_done = true;
	op->head_status = res->status;
	snprintf(op->head_etag, sizeof op->head_etag, "%s", res->status == NX_S_OK ? res->etag : "");
	claim_try(op->on);
}

/* Both the fetch and the validating HEAD are back: serve or fall back. */
static void claim_try(struct pfe *e)
{
	struct aio_op *op = e->op;
	if (!op || !e->done || !op->head_done)
		return;
	op->detach = NULL;
	op->on = NULL;
	e->op = NULL;
	claimed_unlink(e);
	bool fresh = !e->failed && op->head_status == NX_S_OK && !strcmp(op->head_etag, e->res.etag) &&
	             (!op->req.if_match || !strcmp(op->req.if_match, e->res.etag));
	if (!fresh) {
		P.stale++;
		pfe_free(e);
		aio_op_submit_s3(op);   /* what S3 holds now, as if there had been no hint */
		return;
	}
	struct nx_s3_result res = e->res;
	res.body_len = e->len;
	res.content_length = e->len;
	if (e->chan && (e->chan != op->chan || nx_chan_sink_adopt(e->chan, op->req.sink_arg, e->off) < 0)) {
		/* in another instance's region (or the GET is not the channel's own) */
		P.elsewhere++;
		pfe_free(e);
		aio_op_submit_s3(op);
		return;
	}
	P.hit++;
	if (e->chan) {   /* the GET's completion owns the region buffer now */
		e->chan = NULL;
		e->buf = NULL;
		log_hit(e, ", in the region");
		pfe_free(e);
		aio_op_finish(op, &res);
		return;
	}
	void *dst = op->req.sink_alloc ? op->req.sink_alloc(op->req.sink_arg, e->len) : NULL;
	if (!dst) {
		pfe_free(e);
		struct nx_s3_result er;
		aio_result_error(&er, NX_S_NO_SPACE, 503, "SlowDown", "no room in the instance's region for the object");
		aio_op_finish(op, &er);
		return;
	}
	/* Fresh region pages: fault them in with one call rather than one
	 * fault per page during the copy (each costs a VM exit here). */
	uintptr_t a0 = ((uintptr_t)dst + 4095) & ~(uintptr_t)4095, a1 = ((uintptr_t)dst + e->len) & ~(uintptr_t)4095;
	if (a1 > a0)
		madvise((void *)a0, a1 - a0, MADV_POPULATE_WRITE);   /* best effort (Linux >= 5.14) */
	memcpy(dst, e->buf, e->len);
	log_hit(e, "");
	pfe_free(e);
	aio_op_finish(op, &res);
}

bool pf_get(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
            struct nx_s3_xfer **x)
{
	struct pfc *p = pfc_get(c, false);
	if (!p || !p->inv || req->range)
		return false;
	struct pfe **pp = &P.entries, *e = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->inv == p->inv && !strcmp((*pp)->bucket, req->bucket) && !strcmp((*pp)->key, req->key)) {
			e = *pp;
			break;
		}
	if (!e)
		return false;
	struct aio_op *op = aio_op_new(c, s3, req, cb, arg);
	if (!op)
		return false;
	*pp = e->next;          /* the op owns the entry now */
	e->next = P.claimed;
	P.claimed = e;
	e->op = op;
	e->t_claimed = nx_now_ns();
	op->on = e;
	op->detach = claim_detach;
	*x = (struct nx_s3_xfer *)op;
	struct nx_s3_req head = { .op = NX_S3_HEAD, .bucket = e->bucket, .key = e->key };
	bool gone = false;
	op->gone = &gone;
	struct nx_s3_xfer *hx = nx_s3_submit(s3, &head, on_head, op);
	if (gone)
		return true;
	op->gone = NULL;
	if (hx)
		op->inner = hx;
	else if (!op->head_done) {
		struct nx_s3_result r;
		aio_result_error(&r, NX_S_IO_ERROR, 500, "InternalError", "HEAD could not start");
		on_head(op, &r);
	}
	return true;
}

/* ---------------------------------------------------------- learning */

/* The event's string fields (dotted paths, two levels) equal to s. */
static bool find_field(json_t *ev, const char *s, char *out, size_t cap)
{
	const char *k1;
	json_t *v1;
	json_object_foreach(ev, k1, v1) {
		if (json_is_string(v1) && !strcmp(json_string_value(v1), s)) {
			snprintf(out, cap, "%s", k1);
			return true;
		}
		if (json_is_object(v1)) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v1, k2, v2)
				if (json_is_string(v2) && !strcmp(json_string_value(v2), s)) {
					snprintf(out, cap, "%s.%s", k1, k2);
					return true;
				}
		}
	}
	return false;
}

void pf_observe_get(struct nx_chan *c, const struct nx_s3_req *req)
{
	struct pfc *p = pfc_get(c, false);
	struct aio_chan *ac = aio_chan_find(c);
	if (!p || !p->inv || p->first_get_seen || !ac)
		return;
	p->first_get_seen = true;
	if (nxd_fn_tag(p->inv->fn, "nexus:prefetch"))
		return;   /* declared: nothing to learn */
	struct learn *l = learn_get(aio_chan_function(ac), true);
	if (!l)
		return;
	json_t *ev = p->inv->event_len ? json_loadb(p->inv->event, p->inv->event_len, 0, NULL) : NULL;
	char bf[128], kf[128];
	if (ev && json_is_object(ev) && find_field(ev, req->bucket, bf, sizeof bf) &&
	    find_field(ev, req->key, kf, sizeof kf)) {
		if (l->count && !strcmp(l->bfield, bf) && !strcmp(l->kfield, kf)) {
			if (++l->count == LEARN_N)
				nxd_info("prefetch: learned that %s reads the object named by event fields %s, %s", l->fn, bf, kf);
		} else {
			snprintf(l->bfield, sizeof l->bfield, "%s", bf);
			snprintf(l->kfield, sizeof l->kfield, "%s", kf);
			l->count = 1;
		}
	} else {
		l->count = 0;
	}
	json_decref(ev);
}

/* ---------------------------------------------------------- lifecycle */

void pf_deliver(struct nx_chan *c, struct nxd_invocation *inv)
{
	struct pfc *p = pfc_get(c, true);
	if (p) {
		p->inv = inv;
		p->first_get_seen = false;
		p->fresh = false;
		p->bound = NULL;   /* entries already bound keep their buffers until claimed or dropped */
	}
}

void pf_inv_end(struct nxd_invocation *inv)
{
	for (struct pfe **pp = &P.entries; *pp;) {
		struct pfe *e = *pp;
		if (e->inv != inv) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		P.miss++;
		P.wasted_bytes += e->done && !e->failed ? e->len : 0;
		pfe_free(e);
	}
	for (struct hdr_hint **pp = &P.hints; *pp;) {
		struct hdr_hint *h = *pp;
		if (h->inv == inv) {
			*pp = h->next;
			free(h);
		} else {
			pp = &h->next;
		}
	}
	for (struct pfc *p = P.chans; p; p = p->next) {
		if (p->inv == inv)
			p->inv = NULL;
		if (p->bound == inv)
			p->bound = NULL;
	}
}

void pf_chan_created(struct nx_chan *c)
{
	struct pfc *p = pfc_get(c, true);
	if (p) {
		p->inv = p->bound = NULL;
		p->fresh = true;
		p->first_get_seen = false;
		p->t_created = nx_now_ns();
	}
}

/* The channel goes away: no entry may keep a buffer in its region.  An entry
 * still fetching into it is cancelled and becomes a failed fetch (its claim,
 * if any, then reads from S3). */
static void unbind(struct pfe *e, struct nx_chan *c)
{
	if (e->chan != c)
		return;
	if (e->x) {
		nx_s3_cancel(P.s3, e->x);
		e->x = NULL;
	}
	pfe_drop_buf(e);
	e->done = e->failed = true;
	if (e->op)
		claim_try(e);
}

void pf_chan_detach(struct nx_chan *c)
{
	for (struct pfe *e = P.entries; e; e = e->next)
		unbind(e, c);
	for (bool again = true; again;) {   /* unbind may finish a claim, which unlinks it */
		again = false;
		for (struct pfe *e = P.claimed; e; e = e->next)
			if (e->chan == c) {
				unbind(e, c);
				again = true;
				break;
			}
	}
	for (struct pfc **pp = &P.chans; *pp; pp = &(*pp)->next)
		if ((*pp)->c == c) {
			struct pfc *p = *pp;
			*pp = p->next;
			free(p);
			return;
		}
}

void pf_init(struct nx_loop *loop, struct nx_s3 *s3)
{
	P.loop = loop;
	P.s3 = s3;
}

void pf_shutdown(void)
{
	while (P.entries) {
		struct pfe *e = P.entries;
		P.entries = e->next;
		pfe_free(e);
	}
	while (P.hints) {
		struct hdr_hint *h = P.hints;
		P.hints = h->next;
		free(h);
	}
	while (P.chans) {
		struct pfc *p = P.chans;
		P.chans = p->next;
		free(p);
	}
	while (P.learned) {
		struct learn *l = P.learned;
		P.learned = l->next;
		free(l);
	}
	P.s3 = NULL;
}

void pf_metrics(FILE *f)
{
	const struct nxd_metric_sample results[] = {
		{ "result=\"hit\"", P.hit },         { "result=\"miss\"", P.miss },
		{ "result=\"stale\"", P.stale },     { "result=\"denied\"", P.denied },
		{ "result=\"elsewhere\"", P.elsewhere },
	};
	nxd_metric_family(f, "nexus_prefetch_total", "counter",
	                  "Prefetch hints by outcome (hit: served from the prefetched buffer; "
	                  "stale: ETag changed, read from S3; miss: never read; denied: bucket not allowed, not fetched; "
	                  "elsewhere: fetched into another instance's region, read from S3).",
	                  results, sizeof results / sizeof results[0]);
	nxd_metric_one(f, "nexus_prefetch_region_total", "counter",
	               "Prefetches written straight into the region of the instance being started "
	               "(the rest went to a heap buffer).", P.region_fetches);
	nxd_metric_one(f, "nexus_prefetch_bytes_total", "counter", NULL, P.fetched_bytes);
	nxd_metric_one(f, "nexus_prefetch_wasted_bytes_total", "counter", NULL, P.wasted_bytes);
	nxd_metric_one(f, "nexus_prefetch_learned_used_total", "counter", NULL, P.learned_used);
}
