/* SPDX-License-Identifier: MIT */
/*
 * How libnexus reaches its channel: the mapped region and the two doorbells.
 * This is the only transport-specific part of the guest side.  Today the one
 * implementation is transport_eventfd.c (process sandbox: a memfd and two
 * eventfds inherited as fds); the microVM adds one more file (e.g.
 * transport_devnexus.c: mmap /dev/nexus, kick = doorbell write, wait = read)
 * and one more open function here.
 */
#ifndef LIBNEXUS_TRANSPORT_H
#define LIBNEXUS_TRANSPORT_H

#include <stdint.h>

struct nx_transport {
	void *base;          /* the whole region, mapped shared */
	uint64_t size;
	int fd[4];           /* transport-private; -1 = unused */
	/* Ring the host's doorbell. */
	int  (*kick)(struct nx_transport *t);
	/* Block until the host rings ours (or timeout_ms, < 0 = forever).
	 * Returns 0 when woken (possibly spuriously), -ETIMEDOUT, or -errno. */
	int  (*wait)(struct nx_transport *t, int timeout_ms);
	/* The region's generation changed under us (snapshot restore: same mapping,
	 * fresh contents): acknowledge it and check the mapping still covers the
	 * whole region.  0 or -errno (then the channel is broken). */
	int  (*reattach)(struct nx_transport *t);
	void (*close)(struct nx_transport *t);
};

/* Process sandbox: region memfd + eventfds.  dup != 0 duplicates the fds
 * (the caller keeps its own); otherwise they are adopted. */
/* Shared by the transports (transport_common.c).  wait_fd: poll fd for events,
 * then consume its counter; 0, -ETIMEDOUT, -EPIPE, -ESTALE (POLLPRI) or -errno. */
int  nx_transport_wait_fd(int fd, short events, int timeout_ms);
/* Unmap the region, close every fd, reset *t. */
void nx_transport_close_all(struct nx_transport *t);
/* The wait policy (transport_common.c): how long a waiting thread spins on
 * the ring before it sleeps on its doorbell (NEXUS_SPIN_US overrides), and
 * whether it offers the CPU while spinning (NEXUS_SPIN_YIELD). */
uint64_t nx_transport_spin_ns(void);
int nx_transport_spin_yield(void);

int nx_transport_eventfd_open(struct nx_transport *t, int region_fd, int kick_host_fd,
                              int kick_guest_fd, int dup);

/* Same, with the fds named by NEXUS_REGION_FD / NEXUS_KICK_HOST_FD /
 * NEXUS_KICK_GUEST_FD.  -ENOENT when they are not set. */
int nx_transport_eventfd_open_env(struct nx_transport *t);

/* MicroVM: the Nexus device, /dev/nexus (path NULL) — transport_devnexus.c.
 * wait() returns -ESTALE when the region's generation changed. */
#define NX_DEVNEXUS_PATH "/dev/nexus"
int nx_transport_devnexus_open(struct nx_transport *t, const char *path);

#endif
