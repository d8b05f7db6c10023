/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "codezip.h"
#include "config.h"
#include "loop.h"
#include "util.h"

struct nx_loop *nxd_loop;
volatile int nxd_stopping;
static struct MHD_Daemon *daemon_;
static int mhd_epfd = -1;
static struct nx_timer *mhd_timer;
static void on_mhd_ready(void *arg, uint32_t ev);

#define SMALL_BODY  (1u << 20)
#define CODE_BODY   (NXD_ZIP_MAX / 3 * 4 + (1u << 20))  /* base64 zip + JSON */
#define INVOKE_BODY NX_PAYLOAD_MAX

/* ------------------------------------------------------------- routing */

struct route {
	const char *method;
	const char *prefix;       /* path before {name} (or the whole path) */
	const char *suffix;       /* path after {name}; NULL = no {name} */
	size_t limit;
	nxd_handler fn;
};

static const struct route routes[] = {
	{"POST", "/2015-03-31/functions/", "/invocations", INVOKE_BODY, nxd_api_invoke},
	{"GET", "/health", NULL, 0, nxd_api_health},
	{"GET", "/metrics", NULL, 0, nxd_api_metrics},
	{"GET", "/nexus/v1/status", NULL, 0, nxd_api_status},
	{"GET", "/nexus/v1/functions/", "/logs", 0, nxd_api_logs},
	{"POST", "/2015-03-31/functions", NULL, CODE_BODY, nxd_api_create},
	{"POST", "/2015-03-31/functions/", NULL, CODE_BODY, nxd_api_create},
	{"GET", "/2015-03-31/functions", NULL, 0, nxd_api_list},
	{"GET", "/2015-03-31/functions/", NULL, 0, nxd_api_list},
	{"GET", "/2015-03-31/functions/", "/configuration", 0, nxd_api_get_config},
	{"PUT", "/2015-03-31/functions/", "/configuration", SMALL_BODY, nxd_api_update_config},
	{"PUT", "/2015-03-31/functions/", "/code", CODE_BODY, nxd_api_update_code},
	{"GET", "/2015-03-31/functions/", "", 0, nxd_api_get},
	{"DELETE", "/2015-03-31/functions/", "", 0, nxd_api_delete},
	{"GET", "/2017-03-31/tags/", "", 0, nxd_api_list_tags},
	{"POST", "/2017-03-31/tags/", "", SMALL_BODY, nxd_api_tag},
	{"DELETE", "/2017-03-31/tags/", "", 0, nxd_api_untag},
};

/* Match url against a route; copy {name} out. */
static bool match(const struct route *rt, const char *method, const char *url, char *name, size_t cap)
{
	if (strcmp(rt->method, method))
		return false;
	size_t pl = strlen(rt->prefix);
	if (!rt->suffix)
		return !strcmp(url, rt->prefix);
	if (strncmp(url, rt->prefix, pl))
		return false;
	const char *rest = url + pl;
	size_t sl = strlen(rt->suffix), rl = strlen(rest);
	if (rl <= sl || strcmp(rest + rl - sl, rt->suffix))
		return false;
	size_t nl = rl - sl;
	if (nl >= cap || memchr(rest, '/', nl))
		return false;
	memcpy(name, rest, nl);
	name[nl] = 0;
	return true;
}

/* ----------------------------------------------------------- responses */

/* Queue resp now, or keep it for later when the request is deferred. */
static enum MHD_Result finish(struct MHD_Connection *c, struct nxd_req *r, unsigned status, struct MHD_Response *resp)
{
	if (r->deferred) {
		if (r->pending)
			MHD_destroy_response(r->pending);
		r->pending = resp;
		r->pending_status = status;
		return MHD_YES;
	}
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result nxd_reply(struct MHD_Connection *c, struct nxd_req *r, unsigned status, const char *ctype, char *body,
                          size_t len)
{
	struct MHD_Response *resp =
		body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
		     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
	return finish(c, r, status, resp);
}

enum MHD_Result nxd_reply_json(struct MHD_Connection *c, struct nxd_req *r, unsigned status, json_t *obj)
{
	char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!text)
		return nxd_reply_error(c, r, 500, "ServiceException", "out of memory");
	return nxd_reply(c, r, status, "application/json", text, strlen(text));
}

enum MHD_Result nxd_reply_error(struct MHD_Connection *c, struct nxd_req *r, unsigned status, const char *type,
                                const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s,s:s}", "Type", status >= 500 ? "Service" : "User", "message", msg);
	if (status == 429)
		json_object_set_new(o, "Reason", json_string("ReservedFunctionConcurrentInvocationLimitExceeded"));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	struct MHD_Response *resp = text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
	                                 : NULL;
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "x-amzn-ErrorType", type);
	MHD_add_response_header(resp, "x-amzn-RequestId", r->request_id);
	return finish(c, r, status, resp);
}

enum MHD_Result nxd_reply_raw(struct MHD_Connection *c, struct nxd_req *r, unsigned status, struct MHD_Response *resp)
{
	return finish(c, r, status, resp);
}

