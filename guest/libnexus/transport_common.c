/* SPDX-License-Identifier: MIT */
/*
 * What every transport shares: sleeping on a counter fd (an eventfd, or
 * /dev/nexus, which reads like one) and tearing a transport down.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "transport.h"

int nx_transport_wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (p.revents & (POLLERR | POLLNVAL))
		return -EPIPE;
	if (p.revents & POLLPRI)
		return -ESTALE;   /* /dev/nexus: the region's generation changed: re-attach */
	uint64_t cnt;
	if (read(fd, &cnt, sizeof cnt) < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

void nx_transport_close_all(struct nx_transport *t)
{
	if (t->base)
		munmap(t->base, t->size);
	for (int i = 0; i < 3; i++)
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	memset(t, 0, sizeof *t);
	t->fd[0] = t->fd[1] = t->fd[2] = -1;
}
