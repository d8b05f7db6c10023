/* SPDX-License-Identifier: MIT */
/*
 * The instance manager (see instance.h).  Loop thread only.
 *
 * Lifetimes: a pool lives while its function exists or it still has
 * instances.  An instance is torn down (sandbox, channel, fd watch) when its
 * exit fd fires; the struct itself is freed when the last deferred callback
 * holding it has run (refs), so callbacks from the channel can defer work to
 * the next loop round instead of re-entering the channel.
 */
#include "instance.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "chan.h"
#include "config.h"
#include "funclog.h"
#include "invocation.h"
#include "loop.h"
#include "metrics.h"
#include "registry.h"
#include "sandbox.h"
#include "util.h"

#define INIT_TIMEOUT_MS   30000u  /* sandbox start to NX_OP_READY */
#define INIT_FAILS_MAX    3u      /* consecutive init failures before the queue is failed */
#define SHUTDOWN_GRACE_MS 5000u

enum ist { IST_STARTING, IST_IDLE, IST_BUSY, IST_STOPPING, IST_DEAD };
static const char *const ist_names[] = {"starting", "idle", "busy", "stopping", "dead"};

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
	struct pool *next;
};

static struct nx_loop *loop;
static struct nx_s3 *s3;
static struct pool *pools;
static uint64_t next_inst_id = 1, next_inv_id = 1;
static unsigned total_instances;
static struct nx_timer *sweep_timer;
static bool shutting_down;
static void (*shutdown_done)(void);
static struct nx_timer *shutdown_timer;

