/* SPDX-License-Identifier: MIT */
/*
 * The S3 client (s3.h): libcurl's multi interface driven by the nexusd loop.
 *
 *  - One CURLM per client: its connection cache is shared by every transfer,
 *    so connections to the endpoint are reused.  Easy handles are pooled.
 *  - Sockets and timeouts come from CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION and
 *    are watched with nx_loop_add_fd / nx_loop_timer; the loop calls
 *    curl_multi_socket_action.  Nothing blocks the loop thread.
 *  - Signing: CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3" with our own
 *    x-amz-content-sha256 header and a canonical (sorted, encoded) query
 *    string (s3_sign.c).  Path-style URLs: ENDPOINT/BUCKET/KEY.
 *  - GET bodies go straight into the caller's sink: its size comes from
 *    Content-Length in the header callback, sink_alloc is called before the
 *    first body byte, and a body larger than announced fails the request.
 *  - Retries: transport errors and 5xx are retried up to max_retries times
 *    with exponential backoff (100 ms, 200 ms, 400 ms, ... + jitter); 4xx
 *    never are.
 *  - The user callback never runs inside nx_s3_submit: argument errors found
 *    at submit time are delivered from a 0 ms timer.
 *
 * Files: s3.c (this: loop glue, transfer lifecycle, retries, results, API),
 * s3_http.c (libcurl callbacks of one transfer), s3_request.c (argument
 * checks, URL, headers), s3_sign.c (canonical encoding, hashes, dates),
 * s3_xml.c (XML responses).  Shared state: s3_internal.h.
 */
#include "s3.h"
#include "s3_internal.h"
#include "loop.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <libxml/parser.h>
#include <nexus/channel.h>

#define EXPECT_MIN_BODY (1u << 20)   /* bytes: libcurl's own POST threshold for Expect: */

static const char *const op_names[NX_S3__OPS] = { "get", "put", "head", "delete", "list", "copy" };

const char *nx_s3_op_name(enum nx_s3_op op)
{
	return (unsigned)op < NX_S3__OPS ? op_names[op] : "unknown";
}

void nx_s3_stats(const struct nx_s3 *s, struct nx_s3_stats *out) { *out = s->st; }

/* ------------------------------------------------------------ config */

static void env_default(char *dst, size_t cap, const char *a, const char *b)
{
	if (dst[0])
		return;
	const char *v = getenv(a);
	if ((!v || !*v) && b)
		v = getenv(b);
	if (v && *v)
		snprintf(dst, cap, "%s", v);
}

