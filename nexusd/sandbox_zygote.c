/* SPDX-License-Identifier: MIT */
/*
 * Zygote cold starts for the `process` sandbox (tag "nexus:snapshot": "zygote").
 *
 * Per function, one process sandbox (sandbox_process.c) runs the Python runtime
 * as a zygote (guest/python/nexusrt/zygote.py): it has imported the runtime and
 * the handler module and waits on a SOCK_SEQPACKET socket.  start() sends it the
 * new instance's region and eventfds (SCM_RIGHTS); it forks, and the child
 * reports itself with SCM_CREDENTIALS, which gives nexusd the child's host pid.
 * nexusd then holds a pidfd for it, moves it into a cgroup of its own (the
 * function's memory limit, per instance) and treats it like any sandbox.
 *
 * The children share the zygote's namespaces (pid, mount, ipc, uts, net, user):
 * what that does and does not isolate is in README-sandbox.md, "Zygote cold
 * starts".  Whenever the zygote cannot serve (it died, it will not start, its
 * import failed or left threads behind) start() falls back to a fresh process
 * sandbox, so the function still runs; only the cold start is slower.
 *
 * Baseline mode (docs/baseline.md) needs a network identity per instance: the
 * forwarder finds an instance by its address slot.  A child cannot join a
 * namespace of its own (no capabilities, seccomp refuses setns), so start()
 * makes the instance's namespace + veth exactly as for a fresh baseline
 * sandbox (sbp_net_create) and a socket listening on its eth0 address, made
 * inside that namespace, and sends that socket along with the channel fds.
 * The child serves invocations on it: its own address, its own veth.  Its
 * outgoing connections (boto3 to the relay) leave through the zygote's
 * namespace and veth, shared by the function's instances like the rest of the
 * zygote's namespaces.  The zygote itself holds an address slot under a
 * pseudo instance id (NX_ZYGOTE_ID_OFFSET) so it is never taken for an instance.
 *
 * Threads: start() runs on the launcher thread; the zygote table is guarded by
 * a mutex anyway.  exit_fd/kill/reap/usage/destroy run on the loop thread and
 * touch only the instance.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sandbox.h"
#include "sandbox_process_priv.h"
#include "sandbox_zygote.h"
#include "loop.h"   /* nx_now_ns */
#include "util.h"

#define ZYGOTE_INIT_MS  30000   /* zygote start to "R" (it imports the handler) */
#define ZYGOTE_FORK_MS  5000    /* "F" to the child's "C" */

struct zygote {
	char function[80];
	uint64_t identity;          /* hash of what the zygote was started with */
	struct nx_sandbox *psb;     /* its process sandbox */
	int sock;                   /* nexusd's end, SO_PASSCRED */
	pid_t pid;                  /* host pid */
	ino_t pidns;                /* its pid namespace: every child must be in it */
	bool unusable;              /* fresh starts only (why says why) */
	char why[256];
	uint64_t forks;
	struct zygote *next;
};

/* One instance: a zygote child, or (fresh) a process sandbox we delegate to. */
struct zy_inst {
	struct nx_sandbox *fresh;
	pid_t pid;
	int pidfd;
	bool killed, reaped;
	int wstatus;
	uint64_t start_ns;
	uint64_t instance_id;
	struct sbp_net net;         /* baseline: the instance's namespace + veth (slot -1 otherwise) */
	struct sbp_cgroup cg;
};

static pthread_mutex_t zmu = PTHREAD_MUTEX_INITIALIZER;
static struct zygote *zygotes;   /* live, by function */
static struct zygote *retired;   /* let go: exit once their children are gone */
static struct zy_stats stats;

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull;
}

