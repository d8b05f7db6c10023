/* SPDX-License-Identifier: MIT */
/*
 * The process sandbox's init between clone() and execve(): it runs in
 * nexusd's memory (CLONE_VM|CLONE_VFORK) on its own stack, so it makes only
 * system calls: no malloc, no stdio, no libseccomp, raw set*id (glibc's would
 * signal nexusd's threads), no ASan instrumentation.  The order of the steps
 * and why is in sandbox_process.c's header comment.
 */
#include "sandbox_process_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

const struct sbp_dev_node sbp_dev_nodes[SBP_NDEV] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 },
};
const struct sbp_dev_link sbp_dev_links[SBP_NDEV] = {
	{ "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
	{ "stderr", "/proc/self/fd/2" },
	{ "shm", "/tmp" },   /* POSIX semaphores/shm (multiprocessing) land in the sandbox's /tmp */
};

#define CHILD __attribute__((no_sanitize_address, noinline))

CHILD static void cm_add(struct sbp_child_ctx *c, const char *s)
{
	while (s && *s && c->errn < sizeof c->err - 1)
		c->err[c->errn++] = *s++;
	c->err[c->errn] = 0;
}

/* Report "<what> <path>: <error>" to the (suspended) parent and die. */
CHILD static __attribute__((noreturn)) void child_fail(struct sbp_child_ctx *c, const char *what, const char *path, int err)
{
	c->errn = 0;
	cm_add(c, what);
	if (path) {
		cm_add(c, " ");
		cm_add(c, path);
	}
	cm_add(c, ": ");
	const char *desc = strerrordesc_np(err);   /* a static string */
	cm_add(c, desc ? desc : "unknown error");
	c->failed = 1;
	_exit(127);
}

/* Bind src at dst read-only, nosuid, nodev (a bind ignores flags: remount to apply). */
CHILD static void bind_ro(struct sbp_child_ctx *c, const char *src, const char *dst, const char *what)
{
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
		child_fail(c, what, src, errno);
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		child_fail(c, what, "(remount read-only)", errno);
}

/* Move fd to 10 or above so that placing 0..5 cannot clobber it. */
CHILD static int lift(struct sbp_child_ctx *c, int fd)
{
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	if (n < 0)
		child_fail(c, "dup channel fd", NULL, errno);
	return n;
}

CHILD static void place(struct sbp_child_ctx *c, int from, int to)
{
	if (dup2(from, to) < 0)   /* dup2 leaves `to` without close-on-exec */
		child_fail(c, "dup2 channel fd", NULL, errno);
}

CHILD int sbp_child_main(void *arg)
{
	struct sbp_child_ctx *c = arg;

	/* nexusd's signal state must not reach the function, and no nexusd handler
	 * may ever run here (it would run on nexusd's memory): reset every handler
	 * (our own copy: no CLONE_SIGHAND), then unblock (the parent blocked all). */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < _NSIG; sig++)
		sigaction(sig, &dfl, NULL);   /* EINVAL for SIGKILL/SIGSTOP and glibc's internals: fine */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* fds: 0 = /dev/null, 1+2 = log, 3/4/5 = region, kick host, kick guest;
	 * everything else (all of nexusd's sockets and files) closes on exec. */
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		child_fail(c, "open", "/dev/null", errno);
	int region = lift(c, c->region_fd), kh = lift(c, c->kick_host_fd), kg = lift(c, c->kick_guest_fd);
	int logfd = lift(c, c->log_fd), nul = lift(c, devnull);
	place(c, nul, 0);
	place(c, logfd, 1);
	place(c, logfd, 2);
	place(c, region, 3);
	place(c, kh, 4);
	place(c, kg, 5);
	if (syscall(SYS_close_range, 6u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		for (int fd = 6; fd < 65536; fd++)   /* pre-5.11 kernels */
			fcntl(fd, F_SETFD, FD_CLOEXEC);

	if (sethostname("nexus-sandbox", 13) < 0)
		child_fail(c, "sethostname", NULL, errno);

	/* Mounts.  Nothing we do here may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(c, "make mounts private", "/", errno);
	/* The root: a bind of the rootfs onto itself (pivot_root needs a mount
	 * point), made read-only only after the mounts inside it are in place. */
	if (mount(c->root, c->root, NULL, MS_BIND, NULL) < 0)
		child_fail(c, "mount rootfs", c->root, errno);
	if (c->code[0])
		bind_ro(c, c->code, c->m_task, "mount /var/task from");
	if (c->runtime[0])
		bind_ro(c, c->runtime, c->m_opt, "mount /opt/nexus from");
	if (mount("tmpfs", c->m_tmp, "tmpfs", MS_NOSUID | MS_NODEV, c->tmp_opts) < 0)
		child_fail(c, "mount tmpfs at /tmp", c->tmp_opts, errno);
	/* /dev: a tiny tmpfs with the five harmless character devices and the usual
	 * symlinks, then read-only.  No tty, no ptmx, no block devices. */
	if (mount("tmpfs", c->m_dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=32,mode=755") < 0)
		child_fail(c, "mount tmpfs at /dev", NULL, errno);
	umask(0);
	for (int i = 0; i < SBP_NDEV; i++) {
		if (mknod(c->dev_nodes[i], S_IFCHR | 0666, makedev(sbp_dev_nodes[i].major, sbp_dev_nodes[i].minor)) < 0)
			child_fail(c, "mknod", c->dev_nodes[i], errno);
		if (symlink(sbp_dev_links[i].target, c->dev_links[i]) < 0)
			child_fail(c, "symlink", c->dev_links[i], errno);
	}
	umask(022);
	if (mount(NULL, c->m_dev, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=32,mode=755") < 0)
		child_fail(c, "remount /dev read-only", NULL, errno);
	/* A /proc of the new pid namespace: the sandbox sees only its own processes. */
	if (mount("proc", c->m_proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		child_fail(c, "mount /proc", NULL, errno);
	if (mount(NULL, c->root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		child_fail(c, "remount rootfs read-only", c->root, errno);
	/* Swap roots and drop the host's tree: after this the host filesystem is
	 * unreachable (no fd, no cwd, no mount refers to it). */
	if (chdir(c->root) < 0)
		child_fail(c, "chdir", c->root, errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		child_fail(c, "pivot_root", c->root, errno);
	if (umount2(".", MNT_DETACH) < 0)
		child_fail(c, "detach the old root", NULL, errno);
	if (chdir("/") < 0)
		child_fail(c, "chdir", "/", errno);

	/* Network.  Nexus mode: the new net namespace (CLONE_NEWNET) has only
	 * `lo`, left down.  Baseline mode: join the namespace prepared by nexusd
	 * (lo + eth0, a veth to the node bridge, already addressed and up); it
	 * belongs to the initial user namespace, so the function cannot change it. */
	if (c->netns_fd >= 0 && setns(c->netns_fd, CLONE_NEWNET) < 0)
		child_fail(c, "setns into the sandbox network namespace", NULL, errno);

	/* Into the cgroup ("0" = the writer), then into our own user namespace and
	 * a cgroup namespace rooted at that cgroup. */
	for (int i = 0; i < 3; i++)
		if (c->cg_fds[i] >= 0 && write(c->cg_fds[i], "0", 1) != 1)
			child_fail(c, "join the instance's cgroup", NULL, errno);
	if (syscall(SYS_setgroups, 0, NULL) < 0)   /* before: afterwards setgroups is denied */
		child_fail(c, "setgroups", NULL, errno);
	if (setns(c->userns_fd, CLONE_NEWUSER) < 0)
		child_fail(c, "setns into the sandbox user namespace", NULL, errno);
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail(c, "unshare cgroup namespace", NULL, errno);
	/* Raw syscalls: glibc's wrappers would broadcast the change to "all
	 * threads", i.e. nexusd's. */
	if (syscall(SYS_setresgid, 0, 0, 0) < 0)
		child_fail(c, "setresgid 0 (sandbox gid)", NULL, errno);
	if (syscall(SYS_setresuid, 0, 0, 0) < 0)
		child_fail(c, "setresuid 0 (sandbox uid)", NULL, errno);

	/* No capabilities, not even in our own user namespace, and exec of a
	 * root-owned or setuid file cannot give any back. */
	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
	          SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0) < 0)
		child_fail(c, "prctl PR_SET_SECUREBITS", NULL, errno);
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) < 0)
		child_fail(c, "capset (drop all)", NULL, errno);
	/* Die with nexusd (set after the uid change, which would clear it). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(c, "prctl PR_SET_PDEATHSIG", NULL, errno);
	/* No core files; Lambda's 1024 open files; at most 512 tasks for this
	 * instance's uid (the pids cgroup says the same, this also holds without it). */
	struct rlimit nocore = { 0, 0 }, files = { 1024, 1024 }, tasks = { 512, 512 };
	setrlimit(RLIMIT_CORE, &nocore);
	setrlimit(RLIMIT_NOFILE, &files);
	setrlimit(RLIMIT_NPROC, &tasks);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(c, "prctl PR_SET_NO_NEW_PRIVS", NULL, errno);
	/* Last: from here on only the allow-list. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, c->prog) < 0)
		child_fail(c, "seccomp", NULL, errno);
	execve(c->argv[0], (char *const *)c->argv, c->envp);
	child_fail(c, "execve", c->argv[0], errno);
}

CHILD int sbp_userns_helper(void *arg)
{
	(void)arg;
	_exit(0);
}