static void pool_scale(struct pool *p);
static void inst_next(struct nxd_instance *in);
static void inst_stop(struct nxd_instance *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* -------------------------------------------------------------- pools */

static struct pool *pool_find(const char *name)
{
	for (struct pool *p = pools; p; p = p->next)
		if (!p->deleted && !strcmp(p->name, name))
			return p;
	return NULL;
}

static struct pool *pool_get(struct nxd_function *fn)
{
	struct pool *p = pool_find(fn->name);
	if (p) {
		if (fn->gen > p->fn->gen) { /* a newer snapshot than the pool knows */
			nxd_fn_ref(fn);
			nxd_fn_unref(p->fn);
			p->fn = fn;
		}
		return p;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	snprintf(p->name, sizeof p->name, "%s", fn->name);
	nxd_fn_ref(fn);
	p->fn = fn;
	p->log_fd = nxd_funclog_open(fn->name);
	if (p->log_fd < 0)
		nxd_warn("function %s: cannot open its log: %s", fn->name, strerror(-p->log_fd));
	p->next = pools;
	pools = p;
	return p;
}

static void pool_maybe_free(struct pool *p)
{
	if (!p->deleted || p->all || p->qhead)
		return;
	for (struct pool **pp = &pools; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (p->log_fd >= 0)
		close(p->log_fd);
	nxd_fn_unref(p->fn);
	free(p);
}

static void q_push(struct pool *p, struct nxd_invocation *inv)
{
	inv->next = NULL;
	if (p->qtail)
		p->qtail->next = inv;
	else
		p->qhead = inv;
	p->qtail = inv;
	p->qlen++;
}

static struct nxd_invocation *q_pop(struct pool *p)
{
	struct nxd_invocation *inv = p->qhead;
	if (inv) {
		p->qhead = inv->next;
		if (!p->qhead)
			p->qtail = NULL;
		p->qlen--;
		inv->next = NULL;
	}
	return inv;
}

/* Fail every queued invocation of p. */
static void q_fail_all(struct pool *p, enum nxd_inv_result r, const char *type, const char *msg)
{
	struct nxd_invocation *inv;
	while ((inv = q_pop(p))) {
		nxd_metrics_invocation(p->name, r, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, r, type, "RequestId: %s Error: %s", inv->request_id, msg);
	}
}

/* --------------------------------------------------------- idle list */

static void idle_push(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	in->iprev = NULL;
	in->inext = p->idle;
	if (p->idle)
		p->idle->iprev = in;
	p->idle = in;
}

static void idle_remove(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (in->iprev)
		in->iprev->inext = in->inext;
	else if (p->idle == in)
		p->idle = in->inext;
	if (in->inext)
		in->inext->iprev = in->iprev;
	in->iprev = in->inext = NULL;
}

/* ------------------------------------------------------- keep-alive */

static void sweep(void *arg);

static void sweep_arm(uint64_t delay_ms)
{
	if (!sweep_timer)
		sweep_timer = nx_loop_timer(loop, delay_ms, sweep, NULL);
}

static void sweep(void *arg)
{
	(void)arg;
	sweep_timer = NULL;
	uint64_t now = nx_now_ns(), ka = (uint64_t)nxd_cfg.keep_alive_s * 1000000000ull, next = UINT64_MAX;
	for (struct pool *p = pools; p; p = p->next) {
		struct nxd_instance *in = p->idle, *nx;
		for (; in; in = nx) {
			nx = in->inext;
			if (now - in->idle_since >= ka)
				inst_stop(in, "idle for %u s (keep-alive)", nxd_cfg.keep_alive_s);
			else if (in->idle_since + ka < next)
				next = in->idle_since + ka;
		}
	}
	if (next != UINT64_MAX)
		sweep_arm((next - now) / 1000000 + 1);
}

/* --------------------------------------------------------- instances */

static void inst_put(struct nxd_instance *in)
{
	if (--in->refs == 0)
		free(in);
}

static void describe_wait(int ws, char *out, size_t cap)
{
	if (WIFEXITED(ws))
		snprintf(out, cap, "exit status %d", WEXITSTATUS(ws));
	else if (WIFSIGNALED(ws))
		snprintf(out, cap, "signal: %s", WTERMSIG(ws) == SIGKILL ? "killed" : strsignal(WTERMSIG(ws)));
	else
		snprintf(out, cap, "wait status 0x%x", ws);
}

/* Count the instance out of the live set (idempotent). */
static void inst_unlive(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (in->state == IST_STARTING)
		p->n_starting--;
	if (in->state == IST_IDLE)
		idle_remove(in);
	if (in->state <= IST_BUSY)
		p->n_live--;
}

static void inst_stop(struct nxd_instance *in, const char *fmt, ...)
{
	if (in->state >= IST_STOPPING)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->stop_reason, sizeof in->stop_reason, fmt, ap);
	va_end(ap);
	nxd_info("instance %" PRIu64 " (%s, pid %d) stopping: %s", in->id, in->pool->name, in->pid, in->stop_reason);
	if (in->timer) {
		nx_timer_cancel(loop, in->timer);
		in->timer = NULL;
	}
	inst_unlive(in);
	in->state = IST_STOPPING;
	in->stop_requested = true;
	if (!in->launching && in->sb)
		in->driver->kill(in->sb); /* else launch_done kills it */
}

/* Release everything; called once the sandbox has exited. */
static void inst_teardown(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (in->exit_fd >= 0)
		nx_loop_del_fd(loop, in->exit_fd);
	if (in->sb)
		in->driver->destroy(in->sb);
	in->sb = NULL;
	nx_chan_destroy(in->chan);
	in->chan = NULL;
	if (in->prev)
		in->prev->next = in->next;
	else
		p->all = in->next;
	if (in->next)
		in->next->prev = in->prev;
	p->n_instances--;
	total_instances--;
	nxd_fn_unref(in->fn);
	in->fn = NULL;
	in->state = IST_DEAD;
	in->pool = NULL;
	inst_put(in);
	pool_maybe_free(p);
	if (shutting_down && total_instances == 0 && shutdown_done) {
		void (*done)(void) = shutdown_done;
		shutdown_done = NULL;
		if (shutdown_timer) {
			nx_timer_cancel(loop, shutdown_timer);
			shutdown_timer = NULL;
		}
		done();
	}
}

static double ms_since(uint64_t t)
{
	return (double)(nx_now_ns() - t) / 1e6;
}

/* Memory charge for the REPORT line.  Reading the cgroup costs a few
 * syscalls, so a sample up to a second old is reused on the warm path. */
static uint64_t inst_mem(struct nxd_instance *in)
{
	uint64_t now = nx_now_ns();
	if (in->sb && in->driver->usage && now - in->mem_ts > 1000000000ull) {
		struct nx_sandbox_usage u = {0};
		if (in->driver->usage(in->sb, &u) == 0)
			in->mem_bytes = u.mem_bytes;
		in->mem_ts = now;
	}
	return in->mem_bytes;
}

/* The current invocation ends here (any outcome). */
static struct nxd_invocation *inst_take_cur(struct nxd_instance *in, const char *status)
{
	struct nxd_invocation *inv = in->cur;
	if (!inv)
		return NULL;
	in->cur = NULL;
	inv->inst = NULL;
	if (in->timer && in->state == IST_BUSY) {
		nx_timer_cancel(loop, in->timer);
		in->timer = NULL;
	}
	double init_ms = -1;
	if (in->cold_pending) {
		init_ms = (double)(in->t_ready - in->t_created) / 1e6;
		in->cold_pending = false;
	}
	nxd_funclog_end(in->pool->log_fd, inv->request_id, ms_since(inv->t_start_ns), in->fn->memory_mb,
	                inst_mem(in), init_ms, status);
	if (inv->want_log_tail)
		inv->log_end = lseek(in->pool->log_fd, 0, SEEK_END);
	return inv;
}

static void on_exit_fd(void *arg, uint32_t events)
{
	(void)events;
	struct nxd_instance *in = arg;
	struct pool *p = in->pool;
	int ws = 0;
	if (in->fn->driver->reap(in->sb, &ws) < 0)
		ws = 0;
	char how[192];
	describe_wait(ws, how, sizeof how);
	struct nx_sandbox_usage u = {0};
	if (in->driver->usage && in->driver->usage(in->sb, &u) == 0 && u.oom_kills)
		snprintf(how + strlen(how), sizeof how - strlen(how),
		         " (out of memory: the function's %u MB limit was exceeded)", in->fn->memory_mb);
	bool was_starting = !in->ready_once;
	if (in->cur)
		nxd_funclog_note(p->log_fd, "RequestId: %s Error: Runtime exited with error: %s", in->cur->request_id, how);
	struct nxd_invocation *inv = inst_take_cur(in, "error");
	if (inv) {
		nxd_metrics_invocation(p->name, NXD_INV_CRASH, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_CRASH, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %s",
		             inv->request_id, how);
	}
	if (!in->stop_requested)
		nxd_warn("instance %" PRIu64 " (%s, pid %d) exited unexpectedly: %s", in->id, p->name, in->pid, how);
	else
		nxd_debug("instance %" PRIu64 " (%s) exited: %s", in->id, p->name, how);
	inst_unlive(in);
	in->state = IST_STOPPING;
	/* Stopped on purpose before READY (update, delete, shutdown) is no failure. */
	if (was_starting && (!in->stop_requested || in->init_timed_out) && !shutting_down && !p->deleted) {
		/* It never became ready: the function cannot start (import-time crash,
		 * missing runtime, init timeout).  Fail the request it was started for. */
		char why[256];
		if (in->stop_requested)
			snprintf(why, sizeof why, "Runtime failed to start: %s", in->stop_reason);
		else
			snprintf(why, sizeof why, "Runtime exited during init with error: %s (see the function's log)", how);
		nxd_funclog_note(p->log_fd, "%s", why);
		p->init_failures++;
		struct nxd_invocation *q = q_pop(p);
		if (q) {
			nxd_metrics_invocation(p->name, NXD_INV_CRASH, (double)(nx_now_ns() - q->t_recv_ns) / 1e9);
			nxd_inv_fail(q, NXD_INV_CRASH, "Runtime.ExitError", "RequestId: %s Error: %s", q->request_id, why);
		}
		if (p->init_failures >= INIT_FAILS_MAX && p->n_live == 0)
			q_fail_all(p, NXD_INV_CRASH, "Runtime.ExitError", why);
	}
	bool alive = !p->deleted; /* a pool that is not deleted is never freed by teardown */
	inst_teardown(in);
	if (alive)
		pool_scale(p);
}

static void on_init_timeout(void *arg)
{
	struct nxd_instance *in = arg;
	in->timer = NULL;
	in->init_timed_out = true;
	inst_stop(in, "not ready within %u s of starting", INIT_TIMEOUT_MS / 1000);
}

static void on_invoke_timeout(void *arg)
{
	struct nxd_instance *in = arg;
	in->timer = NULL;
	unsigned t = in->fn->timeout_s;
	if (in->cur)
		nxd_funclog_note(in->pool->log_fd, "RequestId: %s Error: Task timed out after %u.00 seconds",
		                 in->cur->request_id, t);
	struct nxd_invocation *inv = inst_take_cur(in, "timeout");
	if (!inv)
		return;
	nxd_metrics_invocation(in->pool->name, NXD_INV_TIMEOUT, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
	nxd_inv_fail(inv, NXD_INV_TIMEOUT, "Sandbox.Timedout", "RequestId: %s Error: Task timed out after %u.00 seconds",
	             inv->request_id, t);
	inst_stop(in, "invocation timed out after %u s", t);
	/* Replaced lazily: the next request (or a queued one) starts a new one. */
	pool_scale(in->pool);
}

/* Deferred from channel callbacks: decide what the instance does next. */
static void deferred_next(void *arg)
{
	struct nxd_instance *in = arg;
	if (in->state == IST_IDLE)
		inst_next(in);
	inst_put(in);
}

static void defer_next(struct nxd_instance *in)
{
	in->refs++;
	if (nx_loop_post(loop, deferred_next, in) < 0)
		in->refs--;
}

/* ------------------------------------------------------ chan callbacks */

static void ch_ready(void *owner, const char *runtime)
{
	struct nxd_instance *in = owner;
	if (in->state != IST_STARTING) {
		nxd_debug("instance %" PRIu64 ": duplicate READY ignored", in->id);
		return;
	}
	if (in->timer) {
		nx_timer_cancel(loop, in->timer);
		in->timer = NULL;
	}
	in->t_ready = nx_now_ns();
	in->ready_once = true;
	in->cold_pending = true;
	in->pool->n_starting--;
	in->state = IST_IDLE;
	in->idle_since = in->t_ready;
	idle_push(in);
	in->pool->init_failures = 0;
	double init_s = (double)(in->t_ready - in->t_created) / 1e9;
	nxd_metrics_cold_start(in->pool->name, init_s);
	nxd_info("instance %" PRIu64 " (%s, pid %d, runtime %s) ready in %.1f ms", in->id, in->pool->name, in->pid,
	         runtime ? runtime : "?", init_s * 1e3);
	defer_next(in);
}

static void ch_invoke_done(void *owner, uint64_t inv_id, int status, const void *payload, size_t len)
{
	struct nxd_instance *in = owner;
	if (in->state != IST_BUSY || !in->cur || in->cur->id != inv_id) {
		nxd_debug("instance %" PRIu64 ": result for invocation %" PRIu64 " that is not running, ignored", in->id,
		          inv_id);
		return;
	}
	enum nxd_inv_result r = status == NX_S_OK ? NXD_INV_OK : NXD_INV_HANDLER_ERROR;
	struct nxd_invocation *inv = inst_take_cur(in, NULL);
	in->invocations++;
	nxd_metrics_invocation(in->pool->name, r, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
	if (len > NX_PAYLOAD_MAX) {
		nxd_inv_fail(inv, NXD_INV_HANDLER_ERROR, "Function.ResponseSizeTooLarge",
		             "Response payload size exceeded maximum allowed payload size (%u bytes).", NX_PAYLOAD_MAX);
	} else {
		char *body = malloc(len + 1);
		if (!body) {
			nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException", "out of memory");
		} else {
			memcpy(body, payload, len);
			body[len] = 0;
			nxd_inv_complete(inv, r, body, len);
		}
	}
	in->state = IST_IDLE;
	in->idle_since = nx_now_ns();
	idle_push(in);
	defer_next(in);
}

static void ch_violation(void *owner, const char *why)
{
	struct nxd_instance *in = owner;
	nxd_warn("instance %" PRIu64 " (%s, pid %d) broke the channel protocol: %s", in->id, in->pool->name, in->pid, why);
	if (in->cur && in->pool)
		nxd_funclog_note(in->pool->log_fd, "RequestId: %s Error: instance %" PRIu64 " broke the channel protocol: %s",
		                 in->cur->request_id, in->id, why);
	struct nxd_invocation *inv = inst_take_cur(in, "error");
	if (inv) {
		nxd_metrics_invocation(in->pool->name, NXD_INV_CRASH, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_CRASH, "Runtime.ExitError",
		             "RequestId: %s Error: the instance broke the channel protocol (%s) and was stopped",
		             inv->request_id, why);
	}
	if (in->pool)
		nxd_funclog_note(in->pool->log_fd, "instance %" PRIu64 " stopped: channel protocol violation: %s", in->id, why);
	inst_stop(in, "channel protocol violation: %s", why);
}

static const struct nx_chan_ops chan_ops = {
	.ready = ch_ready,
	.invoke_done = ch_invoke_done,
	.violation = ch_violation,
};

/* ----------------------------------------------------- start / assign */

/* The pid behind a pidfd, from /proc/self/fdinfo (0 when unknown). */
static int pid_of_pidfd(int fd)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	int pid = 0;
	while (fgets(buf, sizeof buf, f))
		if (sscanf(buf, "Pid: %d", &pid) == 1)
			break;
	fclose(f);
	return pid > 0 ? pid : 0;
}

/* A start that failed before the instance ran: fail what it was started for. */
static void start_failed(struct pool *p, const char *err)
{
	nxd_err("function %s: %s", p->name, err);
	nxd_funclog_note(p->log_fd, "cannot start an instance: %s", err);
	if (p->n_live == 0) { /* nothing will ever serve them */
		q_fail_all(p, NXD_INV_FAILED, "ServiceException", err);
	} else if (p->qlen > p->n_starting) { /* fail the one this start was for */
		struct nxd_invocation *q = q_pop(p);
		nxd_metrics_invocation(p->name, NXD_INV_FAILED, 0);
		nxd_inv_fail(q, NXD_INV_FAILED, "ServiceException", "RequestId: %s Error: %s", q->request_id, err);
	}
}

/*
 * The launcher: driver->start() forks, builds namespaces and waits for the
 * child's set-up, which takes milliseconds to seconds.  It runs on this
 * thread so the loop keeps serving warm invocations meanwhile; the result
 * comes back with nx_loop_post (launch_done).
 */
static pthread_t launcher;
static bool launcher_running, launcher_quit;
static pthread_mutex_t launch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t launch_cv = PTHREAD_COND_INITIALIZER;
static struct nxd_instance *launch_head, *launch_tail;

static void launch_done(void *arg);

static void *launcher_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&launch_mu);
	for (;;) {
		while (!launch_head && !launcher_quit)
			pthread_cond_wait(&launch_cv, &launch_mu);
		struct nxd_instance *in = launch_head;
		if (!in)
			break; /* quit, queue drained */
		launch_head = in->launch_next;
		if (!launch_head)
			launch_tail = NULL;
		bool quit = launcher_quit;
		pthread_mutex_unlock(&launch_mu);
		struct nx_sandbox *sb = NULL;
		char why[512] = "";
		int r = quit ? -ESHUTDOWN : in->driver->start(&in->spec, &sb, why, sizeof why);
		if (r == 0 && !sb)
			r = -EINVAL;
		in->launch_rc = r;
		snprintf(in->launch_err, sizeof in->launch_err, "the %s sandbox failed to start: %s", in->driver->name,
		         *why ? why : strerror(r < 0 ? -r : EINVAL));
		in->sb = r == 0 ? sb : NULL;
		if (nx_loop_post(loop, launch_done, in) < 0) {
			/* The loop is gone (shutdown): nxd_im_destroy releases it. */
			in->launching = false;
		}
		pthread_mutex_lock(&launch_mu);
	}
	pthread_mutex_unlock(&launch_mu);
	return NULL;
}

static int inst_start(struct pool *p, char *err, size_t errlen)
{
	struct nxd_function *fn = p->fn;
	if (!*nxd_cfg.rootfs_dir || !*nxd_cfg.runtime_dir) {
		snprintf(err, errlen, "nexusd was started without --rootfs/--runtime-dir, so it cannot run functions");
		return -1;
	}
	if (!launcher_running) {
		int r = pthread_create(&launcher, NULL, launcher_main, NULL);
		if (r) {
			snprintf(err, errlen, "cannot create the launcher thread: %s", strerror(r));
			return -1;
		}
		launcher_running = true;
	}
	struct nxd_instance *in = calloc(1, sizeof *in);
	if (!in) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	in->id = next_inst_id++;
	in->refs = 1;
	in->pool = p;
	in->exit_fd = -1;
	in->t_created = nx_now_ns();
	struct nx_chan_config cc = {
		.region_size = NX_REGION_DEFAULT,
		.buckets = (const char *const *)fn->buckets,
		.ready_meta_json = fn->ready_meta,
		.generation = 1,
	};
	in->chan = nx_chan_new(loop, s3, &cc, &chan_ops, in);
	if (!in->chan) {
		snprintf(err, errlen, "cannot create the instance's channel (memfd region)");
		free(in);
		return -1;
	}
	nxd_fn_ref(fn);
	in->fn = fn;
	in->driver = fn->driver;
	in->spec = (struct nx_sandbox_spec){
		.instance_id = in->id,
		.function_name = fn->name,
		.code_dir = fn->code_dir,
		.rootfs_dir = nxd_cfg.rootfs_dir,
		.runtime_dir = nxd_cfg.runtime_dir,
		.argv = fn->argv,
		.envp = (const char *const *)fn->envp,
		.memory_mb = fn->memory_mb,
		.mode = fn->mode,
		.region_fd = nx_chan_region_fd(in->chan),
		.kick_host_fd = nx_chan_kick_host_fd(in->chan),
		.kick_guest_fd = nx_chan_kick_guest_fd(in->chan),
		.log_fd = p->log_fd,
	};
	in->state = IST_STARTING;
	in->launching = true;
	in->refs++; /* held by the launcher until launch_done */
	in->timer = nx_loop_timer(loop, INIT_TIMEOUT_MS, on_init_timeout, in);
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	snprintf(in->log_stream, sizeof in->log_stream, "%04d/%02d/%02d/[$LATEST]%016" PRIx64, tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, in->id);
	in->next = p->all;
	if (p->all)
		p->all->prev = in;
	p->all = in;
	p->n_instances++;
	p->n_live++;
	p->n_starting++;
	total_instances++;
	pthread_mutex_lock(&launch_mu);
	in->launch_next = NULL;
	if (launch_tail)
		launch_tail->launch_next = in;
	else
		launch_head = in;
	launch_tail = in;
	pthread_cond_signal(&launch_cv);
	pthread_mutex_unlock(&launch_mu);
	return 0;
}

/* Loop thread: the launcher finished with in. */
static void launch_done(void *arg)
{
	struct nxd_instance *in = arg;
	struct pool *p = in->pool;
	in->launching = false;
	if (in->launch_rc < 0) {
		bool was_live = in->state <= IST_BUSY;
		inst_unlive(in);
		in->state = IST_STOPPING;
		if (in->timer) {
			nx_timer_cancel(loop, in->timer);
			in->timer = NULL;
		}
		bool alive = !p->deleted;
		if (was_live && alive && !shutting_down)
			start_failed(p, in->launch_err);
		inst_teardown(in);
		inst_put(in);
		return;
	}
	in->exit_fd = in->driver->exit_fd(in->sb);
	int r = nx_loop_add_fd(loop, in->exit_fd, EPOLLIN, on_exit_fd, in);
	in->pid = pid_of_pidfd(in->exit_fd);
	nxd_debug("instance %" PRIu64 " (%s) launched, pid %d", in->id, p->name, in->pid);
	if (r < 0) {
		/* Cannot notice its exit: stop it and release it at once. */
		nxd_err("instance %" PRIu64 ": cannot watch the sandbox: %s", in->id, strerror(-r));
		in->exit_fd = -1;
		inst_stop(in, "cannot watch the sandbox");
		inst_teardown(in);
	} else if (in->state == IST_STOPPING) {
		in->driver->kill(in->sb); /* stopped while launching: exit fd finishes it */
	}
	inst_put(in);
}

/* Start instances for queued invocations, within the function's limit. */
static void pool_scale(struct pool *p)
{
	if (p->deleted || shutting_down)
		return;
	while (p->qlen > p->n_starting && p->n_live < p->fn->max_instances) {
		char err[768];
		if (inst_start(p, err, sizeof err) == 0)
			continue;
		start_failed(p, err);
		return;
	}
}

static void inst_assign(struct nxd_instance *in, struct nxd_invocation *inv)
{
	struct pool *p = in->pool;
	in->state = IST_BUSY;
	in->cur = inv;
	inv->inst = in;
	inv->t_start_ns = nx_now_ns();
	unsigned t = in->fn->timeout_s;
	char ctx[768];
	snprintf(ctx, sizeof ctx,
	         "{\"aws_request_id\":\"%s\",\"deadline_ms\":%" PRIu64 ",\"function_name\":\"%s\","
	         "\"memory_limit_in_mb\":%u,\"function_version\":\"$LATEST\",\"invoked_function_arn\":\"%s\","
	         "\"log_group_name\":\"/aws/lambda/%s\",\"log_stream_name\":\"%s\"}",
	         inv->request_id, nxd_epoch_ms() + (uint64_t)t * 1000, in->fn->name, in->fn->memory_mb, in->fn->arn,
	         in->fn->name, in->log_stream);
	if (inv->want_log_tail)
		inv->log_start = lseek(p->log_fd, 0, SEEK_END);
	nxd_funclog_start(p->log_fd, inv->request_id);
	int r = nx_chan_invoke(in->chan, inv->id, inv->event_len ? inv->event : "{}", inv->event_len ? inv->event_len : 2,
	                       ctx);
	if (r < 0) {
		inst_take_cur(in, "error");
		nxd_metrics_invocation(p->name, NXD_INV_FAILED, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException",
		             "RequestId: %s Error: could not deliver the event to the instance (%s)", inv->request_id,
		             strerror(-r));
		inst_stop(in, "channel refused an invocation: %s", strerror(-r));
		pool_scale(p);
		return;
	}
	in->timer = nx_loop_timer(loop, (uint64_t)t * 1000, on_invoke_timeout, in);
}

/* An idle instance: serve the queue, retire, or wait. */
static void inst_next(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (p->deleted || shutting_down) {
		inst_stop(in, "function deleted");
		return;
	}
	if (in->fn != p->fn) { /* code or configuration changed: retire */
		inst_stop(in, "function updated");
		pool_scale(p);
		return;
	}
	struct nxd_invocation *inv = q_pop(p);
	if (inv) {
		idle_remove(in);
		inst_assign(in, inv);
		return;
	}
	if (nxd_cfg.keep_alive_s == 0) {
		inst_stop(in, "keep-alive is 0");
		return;
	}
	sweep_arm((uint64_t)nxd_cfg.keep_alive_s * 1000);
}

/* ------------------------------------------------------- public API */

void nxd_im_invoke(void *arg)
{
	struct nxd_invocation *inv = arg;
	inv->id = next_inv_id++;
	if (shutting_down) {
		nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException", "RequestId: %s Error: nexusd is shutting down",
		             inv->request_id);
		return;
	}
	struct pool *p = pool_get(inv->fn);
	if (!p) {
		nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException", "out of memory");
		return;
	}
	/* Most recently used idle instance of the current snapshot (warmest). */
	for (struct nxd_instance *in = p->idle; in; in = in->inext) {
		if (in->fn != p->fn)
			continue;
		idle_remove(in);
		inst_assign(in, inv);
		return;
	}
	if (p->n_live >= p->fn->max_instances && p->qlen >= nxd_cfg.queue_depth + p->n_starting) {
		nxd_metrics_invocation(p->name, NXD_INV_THROTTLED, 0);
		nxd_inv_fail(inv, NXD_INV_THROTTLED, "TooManyRequestsException", "Rate Exceeded.");
		return;
	}
	q_push(p, inv);
	/* Stale idle instances (an older snapshot) make room for new ones. */
	for (struct nxd_instance *in = p->idle, *nx; in; in = nx) {
		nx = in->inext;
		if (in->fn != p->fn)
			inst_stop(in, "function updated");
	}
	pool_scale(p);
}

