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

#define RESP_MAX       (16u << 20)  /* XML/error bodies we are willing to buffer */
#define POOL_MAX       64
#define BACKOFF_MS     100

struct sock {
	struct nx_s3 *s;
	int fd;
	struct sock *prev, *next;
};

struct nx_s3_xfer {
	struct nx_s3 *s;
	struct nx_s3_xfer *prev, *next;
	CURL *easy;
	bool in_multi;
	enum nx_s3_op op;
	char *url;
	struct curl_slist *hdrs;
	nx_s3_cb cb;
	void *arg;

	/* PUT: the caller's bytes (kept valid by the caller until the callback). */
	const uint8_t *body;
	size_t body_len, body_pos;

	/* GET: where the body goes. */
	void *(*sink_alloc)(void *arg, size_t len);
	void *sink_arg;
	uint8_t *sink;
	size_t sink_len, got;
	bool sink_ready;

	/* Other responses (XML, errors). */
	char *resp;
	size_t resp_len, resp_cap;

	/* Response headers of the current attempt. */
	long hcode;
	bool have_clen;
	uint64_t clen;
	char etag[128], ctype[128], lastmod[64], crange[96];

	/* A failure we decided on inside a callback (ends the request, no retry). */
	int fail_status;
	char fail_code[64], fail_msg[160];

	int attempt;
	struct nx_timer *timer;   /* retry backoff or deferred failure */
	bool cancelled;           /* cancelled while check_done was dispatching */
};

struct nx_s3 {
	struct nx_loop *loop;
	struct nx_s3_config cfg;
	char sigv4[96];
	CURLM *multi;
	struct nx_timer *timer;
	struct sock *socks;
	CURL *pool[POOL_MAX];
	size_t npool;
	struct nx_s3_xfer *active;
	struct nx_s3_xfer *zombies;   /* cancelled during dispatch, freed after it */
	int dispatching;
	struct nx_s3_stats st;
	unsigned rnd;
};

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

/* ------------------------------------------------------------ callbacks */

static void fail_in_cb(struct nx_s3_xfer *x, int status, const char *code, const char *msg)
{
	if (x->fail_status)
		return;
	x->fail_status = status;
	snprintf(x->fail_code, sizeof(x->fail_code), "%s", code);
	snprintf(x->fail_msg, sizeof(x->fail_msg), "%s", msg);
}

