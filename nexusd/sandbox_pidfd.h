/* SPDX-License-Identifier: MIT */
/*
 * What every sandbox driver does with the one host process it watches (the
 * process sandbox's init, nexus-vmm, the floor's plain process): signal it,
 * reap it through its pidfd, and read its CPU and memory from /proc.
 */
#ifndef NEXUSD_SANDBOX_PIDFD_H
#define NEXUSD_SANDBOX_PIDFD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* SIGKILL through the pidfd, unless already reaped (then the pid may be reused). */
void sbx_pidfd_kill(int pidfd, bool reaped);

/* Reap without blocking (block = false) or wait for the exit (block = true).
 * 0 with *wstatus in waitpid's encoding; -EAGAIN while it still runs; -errno. */
int sbx_pidfd_reap(int pidfd, bool block, int *wstatus);

/* A driver's reap(): reaps pidfd without blocking the first time it has
 * exited (then *reaped = true and *saved holds its status) and answers from
 * *saved after that.  0 with *wstatus (if not NULL); -EAGAIN while it runs. */
int sbx_pidfd_reap_once(int pidfd, bool *reaped, int *saved, int *wstatus);

/* CPU time (user + system) and resident memory of pid from /proc/PID/stat.
 * 0, or -errno (both left untouched) if it cannot be read. */
int sbx_proc_usage(pid_t pid, uint64_t *cpu_ns, uint64_t *mem_bytes);

#endif
