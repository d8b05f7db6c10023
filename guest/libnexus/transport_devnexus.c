/* SPDX-License-Identifier: MIT */
/*
 * The microVM transport: the region is the Nexus device's shared-memory region,
 * mapped through /dev/nexus (guest/kernel/nexus/nexus_dev.c); kick = a write to
 * /dev/nexus (the driver's 4-byte doorbell write is a KVM ioeventfd in nexusd);
 * wait = poll + read on /dev/nexus (the interrupt is a KVM irqfd nexusd
 * signals).  Same contract as transport_eventfd.c; see include/nexus/nexus_dev.h.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <nexus/channel.h>
#include <nexus/nexus_dev.h>

#define DEV 0   /* fd[0] = /dev/nexus; fd[1..3] unused */

static int dev_kick(struct nx_transport *t)
{
	uint64_t one = 1;
	for (;;) {
		ssize_t n = write(t->fd[DEV], &one, sizeof one);
		if (n == (ssize_t)sizeof one)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -(n < 0 ? errno : EIO);
	}
}

static int dev_wait(struct nx_transport *t, int timeout_ms)
{
	return nx_transport_wait_fd(t->fd[DEV], POLLIN | POLLPRI, timeout_ms);
}

/* Restore gave the device a fresh region at the same guest-physical address,
 * so our mapping stays valid; NEXUS_IOC_INFO acknowledges the new generation
 * (no more ESTALE/POLLPRI) and tells its size, which must not have changed. */
static int dev_reattach(struct nx_transport *t)
{
	struct nexus_dev_info info;
	if (ioctl(t->fd[DEV], NEXUS_IOC_INFO, &info) < 0)
		return -errno;
	return info.region_size == t->size ? 0 : -EPROTO;
}

int nx_transport_devnexus_open(struct nx_transport *t, const char *path)
{
	memset(t, 0, sizeof *t);
	t->fd[0] = t->fd[1] = t->fd[2] = t->fd[3] = -1;
	t->kick = dev_kick;
	t->wait = dev_wait;
	t->reattach = dev_reattach;
	t->close = nx_transport_close_all;
	t->fd[DEV] = open(path ? path : NX_DEVNEXUS_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd[DEV] < 0)
		return -errno;
	struct nexus_dev_info info;
	if (ioctl(t->fd[DEV], NEXUS_IOC_INFO, &info) < 0) {   /* also acknowledges the generation */
		int e = -errno;
		nx_transport_close_all(t);
		return e;
	}
	if (info.region_size < NX_REGION_MIN || info.region_size > NX_REGION_MAX) {
		nx_transport_close_all(t);
		return -EINVAL;
	}
	void *p = mmap(NULL, (size_t)info.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd[DEV], 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		nx_transport_close_all(t);
		return e;
	}
	t->base = p;
	t->size = info.region_size;
	return 0;
}
