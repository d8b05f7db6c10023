/* SPDX-License-Identifier: MIT */
/*
 * Internals of the process sandbox driver (sandbox_process*.c), not an
 * interface for the rest of nexusd: use nx_sandbox_process from sandbox.h.
 */
#ifndef NEXUSD_SANDBOX_PROCESS_PRIV_H
#define NEXUSD_SANDBOX_PROCESS_PRIV_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/filter.h>
#include "sandbox.h"

/* Diagnostics: nexusd's logger when linked into nexusd, stderr otherwise
 * (the driver's own test program).  level: 0 error, 1 warn, 2 info, 3 debug. */
void sbp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- cgroups (sandbox_process_cgroup.c) ------------------------------- */

enum sbp_cg_kind { SBP_CG_NONE = 0, SBP_CG_V1 = 1, SBP_CG_V2 = 2 };

/* One instance's cgroup.  v1: a directory under each of the memory, cpuacct and
 * pids hierarchies (an empty path = that controller is not available); v2: one
 * directory.  All empty = the instance runs without a cgroup. */
struct sbp_cgroup {
	enum sbp_cg_kind kind;
	char mem[240], cpu[240], pids[240];   /* v2: only mem is used */
};

/* Which cgroup setup is usable (decided once, cached).  desc gets a one-line
 * description, e.g. "memory cgroup v1 at /sys/fs/cgroup/memory/nexus" or why none. */
enum sbp_cg_kind sbp_cgroup_probe(char *desc, size_t desclen);
/* Create the instance's cgroup `name` with the memory limit (MiB) and a task
 * limit.  0 or -errno with err filled. */
int  sbp_cgroup_create(struct sbp_cgroup *cg, const char *name, uint32_t memory_mb,
                       char *err, size_t errlen);
/* Open (O_WRONLY, close-on-exec) the cgroup.procs file of every hierarchy of
 * the instance's cgroup, -1 where there is none: the child joins by writing "0". */
int  sbp_cgroup_procs_fds(const struct sbp_cgroup *cg, int fds[3], char *err, size_t errlen);
/* CPU time (ns), current memory charge (bytes) and OOM kills so far; fields the
 * cgroup cannot tell are left as the caller set them.  -ENOENT without a cgroup. */
int  sbp_cgroup_usage(const struct sbp_cgroup *cg, uint64_t *cpu_ns, uint64_t *mem_bytes,
                      uint32_t *oom_kills);
/* Remove it (after its tasks are gone). */
void sbp_cgroup_remove(struct sbp_cgroup *cg);

/* ---- seccomp (sandbox_process_seccomp.c) ------------------------------ */

/* The compiled BPF allow-list for a mode, built once with libseccomp in the
 * parent (libseccomp allocates, which a child of a threaded nexusd must not do)
 * and loaded by the child with one seccomp(2) call.  Never freed. */
int sbp_seccomp_prog(enum nx_mode mode, const struct sock_fprog **out, char *err, size_t errlen);

#endif
