/* SPDX-License-Identifier: MIT */
/*
 * Internals of the channel host side, shared by nexusd/chan.c (lifecycle,
 * drain, completions, invocations), nexusd/chan_storage.c (storage requests)
 * and nexusd/chan_validate.c (stateless descriptor checks).  Not an interface
 * for the rest of nexusd.
 */
#ifndef NEXUSD_CHAN_INTERNAL_H
#define NEXUSD_CHAN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "chan.h"
#include "chan_validate.h"
#include "../common/arena.h"
#include "../common/ring.h"

#define BUCKET_MAX   256              /* longer names never match the allow-list */
#define RETRY_MS     1                /* backlog retry while the to-guest ring is full, */
#define RETRY_MAX_MS 64               /* doubling while the guest takes nothing */
#define DRAIN_BATCH  256              /* requests per loop turn before yielding */
#define MAX_PENDING_INV 16
#define MAX_RESERVED    8             /* host buffers held before the guest knows of them */

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
	uint64_t reserved[MAX_RESERVED]; /* nx_chan_reserve: host-owned, not yet any GET's */
	size_t n_reserved;

	struct nx_timer *timer;    /* backlog retry / drain continuation */
	struct nx_timer *trim_timer; /* gives free host-arena pages back once quiet */
	bool fd_watched;
	bool stalled;              /* stopped popping because of MAX_OUTSTANDING */
	bool broken, dead;
	int busy;
	unsigned invalid_streak;
	uint64_t st_punched;       /* bytes given back with PUNCH_HOLE (tests) */
	unsigned retry_ms;         /* current backlog retry delay */
	struct nx_chan_stats st;
};


/* chan.c */
int  chan_host_alloc(struct nx_chan *c, uint64_t len, uint64_t *off);
/* Free a host buffer (large ones give their pages back); -ENOENT when off is
 * not the start of a live allocation. */
int  chan_host_free(struct nx_chan *c, uint64_t off);
void chan_complete_plain(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status);
/* Complete with meta JSON (reference stolen) copied into the host arena and
 * an optional body already in the host arena. */
void chan_complete_meta(struct nx_chan *c, uint16_t opcode, uint64_t tag, uint32_t status,
                        json_t *meta, struct nx_buf body);
json_t *chan_error_meta(const char *code, const char *msg, long http);
void chan_ascii_clean(char *s);
void chan_reject(struct nx_chan *c, const struct nx_desc *d, uint32_t status, const char *why);
void chan_enter(struct nx_chan *c);
bool chan_leave(struct nx_chan *c);

/* chan_storage.c */
void chan_op_unlink(struct nx_chan *c, struct op *o);
void chan_op_free(struct op *o);
/* A validated S3 request: arguments copied out and parsed, allow-list
 * checked, then handed to the S3 client. */
void chan_handle_s3(struct nx_chan *c, const struct nx_desc *d);

#endif
