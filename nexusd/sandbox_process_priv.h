/* SPDX-License-Identifier: MIT */
/*
 * Internals of the process sandbox driver (sandbox_process*.c), not an
 * interface for the rest of nexusd: use nx_sandbox_process from sandbox.h.
 */
#ifndef NEXUSD_SANDBOX_PROCESS_PRIV_H
#define NEXUSD_SANDBOX_PROCESS_PRIV_H

#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/filter.h>
#include "sandbox.h"

/* Diagnostics: nexusd's logger when linked into nexusd, stderr otherwise
 * (the driver's own test program).  level: 0 error, 1 warn, 2 info, 3 debug. */
void sbp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the child, from clone to execve (sandbox_process_child.c) ---------- */

#define SBP_NDEV 5

/* The device nodes and symlinks of the sandbox's /dev. */
struct sbp_dev_node { const char *name; unsigned major, minor; };
struct sbp_dev_link { const char *name, *target; };
extern const struct sbp_dev_node sbp_dev_nodes[SBP_NDEV];
extern const struct sbp_dev_link sbp_dev_links[SBP_NDEV];

/* Everything the child needs, prepared by the parent (the child must not
 * allocate); the child writes `failed`/`err` before it dies on an error. */
struct sbp_child_ctx {
	int region_fd, kick_host_fd, kick_guest_fd, log_fd;
	int userns_fd;                  /* the prepared user namespace */
	int netns_fd;                   /* baseline: the prepared net namespace, else -1 */
	int cg_fds[3];                  /* cgroup.procs of each hierarchy, or -1 */
	const char *const *argv;
	char *const *envp;
	const struct sock_fprog *prog;
	char root[PATH_MAX], code[PATH_MAX], runtime[PATH_MAX];
	char m_task[PATH_MAX], m_opt[PATH_MAX], m_tmp[PATH_MAX], m_dev[PATH_MAX], m_proc[PATH_MAX];
	char dev_nodes[SBP_NDEV][PATH_MAX];   /* absolute host paths of the nodes and links */
	char dev_links[SBP_NDEV][PATH_MAX];
	char tmp_opts[64];
	volatile int failed;
	char err[600];
	size_t errn;
};

/* clone() entry of the sandbox's init (arg: struct sbp_child_ctx): builds the
 * sandbox and execs the function's command; never returns on success. */
int sbp_child_main(void *arg);
/* clone() entry that exits at once: its namespaces outlive it while it is an
 * unreaped zombie, long enough to write its id maps and open them. */
int sbp_userns_helper(void *arg);

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

/* ---- baseline network (sandbox_process_net.c, sandbox_process_relay.c) --- */

/* One baseline sandbox's network: its net namespace (joined by the child)
 * with eth0 = a veth whose peer is on the node namespace's bridge. */
struct sbp_net {
	int netns_fd;           /* -1 when none */
	int slot;               /* address slot, -1 when none */
	uint32_t addr_be;       /* eth0's address (169.254.A.B), network order */
	int veth_created;
};

/* Lazily makes the node namespace (bridge nxbr0 169.254.0.1/16), then the
 * instance's namespace and veth pair.  serves_http: the guest runs the Python
 * runtime, which serves invocations over HTTP.  0 or -errno with err filled. */
int  sbp_net_create(uint64_t instance_id, int serves_http, struct sbp_net *net, char *err, size_t errlen);
/* Delete the veth, drop the namespace fd, free the slot (idempotent). */
void sbp_net_destroy(struct sbp_net *net);
/* A TCP socket listening on the baseline net's eth0 address:port, created
 * inside its namespace (the zygote hands it to a forked baseline instance).
 * 0 and *fd_out, or -errno. */
int  sbp_net_listen_socket(const struct sbp_net *net, int port, int *fd_out);
/* The guest address of a live baseline instance (network order); -ENOENT if
 * none, -EPROTONOSUPPORT if its guest serves no HTTP (not the Python runtime). */
int  sbp_net_guest_addr(uint64_t instance_id, uint32_t *addr_be);
/* 169.254.0.1 (network order): the bridge, where the relay listens. */
uint32_t sbp_net_bridge_addr(void);
/* A socket (AF_INET, type) created inside the node namespace. */
int  sbp_net_node_socket(int type, int *fd_out);
/* Start (once) the S3 relay for endpoint url; relay_url gets the URL a guest
 * uses instead ("http://169.254.0.1:9000").  0 or -errno with err filled. */
int  sbp_relay_endpoint(const char *url, char *relay_url, size_t relay_len, char *err, size_t errlen);

/* The port the guest's HTTP server listens on (on eth0's address). */
#define SBP_GUEST_HTTP_PORT 8080

#endif