static void hdr_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n && *v == ' ') {
		v++;
		n--;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool hdr_is(const char *buf, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(buf, name, n) != 0 || buf[n] != ':')
		return false;
	*val = buf + n + 1;
	*vlen = len - n - 1;
	return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t len = size * nitems;
	const char *v;
	size_t vl;
	char tmp[64];
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* A new response (maybe after 100 Continue): forget the last one. */
		const char *sp = memchr(buf, ' ', len);
		x->hcode = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->have_clen = false;
		x->clen = 0;
		x->etag[0] = x->ctype[0] = x->lastmod[0] = x->crange[0] = '\0';
		return len;
	}
	if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
		/* End of headers: a successful GET learns where its body goes now. */
		if (x->op == NX_S3_GET && x->hcode >= 200 && x->hcode < 300 && !x->sink_ready) {
			if (!x->have_clen) {
				fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "GET response without Content-Length");
				return 0;
			}
			if (x->clen > SIZE_MAX / 2) {
				fail_in_cb(x, NX_S_TOO_LARGE, "EntityTooLarge", "object too large");
				return 0;
			}
			x->sink = x->sink_alloc ? x->sink_alloc(x->sink_arg, (size_t)x->clen) : NULL;
			if (!x->sink) {
				fail_in_cb(x, NX_S_NO_SPACE, "NoSpace", "no room for the object in the instance's region");
				return 0;
			}
			x->sink_len = (size_t)x->clen;
			x->got = 0;
			x->sink_ready = true;
		}
		return len;
	}
	if (hdr_is(buf, len, "Content-Length", &v, &vl)) {
		hdr_value(tmp, sizeof(tmp), v, vl);
		char *end;
		errno = 0;
		unsigned long long n = strtoull(tmp, &end, 10);
		if (tmp[0] && !*end && errno == 0) {
			x->have_clen = true;
			x->clen = n;
		}
	} else if (hdr_is(buf, len, "ETag", &v, &vl)) {
		hdr_value(x->etag, sizeof(x->etag), v, vl);
	} else if (hdr_is(buf, len, "Content-Type", &v, &vl)) {
		hdr_value(x->ctype, sizeof(x->ctype), v, vl);
	} else if (hdr_is(buf, len, "Last-Modified", &v, &vl)) {
		hdr_value(x->lastmod, sizeof(x->lastmod), v, vl);
	} else if (hdr_is(buf, len, "Content-Range", &v, &vl)) {
		hdr_value(x->crange, sizeof(x->crange), v, vl);
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t len = size * nmemb;
	if (x->op == NX_S3_GET && x->hcode >= 200 && x->hcode < 300) {
		if (!x->sink_ready || len > x->sink_len - x->got) {
			fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "response body larger than its Content-Length");
			return 0;
		}
		memcpy(x->sink + x->got, p, len);
		x->got += len;
		return len;
	}
	if (len > RESP_MAX - x->resp_len) {
		fail_in_cb(x, NX_S_IO_ERROR, "InternalError", "response too large");
		return 0;
	}
	if (x->resp_len + len + 1 > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 4096;
		while (cap < x->resp_len + len + 1)
			cap *= 2;
		char *n = realloc(x->resp, cap);
		if (!n)
			return 0;
		x->resp = n;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, p, len);
	x->resp_len += len;
	x->resp[x->resp_len] = '\0';
	return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct nx_s3_xfer *x = ud;
	size_t want = size * nitems, left = x->body_len - x->body_pos;
	if (want > left)
		want = left;
	if (want)
		memcpy(buf, x->body + x->body_pos, want);
	x->body_pos += want;
	return want;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
	struct nx_s3_xfer *x = ud;
	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
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
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	switch (x->op) {
	case NX_S3_HEAD:
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		break;
	case NX_S3_PUT:
	case NX_S3_COPY:
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
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

static char *build_url(const struct nx_s3 *s, const struct nx_s3_req *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fputs(s->cfg.endpoint, f);
	fputc('/', f);
	nx_s3_pct_encode(f, r->bucket, false);
	if (r->op == NX_S3_LIST) {
		char mk[16];
		snprintf(mk, sizeof(mk), "%d", r->max_keys);
		struct nx_s3_qparam q[] = {
			{ "list-type", "2" },
			{ "prefix", r->prefix },
			{ "delimiter", r->delimiter && *r->delimiter ? r->delimiter : NULL },
			{ "continuation-token", r->cont_token && *r->cont_token ? r->cont_token : NULL },
			{ "start-after", r->start_after && *r->start_after ? r->start_after : NULL },
			{ "max-keys", r->max_keys > 0 ? mk : NULL },
		};
		nx_s3_write_query(f, q, sizeof(q) / sizeof(q[0]));
	} else {
		fputc('/', f);
		nx_s3_pct_encode(f, r->key, true);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static struct curl_slist *add_hdr(struct curl_slist *l, bool *ok, const char *name, const char *val)
{
	char *h;
	if (!*ok || asprintf(&h, "%s: %s", name, val) < 0) {
		*ok = false;
		return l;
	}
	struct curl_slist *n = curl_slist_append(l, h);
	free(h);
	if (!n) {
		*ok = false;
		return l;
	}
	return n;
}

static const char *check_req(const struct nx_s3_req *r)
{
	if ((unsigned)r->op >= NX_S3__OPS)
		return "unknown operation";
	if (!r->bucket || !nx_s3_bucket_name_ok(r->bucket))
		return "invalid bucket name";
	if (r->op != NX_S3_LIST && (!r->key || !*r->key || strlen(r->key) > 4096))
		return "invalid key";
	if (r->op == NX_S3_COPY && (!r->src_bucket || !nx_s3_bucket_name_ok(r->src_bucket) ||
	                            !r->src_key || !*r->src_key))
		return "invalid copy source";
	const char *hv[] = { r->range, r->if_match, r->content_type };
	for (size_t i = 0; i < 3; i++)
		if (hv[i] && !nx_s3_header_safe(hv[i]))
			return "control character in a header value";
	if (r->op == NX_S3_GET && !r->sink_alloc)
		return "GET without a sink";
	if (r->max_keys < 0 || r->max_keys > 1000)
		return "invalid MaxKeys";
	return NULL;
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

	const char *bad = check_req(req);
	if (bad) {
		fail_in_cb(x, NX_S_INVALID, "InvalidArgument", bad);
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
	x->url = build_url(s, req);
	x->easy = easy_get(s);
	char hash[65];
	nx_s3_sha256_hex(x->body, x->body_len, hash);
	bool ok = x->url && x->easy;
	x->hdrs = add_hdr(x->hdrs, &ok, "x-amz-content-sha256", hash);
	if (req->op == NX_S3_GET && req->range && *req->range)
		x->hdrs = add_hdr(x->hdrs, &ok, "Range", req->range);
	if (req->op == NX_S3_GET && req->if_match && *req->if_match)
		x->hdrs = add_hdr(x->hdrs, &ok, "If-Match", req->if_match);
	if (req->op == NX_S3_PUT && req->content_type && *req->content_type)
		x->hdrs = add_hdr(x->hdrs, &ok, "Content-Type", req->content_type);
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
				x->hdrs = add_hdr(x->hdrs, &ok, "x-amz-copy-source", src);
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
