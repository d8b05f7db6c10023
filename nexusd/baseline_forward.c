/* SPDX-License-Identifier: MIT */
/*
 * The baseline forwarder (see baseline_forward.h): the part of the
 * conventional stack that carries an invocation from the node's ingress to
 * the HTTP server inside the sandbox, as vHive's front end does for a
 * Firecracker VM.
 *
 * Wire format (one request per invocation, HTTP/1.1, connection kept alive):
 *   POST /invoke HTTP/1.1
 *   Host: 169.254.A.B:8080
 *   Content-Type: application/json
 *   Content-Length: <event bytes>
 *   X-Nexus-Context: <context JSON, one line>
 *   <event>
 * answered by
 *   HTTP/1.1 200 OK ... Content-Length: <n> ... X-Nexus-Status: ok|error
 *   <result JSON | Lambda error JSON>
 *
 * The guest is hostile: the answer is read into a bounded buffer, the header
 * block must fit in 16 KiB and the body in NX_PAYLOAD_MAX + 64 KiB; the
 * status line, Content-Length and X-Nexus-Status are checked strictly and
 * anything else (a malformed answer, extra bytes, an answer while none is
 * expected) is a protocol violation that stops the instance.  The client is
 * deliberately this small: it only ever talks to our own runtime.
 */
#include "baseline_forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <nexus/channel.h>
#include "loop.h"
#include "sandbox_process_priv.h"
#include "sandbox_zygote.h"

#define HDR_MAX       (16 * 1024)
#define BODY_MAX      ((size_t)NX_PAYLOAD_MAX + 64 * 1024)
#define RETRY_MIN_MS  1
#define RETRY_MAX_MS  20

struct fconn {
	uint64_t instance_id;
	struct nx_loop *loop;
	const struct nx_chan_ops *ops;
	void *owner;
	int fd;                     /* -1: not connected */
	bool connected, watched;
	uint32_t addr_be;
	uint64_t inv_id;
	bool pending;               /* a request is in flight */
	char *out;                  /* the request */
	size_t out_len, out_off;
	char *in;                   /* the answer so far */
	size_t in_len, in_cap;
	struct nx_timer *retry;
	unsigned retry_ms;
	struct fconn *next;
};

static struct fconn *conns;

static struct fconn *find(uint64_t id)
{
	for (struct fconn *c = conns; c; c = c->next)
		if (c->instance_id == id)
			return c;
	return NULL;
}

static void drop_socket(struct fconn *c)
{
	if (c->fd >= 0) {
		if (c->watched)
			nx_loop_del_fd(c->loop, c->fd);
		close(c->fd);
	}
	c->fd = -1;
	c->connected = c->watched = false;
	c->in_len = 0;
}

static void on_io(void *arg, uint32_t events);
static int start_connect(struct fconn *c);

static void on_retry(void *arg)
{
	struct fconn *c = arg;
	c->retry = NULL;
	if (c->pending && start_connect(c) < 0 && !c->retry)
		c->retry = nx_loop_timer(c->loop, c->retry_ms, on_retry, c);
}

/* The guest's server is not there (yet): try again shortly, the invocation
 * timeout bounds how long. */
static void retry_later(struct fconn *c)
{
	drop_socket(c);
	c->out_off = 0;
	c->retry_ms = c->retry_ms ? (c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2) : RETRY_MIN_MS;
	if (!c->retry)
		c->retry = nx_loop_timer(c->loop, c->retry_ms, on_retry, c);
}

static int start_connect(struct fconn *c)
{
	int fd = -1, rc = sbp_net_node_socket(SOCK_STREAM | SOCK_NONBLOCK, &fd);
	if (rc < 0)
		return rc;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(SBP_GUEST_HTTP_PORT),
	                           .sin_addr.s_addr = c->addr_be };
	c->fd = fd;
	c->out_off = 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS) {
		retry_later(c);
		return 0;
	}
	if ((rc = nx_loop_add_fd(c->loop, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, on_io, c)) < 0) {
		drop_socket(c);
		return rc;
	}
	c->watched = true;
	return 0;
}

