/* SPDX-License-Identifier: MIT */
/*
 * Sandbox drivers: what runs one function instance.  The instance manager
 * talks to every driver through this table; adding the microVM driver adds
 * one more table, nothing else.
 *   process — the guest userspace as a host process in fresh user, pid, mount,
 *             ipc, uts and net namespaces, under seccomp and a memory cgroup,
 *             rooted in the guest root filesystem (sandbox_process.c).
 *   vm      — a microVM run by nexus-vmm (sandbox_vm.c, snapshots in snapshot_vm.c).
 */
#ifndef NEXUSD_SANDBOX_H
#define NEXUSD_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum nx_mode { NX_MODE_NEXUS = 0, NX_MODE_BASELINE = 1 };

struct nx_sandbox_spec {
	uint64_t instance_id;
	const char *function_name;
	const char *code_dir;        /* function code (host path), mounted read-only at /var/task */
	const char *rootfs_dir;      /* guest root filesystem (host path), mounted read-only at / */
	const char *runtime_dir;     /* Nexus guest runtime (host path), read-only at /opt/nexus */
	const char *const *argv;     /* command inside the sandbox, e.g.
	                                {"/usr/bin/python3", "/opt/nexus/python/bootstrap.py", NULL} */
	const char *const *envp;     /* environment inside the sandbox (NULL-terminated) */
	uint32_t memory_mb;          /* memory limit (cgroup / VM size) */
	enum nx_mode mode;           /* nexus: no network at all */
	/* Channel fds; the driver makes them fds 3, 4, 5 in the sandbox and sets
	 * NEXUS_REGION_FD / NEXUS_KICK_HOST_FD / NEXUS_KICK_GUEST_FD. */
	int region_fd, kick_host_fd, kick_guest_fd;
	int log_fd;                  /* the sandbox's stdout and stderr */
	/* vm: serve cold starts from a per-function snapshot (nexus:snapshot=vm,
	 * the default there; README-vm.md).  code_id names the code (CodeSha256). */
	bool snapshot;
	const char *code_id;
};

struct nx_sandbox;

struct nx_sandbox_usage {
	uint64_t cpu_ns;             /* CPU time of everything in the sandbox */
	uint64_t mem_bytes;          /* current memory charge */
	uint64_t start_ns;           /* start() until the command was exec'd (the sandbox's own cold-start cost) */
	uint32_t oom_kills;          /* processes the memory limit has killed (0 if the driver cannot tell) */
};

struct nx_sandbox_driver {
	const char *name;
	/* Is the driver usable on this machine?  On false, why says what is missing. */
	int  (*probe)(char *why, size_t whylen);
	/* Start an instance.  Returns 0 or -errno with a message in err. */
	int  (*start)(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen);
	/* An fd that becomes readable when the sandbox has exited (a pidfd). */
	int  (*exit_fd)(const struct nx_sandbox *sb);
	/* Ask it to stop now (SIGKILL); asynchronous, completion via exit_fd. */
	void (*kill)(struct nx_sandbox *sb);
	/* After exit_fd fired: its wait status (as waitpid). */
	int  (*reap)(struct nx_sandbox *sb, int *wstatus);
	int  (*usage)(const struct nx_sandbox *sb, struct nx_sandbox_usage *u);
	/* Release everything (cgroup, mounts, fds); kills first if still running. */
	void (*destroy)(struct nx_sandbox *sb);
	/* Optional, loop thread: the instance said READY.  Returns 1 when the
	 * driver has work to do first (vm: take the function's snapshot) and will
	 * call done(arg) once, from any thread, when it is finished; 0 when there
	 * is nothing to do.  Never blocks. */
	int  (*after_ready)(struct nx_sandbox *sb, void (*done)(void *arg), void *arg);
};

extern const struct nx_sandbox_driver nx_sandbox_process;

#endif
