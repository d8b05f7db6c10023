/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous storage I/O between the channel and the S3 client: deferred
 * write-back (writeback.c, journal.c) and input prefetch (prefetch.c).
 *
 * The channel hands every allowed storage request to nx_aio_submit instead of
 * nx_s3_submit (chan_storage.c; a weak reference, so programs linking the
 * channel without this file, like the unit tests, go straight to S3).  It
 * either serves the request itself (a GET/HEAD of a key with a write still in
 * the journal, a GET of a prefetched object, an async PUT) or passes it on.
 * The handle it returns may be one of its own operations: nx_aio_cancel
 * tells them apart.
 *
 * The instance manager tells it which function a channel belongs to
 * (attach/detach), when an invocation is delivered on a channel (deliver),
 * when an invocation needs a cold start (cold_start: prefetch begins), and
 * when an invocation ends (inv_end).  Everything runs on the loop thread.
 */
#ifndef NEXUSD_AIO_H
#define NEXUSD_AIO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "s3.h"
#include "nexus/channel.h"

struct nx_chan;
struct nx_loop;
struct nxd_function;
struct nxd_invocation;

/* main.c: after the S3 client exists and before requests are served;
 * replays the journal under state_dir/journal and starts its uploads. */
int  nx_aio_init(struct nx_loop *loop, struct nx_s3 *s3, const char *state_dir, uint64_t journal_max_bytes);
void nx_aio_shutdown(void);

/* chan_storage.c / chan.c */
struct nx_s3_xfer *nx_aio_submit(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb,
                                 void *arg);
void nx_aio_cancel(struct nx_s3 *s3, struct nx_s3_xfer *x);

/* instance manager */
void nx_aio_chan_attach(struct nx_chan *c, const struct nxd_function *fn);
void nx_aio_chan_detach(struct nx_chan *c);
void nx_aio_deliver(struct nx_chan *c, struct nxd_invocation *inv);
void nx_aio_cold_start(struct nxd_invocation *inv);
void nx_aio_inv_end(struct nxd_invocation *inv);
/* api_invoke.c: one X-Nexus-Prefetch header value ("s3://bucket/key"). */
void nx_aio_hint_header(struct nxd_invocation *inv, const char *value);

/* registry_spec.c: check the nexus:writeback / nexus:prefetch tags;
 * returns NULL or a message. */
const char *nx_aio_check_tags(const char *writeback, const char *prefetch);

/* metrics.c: nexus_writeback_* and nexus_prefetch_* lines. */
void nx_aio_metrics(FILE *f);

/* ---- internal, shared by aio.c, writeback.c, prefetch.c ---- */

/* One operation of ours standing in for an S3 transfer. */
struct aio_op {
	uint32_t magic;
	struct aio_op *prev, *next;     /* all live ops (nx_aio_cancel looks them up) */
	struct aio_op *wnext;           /* the list of whatever it waits on */
	void (*detach)(struct aio_op *op);  /* unhook from what it waits on (cancel) */
	void *on;                       /* what it waits on */
	struct nx_s3 *s3;
	struct nx_chan *chan;
	nx_s3_cb cb;
	void *arg;
	struct nx_s3_xfer *inner;       /* an S3 transfer of its own, cancelled with it */
	struct nx_s3_req req;           /* private copy (strings strdup'd) */
	char *strs[12];
	/* prefetch claim state */
	bool head_done, fetch_done;
	char head_etag[128];
	int head_status;
	uint64_t t0;
	bool *gone;                     /* set when freed (synchronous completions) */
};

struct aio_op *aio_op_new(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg);
/* Finish: call its callback with res (unless cancelled) and free it. */
void aio_op_finish(struct aio_op *op, struct nx_s3_result *res);
void aio_op_free(struct aio_op *op);
/* Pass the op's request on to S3 (its callback then runs from there). */
void aio_op_submit_s3(struct aio_op *op);
void aio_result_error(struct nx_s3_result *res, int status, long http, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* per-channel policy */
enum aio_wb { AIO_WB_SYNC, AIO_WB_ASYNC };
struct aio_chan;
struct aio_chan *aio_chan_find(const struct nx_chan *c);
enum aio_wb aio_chan_wb(const struct aio_chan *ac);

/* writeback.c */
int  wb_init(struct nx_loop *loop, struct nx_s3 *s3, const char *dir, uint64_t max_bytes);
void wb_shutdown(void);
/* Returns true when it took the request (the callback runs later, or has run). */
bool wb_put_async(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
                  struct nx_s3_xfer **x);
bool wb_read(const struct nx_s3_req *req, nx_s3_cb cb, void *arg);
/* DELETE/COPY/sync PUT of a key with journal records: wait for them, void
 * them with a tombstone, then go to S3.  Returns true when it took the request. */
bool wb_barrier(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
                struct nx_s3_xfer **x);
void wb_metrics(FILE *f);

/* prefetch.c */
void pf_init(struct nx_loop *loop, struct nx_s3 *s3);
void pf_shutdown(void);
bool pf_get(struct nx_chan *c, struct nx_s3 *s3, const struct nx_s3_req *req, nx_s3_cb cb, void *arg,
            struct nx_s3_xfer **x);
void pf_observe_get(struct nx_chan *c, const struct nx_s3_req *req);
void pf_deliver(struct nx_chan *c, struct nxd_invocation *inv);
void pf_cold_start(struct nxd_invocation *inv);
void pf_inv_end(struct nxd_invocation *inv);
void pf_hint_header(struct nxd_invocation *inv, const char *value);
void pf_chan_detach(struct nx_chan *c);
void pf_metrics(FILE *f);
/* the function name and bucket allow-list of a channel */
const char *aio_chan_function(const struct aio_chan *ac);
bool aio_chan_bucket_ok(const struct aio_chan *ac, const char *bucket);
void *aio_chan_pf(struct aio_chan *ac);
void aio_chan_set_pf(struct aio_chan *ac, void *pf);

#endif