/* One decimal header value, strictly. */
static bool parse_len(const char *p, const char *end, size_t *out)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	size_t v = 0;
	int digits = 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
		if (digits >= 10)
			return false;
		v = v * 10 + (size_t)(*p - '0');
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	*out = v;
	return digits > 0 && p == end;
}

static void violation(struct fconn *c, const char *why)
{
	c->pending = false;
	drop_socket(c);
	c->ops->violation(c->owner, why);
}

/* Is a complete answer in c->in?  1 yes (delivered), 0 not yet, -1 violation (reported). */
static int try_answer(struct fconn *c)
{
	char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!hend)
		return c->in_len > HDR_MAX ? (violation(c, "baseline: HTTP answer header too large"), -1) : 0;
	size_t hlen = (size_t)(hend - c->in) + 4;
	if (hlen > HDR_MAX)
		return violation(c, "baseline: HTTP answer header too large"), -1;
	/* Status line: "HTTP/1.x 200 <printable reason>". */
	char *sl_end = memmem(c->in, hlen, "\r\n", 2);
	if (hlen < 16 || (memcmp(c->in, "HTTP/1.1 200 ", 13) && memcmp(c->in, "HTTP/1.0 200 ", 13)))
		return violation(c, "baseline: the guest's server did not answer 200"), -1;
	if (sl_end - c->in > 256)
		return violation(c, "baseline: malformed status line in the guest's answer"), -1;
	for (const char *p = c->in; p < sl_end; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return violation(c, "baseline: malformed status line in the guest's answer"), -1;
	size_t clen = 0;
	bool have_len = false;
	int status = -1;
	for (char *line = sl_end + 2; line < hend + 2;) {
		char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
		if (!eol)
			break;
		char *colon = memchr(line, ':', (size_t)(eol - line));
		if (colon) {
			size_t nlen = (size_t)(colon - line);
			const char *v = colon + 1;
			if (nlen == 14 && !strncasecmp(line, "Content-Length", 14)) {
				if (have_len || !parse_len(v, eol, &clen))
					return violation(c, "baseline: bad Content-Length in the guest's answer"), -1;
				have_len = true;
			} else if (nlen == 14 && !strncasecmp(line, "X-Nexus-Status", 14)) {
				while (v < eol && *v == ' ')
					v++;
				if (eol - v == 2 && !memcmp(v, "ok", 2))
					status = NX_S_OK;
				else if (eol - v == 5 && !memcmp(v, "error", 5))
					status = NX_S_HANDLER_ERROR;
			} else if (nlen == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
				return violation(c, "baseline: chunked answers are not accepted"), -1;
			}
		}
		line = eol + 2;
	}
	if (!have_len || status < 0)
		return violation(c, "baseline: the guest's answer lacks Content-Length or X-Nexus-Status"), -1;
	if (clen > BODY_MAX)
		return violation(c, "baseline: the guest's answer is too large"), -1;
	if (c->in_len < hlen + clen)
		return 0;
	if (c->in_len > hlen + clen)
		return violation(c, "baseline: extra bytes after the guest's answer"), -1;
	c->pending = false;
	c->in_len = 0;
	c->retry_ms = 0;
	/* The instance manager copies the payload during the call. */
	c->ops->invoke_done(c->owner, c->inv_id, status, c->in + hlen, clen);
	return 1;
}

