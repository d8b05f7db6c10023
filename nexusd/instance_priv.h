/* SPDX-License-Identifier: MIT */
/*
 * Internals of the instance manager shared by instance.c (pools, queues,
 * assignment, channel callbacks, public API) and instance_launch.c (starting,
 * stopping and reaping instances).  Not an interface for the rest of nexusd:
 * use instance.h.  Loop thread only, except the launcher thread's queue.
 */
#ifndef NEXUSD_INSTANCE_PRIV_H
#define NEXUSD_INSTANCE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "chan.h"
#include "invocation.h"
#include "loop.h"
#include "registry.h"
#include "sandbox.h"

#define INIT_FAILS_MAX    3u      /* consecutive init failures before the queue is failed */

enum ist { IST_STARTING, IST_IDLE, IST_BUSY, IST_STOPPING, IST_DEAD };
extern const char *const im_ist_names[];

struct pool;

struct nxd_instance {
	uint64_t id;
	int refs;
	enum ist state;
	struct pool *pool;
	struct nxd_function *fn;            /* the snapshot it was started from */
	struct nx_sandbox *sb;
	struct nx_chan *chan;
	int exit_fd;
	int pid;
	struct nxd_invocation *cur;
	struct nx_timer *timer;             /* init deadline or invocation timeout */
	uint64_t t_created, t_ready, idle_since;
	uint64_t invocations;
	uint64_t mem_bytes, mem_ts;         /* cached memory sample (inst_mem) */
	bool ready_once, cold_pending, stop_requested;
	bool init_timed_out;                /* stopped because READY never came */
	bool after_ready;                   /* READY came; the driver finishes first (vm snapshot) */
	char runtime[24];                   /* what READY said, for the log line after that */
	/* Launch (driver->start on the launcher thread). */
	const struct nx_sandbox_driver *driver;
	struct nx_sandbox_spec spec;
	bool launching;
	int launch_rc;
	char launch_err[640];
	struct nxd_instance *launch_next;
	char stop_reason[160];
	char log_stream[96];
	struct nxd_instance *prev, *next;   /* pool->all */
	struct nxd_instance *iprev, *inext; /* pool->idle, most recent first */
};

struct pool {
	char name[65];
	struct nxd_function *fn;            /* current snapshot */
	bool deleted;
	int log_fd;
	struct nxd_instance *all, *idle;
	unsigned n_live, n_starting, n_instances;
	struct nxd_invocation *qhead, *qtail;
	unsigned qlen;
	unsigned init_failures;
	unsigned log_writes;                /* invocations logged: trim the log now and then */
	struct pool *next;
};

extern struct nx_loop *im_loop;
extern struct nx_s3 *im_s3;
extern struct pool *im_pools;
extern uint64_t im_next_inst_id;
extern unsigned im_total_instances;
extern bool im_shutting_down;
extern void (*im_shutdown_done)(void);
extern struct nx_timer *im_shutdown_timer;
extern const struct nx_chan_ops im_chan_ops;

/* instance.c */
void im_pool_scale(struct pool *p);
void im_pool_maybe_free(struct pool *p);
void im_inst_next(struct nxd_instance *in);
struct nxd_invocation *im_q_pop(struct pool *p);
void im_q_fail_all(struct pool *p, enum nxd_inv_result r, const char *type, const char *msg);
void im_idle_remove(struct nxd_instance *in);
/* The current invocation ends (any outcome): END/REPORT logged, timer off. */
struct nxd_invocation *im_take_cur(struct nxd_instance *in, const char *status);

/* instance_launch.c */
/* Launch an instance for p (asynchronously, on the launcher thread). */
int  im_inst_start(struct pool *p, char *err, size_t errlen);
/* A start failed before the instance ran: fail what it was started for. */
void im_start_failed(struct pool *p, const char *err);
/* Kill it (asynchronously); it leaves the live set at once. */
void im_inst_stop(struct nxd_instance *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void im_inst_unlive(struct nxd_instance *in);
void im_inst_put(struct nxd_instance *in);
void im_launcher_stop(void);

#endif
