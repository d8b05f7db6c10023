/* SPDX-License-Identifier: MIT */
/*
 * The process-sandbox transport: the region is a memfd the sandbox inherited,
 * the doorbells are two eventfds (guest->host, host->guest).  The eventfds
 * may be non-blocking (O_NONBLOCK is shared with nexusd's open file
 * description).  Waiting is one epoll_wait on an edge-triggered epoll set
 * holding the host's doorbell: every write to an eventfd is a new edge, so
 * the counter never needs reading — poll() + read() was two syscalls per
 * wait, this is one.  (The counter only grows; at its saturation, after 2^64
 * kicks, the host's write fails with EAGAIN, which it ignores.)
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nexus/channel.h>

enum { REGION, KICK_HOST, KICK_GUEST, WAITSET };

static int efd_kick(struct nx_transport *t)
{
	uint64_t one = 1;
	for (;;) {
		ssize_t n = write(t->fd[KICK_HOST], &one, sizeof one);
		if (n == (ssize_t)sizeof one)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		/* EAGAIN: the counter is saturated, the host will wake anyway. */
		return (n < 0 && errno == EAGAIN) ? 0 : -(n < 0 ? errno : EIO);
	}
}

static int efd_wait(struct nx_transport *t, int timeout_ms)
{
	struct epoll_event ev;
	int r;
	do
		r = epoll_wait(t->fd[WAITSET], &ev, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return (ev.events & (EPOLLERR | EPOLLHUP)) ? -EPIPE : 0;
}

/* A host that reset the region in place (tests: fakehost_new_generation) keeps
 * the same memfd: nothing to acknowledge, only the size must be unchanged. */
static int efd_reattach(struct nx_transport *t)
{
	struct stat st;
	if (fstat(t->fd[REGION], &st) < 0)
		return -errno;
	return (uint64_t)st.st_size == t->size ? 0 : -EPROTO;
}

int nx_transport_eventfd_open(struct nx_transport *t, int region_fd, int kick_host_fd,
                              int kick_guest_fd, int dup)
{
	int in[3] = { region_fd, kick_host_fd, kick_guest_fd };
	memset(t, 0, sizeof *t);
	t->fd[0] = t->fd[1] = t->fd[2] = t->fd[3] = -1;
	t->kick = efd_kick;
	t->wait = efd_wait;
	t->reattach = efd_reattach;
	t->close = nx_transport_close_all;
	for (int i = 0; i < 3; i++) {
		if (in[i] < 0) {
			nx_transport_close_all(t);
			return -EBADF;
		}
		t->fd[i] = dup ? fcntl(in[i], F_DUPFD_CLOEXEC, 3) : in[i];
		if (t->fd[i] < 0) {
			int e = -errno;
			nx_transport_close_all(t);
			return e;
		}
	}
	/* Edge-triggered: a host kick that came before we attached (a non-zero
	 * counter) is reported once, as a spurious wake-up. */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	t->fd[WAITSET] = epoll_create1(EPOLL_CLOEXEC);
	if (t->fd[WAITSET] < 0 || epoll_ctl(t->fd[WAITSET], EPOLL_CTL_ADD, t->fd[KICK_GUEST], &ev) < 0) {
		int e = -errno;
		nx_transport_close_all(t);
		return e;
	}
	struct stat st;
	if (fstat(t->fd[REGION], &st) < 0) {
		int e = -errno;
		nx_transport_close_all(t);
		return e;
	}
	if (st.st_size < (off_t)NX_REGION_MIN || st.st_size > (off_t)NX_REGION_MAX) {
		nx_transport_close_all(t);
		return -EINVAL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd[REGION], 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		nx_transport_close_all(t);
		return e;
	}
	t->base = p;
	t->size = (uint64_t)st.st_size;
	return 0;
}

static int env_fd(const char *name)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	return (*end || v < 0 || v > 1 << 20) ? -1 : (int)v;
}

int nx_transport_eventfd_open_env(struct nx_transport *t)
{
	int r = env_fd(NX_ENV_REGION_FD), h = env_fd(NX_ENV_KICK_HOST_FD), g = env_fd(NX_ENV_KICK_GUEST_FD);
	if (r < 0 || h < 0 || g < 0)
		return -ENOENT;
	return nx_transport_eventfd_open(t, r, h, g, 0);
}