static uint64_t identity_of(const struct nx_sandbox_spec *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	char mem[32];
	snprintf(mem, sizeof mem, "%u/%d", s->memory_mb, (int)s->mode);
	h = fnv(fnv(fnv(fnv(h, s->code_dir), s->rootfs_dir), s->runtime_dir), mem);
	for (int i = 0; s->argv && s->argv[i]; i++)
		h = fnv(h, s->argv[i]);
	for (int i = 0; s->envp && s->envp[i]; i++)
		h = fnv(h, s->envp[i]);
	return h;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static ino_t pidns_of(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static bool exited(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/*
 * Receive one message on the zygote socket within ms, watching the zygote's
 * exit too.  Returns its length (0 = EOF) or -errno; *pid = the sender's host
 * pid (SCM_CREDENTIALS, filled in by the kernel: a sender cannot forge it).
 */
static ssize_t recv_msg(struct zygote *z, char *buf, size_t cap, pid_t *pid, int ms)
{
	struct pollfd p[2] = { { .fd = z->sock, .events = POLLIN },
	                       { .fd = nx_sandbox_process.exit_fd(z->psb), .events = POLLIN } };
	uint64_t deadline = nx_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		int left = (int)((deadline - nx_now_ns()) / 1000000u);
		if (nx_now_ns() >= deadline)
			return -ETIMEDOUT;
		int n = poll(p, 2, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (p[0].revents)
			break;
		if (p[1].revents)
			return -ESRCH;  /* the zygote died */
	}
	union { char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr a; } cbuf;
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof cbuf.b };
	ssize_t n = recvmsg(z->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	*pid = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof uc);
			*pid = uc.pid;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* The zygote has no business sending fds: close them. */
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				close(fd);
			}
		}
	}
	return n;
}

static void zygote_release(struct zygote *z)
{
	if (z->sock >= 0)
		close(z->sock);   /* EOF: it forks no more and exits after its children */
	z->sock = -1;
	if (z->psb && exited(nx_sandbox_process.exit_fd(z->psb))) {
		int ws;
		nx_sandbox_process.reap(z->psb, &ws);
		nx_sandbox_process.destroy(z->psb);
		free(z);
		return;
	}
	z->next = retired;
	retired = z;
}

/* Free retired zygotes that have exited. */
static void reap_retired(void)
{
	for (struct zygote **pp = &retired; *pp;) {
		struct zygote *z = *pp;
		if (exited(nx_sandbox_process.exit_fd(z->psb))) {
			int ws;
			*pp = z->next;
			nx_sandbox_process.reap(z->psb, &ws);
			nx_sandbox_process.destroy(z->psb);
			free(z);
		} else {
			pp = &z->next;
		}
	}
}

static void unlink_zygote(struct zygote *z)
{
	for (struct zygote **pp = &zygotes; *pp; pp = &(*pp)->next)
		if (*pp == z) {
			*pp = z->next;
			return;
		}
}

/* Start the function's zygote and wait until it has imported the handler. */
static struct zygote *zygote_spawn(const struct nx_sandbox_spec *spec, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return NULL;
	}
	int one = 1;
	setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
	size_t n = 0;
	while (spec->envp && spec->envp[n])
		n++;
	const char **env = calloc(n + 2, sizeof *env);
	struct zygote *z = calloc(1, sizeof *z);
	if (!env || !z) {
		free(env);
		free(z);
		close(sv[0]);
		close(sv[1]);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(env, spec->envp, n * sizeof *env);
	env[n] = "NEXUS_ZYGOTE_FD=3";
	struct nx_sandbox_spec zs = *spec;
	zs.envp = env;
	if (spec->mode == NX_MODE_BASELINE)
		zs.instance_id = spec->instance_id + NX_ZYGOTE_ID_OFFSET;
	zs.region_fd = zs.kick_host_fd = zs.kick_guest_fd = sv[1];
	uint64_t t0 = nx_now_ns();
	int r = nx_sandbox_process.start(&zs, &z->psb, err, errlen);
	close(sv[1]);
	free(env);
	if (r < 0) {
		close(sv[0]);
		free(z);
		return NULL;
	}
	z->sock = sv[0];
	snprintf(z->function, sizeof z->function, "%s", spec->function_name ? spec->function_name : "");
	z->identity = identity_of(spec);
	char buf[2048];
	pid_t pid = 0;
	ssize_t got = recv_msg(z, buf, sizeof buf - 1, &pid, ZYGOTE_INIT_MS);
	pid_t expect = nxd_pid_of_pidfd(nx_sandbox_process.exit_fd(z->psb));
	if (got <= 0 || buf[0] != 'R' || pid <= 0 || pid != expect) {
		snprintf(err, errlen, "the zygote did not come up: %s",
		         got == 0 ? "it closed its socket" : got == -ESRCH ? "it exited (see the function's log)"
		         : got < 0 ? strerror((int)-got) : "unexpected first message");
		nx_sandbox_process.kill(z->psb);
		z->sock = sv[0];
		zygote_release(z);
		return NULL;
	}
	buf[got] = 0;
	z->pid = pid;
	z->pidns = pidns_of(pid);
	json_t *j = json_loads(buf + 1, 0, NULL);
	json_t *th = json_object_get(j, "threads"), *ie = json_object_get(j, "init_error");
	if (!j || !json_is_integer(th)) {
		z->unusable = true;
		snprintf(z->why, sizeof z->why, "its ready message is malformed");
	} else if (ie && !json_is_null(ie)) {
		z->unusable = true;   /* a fresh start reports the import error as Lambda does */
		snprintf(z->why, sizeof z->why, "importing the handler failed in the zygote");
	} else if (json_integer_value(th) != 1) {
		z->unusable = true;   /* fork() copies only the calling thread */
		snprintf(z->why, sizeof z->why, "the handler module started %" JSON_INTEGER_FORMAT " threads at import",
		         json_integer_value(th) - 1);
	} else if (!z->pidns) {
		z->unusable = true;
		snprintf(z->why, sizeof z->why, "cannot read its pid namespace");
	}
	json_decref(j);
	sbp_log(z->unusable ? 1 : 2, "zygote for %s: pid %d, up in %.1f ms%s%s", z->function, (int)pid,
	        (double)(nx_now_ns() - t0) / 1e6, z->unusable ? "; unusable, fresh starts instead: " : "",
	        z->unusable ? z->why : "");
	stats.spawned++;
	return z;
}

