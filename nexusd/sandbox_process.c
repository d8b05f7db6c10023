/* SPDX-License-Identifier: MIT */
/*
 * The `process` sandbox driver: one function instance = one host process tree
 * in fresh user, pid, mount, ipc, uts, net and cgroup namespaces, rooted
 * read-only in the guest root filesystem, under a seccomp allow-list and a
 * memory cgroup.  The isolation model (what each piece buys and what is not
 * isolated) is written up in nexusd/README-sandbox.md.
 *
 * Start-up, in order:
 *   nexusd prepares everything that allocates or may fail slowly: the seccomp
 *   BPF (cached), envp, paths, the cgroup (and open fds of its cgroup.procs),
 *   and the instance's user namespace: a throw-away helper created with
 *   clone(CLONE_NEWUSER) that exits at once; its uid_map/gid_map ("0 <high host
 *   uid> 1") and setgroups=deny are written while it is a zombie and the
 *   namespace is kept as an fd.
 *   Then clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|NEWPID|NEWNS|NEWIPC|NEWUTS|NEWNET)
 *   on a separate stack, like posix_spawn: no copy of nexusd's page tables
 *   (a fork of nexusd costs 2-4 ms here, this ~0.3 ms), and nexusd's thread is
 *   suspended until the child has exec'd or died, so the child can report an
 *   error by writing it into the shared context.
 * The child (pid 1 of its pid namespace, still host root in the new mount/pid/
 *   net/ipc/uts namespaces): fds 0..5 in place, everything else close-on-exec;
 *   builds its root with real privileges (bind + remount ro, /var/task,
 *   /opt/nexus, /tmp, /dev, /proc); pivot_root; detaches the host tree; joins
 *   the cgroup (writes "0" to the pre-opened cgroup.procs); drops supplementary
 *   groups; setns() into the prepared user namespace and unshares a cgroup
 *   namespace; becomes uid/gid 0 there (= the high host uid); clears every
 *   capability for good (securebits NOROOT); no_new_privs; seccomp; execve.
 *   Its mount, net, pid, ipc and uts namespaces belong to the initial user
 *   namespace, so even "root" inside can change none of them.
 * The child shares nexusd's memory until execve: it runs on its own stack,
 * makes only system calls (no malloc, no stdio, no libseccomp, raw setresuid
 * rather than glibc's, which would signal nexusd's threads), is not
 * instrumented by ASan, and starts with every signal blocked.
 */
#include "sandbox_pidfd.h"
#include "sandbox_process_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>

#include "nexus/channel.h"

/* The sandbox's uid/gid 0 is host uid/gid UID_BASE + instance_id % UID_SLOTS:
 * far above real users and the usual /etc/subuid ranges (100000+, LXD's
 * 1000000+), and different per instance so per-user limits (RLIMIT_NPROC) and
 * file ownership never join two instances.  Override with NEXUS_SANDBOX_UID_BASE. */
#define UID_BASE   1600000000u
#define UID_SLOTS  1000000u

/* The child's stack until execve (it runs in nexusd's memory, see above). */
#define CHILD_STACK (256 * 1024)

/* /tmp size: half the memory size (tmpfs pages are charged to the memory
 * cgroup anyway, this only makes "disk full" come before "out of memory"),
 * at least 16 MiB. */
#define TMP_MIN_MB 16

struct nx_sandbox {
	uint64_t instance_id;
	pid_t pid;
	int pidfd;
	bool reaped;
	int wstatus;
	uint64_t start_ns;
	struct sbp_cgroup cg;
	struct sbp_net net;             /* baseline mode: netns + veth (slot -1 otherwise) */
};

/* ------------------------------------------------------------------------ */
/* Logging: nexusd's nxd_log when linked into nexusd (weak), else stderr. */

void nxd_log(int level, const char *fmt, ...) __attribute__((weak, format(printf, 2, 3)));

void sbp_log(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (nxd_log)
		nxd_log(level, "%s", buf);
	else if (level <= 2 || getenv("NEXUS_SANDBOX_DEBUG"))
		fprintf(stderr, "nexusd: %s\n", buf);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* The parent side. */

static int write_proc(pid_t pid, const char *file, const char *text, char *err, size_t errlen)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int e = 0;
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		e = -errno;
	if (fd >= 0)
		close(fd);
	if (e)
		snprintf(err, errlen, "write %s (\"%.*s\"): %s", path, (int)strcspn(text, "\n"), text, strerror(-e));
	return e;
}