void nxd_im_fn_updated(void *arg)
{
	struct nxd_function *fn = arg;
	struct pool *p = pool_find(fn->name);
	if (p && fn->gen > p->fn->gen) {
		nxd_fn_ref(fn);
		nxd_fn_unref(p->fn);
		p->fn = fn;
		for (struct nxd_instance *in = p->idle, *nx; in; in = nx) {
			nx = in->inext;
			inst_stop(in, "function updated");
		}
		for (struct nxd_instance *in = p->all; in; in = in->next)
			if (in->state == IST_STARTING && in->fn != fn)
				inst_stop(in, "function updated");
		pool_scale(p);
	}
	nxd_fn_unref(fn);
}

void nxd_im_fn_deleted(void *arg)
{
	struct nxd_function *fn = arg;
	struct pool *p = pool_find(fn->name);
	uint64_t gen = fn->gen;
	nxd_fn_unref(fn);
	if (!p)
		return;
	if (p->fn->gen > gen) {
		/* A namesake was created meanwhile and the pool already serves it:
		 * stop only what still runs the deleted snapshot. */
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			if (in->state >= IST_STOPPING || in->fn->gen > gen)
				continue;
			struct nxd_invocation *inv = inst_take_cur(in, "deleted");
			if (inv)
				nxd_inv_fail(inv, NXD_INV_GONE, "ResourceNotFoundException",
				             "RequestId: %s Error: the function was deleted during the invocation",
				             inv->request_id);
			inst_stop(in, "function deleted");
		}
		pool_scale(p);
		return;
	}
	p->deleted = true;
	q_fail_all(p, NXD_INV_GONE, "ResourceNotFoundException", "the function was deleted");
	for (struct nxd_instance *in = p->all; in; in = in->next) {
		struct nxd_invocation *inv = inst_take_cur(in, "deleted");
		if (inv)
			nxd_inv_fail(inv, NXD_INV_GONE, "ResourceNotFoundException",
			             "RequestId: %s Error: the function was deleted during the invocation", inv->request_id);
		inst_stop(in, "function deleted");
	}
	pool_maybe_free(p);
}

