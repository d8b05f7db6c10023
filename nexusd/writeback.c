/* SPDX-License-Identifier: MIT */
/*
 * Deferred write-back ("nexus:writeback" = "async"): a PUT is acknowledged
 * once its record is durable in the journal (journal.c), and uploaded in the
 * background, per key in order, with retries and backoff.
 *
 * Per key (bucket + key) we keep the newest durable record not yet uploaded
 * (`latest`) and the one being uploaded (`uploading`).  A newer record
 * supersedes an older one that has not started uploading (it is marked done
 * without an upload).  GET/HEAD of a key with a `latest` or `uploading`
 * record are served from that record (read-your-writes on this node); LIST
 * goes to S3 and does not see pending writes.  DELETE, COPY and sync PUTs of
 * such a key wait until its records are uploaded, and append a tombstone so
 * that a replay after a crash cannot resurrect the older value.
 *
 * After each upload a DONE record (the uploaded record's seq) is appended.
 *
 * Replay: records of the surviving segments are fed through the same path
 * as new ones, oldest first: per key the latest wins, tombstones void what
 * came before, DONE records drop what S3 already took, and what is left is
 * uploaded.  Segments are deleted oldest first only (journal.c), so a
 * surviving record always has every later record of its key with it.
 */
#include "aio.h"
#include "journal.h"
#include "loop.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS      4096
#define MAX_UPLOADS   8
#define BACKOFF_MIN   100u
#define BACKOFF_MAX   30000u
#define SWEEP_MS      10000u   /* forget idle keys whose journal records are all deleted */

struct wrec {
	struct wkey *k;
	uint64_t seq, seg, size;
	void *body;
	uint64_t len;
	char *ctype;
	char etag[40];
	char last_modified[64];
	bool durable;
	struct aio_op *ack;          /* the guest's PUT waiting for the fsync */
};

struct wkey {
	struct wkey *hnext;
	char *bucket, *key;
	struct wrec *latest, *uploading;
	unsigned appending;          /* records written but not yet durable */
	struct aio_op *waiters;      /* barrier: ops waiting for the key to drain */
	struct nx_timer *retry;
	unsigned attempts;
	bool queued;                 /* on the upload queue */
	struct wkey *qnext;
	uint64_t last_seg;           /* segment of the newest record (tombstone needed while alive) */
	bool has_records;
	struct nx_s3_xfer *x;
};

static struct {
	struct nx_loop *loop;
	struct nx_s3 *s3;
	struct nx_journal *j;
	struct wkey *tab[NBUCKETS];
	struct wkey *qhead, *qtail;
	unsigned uploading;
	bool replaying, stopping;
	struct nx_timer *sweep;
	uint64_t acked, uploaded, superseded, failed, retries, rejected_full, rejected_io, served_reads,
	         replayed, pending, pending_bytes;
} W;

static uint32_t hash(const char *b, const char *k)
{
	uint32_t h = 2166136261u;
	for (; *b; b++)
		h = (h ^ (uint8_t)*b) * 16777619u;
	h = (h ^ 0xff) * 16777619u;
	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	return h % NBUCKETS;
}

static struct wkey *key_get(const char *bucket, const char *key, bool create)
{
	uint32_t h = hash(bucket, key);
	for (struct wkey *k = W.tab[h]; k; k = k->hnext)
		if (!strcmp(k->bucket, bucket) && !strcmp(k->key, key))
			return k;
	if (!create)
		return NULL;
	struct wkey *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->bucket = strdup(bucket);
	k->key = strdup(key);
	if (!k->bucket || !k->key) {
		free(k->bucket);
		free(k->key);
		free(k);
		return NULL;
	}
	k->hnext = W.tab[h];
	W.tab[h] = k;
	return k;
}

static bool key_busy(const struct wkey *k)
{
	return k->latest || k->uploading || k->appending || k->retry;
}

static void rec_free(struct wrec *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->ctype);
	free(r);
}

/* The record is done (uploaded or superseded): its segment may go. */
static void rec_done(struct wrec *r)
{
	W.pending--;
	W.pending_bytes -= r->len;
	nx_journal_done(W.j, r->seg, r->size);
	rec_free(r);
}

static void upload_next(void);
static void key_drained(struct wkey *k);

static void done_freed(void *arg, int err, uint64_t seq, uint64_t seg, const char *etag)
{
	(void)seq;
	(void)etag;
	free(arg);
	if (!err)
		nx_journal_done(W.j, seg, 0);
}