void nx_s3_config_from_env(struct nx_s3_config *c)
{
	env_default(c->endpoint, sizeof(c->endpoint), "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
	env_default(c->region, sizeof(c->region), "AWS_REGION", "AWS_DEFAULT_REGION");
	env_default(c->access_key, sizeof(c->access_key), "AWS_ACCESS_KEY_ID", NULL);
	env_default(c->secret_key, sizeof(c->secret_key), "AWS_SECRET_ACCESS_KEY", NULL);
	if (!c->region[0])
		snprintf(c->region, sizeof(c->region), "us-east-1");
}

/* ------------------------------------------------------------ curl glue */

static void check_done(struct nx_s3 *s);

static void on_sock_event(void *arg, uint32_t ev)
{
	struct sock *k = arg;
	struct nx_s3 *s = k->s;
	int flags = 0, running;
	if (ev & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (ev & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (ev & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	/* k may be freed inside (CURL_POLL_REMOVE): only s is used afterwards. */
	curl_multi_socket_action(s->multi, k->fd, flags, &running);
	check_done(s);
}

static void sock_free(struct nx_s3 *s, struct sock *k)
{
	nx_loop_del_fd(s->loop, k->fd);
	if (k->prev)
		k->prev->next = k->next;
	else
		s->socks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	free(k);
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct nx_s3 *s = userp;
	struct sock *k = sockp;
	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (k) {
			curl_multi_assign(s->multi, fd, NULL);
			sock_free(s, k);
		}
		return 0;
	}
	uint32_t ev = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return -1;
		k->s = s;
		k->fd = fd;
		if (nx_loop_add_fd(s->loop, fd, ev, on_sock_event, k) < 0) {
			free(k);
			return -1;
		}
		k->next = s->socks;
		if (s->socks)
			s->socks->prev = k;
		s->socks = k;
		curl_multi_assign(s->multi, fd, k);
	} else {
		nx_loop_mod_fd(s->loop, fd, ev);
	}
	return 0;
}

static void on_timeout(void *arg)
{
	struct nx_s3 *s = arg;
	int running;
	s->timer = NULL;
	curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(s);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct nx_s3 *s = userp;
	(void)m;
	if (s->timer) {
		nx_timer_cancel(s->loop, s->timer);
		s->timer = NULL;
	}
	/* Never call socket_action from here (libcurl forbids re-entry): even a
	 * 0 ms timeout goes through the loop. */
	if (timeout_ms >= 0)
		s->timer = nx_loop_timer(s->loop, (uint64_t)timeout_ms, on_timeout, s);
	return 0;
}

/* ------------------------------------------------------------ transfers */

static CURL *easy_get(struct nx_s3 *s)
{
	if (s->npool)
		return s->pool[--s->npool];
	return curl_easy_init();
}

static void easy_put(struct nx_s3 *s, CURL *e)
{
	if (!e)
		return;
	if (s->npool < POOL_MAX) {
		curl_easy_reset(e);
		s->pool[s->npool++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

static void xfer_unlink(struct nx_s3_xfer *x)
{
	struct nx_s3 *s = x->s;
	if (x->prev)
		x->prev->next = x->next;
	else if (s->active == x)
		s->active = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

static void xfer_free(struct nx_s3_xfer *x)
{
	struct nx_s3 *s = x->s;
	if (x->timer)
		nx_timer_cancel(s->loop, x->timer);
	if (x->in_multi)
		curl_multi_remove_handle(s->multi, x->easy);
	easy_put(s, x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->url);
	free(x->resp);
	free(x);
}

/* Configure the easy handle for one attempt and hand it to the multi. */
static int start_attempt(struct nx_s3_xfer *x)
{
	struct nx_s3 *s = x->s;
	CURL *e = x->easy;
	x->hcode = 0;
	x->have_clen = false;
	x->sink_ready = false;
	x->sink = NULL;
	x->sink_len = x->got = 0;
	x->resp_len = 0;
	x->body_pos = 0;
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, s->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(e, CURLOPT_USERNAME, s->cfg.access_key);
	curl_easy_setopt(e, CURLOPT_PASSWORD, s->cfg.secret_key);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, s3_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s3_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	switch (x->op) {
	case NX_S3_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		break;
	case NX_S3_PUT:
		/* libcurl sends "Expect: 100-continue" before every CURLOPT_UPLOAD
		 * body and waits a round trip for S3's "100 Continue" (strace: one
		 * more recvfrom, poll and wake-up per PUT).  That spares sending a
		 * large body S3 would refuse; for a small one it is only latency.
		 * Removing the header ("Expect:") is not an option: libcurl 7.88's
		 * SigV4 then signs an "expect" header it does not send, and S3 (and
		 * nexus-s3peer) refuse the request.  A body given as POSTFIELDS
		 * under 1 MiB gets no Expect, and the same bytes are sent. */
		if (x->body_len < EXPECT_MIN_BODY) {
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body_len ? (const char *)x->body : "");
			break;
		}
		/* fall through */
	case NX_S3_COPY:
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, s3_on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, s3_on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
		break;
	case NX_S3_DELETE:
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	default:
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		break;
	}
	if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
		return -EIO;
	x->in_multi = true;
	return 0;
}

static void deliver(struct nx_s3_xfer *x, struct nx_s3_result *res)
{
	struct nx_s3 *s = x->s;
	if ((unsigned)x->op >= NX_S3__OPS) {
		/* rejected at submit: counted nowhere */
	} else if (res->status != NX_S_OK) {
		s->st.ops[x->op]++;
		s->st.errors[x->op]++;
	} else {
		s->st.ops[x->op]++;
		s->st.bytes_in += res->body_len;
		if (x->op == NX_S3_PUT)
			s->st.bytes_out += x->body_len;
	}
	xfer_unlink(x);
	if (x->in_multi) {
		curl_multi_remove_handle(s->multi, x->easy);
		x->in_multi = false;
	}
	nx_s3_cb cb = x->cb;
	void *arg = x->arg;
	xfer_free(x);   /* before the callback: it may cancel or submit freely */
	cb(arg, res);
	json_decref(res->list);
	res->list = NULL;
}

static void on_retry(void *arg)
{
	struct nx_s3_xfer *x = arg;
	x->timer = NULL;
	if (start_attempt(x) < 0) {
		struct nx_s3_result res = { .status = NX_S_IO_ERROR };
		snprintf(res.code, sizeof(res.code), "InternalError");
		snprintf(res.message, sizeof(res.message), "could not restart the transfer");
		deliver(x, &res);
	}
}

/* Schedule another attempt if allowed; true when scheduled. */
static bool maybe_retry(struct nx_s3_xfer *x)
{
	struct nx_s3 *s = x->s;
	if (x->attempt >= s->cfg.max_retries)
		return false;
	uint64_t delay = (uint64_t)BACKOFF_MS << x->attempt;
	delay += (uint64_t)(rand_r(&s->rnd) % 50);
	x->attempt++;
	s->st.retries++;
	curl_multi_remove_handle(s->multi, x->easy);
	x->in_multi = false;
	x->timer = nx_loop_timer(s->loop, delay, on_retry, x);
	return x->timer != NULL;
}

static void error_from_http(struct nx_s3_xfer *x, struct nx_s3_result *res)
{
	long code = res->http_code;
	if (x->resp_len &&
	    nx_s3_xml_error(x->resp, x->resp_len, res->code, sizeof(res->code), res->message, sizeof(res->message)) == 0 &&
	    res->code[0]) {
		/* S3's own code */
	} else {
		/* No body (HEAD) or not S3 XML. */
		const char *c = code == 404 ? "NoSuchKey" : code == 403 ? "AccessDenied" : code == 400 ? "BadRequest"
		              : code == 412 ? "PreconditionFailed" : code == 416 ? "InvalidRange"
		              : code == 503 ? "ServiceUnavailable" : code >= 500 ? "InternalError" : NULL;
		if (c)
			snprintf(res->code, sizeof(res->code), "%s", c);
		else
			snprintf(res->code, sizeof(res->code), "%ld", code);
		const char *m = code == 404 ? "Not Found" : code == 403 ? "Forbidden" : "";
		snprintf(res->message, sizeof(res->message), "%s", m);
	}
	res->status = strcmp(res->code, "AccessDenied") == 0 ? NX_S_ACCESS_DENIED : NX_S_STORAGE_ERROR;
}

static void finish(struct nx_s3_xfer *x, CURLcode rc)
{
	struct nx_s3_result res;
	memset(&res, 0, sizeof(res));
	long code = 0, conns = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
		x->s->st.connections += (uint64_t)conns;
	res.http_code = code;
	if (x->fail_status) {
		res.status = x->fail_status;
		snprintf(res.code, sizeof(res.code), "%s", x->fail_code);
		snprintf(res.message, sizeof(res.message), "%s", x->fail_msg);
		deliver(x, &res);
		return;
	}
	if (rc != CURLE_OK) {
		if (maybe_retry(x))
			return;
		res.status = NX_S_IO_ERROR;
		snprintf(res.code, sizeof(res.code), "%s",
		         rc == CURLE_OPERATION_TIMEDOUT ? "RequestTimeout" : "ServiceUnavailable");
		snprintf(res.message, sizeof(res.message), "storage unreachable: %s", curl_easy_strerror(rc));
		deliver(x, &res);
		return;
	}
	if (code >= 500) {
		if (maybe_retry(x))
			return;
		error_from_http(x, &res);
		deliver(x, &res);
		return;
	}
	if (code < 200 || code >= 300) {
		error_from_http(x, &res);
		deliver(x, &res);
		return;
	}
	res.status = NX_S_OK;
	snprintf(res.etag, sizeof(res.etag), "%s", x->etag);
	snprintf(res.content_type, sizeof(res.content_type), "%s", x->ctype);
	snprintf(res.content_range, sizeof(res.content_range), "%s", x->crange);
	if (x->lastmod[0])
		nx_s3_http_date_to_iso(x->lastmod, res.last_modified, sizeof(res.last_modified));
	res.content_length = x->clen;
	switch (x->op) {
	case NX_S3_GET:
		if (!x->sink_ready || x->got != x->sink_len) {
			if (maybe_retry(x))
				return;
			res.status = NX_S_IO_ERROR;
			snprintf(res.code, sizeof(res.code), "IncompleteBody");
			snprintf(res.message, sizeof(res.message), "body shorter than its Content-Length");
		}
		res.body_len = x->got;
		break;
	case NX_S3_LIST:
		res.list = nx_s3_xml_list(x->resp, x->resp_len);
		if (!res.list) {
			res.status = NX_S_IO_ERROR;
			snprintf(res.code, sizeof(res.code), "InternalError");
			snprintf(res.message, sizeof(res.message), "malformed ListObjectsV2 response");
		}
		break;
	case NX_S3_COPY: {
		int r = nx_s3_xml_copy(x->resp, x->resp_len, res.etag, sizeof(res.etag),
		                       res.last_modified, sizeof(res.last_modified));
		if (r == 1) {   /* 200 OK carrying an <Error>: S3 does that for copies */
			error_from_http(x, &res);
			if (strcmp(res.code, "InternalError") == 0 && maybe_retry(x))
				return;
		} else if (r < 0) {
			res.status = NX_S_IO_ERROR;
			snprintf(res.code, sizeof(res.code), "InternalError");
			snprintf(res.message, sizeof(res.message), "malformed CopyObject response");
		} else {
			res.list = json_pack("{s:s, s:s}", "ETag", res.etag, "LastModified", res.last_modified);
		}
		break;
	}
	default:
		break;
	}
	deliver(x, &res);
}

static void check_done(struct nx_s3 *s)
{
	CURLMsg *m;
	int left;
	s->dispatching++;
	while ((m = curl_multi_info_read(s->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct nx_s3_xfer *x = NULL;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		/* finish() runs user callbacks, which may cancel other transfers:
		 * those stay allocated (zombies) until this loop ends, so a message
		 * still queued for one of them is recognised and skipped. */
		if (x && !x->cancelled)
			finish(x, rc);
	}
	if (--s->dispatching == 0) {
		while (s->zombies) {
			struct nx_s3_xfer *z = s->zombies;
			s->zombies = z->next;
			xfer_free(z);
		}
	}
}

/* ------------------------------------------------------------ public API */

struct nx_s3 *nx_s3_new(struct nx_loop *loop, const struct nx_s3_config *cfg)
{
	static bool global_init;
	if (!global_init) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		xmlInitParser();
		global_init = true;
	}
	struct nx_s3 *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->loop = loop;
	s->cfg = *cfg;
	if (!s->cfg.region[0])
		snprintf(s->cfg.region, sizeof(s->cfg.region), "us-east-1");
	if (!s->cfg.endpoint[0])
		snprintf(s->cfg.endpoint, sizeof(s->cfg.endpoint), "https://s3.%s.amazonaws.com", s->cfg.region);
	size_t n = strlen(s->cfg.endpoint);
	while (n && s->cfg.endpoint[n - 1] == '/')
		s->cfg.endpoint[--n] = '\0';
	if (s->cfg.timeout_ms <= 0)
		s->cfg.timeout_ms = 30000;
	if (s->cfg.connect_timeout_ms <= 0)
		s->cfg.connect_timeout_ms = 5000;
	if (s->cfg.max_retries == 0)
		s->cfg.max_retries = 3;      /* 0 = default; negative = no retries */
	else if (s->cfg.max_retries < 0)
		s->cfg.max_retries = 0;
	snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->cfg.region);
	s->rnd = (unsigned)nx_now_ns();
	s->multi = curl_multi_init();
	if (!s->multi) {
		free(s);
		return NULL;
	}
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 64L);
	return s;
}

void nx_s3_destroy(struct nx_s3 *s)
{
	if (!s)
		return;
	while (s->active) {
		struct nx_s3_xfer *x = s->active;
		xfer_unlink(x);
		xfer_free(x);
	}
	while (s->zombies) {
		struct nx_s3_xfer *z = s->zombies;
		s->zombies = z->next;
		xfer_free(z);
	}
	while (s->npool)
		curl_easy_cleanup(s->pool[--s->npool]);
	curl_multi_cleanup(s->multi);
	while (s->socks)
		sock_free(s, s->socks);
	if (s->timer)
		nx_timer_cancel(s->loop, s->timer);
	free(s);
}

void nx_s3_cancel(struct nx_s3 *s, struct nx_s3_xfer *x)
{
	if (!x || x->cancelled)
		return;
	xfer_unlink(x);
	/* Out of the multi now: libcurl never touches its sink again. */
	if (x->in_multi) {
		curl_multi_remove_handle(s->multi, x->easy);
		x->in_multi = false;
	}
	if (x->timer) {
		nx_timer_cancel(s->loop, x->timer);
		x->timer = NULL;
	}
	if (s->dispatching) {
		x->cancelled = true;
		x->next = s->zombies;
		s->zombies = x;
		return;
	}
	xfer_free(x);
}

/* Deliver an error found at submit time, from the loop (never inside submit). */
static void on_deferred_fail(void *arg)
{
	struct nx_s3_xfer *x = arg;
	x->timer = NULL;
	struct nx_s3_result res = { .status = x->fail_status, .http_code = 400 };
	snprintf(res.code, sizeof(res.code), "%s", x->fail_code);
	snprintf(res.message, sizeof(res.message), "%s", x->fail_msg);
	deliver(x, &res);
}

struct nx_s3_xfer *nx_s3_submit(struct nx_s3 *s, const struct nx_s3_req *req, nx_s3_cb cb, void *arg)
{
	struct nx_s3_xfer *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->s = s;
	x->op = req->op;
	x->cb = cb;
	x->arg = arg;
	x->next = s->active;
	if (s->active)
		s->active->prev = x;
	s->active = x;

	const char *bad = s3_check_req(req);
	if (bad) {
		s3_fail_in_cb(x, NX_S_INVALID, "InvalidArgument", bad);
		x->timer = nx_loop_timer(s->loop, 0, on_deferred_fail, x);
		if (!x->timer) {
			xfer_unlink(x);
			free(x);
			return NULL;
		}
		return x;
	}
	if (req->op == NX_S3_PUT) {
		x->body = req->body;
		x->body_len = req->body ? req->body_len : 0;
	}
	x->sink_alloc = req->sink_alloc;
	x->sink_arg = req->sink_arg;
	x->url = s3_build_url(s, req);
	x->easy = easy_get(s);
	char hash[65];
	nx_s3_sha256_hex(x->body, x->body_len, hash);
	bool ok = x->url && x->easy;
	x->hdrs = s3_add_hdr(x->hdrs, &ok, "x-amz-content-sha256", hash);
	if (req->op == NX_S3_GET && req->range && *req->range)
		x->hdrs = s3_add_hdr(x->hdrs, &ok, "Range", req->range);
	if (req->op == NX_S3_GET && req->if_match && *req->if_match)
		x->hdrs = s3_add_hdr(x->hdrs, &ok, "If-Match", req->if_match);
	if (req->op == NX_S3_PUT && req->content_type && *req->content_type)
		x->hdrs = s3_add_hdr(x->hdrs, &ok, "Content-Type", req->content_type);
	/* A small PUT goes out as a "POST-style" PUT (start_attempt), which
	 * libcurl would label application/x-www-form-urlencoded: say what S3
	 * stores when no type is given. */
	if (req->op == NX_S3_PUT && x->body_len < EXPECT_MIN_BODY && !(req->content_type && *req->content_type))
		x->hdrs = s3_add_hdr(x->hdrs, &ok, "Content-Type", "binary/octet-stream");
	if (req->op == NX_S3_COPY && ok) {
		char *src = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&src, &len);
		if (f) {
			fputc('/', f);
			nx_s3_pct_encode(f, req->src_bucket, false);
			fputc('/', f);
			nx_s3_pct_encode(f, req->src_key, true);
			if (fclose(f) == 0)
				x->hdrs = s3_add_hdr(x->hdrs, &ok, "x-amz-copy-source", src);
			else
				ok = false;
		} else {
			ok = false;
		}
		free(src);
	}
	if (!ok || start_attempt(x) < 0) {
		xfer_unlink(x);
		xfer_free(x);
		return NULL;
	}
	return x;
}