json_t *nxd_im_status_json(void)
{
	json_t *insts = json_array(), *pl = json_object();
	uint64_t now = nx_now_ns();
	for (struct pool *p = pools; p; p = p->next) {
		unsigned counts[IST_DEAD + 1] = {0};
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			counts[in->state]++;
			json_t *o = json_pack("{s:I,s:s,s:s,s:i,s:s,s:I,s:f}", "id", (json_int_t)in->id, "function", p->name,
			                      "state", ist_names[in->state], "pid", in->pid, "sandbox", in->fn->driver->name,
			                      "invocations", (json_int_t)in->invocations, "age_s",
			                      (double)(now - in->t_created) / 1e9);
			if (in->state == IST_IDLE)
				json_object_set_new(o, "idle_s", json_real((double)(now - in->idle_since) / 1e9));
			if (in->cur)
				json_object_set_new(o, "request_id", json_string(in->cur->request_id));
			json_array_append_new(insts, o);
		}
		if (p->deleted)
			continue;
		json_object_set_new(pl, p->name,
		                    json_pack("{s:i,s:i,s:i,s:i,s:i}", "starting", counts[IST_STARTING], "idle",
		                              counts[IST_IDLE], "busy", counts[IST_BUSY], "stopping",
		                              counts[IST_STOPPING], "queued", p->qlen));
	}
	return json_pack("{s:o,s:o}", "instances", insts, "pools", pl);
}