/* S3 has record seq of k: a DONE record tells a replay not to upload it
 * again (which could overwrite a newer write made since by someone else).
 * Best effort: without it (journal full, crash before its fsync) the replay
 * uploads the same bytes once more. */
static void mark_uploaded(struct wkey *k, uint64_t seq)
{
	uint8_t *b = malloc(8);
	if (!b)
		return;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(seq >> (8 * i));
	/* b must stay valid until the callback, which frees it */
	if (nx_journal_append(W.j, NX_JREC_DONE, k->bucket, k->key, "", b, 8, done_freed, b, NULL) < 0)
		free(b);
}

static void enqueue(struct wkey *k)
{
	if (k->queued || k->uploading || k->retry || !k->latest)
		return;
	k->queued = true;
	k->qnext = NULL;
	if (W.qtail)
		W.qtail->qnext = k;
	else
		W.qhead = k;
	W.qtail = k;
	upload_next();
}

static bool permanent(const struct nx_s3_result *res)
{
	/* 4xx other than throttling/timeouts will not get better by retrying */
	return res->status == NX_S_STORAGE_ERROR && res->http_code >= 400 && res->http_code < 500 &&
	       res->http_code != 408 && res->http_code != 429;
}

static void retry_fire(void *arg)
{
	struct wkey *k = arg;
	k->retry = NULL;
	enqueue(k);
	if (!k->latest)
		key_drained(k);
}

static void on_uploaded(void *arg, struct nx_s3_result *res)
{
	struct wkey *k = arg;
	struct wrec *r = k->uploading;
	k->uploading = NULL;
	k->x = NULL;
	W.uploading--;
	if (res->status == NX_S_OK || permanent(res)) {
		if (res->status == NX_S_OK) {
			W.uploaded++;
			mark_uploaded(k, r->seq);
		} else {
			W.failed++;
			nxd_err("write-back: upload of s3://%s/%s (journal seq %" PRIu64 ") failed for good: %s %ld %s; "
			        "the write is dropped",
			        k->bucket, k->key, r->seq, res->code, res->http_code, res->message);
		}
		k->attempts = 0;
		rec_done(r);
		if (k->latest)
			enqueue(k);
		else
			key_drained(k);
	} else {
		/* try again later, unless a newer record replaced it meanwhile */
		W.retries++;
		if (k->latest) {
			W.superseded++;
			rec_done(r);
		} else {
			k->latest = r;
		}
		unsigned ms = BACKOFF_MIN << (k->attempts < 9 ? k->attempts : 9);
		if (ms > BACKOFF_MAX)
			ms = BACKOFF_MAX;
		k->attempts++;
		nxd_warn("write-back: upload of s3://%s/%s failed (%s %ld %s), retry %u in %u ms", k->bucket, k->key,
		         res->code, res->http_code, res->message, k->attempts, ms);
		if (!W.stopping)
			k->retry = nx_loop_timer(W.loop, ms, retry_fire, k);
	}
	upload_next();
}

static void upload_next(void)
{
	while (!W.stopping && W.uploading < MAX_UPLOADS && W.qhead) {
		struct wkey *k = W.qhead;
		W.qhead = k->qnext;
		if (!W.qhead)
			W.qtail = NULL;
		k->queued = false;
		if (!k->latest || k->uploading)
			continue;
		struct wrec *r = k->latest;
		k->latest = NULL;
		k->uploading = r;
		W.uploading++;
		struct nx_s3_req req = { .op = NX_S3_PUT, .bucket = k->bucket, .key = k->key,
		                         .content_type = r->ctype && *r->ctype ? r->ctype : NULL,
		                         .body = r->body, .body_len = r->len };
		k->x = nx_s3_submit(W.s3, &req, on_uploaded, k);
		if (!k->x && k->uploading == r) {   /* could not even start: retry later */
			struct nx_s3_result res;
			aio_result_error(&res, NX_S_IO_ERROR, 500, "InternalError", "could not start the upload");
			on_uploaded(k, &res);
		}
	}
}

/* A record is durable: it becomes the key's latest, superseding an older
 * one that has not started uploading. */
static void rec_durable(struct wrec *r)
{
	struct wkey *k = r->k;
	r->durable = true;
	W.pending++;
	W.pending_bytes += r->len;
	if (k->latest) {
		W.superseded++;
		rec_done(k->latest);
	}
	k->latest = r;
	k->last_seg = r->seg;
	k->has_records = true;
	if (!W.replaying)
		enqueue(k);
}

