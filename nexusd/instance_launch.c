/* SPDX-License-Identifier: MIT */
/*
 * Instance lifecycle: launching sandboxes (on the launcher thread, so the
 * loop keeps serving warm invocations while a sandbox is built), stopping
 * them, and reaping them when their exit fd fires — which is also where a
 * crash mid-invocation becomes Runtime.ExitError and a start that never
 * reached READY fails the request it was for.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "config.h"
#include "funclog.h"
#include "instance_priv.h"
#include "aio.h"
#include "metrics.h"
#include "util.h"

static void on_init_timeout(void *arg);

void im_inst_put(struct nxd_instance *in)
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
void im_inst_unlive(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (in->state == IST_STARTING)
		p->n_starting--;
	if (in->state == IST_IDLE)
		im_idle_remove(in);
	if (in->state <= IST_BUSY)
		p->n_live--;
}

void im_inst_stop(struct nxd_instance *in, const char *fmt, ...)
{
	if (in->state >= IST_STOPPING)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->stop_reason, sizeof in->stop_reason, fmt, ap);
	va_end(ap);
	nxd_info("instance %" PRIu64 " (%s, pid %d) stopping: %s", in->id, in->pool->name, in->pid, in->stop_reason);
	if (in->timer) {
		nx_timer_cancel(im_loop, in->timer);
		in->timer = NULL;
	}
	im_inst_unlive(in);
	in->state = IST_STOPPING;
	in->stop_requested = true;
	if (!in->launching && in->sb)
		in->driver->kill(in->sb); /* else launch_done kills it */
}

/* Release everything; called once the sandbox has exited. */
static void im_inst_teardown(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (in->timer) { /* e.g. the init deadline of one that died starting */
		nx_timer_cancel(im_loop, in->timer);
		in->timer = NULL;
	}
	if (in->exit_fd >= 0)
		nx_loop_del_fd(im_loop, in->exit_fd);
	if (in->sb)
		in->driver->destroy(in->sb);
	in->sb = NULL;
	nx_aio_chan_detach(in->chan);
	nx_chan_destroy(in->chan);
	in->chan = NULL;
	if (in->prev)
		in->prev->next = in->next;
	else
		p->all = in->next;
	if (in->next)
		in->next->prev = in->prev;
	p->n_instances--;
	im_total_instances--;
	nxd_fn_unref(in->fn);
	in->fn = NULL;
	in->state = IST_DEAD;
	in->pool = NULL;
	im_inst_put(in);
	im_pool_maybe_free(p);
	if (im_shutting_down && im_total_instances == 0 && im_shutdown_done) {
		void (*done)(void) = im_shutdown_done;
		im_shutdown_done = NULL;
		if (im_shutdown_timer) {
			nx_timer_cancel(im_loop, im_shutdown_timer);
			im_shutdown_timer = NULL;
		}
		done();
	}
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
	struct nxd_invocation *inv = im_take_cur(in, "error");
	if (inv) {
		nxd_metrics_invocation(p->name, NXD_INV_CRASH, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_CRASH, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %s",
		             inv->request_id, how);
	}
	if (!in->stop_requested)
		nxd_warn("instance %" PRIu64 " (%s, pid %d) exited unexpectedly: %s", in->id, p->name, in->pid, how);
	else
		nxd_debug("instance %" PRIu64 " (%s) exited: %s", in->id, p->name, how);
	im_inst_unlive(in);
	in->state = IST_STOPPING;
	/* Stopped on purpose before READY (update, delete, shutdown) is no failure. */
	if (was_starting && (!in->stop_requested || in->init_timed_out) && !im_shutting_down && !p->deleted) {
		/* It never became ready: the function cannot start (import-time crash,
		 * missing runtime, init timeout).  Fail the request it was started for. */
		char why[256];
		if (in->stop_requested)
			snprintf(why, sizeof why, "Runtime failed to start: %s", in->stop_reason);
		else
			snprintf(why, sizeof why, "Runtime exited during init with error: %s (see the function's log)", how);
		nxd_funclog_note(p->log_fd, "%s", why);
		p->init_failures++;
		struct nxd_invocation *q = im_q_pop(p);
		if (q) {
			nxd_metrics_invocation(p->name, NXD_INV_CRASH, (double)(nx_now_ns() - q->t_recv_ns) / 1e9);
			nxd_inv_fail(q, NXD_INV_CRASH, "Runtime.ExitError", "RequestId: %s Error: %s", q->request_id, why);
		}
		if (p->init_failures >= INIT_FAILS_MAX && p->n_live == 0)
			im_q_fail_all(p, NXD_INV_CRASH, "Runtime.ExitError", why);
	}
	bool alive = !p->deleted; /* a pool that is not deleted is never freed by teardown */
	im_inst_teardown(in);
	if (alive)
		im_pool_scale(p);
}