static int resolve(const char *what, const char *path, char *out, char *err, size_t errlen)
{
	out[0] = 0;
	if (!path)
		return 0;
	struct stat st;
	if (!realpath(path, out) || stat(out, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: Not a directory", what, path);
		return -ENOTDIR;
	}
	/* The sandbox reads it as an unprivileged host uid ("other"). */
	if ((st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH)) {
		snprintf(err, errlen, "%s %s: mode %04o is not readable by the sandbox (it runs as an unprivileged uid): "
		         "make it world-readable (chmod o+rx)", what, path, (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	return 0;
}

/* The mount points the sandbox needs must exist in the rootfs (it is read-only,
 * nobody can create them later). */
static int check_rootfs(const char *root, char *err, size_t errlen)
{
	static const char *const points[] = { "/var/task", "/opt/nexus", "/tmp", "/proc", "/dev", "/usr/bin" };
	char p[PATH_MAX];
	struct stat st;
	for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
		if (snprintf(p, sizeof p, "%s%s", root, points[i]) >= (int)sizeof p)
			return -ENAMETOOLONG;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "rootfs %s has no %s directory: not a Nexus guest root filesystem "
			         "(build one with 'make rootfs')", root, points[i]);
			return -ENOENT;
		}
	}
	return 0;
}

/* out = root + a + b; 0, or -ENAMETOOLONG. */
static int join(char *out, const char *root, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s%s%s", root, a, b);
	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int has_env(const char *const *envp, const char *name)
{
	size_t l = strlen(name);
	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, l) && (*envp)[l] == '=')
			return 1;
	return 0;
}

/* Does environment entry e set one of the variables named in `names` ("NAME=...")? */
static int sets_any(const char *e, const char *const *names)
{
	for (; names && *names; names++) {
		size_t l = strcspn(*names, "=");
		if (!strncmp(e, *names, l) && e[l] == '=')
			return 1;
	}
	return 0;
}

/* spec->envp + the channel fd numbers (the driver's, overriding the caller's)
 * + `extra` (also overriding) + NEXUS_MODE. */
