/* SPDX-License-Identifier: MIT */
/*
 * Baseline mode's way to storage: a TCP relay from the node network namespace
 * to the real S3 endpoint (docs/baseline.md).
 *
 * The S3 server listens on the root namespace's loopback, which no sandbox
 * can reach.  The relay listens on 169.254.0.1:9000 inside the node namespace
 * (the socket was created there) and, for each connection a guest's boto3
 * opens, connects to the real endpoint from the root namespace and moves the
 * bytes both ways with splice(2) through a pipe per direction: no copy into
 * user space.  It stands in for what the host kernel does for a Firecracker VM
 * (tap -> bridge/NAT -> loopback), so it runs on one dedicated thread named
 * "nx-relay" whose CPU time a benchmark reads apart from the rest of nexusd
 * (/proc/<nexusd>/task/<tid>/stat where comm is nx-relay).
 *
 * The relay is transparent TCP: boto3 signs its requests for the Host it
 * sends (169.254.0.1:9000) and the S3 server checks the signature against
 * the same header, so nothing needs rewriting.
 */
#include "sandbox_process_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define RELAY_PORT  9000
#define PIPE_CHUNK  (256 * 1024)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool started;
static int start_err;
static char start_msg[240];
static char target_url[256];            /* the endpoint the relay serves */
static struct sockaddr_storage target;  /* resolved once */
static socklen_t target_len;
static int listen_fd = -1, ep = -1;

/* One direction of one connection: from -> pipe -> to. */
struct dir {
	int from, to;
	int pipe[2];
	size_t inpipe;
	bool eof, done;
};

struct conn {
	struct dir d[2];        /* 0: guest -> server, 1: server -> guest */
	int fds[2];             /* guest, server */
	bool dead;
	struct conn *next_dead;
	struct conn *prev, *next;   /* all live connections (relay thread only) */
};

/* Live connections: their only other reference is the kernel's epoll set. */
static struct conn *live;

static int set_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void conn_free(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (live == c)
		live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	for (int i = 0; i < 2; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);   /* also leaves the epoll set */
		for (int j = 0; j < 2; j++)
			if (c->d[i].pipe[j] >= 0)
				close(c->d[i].pipe[j]);
	}
	free(c);
}

/* Move what can be moved; false on a hard error (the connection is dropped). */
static bool pump(struct dir *d)
{
	for (;;) {
		bool progress = false;
		if (d->inpipe > 0) {
			ssize_t n = splice(d->pipe[0], NULL, d->to, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->inpipe -= (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return false;
			}
		}
		if (d->inpipe == 0 && d->eof) {
			if (!d->done) {
				shutdown(d->to, SHUT_WR);
				d->done = true;
			}
			return true;
		}
		if (!d->eof) {
			ssize_t n = splice(d->from, NULL, d->pipe[1], NULL, PIPE_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->inpipe += (size_t)n;
				progress = true;
			} else if (n == 0) {
				d->eof = true;
				progress = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				return false;
			}
		}
		if (!progress)
			return true;
	}
}

static void accept_all(void)
{
	for (;;) {
		int g = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (g < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;   /* EAGAIN, or EMFILE: try again on the next event */
		}
		struct conn *c = calloc(1, sizeof *c);
		int s = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		bool ok = c && s >= 0;
		if (c) {
			c->fds[0] = g;
			c->fds[1] = s;
			for (int i = 0; i < 2; i++)
				c->d[i].pipe[0] = c->d[i].pipe[1] = -1;
		}
		/* A connect in progress is fine: splicing into it waits for EPOLLOUT. */
		if (ok && connect(s, (struct sockaddr *)&target, target_len) < 0 && errno != EINPROGRESS)
			ok = false;
		for (int i = 0; ok && i < 2; i++)
			ok = pipe2(c->d[i].pipe, O_NONBLOCK | O_CLOEXEC) == 0;
		if (ok) {
			fcntl(c->d[0].pipe[1], F_SETPIPE_SZ, PIPE_CHUNK);
			fcntl(c->d[1].pipe[1], F_SETPIPE_SZ, PIPE_CHUNK);
			set_nodelay(g);
			set_nodelay(s);
			c->d[0].from = g, c->d[0].to = s;
			c->d[1].from = s, c->d[1].to = g;
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
			ok = epoll_ctl(ep, EPOLL_CTL_ADD, g, &ev) == 0 && epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0;
		}
		if (ok) {
			c->next = live;
			if (live)
				live->prev = c;
			live = c;
		} else {
			if (c)
				conn_free(c);
			else {
				close(g);
				if (s >= 0)
					close(s);
			}
		}
	}
}

static void *relay_main(void *arg)
{
	(void)arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sbp_log(0, "baseline relay: epoll_wait: %s; the relay stops", strerror(errno));
			return NULL;
		}
		struct conn *dead = NULL;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				accept_all();
				continue;
			}
			struct conn *c = evs[i].data.ptr;
			if (c->dead)
				continue;   /* freed after this batch */
			bool ok = pump(&c->d[0]) && pump(&c->d[1]);
			bool err = evs[i].events & EPOLLERR;
			if (!ok || err || (c->d[0].done && c->d[1].done)) {
				c->dead = true;
				c->next_dead = dead;
				dead = c;
			}
		}
		while (dead) {
			struct conn *c = dead;
			dead = c->next_dead;
			conn_free(c);
		}
	}
}