/* ------------------------------------------------------------- handler */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct nxd_req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		*con_cls = r;
		r->conn = c;
		nxd_uuid(r->request_id);
		for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
			if (match(&routes[i], method, url, r->name, sizeof r->name)) {
				r->route = &routes[i];
				break;
			}
		r->limit = r->route ? r->route->limit : 0;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			unsigned long long n = strtoull(cl, NULL, 10);
			if (n > r->limit)
				r->too_large = true; /* drain and discard; answer 413 at the end */
			else if (n > 0) {
				/* Up front only what a typical request needs: a client that
				 * announces megabytes must send them before it costs them. */
				size_t first = n < (1u << 20) ? (size_t)n : (1u << 20);
				if ((r->body = malloc(first + 1)))
					r->cap = first;
			}
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (r->too_large || r->len + n > r->limit) {
			r->too_large = true;
			return MHD_YES;
		}
		if (r->len + n > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;
			while (cap < r->len + n)
				cap *= 2;
			char *b = realloc(r->body, cap + 1);
			if (!b)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->pending) { /* resumed with its response */
		enum MHD_Result ret = MHD_queue_response(c, r->pending_status, r->pending);
		MHD_destroy_response(r->pending);
		r->pending = NULL;
		return ret;
	}
	if (r->deferred)
		return MHD_YES; /* spurious call while waiting */
	if (r->body)
		r->body[r->len] = 0;
	if (!r->route) {
		nxd_debug("no route for %s %s", method, url);
		return nxd_reply_error(c, r, 404, "UnknownOperationException", "Unknown operation %s %s", method, url);
	}
	if (r->too_large) {
		if (r->route->fn == nxd_api_invoke)
			return nxd_reply_error(c, r, 413, "RequestEntityTooLargeException",
			                       "Request must be smaller than %u bytes for the InvokeFunction operation",
			                       NX_PAYLOAD_MAX);
		return nxd_reply_error(c, r, 413, "RequestEntityTooLargeException",
		                       "Request must be smaller than %zu bytes for this operation", r->limit);
	}
	return r->route->fn(c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	struct nxd_req *r = *con_cls;
	if (r) {
		if (r->pending)
			MHD_destroy_response(r->pending);
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char b[512];
	vsnprintf(b, sizeof b, fmt, ap);
	size_t n = strlen(b);
	while (n && b[n - 1] == '\n')
		b[--n] = 0;
	nxd_debug("http: %s", b);
}

int nxd_http_start(char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
	char port[16];
	snprintf(port, sizeof port, "%u", nxd_cfg.listen_port);
	int gr = getaddrinfo(nxd_cfg.listen_host, port, &hints, &ai);
	if (gr) {
		snprintf(err, errlen, "cannot resolve listen address '%s': %s", nxd_cfg.listen_host, gai_strerror(gr));
		return -1;
	}
	/* External polling: the nexusd loop watches MHD's epoll fd. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* As many connections as the fd limit allows, keeping a quarter of it (at
	 * least 256) for instances (memfd, eventfds, pidfd, log each), S3 sockets
	 * and files.  A fixed 1024 let ~1400 load-generator connections leave
	 * nexusd unreachable, even for /health, until idle ones timed out. */
	struct rlimit nofile;
	unsigned conn_limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur > 1024) {
		rlim_t reserve = nofile.rlim_cur / 4 > 256 ? nofile.rlim_cur / 4 : 256;
		conn_limit = (unsigned)(nofile.rlim_cur - reserve > 65536 ? 65536 : nofile.rlim_cur - reserve);
	}
	daemon_ = MHD_start_daemon(flags, (uint16_t)nxd_cfg.listen_port, NULL, NULL, on_request, NULL,
	                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	                           MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	                           MHD_OPTION_CONNECTION_LIMIT, conn_limit,
	                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)900,
	                           MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!daemon_) {
		snprintf(err, errlen, "cannot listen on %s:%u (%s); is the port in use?", nxd_cfg.listen_host,
		         nxd_cfg.listen_port, errno ? strerror(errno) : "libmicrohttpd failed to start");
		return -1;
	}
	const union MHD_DaemonInfo *ei = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
	int r = ei ? nx_loop_add_fd(nxd_loop, ei->epoll_fd, EPOLLIN, on_mhd_ready, NULL) : -EINVAL;
	if (r < 0) {
		snprintf(err, errlen, "cannot watch the HTTP server's epoll fd: %s", strerror(-r));
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
		return -1;
	}
	mhd_epfd = ei->epoll_fd;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	unsigned p = di && di->port ? di->port : nxd_cfg.listen_port;
	nxd_cfg.listen_port = p;
	bool v6 = strchr(nxd_cfg.listen_host, ':') != NULL;
	snprintf(nxd_cfg.ingress_url, sizeof nxd_cfg.ingress_url, v6 ? "http://[%s]:%u" : "http://%s:%u",
	         nxd_cfg.listen_host, p);
	return 0;
}