static void on_init_timeout(void *arg)
{
	struct nxd_instance *in = arg;
	in->timer = NULL;
	in->init_timed_out = true;
	im_inst_stop(in, "not ready within %u s of starting (--init-timeout)", nxd_cfg.init_timeout_s);
}

/* A start that failed before the instance ran: fail what it was started for. */
void im_start_failed(struct pool *p, const char *err)
{
	nxd_err("function %s: %s", p->name, err);
	nxd_funclog_note(p->log_fd, "cannot start an instance: %s", err);
	if (p->n_live == 0) { /* nothing will ever serve them */
		im_q_fail_all(p, NXD_INV_FAILED, "ServiceException", err);
	} else if (p->qlen > p->n_starting) { /* fail the one this start was for */
		struct nxd_invocation *q = im_q_pop(p);
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
		if (nx_loop_post(im_loop, launch_done, in) < 0) {
			/* The loop is gone (shutdown): nxd_im_destroy releases it. */
			in->launching = false;
		}
		pthread_mutex_lock(&launch_mu);
	}
	pthread_mutex_unlock(&launch_mu);
	return NULL;
}

int im_inst_start(struct pool *p, char *err, size_t errlen)
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
	in->id = im_next_inst_id++;
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
	in->chan = nx_chan_new(im_loop, im_s3, &cc, &im_chan_ops, in);
	if (!in->chan) {
		snprintf(err, errlen, "cannot create the instance's channel (memfd region)");
		free(in);
		return -1;
	}
	nxd_fn_ref(fn);
	in->fn = fn;
	nx_aio_chan_attach(in->chan, fn);   /* write-back policy, prefetch (aio.c) */
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
		.snapshot = fn->vm_snapshot,
		.code_id = fn->code_sha256,
	};
	in->state = IST_STARTING;
	in->launching = true;
	in->refs++; /* held by the launcher until launch_done */
	in->timer = nx_loop_timer(im_loop, nxd_cfg.init_timeout_s * 1000u, on_init_timeout, in);
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
	im_total_instances++;
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
		im_inst_unlive(in);
		in->state = IST_STOPPING;
		if (in->timer) {
			nx_timer_cancel(im_loop, in->timer);
			in->timer = NULL;
		}
		bool alive = !p->deleted;
		if (was_live && alive && !im_shutting_down)
			im_start_failed(p, in->launch_err);
		im_inst_teardown(in);
		im_inst_put(in);
		return;
	}
	in->exit_fd = in->driver->exit_fd(in->sb);
	int r = nx_loop_add_fd(im_loop, in->exit_fd, EPOLLIN, on_exit_fd, in);
	in->pid = nxd_pid_of_pidfd(in->exit_fd);
	nxd_debug("instance %" PRIu64 " (%s) launched, pid %d", in->id, p->name, in->pid);
	if (r < 0) {
		/* Cannot notice its exit: stop it and release it at once. */
		nxd_err("instance %" PRIu64 ": cannot watch the sandbox: %s", in->id, strerror(-r));
		in->exit_fd = -1;
		im_inst_stop(in, "cannot watch the sandbox");
		im_inst_teardown(in);
	} else if (in->state == IST_STOPPING) {
		in->driver->kill(in->sb); /* stopped while launching: exit fd finishes it */
	}
	im_inst_put(in);
}


/* After the loop stopped: let the launcher finish what it started. */
void im_launcher_stop(void)
{
	if (!launcher_running)
		return;
	pthread_mutex_lock(&launch_mu);
	launcher_quit = true;
	pthread_cond_signal(&launch_cv);
	pthread_mutex_unlock(&launch_mu);
	pthread_join(launcher, NULL);
	launcher_running = false;
}