static void on_io(void *arg, uint32_t events)
{
	struct fconn *c = arg;
	if (!c->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr || (events & (EPOLLERR | EPOLLHUP))) {
			if (c->pending)
				retry_later(c);   /* refused: the server is not listening yet */
			else
				drop_socket(c);
			return;
		}
		c->connected = true;
	}
	if (c->pending && c->out_off < c->out_len && (events & EPOLLOUT)) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0)
			c->out_off += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			/* Not all of it arrived, so the guest cannot have run it: send it
			 * again on a new connection (a guest that died is reported by the
			 * instance manager when its sandbox exits). */
			retry_later(c);
			return;
		}
		if (c->out_off == c->out_len)
			nx_loop_mod_fd(c->loop, c->fd, EPOLLIN | EPOLLRDHUP);
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			if (c->in_cap - c->in_len < 64 * 1024) {
				size_t cap = c->in_cap ? c->in_cap * 2 : 128 * 1024;
				if (cap > HDR_MAX + BODY_MAX + 64 * 1024)
					cap = HDR_MAX + BODY_MAX + 64 * 1024;
				if (cap <= c->in_len) {
					violation(c, "baseline: the guest's answer is too large");
					return;
				}
				char *nb = realloc(c->in, cap);
				if (!nb) {
					violation(c, "baseline: out of memory for the guest's answer");
					return;
				}
				c->in = nb;
				c->in_cap = cap;
			}
			ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
			if (n > 0) {
				if (!c->pending) {
					violation(c, "baseline: the guest sent data while no invocation was running");
					return;
				}
				c->in_len += (size_t)n;
				int r = try_answer(c);
				if (r != 0)
					return;   /* delivered or reported; c may not be touched by the caller after this */
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			/* EOF or error: the guest closed or died.  A crash is reported by
			 * the instance manager when the sandbox exits, a silent server by
			 * the invocation timeout; reconnect on the next invocation.  A
			 * request not sent in full (a stale kept-alive connection) is
			 * sent again on a new one. */
			if (c->pending && c->out_off < c->out_len)
				retry_later(c);
			else
				drop_socket(c);
			return;
		}
	}
}

int nxd_baseline_invoke(struct nx_loop *l, uint64_t instance_id, const struct nx_chan_ops *ops, void *owner,
                        uint64_t inv_id, const void *event, size_t event_len, const char *context_json)
{
	struct fconn *c = find(instance_id);
	if (c && c->pending)
		return -EBUSY;
	if (!c) {
		uint32_t addr;
		int r = sbp_net_guest_addr(instance_id, &addr);
		if (r < 0)
			return r;   /* -EPROTONOSUPPORT: a C function, no HTTP server in the guest */
		c = calloc(1, sizeof *c);
		if (!c)
			return -ENOMEM;
		c->instance_id = instance_id;
		c->fd = -1;
		c->addr_be = addr;
		c->next = conns;
		conns = c;
	}
	c->loop = l;
	c->ops = ops;
	c->owner = owner;
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &c->addr_be, ip, sizeof ip);
	size_t clen = strlen(context_json);
	size_t cap = 256 + clen + event_len;
	char *out = malloc(cap);
	if (!out)
		return -ENOMEM;
	int h = snprintf(out, cap,
	                 "POST /invoke HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nX-Nexus-Context: ", ip, SBP_GUEST_HTTP_PORT, event_len);
	size_t n = (size_t)h;
	/* One header line: no CR/LF may come from the context (names are validated, but be sure). */
	for (size_t i = 0; i < clen; i++)
		out[n++] = context_json[i] == '\r' || context_json[i] == '\n' ? ' ' : context_json[i];
	memcpy(out + n, "\r\n\r\n", 4);
	n += 4;
	memcpy(out + n, event, event_len);
	n += event_len;
	free(c->out);
	c->out = out;
	c->out_len = n;
	c->out_off = 0;
	c->in_len = 0;
	c->inv_id = inv_id;
	c->pending = true;
	if (c->fd >= 0 && c->connected) {
		int r = nx_loop_mod_fd(l, c->fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
		if (r == 0) {
			on_io(c, EPOLLOUT);   /* usually sends it all at once */
			return 0;
		}
		drop_socket(c);
	}
	if (c->fd < 0 && !c->retry) {
		int r = start_connect(c);
		if (r < 0) {
			c->pending = false;
			return r;
		}
	}
	return 0;
}

void nxd_baseline_forget(uint64_t instance_id)
{
	/* A baseline zygote's own sandbox (sandbox_zygote.c) is destroyed on the
	 * launcher thread, and the connection list is the loop thread's: it never
	 * has a connection, so never walk the list for it. */
	if (instance_id >= NX_ZYGOTE_ID_OFFSET)
		return;
	for (struct fconn **pp = &conns; *pp; pp = &(*pp)->next) {
		struct fconn *c = *pp;
		if (c->instance_id != instance_id)
			continue;
		*pp = c->next;
		if (c->retry)
			nx_timer_cancel(c->loop, c->retry);
		drop_socket(c);
		free(c->out);
		free(c->in);
		free(c);
		return;
	}
}