static void iso_now(char *out, size_t cap)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* ------------------------------------------------------------ async PUT */

static void ack_detach(struct aio_op *op)
{
	struct wrec *r = op->on;
	r->ack = NULL;
}

static void on_durable(void *arg, int err, uint64_t seq, uint64_t seg, const char *etag)
{
	struct wrec *r = arg;
	struct wkey *k = r->k;
	(void)seq;
	k->appending--;
	struct aio_op *op = r->ack;
	r->ack = NULL;
	if (err) {
		W.rejected_io += err != -ESHUTDOWN;
		if (err != -ESHUTDOWN)
			nxd_err("write-back: journal append for s3://%s/%s failed: %s", k->bucket, k->key, strerror(-err));
		rec_free(r);
		if (op) {
			struct nx_s3_result res;
			aio_result_error(&res, NX_S_IO_ERROR, 503, "ServiceUnavailable",
			                 "nexusd could not write the object to its write-back journal: %s", strerror(-err));
			aio_op_finish(op, &res);
		}
		if (!key_busy(k) && !W.stopping)
			key_drained(k);
		return;
	}
	if (W.stopping) {   /* durable, but nobody can be told: the next start uploads it */
		rec_free(r);
		return;
	}
	r->seg = seg;
	snprintf(r->etag, sizeof r->etag, "%s", etag);
	W.acked++;
	rec_durable(r);
	if (op) {
		struct nx_s3_result res = { .status = NX_S_OK, .http_code = 200 };
		snprintf(res.etag, sizeof res.etag, "%s", etag);
		aio_op_finish(op, &res);
	}
}

bool wb_put_async(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
                  struct nx_s3_xfer **x)
{
	struct nx_s3_result res;
	if (!W.j) {
		aio_result_error(&res, NX_S_IO_ERROR, 503, "ServiceUnavailable", "nexusd has no write-back journal");
		cb(arg, &res);
		*x = NULL;
		return true;
	}
	struct wkey *k = key_get(req->bucket, req->key, true);
	struct wrec *r = calloc(1, sizeof *r);
	void *body = malloc(req->body_len ? req->body_len : 1);
	char *ct = strdup(req->content_type ? req->content_type : "");
	if (!k || !r || !body || !ct) {
		free(r);
		free(body);
		free(ct);
		aio_result_error(&res, NX_S_NO_SPACE, 503, "SlowDown", "nexusd is out of memory for write-back");
		cb(arg, &res);
		*x = NULL;
		return true;
	}
	/* our own copy: the channel frees its copy when the guest's PUT completes */
	memcpy(body, req->body, req->body_len);
	r->k = k;
	r->body = body;
	r->len = req->body_len;
	r->ctype = ct;
	r->size = nx_journal_rec_bytes(req->bucket, req->key, ct, r->len);
	iso_now(r->last_modified, sizeof r->last_modified);
	int e = nx_journal_append(W.j, NX_JREC_PUT, req->bucket, req->key, ct, body, r->len, on_durable, r, &r->seq);
	if (e < 0) {
		rec_free(r);
		struct nx_journal_stats st;
		nx_journal_stats(W.j, &st);
		if (e == -ENOSPC) {
			W.rejected_full++;
			aio_result_error(&res, NX_S_STORAGE_ERROR, 503, "SlowDown",
			                 "Please reduce your request rate: the nexusd write-back journal is full "
			                 "(%" PRIu64 " of %" PRIu64 " bytes waiting for upload)", st.bytes_live, st.max_bytes);
		} else {
			W.rejected_io++;
			aio_result_error(&res, NX_S_IO_ERROR, 503, "ServiceUnavailable",
			                 "nexusd could not write to its write-back journal: %s", strerror(-e));
		}
		if (!key_busy(k))
			key_drained(k);
		cb(arg, &res);
		*x = NULL;
		return true;
	}
	k->appending++;
	struct aio_op *op = aio_op_new(c, s3, &(struct nx_s3_req){ .op = NX_S3_PUT }, cb, arg);
	if (!op) {
		/* the record is on its way anyway; answer now rather than never */
		aio_result_error(&res, NX_S_NO_SPACE, 503, "SlowDown", "nexusd is out of memory for write-back");
		cb(arg, &res);
		*x = NULL;
		return true;
	}
	op->on = r;
	op->detach = ack_detach;
	r->ack = op;
	*x = (struct nx_s3_xfer *)op;
	return true;
}

/* ------------------------------------------------------------ reads */