void nxd_http_quiesce(void)
{
	if (daemon_) {
		MHD_socket s = MHD_quiesce_daemon(daemon_);
		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
}

void nxd_http_stop(void)
{
	if (mhd_timer) {
		nx_timer_cancel(nxd_loop, mhd_timer);
		mhd_timer = NULL;
	}
	if (mhd_epfd >= 0)
		nx_loop_del_fd(nxd_loop, mhd_epfd);
	mhd_epfd = -1;
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}

/* ------------------------------------------------- MHD driven by the loop */

static void mhd_run(void);
static bool run_posted;

static void mhd_run_posted(void *arg)
{
	(void)arg;
	run_posted = false;
	mhd_run();
}

static void on_mhd_timer(void *arg)
{
	(void)arg;
	mhd_timer = NULL;
	mhd_run();
}

static void mhd_run(void)
{
	if (!daemon_)
		return;
	MHD_run(daemon_);
	/* Connection timeouts: MHD says when it next needs to run. */
	MHD_UNSIGNED_LONG_LONG to;
	if (MHD_get_timeout(daemon_, &to) == MHD_YES) {
		if (to == 0) { /* more to do right away (e.g. a resumed connection) */
			if (!run_posted && nx_loop_post(nxd_loop, mhd_run_posted, NULL) == 0)
				run_posted = true;
			return;
		}
		if (mhd_timer)
			nx_timer_cancel(nxd_loop, mhd_timer);
		mhd_timer = nx_loop_timer(nxd_loop, to, on_mhd_timer, NULL);
	}
}

static void on_mhd_ready(void *arg, uint32_t ev)
{
	(void)arg;
	(void)ev;
	mhd_run();
}

/* In external-polling mode a resumed connection is only processed by the
 * next MHD_run; run it from the loop soon (not from here: we may be inside
 * a channel callback, and MHD_run may start a new invocation). */

void nxd_req_resume(struct nxd_req *r)
{
	if (!r->suspended)
		return;
	r->suspended = false;
	MHD_resume_connection(r->conn);
	if (!run_posted && nx_loop_post(nxd_loop, mhd_run_posted, NULL) == 0)
		run_posted = true;
}

/* ------------------------------------------------------------ offload */

static atomic_int offloads;

struct offload {
	struct MHD_Connection *c;
	struct nxd_req *r;
	enum MHD_Result (*handler)(struct MHD_Connection *, struct nxd_req *);
};

static void offload_done(void *arg)
{
	struct nxd_req *r = arg;
	if (!r->pending && r->then) {
		void (*then)(struct nxd_req *) = r->then;
		r->then = NULL;
		then(r); /* replies (now or later) and resumes */
		return;
	}
	if (!r->pending)
		nxd_reply_error(r->conn, r, 500, "ServiceException", "internal error: no response");
	nxd_req_resume(r);
}

static void *offload_main(void *arg)
{
	struct offload *o = arg;
	o->handler(o->c, o->r);
	if (nx_loop_post(nxd_loop, offload_done, o->r) < 0) {
		if (!o->r->pending)
			nxd_reply_error(o->c, o->r, 503, "ServiceException", "nexusd is shutting down");
		MHD_resume_connection(o->c); /* loop gone: MHD_stop_daemon closes it */
	}
	atomic_fetch_sub(&offloads, 1);
	free(o);
	return NULL;
}

int nxd_http_offloads(void)
{
	return atomic_load(&offloads);
}

enum MHD_Result nxd_offload(struct MHD_Connection *c, struct nxd_req *r,
                            enum MHD_Result (*handler)(struct MHD_Connection *, struct nxd_req *))
{
	struct offload *o = malloc(sizeof *o);
	if (!o)
		return nxd_reply_error(c, r, 500, "ServiceException", "out of memory");
	*o = (struct offload){c, r, handler};
	r->deferred = true;
	r->suspended = true;
	MHD_suspend_connection(c);
	atomic_fetch_add(&offloads, 1);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&t, &a, offload_main, o);
	pthread_attr_destroy(&a);
	if (e) { /* run it here rather than fail */
		atomic_fetch_sub(&offloads, 1);
		handler(c, r);
		free(o);
		offload_done(r);
	}
	return MHD_YES;
}

/* ----------------------------------------------------- loop round trip */

struct call {
	void (*fn)(void *);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void run_call(void *p)
{
	struct call *c = p;
	c->fn(c->arg);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int nxd_call_on_loop(void (*fn)(void *), void *arg)
{
	if (nx_loop_in_thread(nxd_loop)) { /* handlers run on the loop: just call */
		fn(arg);
		return 0;
	}
	struct call c = {.fn = fn, .arg = arg};
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	int r = nxd_stopping ? -ESHUTDOWN : nx_loop_post(nxd_loop, run_call, &c);
	if (r == 0) {
		pthread_mutex_lock(&c.mu);
		while (!c.done)
			pthread_cond_wait(&c.cv, &c.mu);
		pthread_mutex_unlock(&c.mu);
	}
	pthread_mutex_destroy(&c.mu);
	pthread_cond_destroy(&c.cv);
	return r < 0 ? -1 : 0;
}