/* Ask z for one instance on the given channel fds (+ in baseline mode the
 * listening socket, listen_fd >= 0); 0 and *pid, or -errno. */
static int zygote_fork(struct zygote *z, const struct nx_sandbox_spec *spec, int listen_fd, pid_t *pid, char *err,
                       size_t errlen)
{
	int fds[4] = { spec->region_fd, spec->kick_host_fd, spec->kick_guest_fd, listen_fd };
	size_t nfd = listen_fd >= 0 ? 4 : 3;
	union { char b[CMSG_SPACE(sizeof fds)]; struct cmsghdr a; } cbuf;
	memset(&cbuf, 0, sizeof cbuf);
	struct iovec iov = { "F", 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
	                     .msg_controllen = CMSG_SPACE(nfd * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	if (sendmsg(z->sock, &mh, MSG_NOSIGNAL) < 0) {
		snprintf(err, errlen, "send to the zygote: %s", strerror(errno));
		return -errno;
	}
	for (int tries = 0; tries < 8; tries++) {
		char buf[64];
		pid_t p = 0;
		ssize_t got = recv_msg(z, buf, sizeof buf, &p, ZYGOTE_FORK_MS);
		if (got <= 0) {
			snprintf(err, errlen, "the zygote did not fork: %s",
			         got == 0 ? "it closed its socket" : got == -ESRCH ? "it exited" : strerror((int)-got));
			return got == 0 ? -EPIPE : (int)got;
		}
		/* Only a process of the zygote's own pid namespace, not the zygote. */
		if (buf[0] == 'C' && p > 0 && p != z->pid && pidns_of(p) == z->pidns) {
			*pid = p;
			return 0;
		}
	}
	snprintf(err, errlen, "the zygote sent no valid child report");
	return -EPROTO;
}

/* Put the child into a cgroup of its own: the memory limit is per instance. */
static int adopt(struct zy_inst *zi, const struct nx_sandbox_spec *spec, char *err, size_t errlen)
{
	/* The process driver's naming (sb-<instance>-<nexusd pid>-<seq>), so its
	 * clean-up of groups left by a dead nexusd covers these too; the seq
	 * range is ours. */
	static unsigned seq = 1u << 30;
	char name[64];
	snprintf(name, sizeof name, "sb-%" PRIu64 "-%d-%u", spec->instance_id, (int)getpid(),
	         __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	int fds[3], r;
	if ((r = sbp_cgroup_create(&zi->cg, name, spec->memory_mb, err, errlen)) < 0 ||
	    (r = sbp_cgroup_procs_fds(&zi->cg, fds, err, errlen)) < 0)
		return r;
	char pid[24];
	int len = snprintf(pid, sizeof pid, "%d", (int)zi->pid);
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0)
			continue;
		if (write(fds[i], pid, (size_t)len) != len && !r) {
			r = -errno;
			snprintf(err, errlen, "move the instance into its cgroup: %s", strerror(errno));
		}
		close(fds[i]);
	}
	return r;
}

static int zy_probe(char *why, size_t whylen)
{
	return nx_sandbox_process.probe(why, whylen);
}

static int start_fresh(const struct nx_sandbox_spec *spec, struct zy_inst *zi, char *err, size_t errlen)
{
	stats.fresh++;
	int r = nx_sandbox_process.start(spec, &zi->fresh, err, errlen);
	if (r < 0)
		free(zi);
	return r;
}

static int zy_start(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen)
{
	uint64_t t0 = nx_now_ns();
	*out = NULL;
	struct zy_inst *zi = calloc(1, sizeof *zi);
	if (!zi) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	zi->pidfd = -1;
	zi->instance_id = spec->instance_id;
	zi->net.slot = -1;
	zi->net.netns_fd = -1;
	int listen_fd = -1;
	if (spec->mode == NX_MODE_BASELINE) {
		/* The instance's own network identity, made before the fork as a
		 * fresh baseline sandbox's is before its clone (see the top). */
		int r = sbp_net_create(spec->instance_id, 1, &zi->net, err, errlen);
		if (r == 0 && (r = sbp_net_listen_socket(&zi->net, SBP_GUEST_HTTP_PORT, &listen_fd)) < 0)
			snprintf(err, errlen, "baseline network: listening socket in the instance's namespace: %s",
			         strerror(-r));
		if (r < 0) {
			sbp_net_destroy(&zi->net);
			free(zi);
			return r;
		}
	}
	uint64_t t_net = nx_now_ns();
	pthread_mutex_lock(&zmu);
	reap_retired();
	uint64_t id = identity_of(spec);
	struct zygote *z = zygotes;
	while (z && strcmp(z->function, spec->function_name ? spec->function_name : ""))
		z = z->next;
	if (z && (z->identity != id || exited(nx_sandbox_process.exit_fd(z->psb)))) {
		if (z->identity == id) {
			sbp_log(1, "zygote for %s (pid %d) has exited: starting a new one", z->function, (int)z->pid);
			stats.died++;
		}
		unlink_zygote(z);
		zygote_release(z);
		z = NULL;
	}
	char why[512] = "";
	pid_t pid = 0;
	int r = -1;
	uint64_t t_fork = nx_now_ns();
	for (int attempt = 0; attempt < 2 && r < 0; attempt++) {
		if (!z) {
			z = zygote_spawn(spec, why, sizeof why);
			if (!z)
				break;
			z->next = zygotes;
			zygotes = z;
		}
		if (z->unusable)
			break;
		r = zygote_fork(z, spec, listen_fd, &pid, why, sizeof why);
		if (r < 0) {   /* it died or misbehaves: replace it, once */
			sbp_log(1, "zygote for %s (pid %d): %s; starting a new one", z->function, (int)z->pid, why);
			stats.died++;
			nx_sandbox_process.kill(z->psb);
			unlink_zygote(z);
			zygote_release(z);
			z = NULL;
		} else {
			z->forks++;
		}
		if (r < 0)
			t_fork = nx_now_ns();
	}
	pthread_mutex_unlock(&zmu);
	if (listen_fd >= 0)
		close(listen_fd);   /* the child has its copy (or there is no child) */
	if (r < 0) {
		if (*why)
			sbp_log(1, "zygote for %s: %s: fresh start instead", spec->function_name, why);
		sbp_net_destroy(&zi->net);   /* a fresh sandbox makes its own */
		r = start_fresh(spec, zi, err, errlen);
		if (r == 0)
			*out = (struct nx_sandbox *)zi;
		return r;
	}
	uint64_t t_forked = nx_now_ns();
	zi->pid = pid;
	zi->pidfd = pidfd_open_(pid);
	if (zi->pidfd < 0) {
		r = -errno;
		snprintf(err, errlen, "pidfd_open of the zygote's child %d: %s", (int)pid, strerror(errno));
		kill(pid, SIGKILL);
		sbp_net_destroy(&zi->net);
		free(zi);
		return r;
	}
	if ((r = adopt(zi, spec, err, errlen)) < 0) {
		pidfd_kill(zi->pidfd, SIGKILL);
		close(zi->pidfd);
		sbp_cgroup_remove(&zi->cg);
		sbp_net_destroy(&zi->net);
		free(zi);
		return r;
	}
	zi->start_ns = nx_now_ns() - t0;
	stats.forked++;
	sbp_log(3, "zygote child for %s: pid %d in %.2f ms (network %.2f, fork request..child report %.2f, "
	        "own cgroup %.2f)", spec->function_name, (int)pid, (double)zi->start_ns / 1e6,
	        (double)(t_net - t0) / 1e6, (double)(t_forked - t_fork) / 1e6, (double)(nx_now_ns() - t_forked) / 1e6);
	*out = (struct nx_sandbox *)zi;
	return 0;
}

#define ZI(sb) ((struct zy_inst *)(void *)(sb))

static int zy_exit_fd(const struct nx_sandbox *sb)
{
	const struct zy_inst *zi = (const struct zy_inst *)(const void *)sb;
	return zi->fresh ? nx_sandbox_process.exit_fd(zi->fresh) : zi->pidfd;
}

/* SIGKILL every task left in the instance's cgroup (what it started). */
static void sweep(struct zy_inst *zi)
{
	const char *dirs[3] = { zi->cg.pids, zi->cg.mem, zi->cg.cpu };
	for (int i = 0; i < 3; i++) {
		if (!dirs[i][0])
			continue;
		char path[320];
		snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		int p;
		while (fscanf(f, "%d", &p) == 1)
			if (p > 0)
				kill(p, SIGKILL);
		fclose(f);
		return;
	}
}

static void zy_kill(struct nx_sandbox *sb)
{
	struct zy_inst *zi = ZI(sb);
	if (zi->fresh) {
		nx_sandbox_process.kill(zi->fresh);
		return;
	}
	zi->killed = true;
	if (!zi->reaped)
		pidfd_kill(zi->pidfd, SIGKILL);
	sweep(zi);
}

/* Field 52 of /proc/<pid>/stat: the exit status in waitpid form, readable
 * while the child is a zombie (the zygote reaps lazily, see zygote.py). */
static int exit_code_of(pid_t pid, int *ws)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')');
	if (!s || s[1] != ' ' || s[2] != 'Z')
		return -1;
	int field = 2;
	for (char *p = s + 1; *p; p++)
		if (*p == ' ' && ++field == 52)
			return sscanf(p + 1, "%d", ws) == 1 ? 0 : -1;
	return -1;
}

