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
#include "instance_priv.h"
#include "aio.h"
#include "baseline_forward.h"
#include "config.h"
#include "funclog.h"
#include "invocation.h"
#include "loop.h"
#include "metrics.h"
#include "registry.h"
#include "sandbox.h"
#include "sandbox_vm.h"
#include "util.h"

#define SHUTDOWN_GRACE_MS 5000u

const char *const im_ist_names[] = {"starting", "idle", "busy", "stopping", "dead"};
struct nx_loop *im_loop;
struct nx_s3 *im_s3;
struct pool *im_pools;
uint64_t im_next_inst_id = 1;
unsigned im_total_instances;
bool im_shutting_down;
void (*im_shutdown_done)(void);
struct nx_timer *im_shutdown_timer;
static uint64_t next_inv_id = 1;
static struct nx_timer *sweep_timer;

/* -------------------------------------------------------------- pools */

static struct pool *pool_find(const char *name)
{
	for (struct pool *p = im_pools; p; p = p->next)
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
	p->next = im_pools;
	im_pools = p;
	return p;
}

void im_pool_maybe_free(struct pool *p)
{
	if (!p->deleted || p->all || p->qhead)
		return;
	for (struct pool **pp = &im_pools; *pp; pp = &(*pp)->next)
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

struct nxd_invocation *im_q_pop(struct pool *p)
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
void im_q_fail_all(struct pool *p, enum nxd_inv_result r, const char *type, const char *msg)
{
	struct nxd_invocation *inv;
	while ((inv = im_q_pop(p))) {
		if (inv->async)
			nxd_funclog_note(p->log_fd, "RequestId: %s (Event) failed: %s", inv->request_id, msg);
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

void im_idle_remove(struct nxd_instance *in)
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
		sweep_timer = nx_loop_timer(im_loop, delay_ms, sweep, NULL);
}

static void sweep(void *arg)
{
	(void)arg;
	sweep_timer = NULL;
	uint64_t now = nx_now_ns(), ka = (uint64_t)nxd_cfg.keep_alive_s * 1000000000ull, next = UINT64_MAX;
	for (struct pool *p = im_pools; p; p = p->next) {
		struct nxd_instance *in = p->idle, *nx;
		for (; in; in = nx) {
			nx = in->inext;
			if (now - in->idle_since >= ka)
				im_inst_stop(in, "idle for %u s (keep-alive)", nxd_cfg.keep_alive_s);
			else if (in->idle_since + ka < next)
				next = in->idle_since + ka;
		}
	}
	if (next != UINT64_MAX)
		sweep_arm((next - now) / 1000000 + 1);
}

/* --------------------------------------------------------- instances */

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
struct nxd_invocation *im_take_cur(struct nxd_instance *in, const char *status)
{
	struct nxd_invocation *inv = in->cur;
	if (!inv)
		return NULL;
	in->cur = NULL;
	inv->inst = NULL;
	if (in->timer && in->state == IST_BUSY) {
		nx_timer_cancel(im_loop, in->timer);
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
	if ((++in->pool->log_writes & 1023) == 0)
		nxd_funclog_trim(in->pool->log_fd, in->pool->name);
	return inv;
}

static void on_invoke_timeout(void *arg)
{
	struct nxd_instance *in = arg;
	in->timer = NULL;
	unsigned t = in->fn->timeout_s;
	if (in->cur)
		nxd_funclog_note(in->pool->log_fd, "RequestId: %s Error: Task timed out after %u.00 seconds",
		                 in->cur->request_id, t);
	struct nxd_invocation *inv = im_take_cur(in, "timeout");
	if (!inv)
		return;
	nxd_metrics_invocation(in->pool->name, NXD_INV_TIMEOUT, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
	nxd_inv_fail(inv, NXD_INV_TIMEOUT, "Sandbox.Timedout", "RequestId: %s Error: Task timed out after %u.00 seconds",
	             inv->request_id, t);
	im_inst_stop(in, "invocation timed out after %u s", t);
	/* Replaced lazily: the next request (or a queued one) starts a new one. */
	im_pool_scale(in->pool);
}

/* Deferred from channel callbacks: decide what the instance does next. */
static void deferred_next(void *arg)
{
	struct nxd_instance *in = arg;
	if (in->state == IST_IDLE)
		im_inst_next(in);
	im_inst_put(in);
}

static void defer_next(struct nxd_instance *in)
{
	in->refs++;
	if (nx_loop_post(im_loop, deferred_next, in) < 0)
		in->refs--;
}

/* ------------------------------------------------------ chan callbacks */

static void inst_ready(struct nxd_instance *in, const char *runtime);

/* Loop thread: the driver's after_ready work is done (vm: snapshot taken). */
static void after_ready_done(void *arg)
{
	struct nxd_instance *in = arg;
	in->after_ready = false;
	if (in->state == IST_STARTING)
		inst_ready(in, in->runtime);
	im_inst_put(in);
}

/* Any thread: from the driver. */
static void after_ready_post(void *arg)
{
	if (nx_loop_post(im_loop, after_ready_done, arg) < 0)
		nxd_warn("instance: cannot finish READY (the loop is gone)");
}

static void ch_ready(void *owner, const char *runtime)
{
	struct nxd_instance *in = owner;
	if (in->state != IST_STARTING || in->after_ready) {
		nxd_debug("instance %" PRIu64 ": duplicate READY ignored", in->id);
		return;
	}
	if (in->timer) {
		nx_timer_cancel(im_loop, in->timer);
		in->timer = NULL;
	}
	/* The driver may have work to do before the instance serves (the vm
	 * driver takes the function's snapshot); it calls back when done. */
	if (in->sb && !in->launching && in->driver->after_ready) {
		snprintf(in->runtime, sizeof in->runtime, "%s", runtime ? runtime : "?");
		in->refs++;
		in->after_ready = true;
		if (in->driver->after_ready(in->sb, after_ready_post, in) == 1)
			return;
		in->after_ready = false;
		in->refs--;
	}
	inst_ready(in, runtime);
}

static void inst_ready(struct nxd_instance *in, const char *runtime)
{
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
	struct nxd_invocation *inv = im_take_cur(in, NULL);
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
	struct nxd_invocation *inv = im_take_cur(in, "error");
	if (inv) {
		nxd_metrics_invocation(in->pool->name, NXD_INV_CRASH, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_CRASH, "Runtime.ExitError",
		             "RequestId: %s Error: the instance broke the channel protocol (%s) and was stopped",
		             inv->request_id, why);
	}
	if (in->pool)
		nxd_funclog_note(in->pool->log_fd, "instance %" PRIu64 " stopped: channel protocol violation: %s", in->id, why);
	im_inst_stop(in, "channel protocol violation: %s", why);
}

const struct nx_chan_ops im_chan_ops = {
	.ready = ch_ready,
	.invoke_done = ch_invoke_done,
	.violation = ch_violation,
};

/* ----------------------------------------------------- start / assign */

/* Start instances for queued invocations, within the function's limit. */
void im_pool_scale(struct pool *p)
{
	if (p->deleted || im_shutting_down)
		return;
	while (p->qlen > p->n_starting && p->n_live < p->fn->max_instances) {
		char err[768];
		if (im_inst_start(p, err, sizeof err) == 0)
			continue;
		im_start_failed(p, err);
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
	const char *ev = inv->event_len ? inv->event : "{}";
	size_t evlen = inv->event_len ? inv->event_len : 2;
	/* Baseline mode: over HTTP to the guest's own server (baseline_forward.c),
	 * answered through the same channel callbacks. */
	if (in->fn->mode != NX_MODE_BASELINE)
		nx_aio_deliver(in->chan, inv);   /* prefetch: which invocation the channel runs */
	int r = in->fn->mode == NX_MODE_BASELINE
	                ? nxd_baseline_invoke(im_loop, in->id, &im_chan_ops, in, inv->id, ev, evlen, ctx)
	                : nx_chan_invoke(in->chan, inv->id, ev, evlen, ctx);
	if (r < 0) {
		im_take_cur(in, "error");
		nxd_metrics_invocation(p->name, NXD_INV_FAILED, (double)(nx_now_ns() - inv->t_recv_ns) / 1e9);
		nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException",
		             "RequestId: %s Error: could not deliver the event to the instance (%s)", inv->request_id,
		             strerror(-r));
		im_inst_stop(in, "channel refused an invocation: %s", strerror(-r));
		im_pool_scale(p);
		return;
	}
	in->timer = nx_loop_timer(im_loop, (uint64_t)t * 1000, on_invoke_timeout, in);
}

/* An idle instance: serve the queue, retire, or wait. */
void im_inst_next(struct nxd_instance *in)
{
	struct pool *p = in->pool;
	if (p->deleted || im_shutting_down) {
		im_inst_stop(in, "function deleted");
		return;
	}
	if (in->fn != p->fn) { /* code or configuration changed: retire */
		im_inst_stop(in, "function updated");
		im_pool_scale(p);
		return;
	}
	struct nxd_invocation *inv = im_q_pop(p);
	if (inv) {
		im_idle_remove(in);
		inst_assign(in, inv);
		return;
	}
	if (nxd_cfg.keep_alive_s == 0) {
		im_inst_stop(in, "keep-alive is 0");
		return;
	}
	sweep_arm((uint64_t)nxd_cfg.keep_alive_s * 1000);
}

/* ------------------------------------------------------- public API */

void nxd_im_invoke(void *arg)
{
	struct nxd_invocation *inv = arg;
	inv->id = next_inv_id++;
	if (im_shutting_down) {
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
		im_idle_remove(in);
		inst_assign(in, inv);
		return;
	}
	if (p->n_live >= p->fn->max_instances && p->qlen >= nxd_cfg.queue_depth + p->n_starting) {
		nxd_metrics_invocation(p->name, NXD_INV_THROTTLED, 0);
		if (inv->async) /* nobody else will ever hear of it */
			nxd_funclog_note(p->log_fd, "RequestId: %s (Event) dropped: too many requests", inv->request_id);
		nxd_inv_fail(inv, NXD_INV_THROTTLED, "TooManyRequestsException", "Rate Exceeded.");
		return;
	}
	q_push(p, inv);
	if (p->qlen > p->n_starting && p->n_live < p->fn->max_instances)
		nx_aio_cold_start(inv);          /* prefetch its input while the sandbox starts */
	/* Stale idle instances (an older snapshot) make room for new ones. */
	for (struct nxd_instance *in = p->idle, *nx; in; in = nx) {
		nx = in->inext;
		if (in->fn != p->fn)
			im_inst_stop(in, "function updated");
	}
	im_pool_scale(p);
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
			im_inst_stop(in, "function updated");
		}
		for (struct nxd_instance *in = p->all; in; in = in->next)
			if (in->state == IST_STARTING && in->fn != fn)
				im_inst_stop(in, "function updated");
		im_pool_scale(p);
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
			struct nxd_invocation *inv = im_take_cur(in, "deleted");
			if (inv)
				nxd_inv_fail(inv, NXD_INV_GONE, "ResourceNotFoundException",
				             "RequestId: %s Error: the function was deleted during the invocation",
				             inv->request_id);
			im_inst_stop(in, "function deleted");
		}
		im_pool_scale(p);
		return;
	}
	p->deleted = true;
	im_q_fail_all(p, NXD_INV_GONE, "ResourceNotFoundException", "the function was deleted");
	for (struct nxd_instance *in = p->all; in; in = in->next) {
		struct nxd_invocation *inv = im_take_cur(in, "deleted");
		if (inv)
			nxd_inv_fail(inv, NXD_INV_GONE, "ResourceNotFoundException",
			             "RequestId: %s Error: the function was deleted during the invocation", inv->request_id);
		im_inst_stop(in, "function deleted");
	}
	im_pool_maybe_free(p);
}

json_t *nxd_im_status_json(void)
{
	json_t *insts = json_array(), *pl = json_object();
	uint64_t now = nx_now_ns();
	for (struct pool *p = im_pools; p; p = p->next) {
		unsigned counts[IST_DEAD + 1] = {0};
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			counts[in->state]++;
			json_t *o = json_pack("{s:I,s:s,s:s,s:i,s:s,s:I,s:f}", "id", (json_int_t)in->id, "function", p->name,
			                      "state", im_ist_names[in->state], "pid", in->pid, "sandbox", in->fn->driver->name,
			                      "invocations", (json_int_t)in->invocations, "age_s",
			                      (double)(now - in->t_created) / 1e9);
			if (in->state == IST_IDLE)
				json_object_set_new(o, "idle_s", json_real((double)(now - in->idle_since) / 1e9));
			struct nx_sandbox_usage u = {0};
			if (in->sb && !in->launching && in->driver->usage && in->driver->usage(in->sb, &u) == 0) {
				json_object_set_new(o, "mem_bytes", json_integer((json_int_t)u.mem_bytes));
				json_object_set_new(o, "cpu_ms", json_real((double)u.cpu_ns / 1e6));
			}
			if (in->cur)
				json_object_set_new(o, "request_id", json_string(in->cur->request_id));
			json_array_append_new(insts, o);
		}
		/* Self-check of the counters pool_scale relies on. */
		if (counts[IST_STARTING] != p->n_starting ||
		    counts[IST_STARTING] + counts[IST_IDLE] + counts[IST_BUSY] != p->n_live)
			nxd_err("BUG: function %s: instance accounting drift (live %u starting %u, counted %u/%u/%u)",
			        p->name, p->n_live, p->n_starting, counts[IST_STARTING], counts[IST_IDLE], counts[IST_BUSY]);
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
	/* Collected first so each metric family is printed in one block. */
	char *mem = NULL, *cpu = NULL, *queued = NULL;
	size_t lm = 0, lc = 0, lq = 0;
	FILE *fm = open_memstream(&mem, &lm), *fc = open_memstream(&cpu, &lc), *fq = open_memstream(&queued, &lq);
	for (struct pool *p = im_pools; p; p = p->next) {
		unsigned counts[IST_DEAD + 1] = {0};
		uint64_t mem_b = 0, cpu_ns = 0;
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			counts[in->state]++;
			struct nx_sandbox_usage u = {0};
			if (in->sb && !in->launching && in->driver->usage && in->driver->usage(in->sb, &u) == 0) {
				mem_b += u.mem_bytes;
				cpu_ns += u.cpu_ns;
			}
		}
		for (int s = IST_STARTING; s <= IST_STOPPING; s++)
			fprintf(f, "nexus_instances{function=\"%s\",state=\"%s\"} %u\n", p->name, im_ist_names[s], counts[s]);
		if (fm)
			fprintf(fm, "nexus_instance_memory_bytes{function=\"%s\"} %llu\n", p->name, (unsigned long long)mem_b);
		if (fc)
			fprintf(fc, "nexus_instance_cpu_seconds{function=\"%s\"} %.6f\n", p->name, (double)cpu_ns / 1e9);
		if (fq)
			fprintf(fq, "nexus_queued_invocations{function=\"%s\"} %u\n", p->name, p->qlen);
	}
	if (fm)
		fclose(fm);
	if (fc)
		fclose(fc);
	if (fq)
		fclose(fq);
	fprintf(f, "# HELP nexus_queued_invocations Invocations waiting for an instance.\n"
	           "# TYPE nexus_queued_invocations gauge\n%s", queued ? queued : "");
	fprintf(f, "# HELP nexus_instance_memory_bytes Memory charged to the function's live instances (cgroups).\n"
	           "# TYPE nexus_instance_memory_bytes gauge\n%s", mem ? mem : "");
	fprintf(f, "# HELP nexus_instance_cpu_seconds CPU time of the function's live instances (since each started).\n"
	           "# TYPE nexus_instance_cpu_seconds gauge\n%s", cpu ? cpu : "");
	nx_vm_snapshot_metrics(f);   /* vm snapshots: restores, takes, fallbacks (snapshot_vm.c) */
	free(mem);
	free(cpu);
	free(queued);
}

