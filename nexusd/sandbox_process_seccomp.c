/* SPDX-License-Identifier: MIT */
/*
 * The process sandbox's seccomp allow-list.
 *
 * Default action: fail with EPERM.  A syscall outside the list never reaches
 * the kernel either way, so EPERM shrinks the attack surface exactly as much
 * as killing the process would; but a function that happens to use an
 * unlisted call gets an ordinary OSError it can report (and that shows up in
 * its log and in Lambda's error JSON) instead of dying with SIGSYS.  One call
 * returns ENOSYS instead, because libc falls back to an older call on ENOSYS
 * only: clone3 (glibc retries with clone, whose flags we can inspect; clone3's
 * flags are behind a pointer seccomp cannot read).
 *
 * The list is what CPython 3.11, Pillow, pyaes, boto3 (baseline) and the Nexus
 * runtime were seen to use (strace -f on real runs, see tests/sandbox/README.md)
 * plus the ordinary POSIX process surface (threads, subprocesses, pipes,
 * timers, polling), minus everything that administers the machine or opens
 * kernel attack surface a function never needs: mount and namespace calls,
 * ptrace and process_vm_*, bpf, perf_event_open, keyrings, kexec and modules,
 * io_uring, userfaultfd, open_by_handle_at, clock/time setting, swap, reboot,
 * quotas, acct, sync/syncfs (host-wide I/O), setxattr, NUMA policy.
 * Sockets: AF_UNIX only in nexus mode (so an AF_INET socket() fails with
 * EPERM); baseline mode adds AF_INET, AF_INET6 and AF_NETLINK (getaddrinfo).
 * clone may not create namespaces.  Non-native ABIs (i386, x32) kill the
 * process (libseccomp's bad-arch action): nothing legitimate uses them.
 */
#include "sandbox_process_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const allowed[] = {
	/* files and descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range",
	"lseek", "stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat",
	"faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir",
	"fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
	"chown", "fchown", "lchown", "fchownat", "utime", "utimes", "utimensat", "futimesat",
	"truncate", "ftruncate", "fallocate", "fsync", "fdatasync", "sync_file_range",
	"dup", "dup2", "dup3", "fcntl", "flock", "ioctl", "pipe", "pipe2", "sendfile",
	"splice", "tee", "copy_file_range", "fadvise64", "readahead", "statfs", "fstatfs",
	"umask", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr",
	"flistxattr", "mknod", "mknodat", "inotify_init", "inotify_init1",
	"inotify_add_watch", "inotify_rm_watch", "memfd_create",
	/* memory */
	"mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "msync", "mincore",
	"mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier",
	"pkey_alloc", "pkey_free", "pkey_mprotect",
	/* processes and threads (clone: see below) */
	"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
	"kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
	"pidfd_open", "pidfd_send_signal",
	"getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	"getresuid", "getresgid", "getgroups", "setuid", "setgid", "setreuid", "setregid",
	"setresuid", "setresgid", "setfsuid", "setfsgid", "capget", "capset",
	"getpgid", "setpgid", "getpgrp", "setsid", "getsid", "prctl", "arch_prctl",
	"set_tid_address", "set_robust_list", "get_robust_list", "rseq", "futex",
	"futex_waitv", "sched_yield", "sched_getaffinity", "sched_setaffinity",
	"sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
	"sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
	"sched_getattr", "sched_setattr", "getcpu", "getpriority", "setpriority",
	"ioprio_get", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times",
	"uname", "sysinfo", "getrandom", "restart_syscall",
	/* signals, time, timers */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
	"rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "pause", "alarm",
	"getitimer", "setitimer", "nanosleep", "clock_nanosleep", "clock_gettime",
	"clock_getres", "gettimeofday", "time", "timer_create", "timer_settime",
	"timer_gettime", "timer_getoverrun", "timer_delete", "timerfd_create",
	"timerfd_settime", "timerfd_gettime",
	/* waiting: the channel's eventfds, poll/epoll */
	"eventfd", "eventfd2", "signalfd", "signalfd4", "poll", "ppoll", "select",
	"pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
	"epoll_pwait", "epoll_pwait2",
	/* sockets (socket/socketpair: see below); the family is fixed at socket() */
	"bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
	"setsockopt", "getsockopt",
	/* System V IPC: private to the sandbox's IPC namespace, charged to its cgroup */
	"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
	"msgget", "msgsnd", "msgrcv", "msgctl",
};

/* Namespace-creating clone flags (CLONE_NEWTIME is 0x80, which clone() reads as
 * part of the exit signal, so it is left out of the mask). */
#define CLONE_NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
                        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

static struct sock_fprog progs[2];
static int prog_err[2];
static char prog_msg[2][160];
static pthread_once_t once[2] = { PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT };

static int build(enum nx_mode mode, struct sock_fprog *out, char *err, size_t errlen)
{
	int rc = 0;
	const char *what = "seccomp_init";
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
		int nr = seccomp_syscall_resolve_name(allowed[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;   /* unknown to this libseccomp: stays denied */
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
			what = allowed[i];
			goto out;
		}
	}
	what = "clone";
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0))) < 0)
		goto out;
	what = "clone3";
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
		goto out;
	/* personality: only the queries and flags glibc and Python use (as Docker does). */
	what = "personality";
	static const unsigned long personas[] = { 0x0, 0x0008, 0x20000, 0x20008, 0xffffffff };
	for (size_t i = 0; i < sizeof personas / sizeof personas[0]; i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
		                           SCMP_A0(SCMP_CMP_EQ, personas[i]))) < 0)
			goto out;
	what = "socket";
	int families[4] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
	int nfam = mode == NX_MODE_BASELINE ? 4 : 1;
	for (int i = 0; i < nfam; i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]))) < 0)
			goto out;
	what = "socketpair";
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
	                           SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0)
		goto out;

	/* Export the BPF: libseccomp 2.5 can only write it to an fd. */
	what = "seccomp_export_bpf";
	int fd = memfd_create("nexus-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = seccomp_export_bpf(ctx, fd)) == 0) {
		off_t len = lseek(fd, 0, SEEK_END);
		struct sock_filter *f = len > 0 ? malloc((size_t)len) : NULL;
		if (!f || len % (off_t)sizeof *f || pread(fd, f, (size_t)len, 0) != len) {
			free(f);
			rc = -EIO;
		} else {
			out->filter = f;
			out->len = (unsigned short)(len / (off_t)sizeof *f);
		}
	}
	close(fd);
out:
	if (rc < 0)
		snprintf(err, errlen, "seccomp filter (%s): %s", what, strerror(-rc));
	seccomp_release(ctx);
	return rc;
}

static void build_nexus(void)    { prog_err[0] = build(NX_MODE_NEXUS, &progs[0], prog_msg[0], sizeof prog_msg[0]); }
static void build_baseline(void) { prog_err[1] = build(NX_MODE_BASELINE, &progs[1], prog_msg[1], sizeof prog_msg[1]); }

int sbp_seccomp_prog(enum nx_mode mode, const struct sock_fprog **out, char *err, size_t errlen)
{
	int i = mode == NX_MODE_BASELINE ? 1 : 0;
	pthread_once(&once[i], i ? build_baseline : build_nexus);
	if (prog_err[i] < 0) {
		snprintf(err, errlen, "%s", prog_msg[i]);
		return prog_err[i];
	}
	*out = &progs[i];
	return 0;
}