/* "bytes=A-B", "bytes=A-", "bytes=-N" against len; false when unsatisfiable. */
static bool parse_range(const char *s, uint64_t len, uint64_t *a, uint64_t *b)
{
	unsigned long long x, y;
	char tail;
	if (sscanf(s, "bytes=%llu-%llu%c", &x, &y, &tail) == 2) {
		if (x > y || x >= len)
			return false;
		*a = x;
		*b = y < len ? y : len - 1;
		return true;
	}
	if (sscanf(s, "bytes=%llu-%c", &x, &tail) == 1 && s[strlen(s) - 1] == '-') {
		if (x >= len)
			return false;
		*a = x;
		*b = len - 1;
		return true;
	}
	if (sscanf(s, "bytes=-%llu%c", &y, &tail) == 1) {
		if (y == 0 || len == 0)
			return false;
		*a = y >= len ? 0 : len - y;
		*b = len - 1;
		return true;
	}
	return false;
}

bool wb_read(const struct nx_s3_req *req, nx_s3_cb cb, void *arg)
{
	struct wkey *k = req->bucket && req->key ? key_get(req->bucket, req->key, false) : NULL;
	struct wrec *r = k ? (k->latest ? k->latest : k->uploading) : NULL;
	if (!r)
		return false;
	W.served_reads++;
	struct nx_s3_result res = { .status = NX_S_OK, .http_code = 200 };
	snprintf(res.etag, sizeof res.etag, "%s", r->etag);
	snprintf(res.content_type, sizeof res.content_type, "%s", *r->ctype ? r->ctype : "binary/octet-stream");
	snprintf(res.last_modified, sizeof res.last_modified, "%s", r->last_modified);
	res.content_length = r->len;
	if (req->op == NX_S3_HEAD) {
		cb(arg, &res);
		return true;
	}
	if (req->if_match && strcmp(req->if_match, r->etag) && strcmp(req->if_match, "*")) {
		aio_result_error(&res, NX_S_STORAGE_ERROR, 412, "PreconditionFailed",
		                 "At least one of the pre-conditions you specified did not hold");
		cb(arg, &res);
		return true;
	}
	uint64_t a = 0, b = r->len ? r->len - 1 : 0, n = r->len;
	if (req->range) {
		if (!parse_range(req->range, r->len, &a, &b)) {
			aio_result_error(&res, NX_S_STORAGE_ERROR, 416, "InvalidRange", "The requested range is not satisfiable");
			cb(arg, &res);
			return true;
		}
		n = b - a + 1;
		res.http_code = 206;
		snprintf(res.content_range, sizeof res.content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, r->len);
	}
	res.content_length = n;
	void *dst = req->sink_alloc ? req->sink_alloc(req->sink_arg, n) : NULL;
	if (!dst) {
		aio_result_error(&res, NX_S_NO_SPACE, 503, "SlowDown", "no room in the instance's region for the object");
		cb(arg, &res);
		return true;
	}
	memcpy(dst, (uint8_t *)r->body + a, n);
	res.body_len = n;
	cb(arg, &res);
	return true;
}

/* ------------------------------------------------------------ barrier */

struct tomb { struct aio_op *op; };

static void tomb_detach(struct aio_op *op)
{
	struct tomb *t = op->on;
	t->op = NULL;
}

static void tomb_durable(void *arg, int err, uint64_t seq, uint64_t seg, const char *etag)
{
	struct tomb *t = arg;
	struct aio_op *op = t->op;
	(void)seq;
	(void)etag;
	free(t);
	if (!err)
		nx_journal_done(W.j, seg, 0);
	if (!op)
		return;   /* cancelled meanwhile */
	op->detach = NULL;
	op->on = NULL;
	if (err) {
		struct nx_s3_result res;
		aio_result_error(&res, NX_S_IO_ERROR, 503, "ServiceUnavailable",
		                 "nexusd could not write a tombstone to its write-back journal: %s", strerror(-err));
		aio_op_finish(op, &res);
		return;
	}
	aio_op_submit_s3(op);
}

/* The key's writes are uploaded: go to S3, after voiding the journal's
 * records of the written key with a durable tombstone (else a replay after a
 * crash could put the older value back over this write or delete). */
