/* SPDX-License-Identifier: MIT */
/*
 * The instance manager.  Per function a pool of instances — each one sandbox
 * (sandbox.h driver) plus one channel (chan.h) — and a bounded queue of
 * invocations waiting for one.  Everything here runs on the loop thread;
 * other threads reach it with nx_loop_post.
 *
 * Instance states: starting (sandbox launched, waiting for NX_OP_READY) ->
 * idle <-> busy (exactly one invocation) -> stopping (killed, waiting for its
 * exit fd) -> gone.  An invocation takes the most recently used idle
 * instance, else starts one while the pool is below its limit, else waits in
 * the queue, else gets 429.  Timeouts, crashes and protocol violations fail
 * the invocation with Lambda's error and the instance is replaced lazily.
 * Idle instances stop after --keep-alive seconds.
 */
#ifndef NEXUSD_INSTANCE_H
#define NEXUSD_INSTANCE_H

#include <stdio.h>
#include <jansson.h>

struct nx_loop;
struct nx_s3;

int  nxd_im_init(struct nx_loop *loop, struct nx_s3 *s3);
void nxd_im_destroy(void);

/* nx_fn callbacks to post from other threads. */
void nxd_im_invoke(void *inv);        /* struct nxd_invocation * */
void nxd_im_fn_updated(void *fn);     /* struct nxd_function *, reference taken over */
void nxd_im_fn_deleted(void *fn);     /* struct nxd_function *, reference taken over */

/* Loop thread. */
json_t *nxd_im_status_json(void);     /* {"instances":[...], "pools":{name:{...}}} */
void nxd_im_metrics(FILE *f);         /* nexus_instances{function,state} lines */
/* Fail everything pending, stop every instance, then call done() once all
 * have exited (or after a grace period). */
void nxd_im_shutdown(void (*done)(void));

#endif