static int zy_reap(struct nx_sandbox *sb, int *wstatus)
{
	struct zy_inst *zi = ZI(sb);
	if (zi->fresh)
		return nx_sandbox_process.reap(zi->fresh, wstatus);
	if (!zi->reaped) {
		zi->reaped = true;
		if (exit_code_of(zi->pid, &zi->wstatus) < 0)
			zi->wstatus = zi->killed ? SIGKILL : 0;
		sweep(zi);   /* its own subprocesses go with it, as with a pid namespace */
	}
	*wstatus = zi->wstatus;
	return 0;
}

static int zy_usage(const struct nx_sandbox *sb, struct nx_sandbox_usage *u)
{
	const struct zy_inst *zi = (const struct zy_inst *)(const void *)sb;
	if (zi->fresh)
		return nx_sandbox_process.usage(zi->fresh, u);
	memset(u, 0, sizeof *u);
	u->start_ns = zi->start_ns;
	return sbp_cgroup_usage(&zi->cg, &u->cpu_ns, &u->mem_bytes, &u->oom_kills) == 0 ? 0 : -ENOENT;
}

/* nexusd's baseline forwarder drops its connection to the instance; absent
 * (weak) in programs without the forwarder. */
void nxd_baseline_forget(uint64_t instance_id) __attribute__((weak));