void nxd_im_metrics(FILE *f)
{
	for (struct pool *p = pools; p; p = p->next) {
		unsigned counts[IST_DEAD + 1] = {0};
		for (struct nxd_instance *in = p->all; in; in = in->next)
			counts[in->state]++;
		for (int s = IST_STARTING; s <= IST_STOPPING; s++)
			fprintf(f, "nexus_instances{function=\"%s\",state=\"%s\"} %u\n", p->name, ist_names[s], counts[s]);
		fprintf(f, "nexus_queued_invocations{function=\"%s\"} %u\n", p->name, p->qlen);
	}
}

static void shutdown_grace(void *arg)
{
	(void)arg;
	shutdown_timer = NULL;
	if (shutdown_done) {
		nxd_warn("%u instance(s) did not exit within %u ms; stopping anyway", total_instances, SHUTDOWN_GRACE_MS);
		void (*done)(void) = shutdown_done;
		shutdown_done = NULL;
		done();
	}
}

void nxd_im_shutdown(void (*done)(void))
{
	shutting_down = true;
	shutdown_done = done;
	for (struct pool *p = pools; p; p = p->next) {
		q_fail_all(p, NXD_INV_FAILED, "ServiceException", "nexusd is shutting down");
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			struct nxd_invocation *inv = inst_take_cur(in, "shutdown");
			if (inv)
				nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException",
				             "RequestId: %s Error: nexusd is shutting down", inv->request_id);
			inst_stop(in, "nexusd is shutting down");
		}
	}
	if (sweep_timer) {
		nx_timer_cancel(loop, sweep_timer);
		sweep_timer = NULL;
	}
	if (total_instances == 0) {
		shutdown_done = NULL;
		done();
		return;
	}
	shutdown_timer = nx_loop_timer(loop, SHUTDOWN_GRACE_MS, shutdown_grace, NULL);
}

int nxd_im_init(struct nx_loop *l, struct nx_s3 *s)
{
	loop = l;
	s3 = s;
	return 0;
}

/* After the loop stopped: release what is left without waiting. */
void nxd_im_destroy(void)
{
	if (launcher_running) {
		pthread_mutex_lock(&launch_mu);
		launcher_quit = true;
		pthread_cond_signal(&launch_cv);
		pthread_mutex_unlock(&launch_mu);
		pthread_join(launcher, NULL);
		launcher_running = false;
	}
	while (pools) {
		struct pool *p = pools;
		while (p->all) {
			struct nxd_instance *in = p->all;
			p->all = in->next;
			if (in->sb)
				in->driver->destroy(in->sb);
			if (in->chan)
				nx_chan_destroy(in->chan);
			nxd_fn_unref(in->fn);
			free(in);
		}
		pools = p->next;
		if (p->log_fd >= 0)
			close(p->log_fd);
		nxd_fn_unref(p->fn);
		free(p);
	}
}