static char **build_env(const struct nx_sandbox_spec *spec, const char *const *extra)
{
	size_t n = 0, nx = 0;
	for (const char *const *e = spec->envp; e && *e; e++)
		n++;
	for (const char *const *e = extra; e && *e; e++)
		nx++;
	char **env = calloc(n + nx + 5, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	static const char *const ours[] = { NX_ENV_REGION_FD "=3", NX_ENV_KICK_HOST_FD "=4", NX_ENV_KICK_GUEST_FD "=5", NULL };
	for (const char *const *e = spec->envp; e && *e; e++)
		if (!sets_any(*e, ours) && !sets_any(*e, extra))
			env[k++] = (char *)*e;
	for (int i = 0; i < 3; i++)
		env[k++] = (char *)ours[i];
	for (const char *const *e = extra; e && *e; e++)
		env[k++] = (char *)*e;
	if (!has_env(spec->envp, "NEXUS_MODE"))
		env[k++] = (char *)(spec->mode == NX_MODE_BASELINE ? "NEXUS_MODE=baseline" : "NEXUS_MODE=nexus");
	env[k] = NULL;
	return env;
}

static uint32_t sandbox_uid(uint64_t instance_id)
{
	static uint32_t base;
	if (!base) {
		const char *s = getenv("NEXUS_SANDBOX_UID_BASE");
		unsigned long v = s ? strtoul(s, NULL, 10) : 0;
		base = v >= 1000 && v < 4000000000ul ? (uint32_t)v : UID_BASE;
	}
	return base + (uint32_t)(instance_id % UID_SLOTS);
}

static void kill_and_wait(struct nx_sandbox *sb)
{
	if (sb->pidfd < 0 || sb->reaped)
		return;
	sbx_pidfd_kill(sb->pidfd, false);
	if (sbx_pidfd_reap(sb->pidfd, true, &sb->wstatus) < 0)
		sb->wstatus = W_EXITCODE(0, SIGKILL);
	sb->reaped = true;
}

/* nexusd's baseline forwarder (baseline_forward.c) drops its connection to
 * the instance; absent (weak) in the driver's own test program. */
void nxd_baseline_forget(uint64_t instance_id) __attribute__((weak));

static void sb_destroy(struct nx_sandbox *sb)
{
	if (!sb)
		return;
	kill_and_wait(sb);
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	if (sb->net.slot >= 0 && sb->start_ns && nxd_baseline_forget)   /* only nexusd's loop thread forwards */
		nxd_baseline_forget(sb->instance_id);
	sbp_net_destroy(&sb->net);
	sbp_cgroup_remove(&sb->cg);
	free(sb);
}

/* The S3 endpoint the function was given (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), or NULL. */
static const char *env_endpoint(const char *const *envp)
{
	static const char *const names[] = { "AWS_ENDPOINT_URL_S3=", "AWS_ENDPOINT_URL=" };
	for (int i = 0; i < 2; i++)
		for (const char *const *e = envp; e && *e; e++)
			if (!strncmp(*e, names[i], strlen(names[i])) && (*e)[strlen(names[i])])
				return *e + strlen(names[i]);
	return NULL;
}

/* Baseline mode: the sandbox's network (netns + veth) and the environment that
 * points the guest's real boto3 at the relay and its HTTP server at eth0.
 * extra[] gets up to 3 entries stored in bufs. */
static int baseline_prepare(const struct nx_sandbox_spec *spec, struct nx_sandbox *sb, const char **extra,
                            char bufs[3][320], char *err, size_t errlen)
{
	int rc, k = 0;
	const char *endpoint = env_endpoint(spec->envp);
	char relay[128];
	/* Only the Python runtime serves invocations over HTTP (nexusrt/baseline.py);
	 * a libnexus C function has no conventional counterpart (docs/baseline.md). */
	int py = 0;
	for (const char *const *a = spec->argv; *a; a++)
		py |= !strcmp(*a, "/opt/nexus/python/bootstrap.py");
	if ((rc = sbp_net_create(spec->instance_id, py, &sb->net, err, errlen)) < 0)
		return rc;
	if (endpoint) {
		if ((rc = sbp_relay_endpoint(endpoint, relay, sizeof relay, err, errlen)) < 0)
			return rc;
		snprintf(bufs[k], sizeof bufs[k], "AWS_ENDPOINT_URL_S3=%s", relay);
		extra[k] = bufs[k];
		k++;
		snprintf(bufs[k], sizeof bufs[k], "AWS_ENDPOINT_URL=%s", relay);
		extra[k] = bufs[k];
		k++;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sb->net.addr_be, ip, sizeof ip);
	snprintf(bufs[k], sizeof bufs[k], "NEXUS_BASELINE_LISTEN=%s:%d", ip, SBP_GUEST_HTTP_PORT);
	extra[k] = bufs[k];
	k++;
	extra[k] = NULL;
	return 0;
}

/* A user namespace mapping its 0 to host uid/gid `uid`, as an fd (see top). */
static int make_userns(uint32_t uid, char *stack, char *err, size_t errlen)
{
	pid_t h = clone(sbp_userns_helper, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | CLONE_NEWUSER, NULL);
	if (h < 0) {
		int e = errno;
		snprintf(err, errlen, "create a user namespace (clone CLONE_NEWUSER): %s", strerror(e));
		return -e;
	}
	char map[48], path[64];
	snprintf(map, sizeof map, "0 %u 1\n", uid);
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)h);
	int fd = -1, rc;
	if ((rc = write_proc(h, "setgroups", "deny", err, errlen)) == 0 &&
	    (rc = write_proc(h, "uid_map", map, err, errlen)) == 0 &&
	    (rc = write_proc(h, "gid_map", map, err, errlen)) == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		}
	}
	siginfo_t si;
	while (waitid(P_PID, (id_t)h, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
	return fd >= 0 ? fd : rc;
}

static int sb_start(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen)
{
	static atomic_uint seq;
	static atomic_int warned;
	uint64_t t0 = now_ns();
	int rc;
	*out = NULL;
	err[0] = 0;

	if (!spec || !spec->rootfs_dir || !spec->argv || !spec->argv[0] || spec->argv[0][0] != '/' ||
	    spec->region_fd < 0 || spec->kick_host_fd < 0 || spec->kick_guest_fd < 0 || spec->log_fd < 0) {
		snprintf(err, errlen, "sandbox spec incomplete (rootfs, absolute argv[0] and all fds are required)");
		return -EINVAL;
	}
	if (spec->memory_mb == 0) {
		snprintf(err, errlen, "sandbox memory_mb is 0");
		return -EINVAL;
	}
	struct nx_sandbox *sb = calloc(1, sizeof *sb);
	struct sbp_child_ctx *c = calloc(1, sizeof *c);
	char *stack = malloc(CHILD_STACK);
	char **env = NULL;
	if (!sb || !c || !stack) {
		free(sb); free(c); free(stack);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sb->pidfd = -1;
	sb->pid = -1;
	sb->instance_id = spec->instance_id;
	sb->net.slot = -1;
	sb->net.netns_fd = -1;
	c->userns_fd = -1;
	c->netns_fd = -1;
	const char *extra[4] = { NULL };
	char extra_bufs[3][320];
	if (spec->mode == NX_MODE_BASELINE &&
	    (rc = baseline_prepare(spec, sb, extra, extra_bufs, err, errlen)) < 0)
		goto out;
	uint64_t t_net = now_ns();
	c->netns_fd = sb->net.netns_fd;
	if (!(env = build_env(spec, extra))) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	c->cg_fds[0] = c->cg_fds[1] = c->cg_fds[2] = -1;

	if ((rc = sbp_seccomp_prog(spec->mode, &c->prog, err, errlen)) < 0 ||
	    (rc = resolve("rootfs", spec->rootfs_dir, c->root, err, errlen)) < 0 ||
	    (rc = check_rootfs(c->root, err, errlen)) < 0 ||
	    (rc = resolve("function code", spec->code_dir, c->code, err, errlen)) < 0 ||
	    (rc = resolve("runtime dir", spec->runtime_dir, c->runtime, err, errlen)) < 0)
		goto out;
	int jr = join(c->m_task, c->root, "/var/task", "") | join(c->m_opt, c->root, "/opt/nexus", "") |
	         join(c->m_tmp, c->root, "/tmp", "") | join(c->m_dev, c->root, "/dev", "") |
	         join(c->m_proc, c->root, "/proc", "");
	for (int i = 0; i < 5; i++)
		jr |= join(c->dev_nodes[i], c->root, "/dev/", sbp_dev_nodes[i].name) |
		      join(c->dev_links[i], c->root, "/dev/", sbp_dev_links[i].name);
	if (jr) {
		snprintf(err, errlen, "rootfs path too long: %s", c->root);
		rc = -ENAMETOOLONG;
		goto out;
	}
	uint32_t tmp_mb = spec->memory_mb / 2 > TMP_MIN_MB ? spec->memory_mb / 2 : TMP_MIN_MB;
	snprintf(c->tmp_opts, sizeof c->tmp_opts, "size=%um,nr_inodes=16384,mode=1777", tmp_mb);
	c->region_fd = spec->region_fd;
	c->kick_host_fd = spec->kick_host_fd;
	c->kick_guest_fd = spec->kick_guest_fd;
	c->log_fd = spec->log_fd;
	c->argv = spec->argv;
	c->envp = env;

	char cgname[64];
	snprintf(cgname, sizeof cgname, "sb-%llu-%d-%u", (unsigned long long)spec->instance_id,
	         (int)getpid(), atomic_fetch_add(&seq, 1));
	if ((rc = sbp_cgroup_create(&sb->cg, cgname, spec->memory_mb, err, errlen)) < 0 ||
	    (rc = sbp_cgroup_procs_fds(&sb->cg, c->cg_fds, err, errlen)) < 0)
		goto out;
	if (sb->cg.kind == SBP_CG_NONE && !atomic_exchange(&warned, 1)) {
		char why[256];
		sbp_cgroup_probe(why, sizeof why);
		sbp_log(1, "sandbox: %s (process sandboxes run WITHOUT a memory limit)", why);
	}
	uint64_t t_cg = now_ns();
	uint32_t uid = sandbox_uid(spec->instance_id);
	if ((c->userns_fd = make_userns(uid, stack, err, errlen)) < 0) {
		rc = c->userns_fd;
		goto out;
	}
	uint64_t t_ns = now_ns();

	/* Nexus mode: a new, empty net namespace.  Baseline mode: the child joins
	 * the one prepared above (lo + eth0 on the node bridge). */
	int flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	if (c->netns_fd < 0)
		flags |= CLONE_NEWNET;
	/* Exit signal 0: no SIGCHLD, so only our waitid(P_PIDFD) reaps it.  All
	 * signals blocked across the clone: no nexusd handler may run in the child
	 * before it has reset them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(sbp_child_main, stack + CHILD_STACK, flags, c, &sb->pidfd);
	int clone_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Here the child has exec'd or died (CLONE_VFORK). */
	if (pid < 0) {
		rc = -clone_errno;
		snprintf(err, errlen, "clone (new pid/mount/ipc/uts/net namespaces): %s", strerror(clone_errno));
		goto out;
	}
	sb->pid = pid;
	if (c->failed) {
		snprintf(err, errlen, "%s", c->err);
		rc = -EPERM;
		kill_and_wait(sb);
		goto out;
	}
	sb->start_ns = now_ns() - t0;
	sbp_log(3, "sandbox %llu: pid %d uid %u, started in %.2f ms (network %.2f, prepare+cgroup %.2f, user ns %.2f, "
	        "clone..exec %.2f)", (unsigned long long)sb->instance_id, (int)sb->pid, uid, sb->start_ns / 1e6,
	        (t_net - t0) / 1e6, (t_cg - t_net) / 1e6, (t_ns - t_cg) / 1e6, (now_ns() - t_ns) / 1e6);
	*out = sb;
	rc = 0;
out:
	if (c->userns_fd >= 0)
		close(c->userns_fd);
	for (int i = 0; i < 3; i++)
		if (c->cg_fds[i] >= 0)
			close(c->cg_fds[i]);
	free(env);
	free(c);
	free(stack);
	if (rc < 0)
		sb_destroy(sb);
	return rc;
}

static int sb_exit_fd(const struct nx_sandbox *sb)
{
	return sb->pidfd;
}

static void sb_kill(struct nx_sandbox *sb)
{
	/* SIGKILL to the pid namespace's init takes the whole namespace with it. */
	sbx_pidfd_kill(sb->pidfd, sb->reaped);
}

static int sb_reap(struct nx_sandbox *sb, int *wstatus)
{
	return sbx_pidfd_reap_once(sb->pidfd, &sb->reaped, &sb->wstatus, wstatus);
}

static int sb_usage(const struct nx_sandbox *sb, struct nx_sandbox_usage *u)
{
	memset(u, 0, sizeof *u);
	u->start_ns = sb->start_ns;
	/* The cgroup outlives the processes until destroy(), so the counters (OOM
	 * kills above all) can still be read after the reap; /proc cannot. */
	if (!sb->reaped && (!sb->cg.cpu[0] || sb->cg.kind == SBP_CG_NONE))
		sbx_proc_usage(sb->pid, &u->cpu_ns, &u->mem_bytes);   /* no cgroup: the init process only */
	int r = sbp_cgroup_usage(&sb->cg, &u->cpu_ns, &u->mem_bytes, &u->oom_kills);
	return sb->reaped && r < 0 ? -ESRCH : 0;
}

/* Is the driver usable here?  Checks what start() needs, by trying it once. */
static int sb_probe(char *why, size_t whylen)
{
	char cg[256], err[200];
	const struct sock_fprog *prog;
	FILE *f = fopen("/proc/sys/user/max_user_namespaces", "re");
	long maxns = -1;
	if (f) {
		if (fscanf(f, "%ld", &maxns) != 1)
			maxns = -1;
		fclose(f);
	}
	if (maxns == 0) {
		snprintf(why, whylen, "user namespaces are disabled (/proc/sys/user/max_user_namespaces = 0)");
		return 0;
	}
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
		snprintf(why, whylen, "the kernel has no seccomp (prctl PR_GET_SECCOMP: %s)", strerror(errno));
		return 0;
	}
	if (sbp_seccomp_prog(NX_MODE_BASELINE, &prog, err, sizeof err) < 0 ||
	    sbp_seccomp_prog(NX_MODE_NEXUS, &prog, err, sizeof err) < 0) {
		snprintf(why, whylen, "%s", err);
		return 0;
	}
	/* Can we create every namespace we need?  (Containers often forbid it.) */
	char *stack = malloc(CHILD_STACK);
	if (!stack) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	pid_t pid = clone(sbp_userns_helper, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | CLONE_NEWPID | CLONE_NEWNS |
	                  CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWCGROUP, NULL);
	int e = errno;
	free(stack);
	if (pid < 0) {
		snprintf(why, whylen, "cannot create user/pid/mount/ipc/uts/net/cgroup namespaces (clone: %s)%s",
		         strerror(e), geteuid() ? "; nexusd must run as root for the process sandbox" : "");
		return 0;
	}
	siginfo_t si;
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | __WALL) < 0 && errno == EINTR)
		;
	if (geteuid() != 0) {
		snprintf(why, whylen, "nexusd must run as root for the process sandbox (it mounts and maps uids)");
		return 0;
	}
	sbp_cgroup_probe(cg, sizeof cg);
	snprintf(why, whylen, "namespaces user,pid,mnt,ipc,uts,net,cgroup; seccomp allow-list (%u BPF insns in nexus mode); %s",
	         (unsigned)prog->len, cg);
	return 1;
}

const struct nx_sandbox_driver nx_sandbox_process = {
	.name    = "process",
	.probe   = sb_probe,
	.start   = sb_start,
	.exit_fd = sb_exit_fd,
	.kill    = sb_kill,
	.reap    = sb_reap,
	.usage   = sb_usage,
	.destroy = sb_destroy,
};