static void shutdown_grace(void *arg)
{
	(void)arg;
	im_shutdown_timer = NULL;
	if (im_shutdown_done) {
		nxd_warn("%u instance(s) did not exit within %u ms; stopping anyway", im_total_instances, SHUTDOWN_GRACE_MS);
		void (*done)(void) = im_shutdown_done;
		im_shutdown_done = NULL;
		done();
	}
}

void nxd_im_shutdown(void (*done)(void))
{
	im_shutting_down = true;
	im_shutdown_done = done;
	for (struct pool *p = im_pools; p; p = p->next) {
		im_q_fail_all(p, NXD_INV_FAILED, "ServiceException", "nexusd is shutting down");
		for (struct nxd_instance *in = p->all; in; in = in->next) {
			struct nxd_invocation *inv = im_take_cur(in, "shutdown");
			if (inv)
				nxd_inv_fail(inv, NXD_INV_FAILED, "ServiceException",
				             "RequestId: %s Error: nexusd is shutting down", inv->request_id);
			im_inst_stop(in, "nexusd is shutting down");
		}
	}
	if (sweep_timer) {
		nx_timer_cancel(im_loop, sweep_timer);
		sweep_timer = NULL;
	}
	if (im_total_instances == 0) {
		im_shutdown_done = NULL;
		done();
		return;
	}
	im_shutdown_timer = nx_loop_timer(im_loop, SHUTDOWN_GRACE_MS, shutdown_grace, NULL);
}

int nxd_im_init(struct nx_loop *l, struct nx_s3 *s)
{
	im_loop = l;
	im_s3 = s;
	return 0;
}

/* After the loop stopped: release what is left without waiting. */
void nxd_im_destroy(void)
{
	im_launcher_stop();
	while (im_pools) {
		struct pool *p = im_pools;
		while (p->all) {
			struct nxd_instance *in = p->all;
			p->all = in->next;
			if (in->sb)
				in->driver->destroy(in->sb);
			if (in->chan) {
				nx_aio_chan_detach(in->chan);
				nx_chan_destroy(in->chan);
			}
			nxd_fn_unref(in->fn);
			free(in);
		}
		im_pools = p->next;
		if (p->log_fd >= 0)
			close(p->log_fd);
		nxd_fn_unref(p->fn);
		free(p);
	}
}