static void barrier_go(struct aio_op *op)
{
	op->detach = NULL;
	op->on = NULL;
	struct wkey *k = key_get(op->req.bucket, op->req.key, false);
	if (k && k->has_records) {
		struct tomb *t = malloc(sizeof *t);
		if (t) {
			t->op = op;
			op->on = t;
			op->detach = tomb_detach;
			k->has_records = false;
			if (nx_journal_append(W.j, NX_JREC_TOMBSTONE, k->bucket, k->key, "", "", 0, tomb_durable, t, NULL) == 0)
				return;
			op->on = NULL;
			op->detach = NULL;
			free(t);
			struct nx_s3_result res;
			aio_result_error(&res, NX_S_STORAGE_ERROR, 503, "SlowDown",
			                 "the nexusd write-back journal is full or unusable; retry later");
			aio_op_finish(op, &res);
			return;
		}
	}
	aio_op_submit_s3(op);
}

/* Everything of k is uploaded: release the ops that waited. */
static void key_drained(struct wkey *k)
{
	while (k->waiters && !key_busy(k)) {
		struct aio_op *op = k->waiters;
		k->waiters = op->wnext;
		barrier_go(op);
	}
}

static void barrier_detach(struct aio_op *op)
{
	struct wkey *k = op->on;
	for (struct aio_op **pp = &k->waiters; *pp; pp = &(*pp)->wnext)
		if (*pp == op) {
			*pp = op->wnext;
			return;
		}
}

static bool needs_barrier(const char *bucket, const char *key, struct wkey **out)
{
	struct wkey *k = bucket && key ? key_get(bucket, key, false) : NULL;
	*out = k;
	return k && (key_busy(k) || k->has_records);
}

bool wb_barrier(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
                struct nx_s3_xfer **x)
{
	if (!W.j)
		return false;
	struct wkey *k = NULL, *src = NULL;
	bool dst_b = needs_barrier(req->bucket, req->key, &k);
	bool src_b = req->op == NX_S3_COPY && needs_barrier(req->src_bucket, req->src_key, &src);
	if (!dst_b && !(src_b && key_busy(src)))
		return false;
	struct aio_op *op = aio_op_new(c, s3, req, cb, arg);
	if (!op)
		return false;
	*x = (struct nx_s3_xfer *)op;
	struct wkey *wait = src_b && key_busy(src) ? src : dst_b && key_busy(k) ? k : NULL;
	if (wait) {
		op->on = wait;
		op->detach = barrier_detach;
		op->wnext = wait->waiters;
		wait->waiters = op;
		return true;
	}
	barrier_go(op);
	return true;
}

/* ------------------------------------------------------------ sweep */

/* A key entry is only needed while it has work, waiters, or records in a
 * live segment (a sync write must then void them with a tombstone). */
static void sweep(void *arg)
{
	(void)arg;
	W.sweep = NULL;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct wkey **pp = &W.tab[i]; *pp;) {
			struct wkey *k = *pp;
			if (key_busy(k) || k->waiters || k->queued ||
			    (k->has_records && nx_journal_seg_live(W.j, k->last_seg))) {
				pp = &k->hnext;
				continue;
			}
			*pp = k->hnext;
			free(k->bucket);
			free(k->key);
			free(k);
		}
	if (!W.stopping)
		W.sweep = nx_loop_timer(W.loop, SWEEP_MS, sweep, NULL);
}

/* ------------------------------------------------------------ replay */

static void replay_rec(void *arg, const struct nx_jrec *jr, uint64_t seg)
{
	(void)arg;
	struct wkey *k = key_get(jr->bucket, jr->key, true);
	if (!k) {
		nx_journal_done(W.j, seg, 0);
		return;
	}
	if (jr->type == NX_JREC_DONE) {
		uint64_t seq = 0;
		for (int i = 7; jr->body_len == 8 && i >= 0; i--)
			seq = seq << 8 | ((const uint8_t *)jr->body)[i];
		if (k->latest && k->latest->seq == seq) {   /* uploaded before the crash */
			rec_done(k->latest);
			k->latest = NULL;
		}
		nx_journal_done(W.j, seg, 0);
		return;
	}
	if (jr->type == NX_JREC_TOMBSTONE) {
		if (k->latest) {
			W.superseded++;
			rec_done(k->latest);
			k->latest = NULL;
		}
		k->has_records = false;
		nx_journal_done(W.j, seg, 0);
		return;
	}
	struct wrec *r = calloc(1, sizeof *r);
	void *body = malloc(jr->body_len ? jr->body_len : 1);
	char *ct = strdup(jr->ctype);
	if (!r || !body || !ct) {
		nxd_err("write-back replay: out of memory for s3://%s/%s (seq %" PRIu64 "): the record stays in the journal",
		        jr->bucket, jr->key, jr->seq);
		free(r);
		free(body);
		free(ct);
		return;
	}
	memcpy(body, jr->body, jr->body_len);
	r->k = k;
	r->seq = jr->seq;
	r->seg = seg;
	r->body = body;
	r->len = jr->body_len;
	r->ctype = ct;
	r->size = nx_journal_rec_bytes(jr->bucket, jr->key, ct, r->len);
	iso_now(r->last_modified, sizeof r->last_modified);
	nx_journal_md5_etag(body, r->len, r->etag);
	rec_durable(r);
}

