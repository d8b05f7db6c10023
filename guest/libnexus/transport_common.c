/* SPDX-License-Identifier: MIT */
/*
 * What every transport shares: sleeping on a counter fd (an eventfd, or
 * /dev/nexus, which reads like one) and tearing a transport down.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
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
	for (int i = 0; i < 4; i++)
		if (t->fd[i] >= 0)
			close(t->fd[i]);
	memset(t, 0, sizeof *t);
	t->fd[0] = t->fd[1] = t->fd[2] = t->fd[3] = -1;
}

/*
 * The wait policy.  A waiting thread (the next invocation, or the completion
 * of a storage call) spins on the to-guest ring for spin_ns, then arms the
 * ring and sleeps on the doorbell.  Spinning saves the wake-up (an eventfd
 * write by the host, a context switch here) when the answer comes within the
 * window, and costs a CPU for the whole window when it does not.
 *
 * Measured on the 2-CPU PVM node of docs/results.md (bench/ab.py: one node
 * per policy, nexus-s3peer storage, 6 interleaved rounds of 300 warm calls):
 *
 *   spin µs:yield   hello p50 / CPU per call    wordcount 1 KiB p50 / CPU
 *   50:1 (old)      0.203 ms / 0.198 ms         1.145 ms / 0.917 ms
 *   50:0            0.222 ms / 0.209 ms         1.045 ms / 0.952 ms
 *   10:0            0.165 ms / 0.141 ms         0.924 ms / 0.802 ms
 *    2:0            0.151 ms / 0.131 ms         0.885 ms / 0.747 ms
 *    0:0 (now)      0.139 ms / 0.109 ms         0.871 ms / 0.709 ms
 *
 * A storage call takes 150 µs or more and the next invocation comes one HTTP
 * round trip later, so a spin window almost never caught an answer: it only
 * burnt the CPU that nexusd (and the other instances) needed on a node with
 * fewer CPUs than runnable threads, which made the answer *later*.  With 0 µs
 * the poller still checks the ring for 64 pauses (about a microsecond) before
 * it sleeps, which catches an answer already on its way.  On a node with idle
 * CPUs to spare a short spin may pay again: NEXUS_SPIN_US / NEXUS_SPIN_YIELD
 * (or -DNX_SPIN_US_DEFAULT=... at build time) set it.
 */
#ifndef NX_SPIN_US_DEFAULT
#define NX_SPIN_US_DEFAULT 0
#endif
#ifndef NX_SPIN_YIELD_DEFAULT
#define NX_SPIN_YIELD_DEFAULT 0
#endif

uint64_t nx_transport_spin_ns(void)
{
	const char *s = getenv("NEXUS_SPIN_US");
	uint64_t us = NX_SPIN_US_DEFAULT;
	if (s && *s)
		us = strtoull(s, NULL, 10);
	if (us > 1000000)   /* a second of spinning is a configuration error */
		us = 1000000;
	return us * 1000u;
}

int nx_transport_spin_yield(void)
{
	const char *s = getenv("NEXUS_SPIN_YIELD");
	if (!s || !*s)
		return NX_SPIN_YIELD_DEFAULT;
	return strcmp(s, "0") != 0;
}