static void zy_destroy(struct nx_sandbox *sb)
{
	struct zy_inst *zi = ZI(sb);
	if (!zi)
		return;
	if (zi->fresh) {
		nx_sandbox_process.destroy(zi->fresh);
	} else {
		if (!zi->reaped)
			pidfd_kill(zi->pidfd, SIGKILL);
		sweep(zi);
		if (zi->pidfd >= 0)
			close(zi->pidfd);
		sbp_cgroup_remove(&zi->cg);
		if (zi->net.slot >= 0 && nxd_baseline_forget)   /* destroy runs on the loop thread */
			nxd_baseline_forget(zi->instance_id);
		sbp_net_destroy(&zi->net);
	}
	free(zi);
}

void zy_get_stats(struct zy_stats *out)
{
	pthread_mutex_lock(&zmu);
	*out = stats;
	out->live = 0;
	for (struct zygote *z = zygotes; z; z = z->next)
		out->live++;
	pthread_mutex_unlock(&zmu);
}

const struct nx_sandbox_driver nx_sandbox_zygote = {
	.name = "process-zygote",
	.probe = zy_probe,
	.start = zy_start,
	.exit_fd = zy_exit_fd,
	.kill = zy_kill,
	.reap = zy_reap,
	.usage = zy_usage,
	.destroy = zy_destroy,
};