/* "http://host:port/..." -> host, port (default 80/443). */
static int parse_url(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *p = strstr(url, "://");
	bool https = !strncmp(url, "https://", 8);
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	const char *hostp = p, *colon = NULL;
	size_t hl;
	if (*p == '[') {   /* [v6]:port */
		const char *close_br = memchr(p, ']', n);
		if (!close_br)
			return -EINVAL;
		hostp = p + 1;
		hl = (size_t)(close_br - hostp);
		if (close_br + 1 < p + n && close_br[1] == ':')
			colon = close_br + 1;
	} else {
		colon = memchr(p, ':', n);
		hl = colon ? (size_t)(colon - p) : n;
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, hostp, hl);
	host[hl] = 0;
	if (colon) {
		size_t pl = (size_t)(p + n - colon - 1);
		if (pl == 0 || pl >= portlen)
			return -EINVAL;
		memcpy(port, colon + 1, pl);
		port[pl] = 0;
	} else {
		snprintf(port, portlen, "%s", https ? "443" : "80");
	}
	return 0;
}

static int relay_init(const char *url, char *err, size_t errlen)
{
	char host[256], port[16];
	int rc;
	if (parse_url(url, host, sizeof host, port, sizeof port) < 0) {
		snprintf(err, errlen, "baseline relay: cannot parse the S3 endpoint '%.100s'", url);
		return -EINVAL;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0 || !ai) {
		snprintf(err, errlen, "baseline relay: resolve %.100s:%.15s: %s", host, port, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	memcpy(&target, ai->ai_addr, ai->ai_addrlen);
	target_len = ai->ai_addrlen;
	freeaddrinfo(ai);

	int s = -1;
	if ((rc = sbp_net_node_socket(SOCK_STREAM | SOCK_NONBLOCK, &s)) < 0) {
		snprintf(err, errlen, "baseline relay: listening socket in the node namespace: %s", strerror(-rc));
		return rc;
	}
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(RELAY_PORT),
	                           .sin_addr.s_addr = sbp_net_bridge_addr() };
	if (bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(s, 512) < 0) {
		rc = -errno;
		snprintf(err, errlen, "baseline relay: listen on 169.254.0.1:%d: %s", RELAY_PORT, strerror(errno));
		close(s);
		return rc;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "baseline relay: epoll_create1: %s", strerror(errno));
		close(s);
		return rc;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	listen_fd = s;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The relay must not take the launcher's signal mask quirks: block all,
	 * nexusd's signals are handled by its loop's signalfd. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &attr, relay_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc) {
		snprintf(err, errlen, "baseline relay: thread: %s", strerror(rc));
		close(s);
		close(ep);
		listen_fd = ep = -1;
		return -rc;
	}
	pthread_setname_np(t, "nx-relay");
	snprintf(target_url, sizeof target_url, "%s", url);
	sbp_log(2, "baseline relay: 169.254.0.1:%d (node namespace) -> %s:%s", RELAY_PORT, host, port);
	return 0;
}

int sbp_relay_endpoint(const char *url, char *relay_url, size_t relay_len, char *err, size_t errlen)
{
	pthread_mutex_lock(&mu);
	int rc = 0;
	if (!started && !start_err) {
		rc = relay_init(url, start_msg, sizeof start_msg);
		if (rc < 0)
			start_err = rc;
		else
			started = true;
	}
	if (start_err) {
		rc = start_err;
		snprintf(err, errlen, "%s", start_msg);
	} else if (strcmp(url, target_url) != 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "baseline relay: serves %.100s, cannot also serve %.100s (one S3 endpoint per nexusd)",
		         target_url, url);
	}
	pthread_mutex_unlock(&mu);
	if (rc == 0)
		snprintf(relay_url, relay_len, "%s://169.254.0.1:%d", strncmp(url, "https://", 8) ? "http" : "https",
		         RELAY_PORT);
	return rc;
}