int wb_init(struct nx_loop *loop, struct nx_s3 *s3, const char *dir, uint64_t max_bytes)
{
	W.loop = loop;
	W.s3 = s3;
	W.j = nx_journal_open(loop, dir, max_bytes);
	if (!W.j)
		return -1;
	W.replaying = true;
	size_t n = nx_journal_replay(W.j, replay_rec, NULL);
	W.replaying = false;
	W.replayed = W.pending;   /* acknowledged before the restart and still to upload */
	if (n)
		nxd_info("write-back: replayed %zu journal records from %s, %" PRIu64 " to upload", n, dir, W.pending);
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct wkey *k = W.tab[i]; k; k = k->hnext)
			enqueue(k);
	W.sweep = nx_loop_timer(loop, SWEEP_MS, sweep, NULL);
	return 0;
}

void wb_shutdown(void)
{
	W.stopping = true;
	/* first: answer appends still in the writer (their callbacks touch the keys);
	 * records not yet uploaded stay in the journal and the next start uploads them */
	nx_journal_close(W.j);
	if (W.sweep)
		nx_timer_cancel(W.loop, W.sweep);
	W.sweep = NULL;
	for (size_t i = 0; i < NBUCKETS; i++)
		for (struct wkey *k = W.tab[i], *nx; k; k = nx) {
			nx = k->hnext;
			if (k->retry)
				nx_timer_cancel(W.loop, k->retry);
			if (k->x)
				nx_s3_cancel(W.s3, k->x);
			rec_free(k->uploading);
			rec_free(k->latest);
			while (k->waiters) {
				struct aio_op *op = k->waiters;
				k->waiters = op->wnext;
				op->detach = NULL;
				struct nx_s3_result res;
				aio_result_error(&res, NX_S_IO_ERROR, 503, "ServiceUnavailable", "nexusd is stopping");
				aio_op_finish(op, &res);
			}
			free(k->bucket);
			free(k->key);
			free(k);
		}
	memset(W.tab, 0, sizeof W.tab);
	W.j = NULL;
}

void wb_metrics(FILE *f)
{
	struct nx_journal_stats st = { 0 };
	if (W.j)
		nx_journal_stats(W.j, &st);
	const struct nxd_metric_sample results[] = {
		{ "result=\"acked\"", W.acked },       { "result=\"uploaded\"", W.uploaded },
		{ "result=\"superseded\"", W.superseded }, { "result=\"failed\"", W.failed },
		{ "result=\"rejected_full\"", W.rejected_full }, { "result=\"rejected_io\"", W.rejected_io },
		{ "result=\"replayed\"", W.replayed },
	};
	nxd_metric_family(f, "nexus_writeback_total", "counter", "Async (write-back) PUTs by outcome.", results,
	                  sizeof results / sizeof results[0]);
	nxd_metric_one(f, "nexus_writeback_retries_total", "counter", NULL, W.retries);
	nxd_metric_one(f, "nexus_writeback_reads_served_total", "counter", NULL, W.served_reads);
	nxd_metric_one(f, "nexus_writeback_pending", "gauge", "Records acknowledged and not yet uploaded.", W.pending);
	nxd_metric_one(f, "nexus_writeback_pending_bytes", "gauge", NULL, W.pending_bytes);
	nxd_metric_one(f, "nexus_journal_bytes", "gauge",
	               "Bytes of live journal segments (bound: nexus_journal_max_bytes).", st.bytes_live);
	nxd_metric_one(f, "nexus_journal_max_bytes", "gauge", NULL, st.max_bytes);
	nxd_metric_one(f, "nexus_journal_segments", "gauge", NULL, st.segments);
	nxd_metric_one(f, "nexus_journal_fsyncs_total", "counter", NULL, st.fsyncs);
	nxd_metric_one(f, "nexus_journal_appends_total", "counter", NULL, st.appends);
}
