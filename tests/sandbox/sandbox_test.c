/* SPDX-License-Identifier: MIT */
/*
 * test-sandbox: the process sandbox driver (nexusd/sandbox_process*.c) driven
 * through its driver table, as the instance manager will, with commands that
 * run inside the real guest root filesystem and report what they see.
 *
 *   sandbox-test --rootfs build/rootfs --code tests/sandbox/code --results DIR
 *
 * Each check prints "ok", "FAIL" or "SKIP (reason)"; DIR/test-sandbox.counts
 * gets the totals (tests/run-all.sh contract).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../../nexusd/sandbox.h"

static const struct nx_sandbox_driver *drv = &nx_sandbox_process;
static const char *rootfs, *code_dir, *results_dir, *real_runtime, *functions_dir;
static char runtime_dir[] = "/tmp/nexus-sbtest-runtime-XXXXXX";
static int passed, failed, skipped;
static char skips[32][600];
/* The tests' sandboxes get their own host uid range, so counting processes by
 * uid (the kill check) cannot see another node's instances on the same machine. */
#define TEST_UID_BASE 1700000000ull

static uint64_t next_id = 1;
static char stale_cg[128];   /* a leftover group of a dead nexusd, made before the first probe */

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

#define CHECK(cond, ...) do { if (!(cond)) { say("    FAIL: " __VA_ARGS__); say("\n"); return 0; } } while (0)

static void skip(const char *name, const char *why)
{
	say("SKIP %-34s %s\n", name, why);
	if (skipped < 32)
		snprintf(skips[skipped], sizeof skips[0], "test-sandbox %s: %s", name, why);
	skipped++;
}

/* One sandbox run: its channel fds, log, and outcome. */
struct run {
	const char *const *argv;
	uint32_t memory_mb;
	enum nx_mode mode;
	const char *code;            /* default: code_dir */
	const char *rootfs;          /* default: rootfs */
	const char *runtime;         /* default: the stand-in runtime_dir */
	int timeout_ms;              /* default 20 s */
	const char *const *envp;     /* default: PATH and PYTHONDONTWRITEBYTECODE */
	int kill_after_ms;           /* >0: kill it after this long */
	void (*while_running)(struct nx_sandbox *sb, struct run *r);
	/* out */
	int rc, wstatus, timed_out;
	char err[512];
	char log[16384];
	char region_after[32];
	uint64_t kicks;
	struct nx_sandbox_usage usage;
	uint64_t exit_ms;            /* kill -> exit_fd readable */
	uint64_t instance_id;
	char cgroup_dir[256];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int do_run(struct run *r)
{
	int region = memfd_create("nexus-region", MFD_CLOEXEC);
	int kh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), kg = eventfd(0, EFD_CLOEXEC);
	int log = memfd_create("nexus-log", MFD_CLOEXEC);
	if (region < 0 || kh < 0 || kg < 0 || log < 0 || ftruncate(region, 1 << 20) < 0) {
		perror("test setup");
		exit(2);
	}
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, region, 0);
	strcpy(map, "hello-region");
	static const char *const env[] = { "PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", NULL };
	struct nx_sandbox_spec spec = {
		.instance_id = next_id++,
		.function_name = "sbtest",
		.code_dir = r->code ? r->code : code_dir,
		.rootfs_dir = r->rootfs ? r->rootfs : rootfs,
		.runtime_dir = r->runtime ? r->runtime : runtime_dir,
		.argv = r->argv,
		.envp = r->envp ? r->envp : env,
		.memory_mb = r->memory_mb ? r->memory_mb : 256,
		.mode = r->mode,
		.region_fd = region, .kick_host_fd = kh, .kick_guest_fd = kg, .log_fd = log,
	};
	struct nx_sandbox *sb = NULL;
	r->instance_id = spec.instance_id;
	r->rc = drv->start(&spec, &sb, r->err, sizeof r->err);
	if (r->rc == 0) {
		uint64_t t0 = now_ms();
		if (r->while_running)
			r->while_running(sb, r);
		struct pollfd p = { .fd = drv->exit_fd(sb), .events = POLLIN };
		int timeout = r->timeout_ms ? r->timeout_ms : 20000;
		if (r->kill_after_ms) {
			if (poll(&p, 1, r->kill_after_ms) == 0) {
				uint64_t tk = now_ms();
				drv->kill(sb);
				if (poll(&p, 1, 5000) == 1)
					r->exit_ms = now_ms() - tk;
			}
		} else if (poll(&p, 1, timeout) == 0) {
			r->timed_out = 1;
			drv->kill(sb);
			poll(&p, 1, 5000);
		}
		(void)t0;
		if (drv->reap(sb, &r->wstatus) < 0)
			r->wstatus = -1;
		drv->usage(sb, &r->usage);
		drv->destroy(sb);
	}
	ssize_t n = pread(log, r->log, sizeof r->log - 1, 0);
	r->log[n > 0 ? n : 0] = 0;
	memcpy(r->region_after, map + 16, 16);
	uint64_t v = 0;
	if (read(kh, &v, 8) == 8)
		r->kicks = v;
	munmap(map, 4096);
	close(region); close(kh); close(kg); close(log);
	return r->rc;
}

static int exited(const struct run *r, int code)
{
	return r->wstatus >= 0 && WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) == code;
}

static const char *status_str(const struct run *r)
{
	static char b[64];
	if (r->wstatus < 0)
		snprintf(b, sizeof b, "not reaped");
	else if (WIFEXITED(r->wstatus))
		snprintf(b, sizeof b, "exit %d", WEXITSTATUS(r->wstatus));
	else if (WIFSIGNALED(r->wstatus))
		snprintf(b, sizeof b, "signal %d", WTERMSIG(r->wstatus));
	else
		snprintf(b, sizeof b, "status 0x%x", r->wstatus);
	return b;
}

#define SH(script) ((const char *const[]){ "/bin/sh", "-c", script, NULL })
#define PY(...)    ((const char *const[]){ "/usr/bin/python3", "-I", __VA_ARGS__, NULL })

/* Run a shell script that must exit 0; its log is in r. */
static int sh_ok(struct run *r, const char *script)
{
	memset(r, 0, sizeof *r);
	r->argv = SH(script);
	if (do_run(r) != 0) {
		say("    start failed: %s\n", r->err);
		return 0;
	}
	if (!exited(r, 0)) {
		say("    %s; log:\n%s\n", status_str(r), r->log);
		return 0;
	}
	return 1;
}

static int has(const char *log, const char *needle)
{
	return strstr(log, needle) != NULL;
}

/* ---- the checks --------------------------------------------------------- */

static int t_probe(void)
{
	char why[512];
	int ok = drv->probe(why, sizeof why);
	say("    probe: %s\n", why);
	CHECK(ok, "probe says the driver is unusable: %s", why);
	return 1;
}

static int t_exit_status(void)
{
	struct run r;
	CHECK(sh_ok(&r, "echo hello from the sandbox"), "echo failed");
	CHECK(has(r.log, "hello from the sandbox\n"), "stdout did not reach log_fd: %s", r.log);
	memset(&r, 0, sizeof r);
	r.argv = SH("echo to-stderr >&2; exit 7");
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 7), "expected exit 7, got %s", status_str(&r));
	CHECK(has(r.log, "to-stderr"), "stderr did not reach log_fd: %s", r.log);
	return 1;
}

static int t_readonly(void)
{
	struct run r;
	CHECK(sh_ok(&r,
	            "touch /usr/x 2>&1; touch /x 2>&1; touch /etc/x 2>&1; touch /var/task/x 2>&1; "
	            "touch /opt/nexus/x 2>&1; touch /dev/x 2>&1; touch /tmp/ok && echo tmp-writable; "
	            "ls /opt/nexus; cat /etc/nexus-rootfs; "
	            "awk '{print \"mnt\", $5, $6}' /proc/self/mountinfo"),
	      "script failed");
	const char *ro[] = { "/usr/x", "/x", "/etc/x", "/var/task/x", "/opt/nexus/x", "/dev/x" };
	for (int i = 0; i < 6; i++) {
		char want[64];
		snprintf(want, sizeof want, "'%s': Read-only file system", ro[i]);
		CHECK(has(r.log, want), "%s was writable (or other error): %s", ro[i], r.log);
	}
	CHECK(has(r.log, "tmp-writable"), "/tmp not writable: %s", r.log);
	CHECK(has(r.log, "runtime-marker"), "/opt/nexus does not show the runtime dir: %s", r.log);
	CHECK(has(r.log, "nexus guest rootfs"), "/ is not the guest rootfs: %s", r.log);
	CHECK(has(r.log, "mnt / ro,"), "/ not mounted ro: %s", r.log);
	CHECK(has(r.log, "mnt /var/task ro,"), "/var/task not mounted ro: %s", r.log);
	CHECK(has(r.log, "mnt /opt/nexus ro,"), "/opt/nexus not mounted ro: %s", r.log);
	/* Exactly the mounts we made: nothing of the host's tree is visible. */
	int mounts = 0;
	for (const char *p = r.log; (p = strstr(p, "mnt ")); p++)
		mounts++;
	CHECK(mounts == 6, "expected 6 mounts (/, /var/task, /opt/nexus, /tmp, /dev, /proc), saw %d:\n%s", mounts, r.log);
	return 1;
}

static int t_host_fs_hidden(void)
{
	struct run r;
	CHECK(sh_ok(&r, "ls /work /var/cache/nexus /sys/class 2>&1; echo pid=$$ host=$(cat /proc/sys/kernel/hostname); "
	                "ls /proc | grep -c '^[0-9]'; ls /dev"),
	      "script failed");
	CHECK(has(r.log, "cannot access '/work'"), "host /work visible: %s", r.log);
	CHECK(has(r.log, "cannot access '/var/cache/nexus'"), "host cache visible: %s", r.log);
	CHECK(has(r.log, "cannot access '/sys/class'"), "/sys visible: %s", r.log);
	CHECK(has(r.log, "pid=1 host=nexus-sandbox"), "not pid 1 / own hostname: %s", r.log);
	/* ls and sh (and maybe grep) are all the processes it sees. */
	const char *n = strstr(r.log, "nexus-sandbox\n");
	CHECK(n && atoi(n + 14) <= 4, "sees more processes than its own: %s", r.log);
	CHECK(has(r.log, "null\nrandom\nshm\nstderr\nstdin\nstdout\nurandom\nzero") && has(r.log, "full"),
	      "/dev is not the minimal set: %s", r.log);
	return 1;
}

static void host_uid_check(struct nx_sandbox *sb, struct run *r)
{
	/* The host's view of the sandbox's init: its pid from the pidfd's fdinfo. */
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", drv->exit_fd(sb));
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f) fclose(f);
	buf[n] = 0;
	char *p = strstr(buf, "Pid:");
	int pid = p ? atoi(p + 4) : -1;
	usleep(200000);   /* let it exec */
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	f = fopen(path, "r");
	n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f) fclose(f);
	buf[n] = 0;
	p = strstr(buf, "Uid:");
	snprintf(r->cgroup_dir, sizeof r->cgroup_dir, "%.*s", p ? (int)strcspn(p, "\n") : 0, p ? p : "");
	drv->kill(sb);
}

static int t_uid_mapping(void)
{
	struct run r;
	CHECK(sh_ok(&r, "cat /proc/self/uid_map /proc/self/gid_map; id -u; grep -E '^(Cap(Eff|Prm|Bnd)|NoNewPrivs|Seccomp):' /proc/self/status; "
	                "cat /proc/self/setgroups; ls -ln /etc/passwd | awk '{print \"owner\", $3}'; "
	                "grep -E '^Max (open files|processes|core file size)' /proc/self/limits | tr -s ' '"),
	      "script failed");
	CHECK(has(r.log, "0 1700000"), "uid_map does not map 0 to a high host uid: %s", r.log);
	CHECK(has(r.log, "\n0\n"), "not uid 0 inside: %s", r.log);
	CHECK(has(r.log, "CapEff:\t0000000000000000") && has(r.log, "CapPrm:\t0000000000000000"),
	      "capabilities left: %s", r.log);
	CHECK(has(r.log, "NoNewPrivs:\t1") && has(r.log, "Seccomp:\t2"), "no_new_privs/seccomp not set: %s", r.log);
	CHECK(has(r.log, "deny"), "setgroups not denied: %s", r.log);
	CHECK(has(r.log, "owner 65534"), "host root's files should show as nobody: %s", r.log);
	CHECK(has(r.log, "Max core file size 0 0 ") && has(r.log, "Max processes 512 512 ") &&
	      has(r.log, "Max open files 1024 1024 "), "rlimits (core, tasks, files) not set: %s", r.log);
	/* From the host: the process runs as the high uid, not as root. */
	memset(&r, 0, sizeof r);
	r.argv = SH("sleep 10");
	r.while_running = host_uid_check;
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	say("    host view: %s\n", r.cgroup_dir);
	CHECK(!strncmp(r.cgroup_dir, "Uid:\t17", 7) && !strstr(r.cgroup_dir, "\t0\t"),
	      "host sees uid %s", r.cgroup_dir);
	return 1;
}

static int listen_port(int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(*fd, 8) < 0 ||
	    getsockname(*fd, (struct sockaddr *)&a, &l) < 0)
		return -1;
	return ntohs(a.sin_port);
}

static int t_network(void)
{
	int lfd, port = listen_port(&lfd);
	CHECK(port > 0, "cannot listen on 127.0.0.1");
	char ports[16];
	snprintf(ports, sizeof ports, "%d", port);
	struct run r = { .argv = PY("/var/task/probe_net.py", ports, "10.0.2.15") };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0), "%s: %s", status_str(&r), r.log);
	CHECK(has(r.log, "ifaces lo\n"), "interfaces other than lo: %s", r.log);
	CHECK(has(r.log, "connect 127.0.0.1 failed") && has(r.log, "connect 10.0.2.15 failed"),
	      "a TCP connect got out: %s", r.log);
	CHECK(has(r.log, "PermissionError 1"), "expected EPERM from the filter: %s", r.log);
	CHECK(has(r.log, "inet6 failed 1"), "AF_INET6 socket allowed: %s", r.log);
	CHECK(has(r.log, "unix x"), "AF_UNIX socketpair broken: %s", r.log);
	int c = accept(lfd, NULL, NULL);
	CHECK(c < 0, "the host listener got a connection from the sandbox");
	close(lfd);
	return 1;
}

/* The "S3 server" of the baseline test: answers one relayed connection. */
static void *pong_once(void *arg)
{
	int lfd = *(int *)arg;
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	for (int i = 0; i < 2 && poll(&p, 1, 15000) == 1; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		char buf[16];
		struct pollfd pc = { .fd = c, .events = POLLIN };
		ssize_t n = poll(&pc, 1, 5000) == 1 ? read(c, buf, sizeof buf) : -1;
		if (n >= 4 && !memcmp(buf, "ping", 4)) {
			if (write(c, "pong\n", 5) != 5)
				perror("pong");
			close(c);
			break;
		}
		close(c);   /* the probe's connect to host loopback cannot get here; anything else: next */
	}
	return NULL;
}

static int t_baseline_network(void)
{
	int lfd, port = listen_port(&lfd);
	CHECK(port > 0, "cannot listen on 127.0.0.1");
	char ports[16], ep[64];
	snprintf(ports, sizeof ports, "%d", port);
	snprintf(ep, sizeof ep, "AWS_ENDPOINT_URL_S3=http://127.0.0.1:%d", port);
	const char *const env[] = { "PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", ep, NULL };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, pong_once, &lfd) == 0, "thread");
	struct run r = { .argv = PY("/var/task/probe_baseline_net.py", ports), .mode = NX_MODE_BASELINE, .envp = env };
	int rc = do_run(&r);
	pthread_join(t, NULL);
	close(lfd);
	CHECK(rc == 0, "start: %s", r.err);
	CHECK(exited(&r, 0), "%s: %s", status_str(&r), r.log);
	CHECK(has(r.log, "ifaces eth0 lo\n"), "baseline sandbox should have exactly lo + eth0: %s", r.log);
	CHECK(has(r.log, "endpoint http://169.254.0.1:9000\n"), "S3 endpoint not pointed at the relay: %s", r.log);
	CHECK(has(r.log, "listen 169.254."), "no NEXUS_BASELINE_LISTEN: %s", r.log);
	CHECK(has(r.log, "host loopback ConnectionRefusedError"), "host loopback reachable from baseline: %s", r.log);
	CHECK(has(r.log, "relay says pong"), "no round trip through the relay: %s", r.log);
	memset(&r, 0, sizeof r);
	r.argv = PY("/var/task/probe_boto3.py");
	r.mode = NX_MODE_BASELINE;
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0) && has(r.log, "boto3 ok"), "real boto3 under the baseline filter: %s %s", status_str(&r), r.log);
	return 1;
}

static int t_channel_fds(void)
{
	struct run r = { .argv = PY("/var/task/probe_fds.py") };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0), "%s: %s", status_str(&r), r.log);
	CHECK(has(r.log, "fds 0 1 2 3 4 5\n"), "fds other than 0-5 are open: %s", r.log);
	CHECK(has(r.log, "fd3 /memfd:nexus-region"), "fd 3 is not the region: %s", r.log);
	CHECK(has(r.log, "fd4 anon_inode:[eventfd]") && has(r.log, "fd5 anon_inode:[eventfd]"), "fd 4/5 not eventfds: %s", r.log);
	CHECK(has(r.log, "env 3 4 5 nexus"), "NEXUS_*_FD / NEXUS_MODE env wrong: %s", r.log);
	CHECK(has(r.log, "region hello-region"), "region contents not shared: %s", r.log);
	CHECK(!memcmp(r.region_after, "written-by-guest", 16), "guest write to the region not seen by the host");
	CHECK(r.kicks == 1, "guest kick (eventfd 4) not seen by the host: %llu", (unsigned long long)r.kicks);
	CHECK(has(r.log, "stdin ''"), "stdin is not /dev/null: %s", r.log);
	return 1;
}

static int t_seccomp(void)
{
	struct run r = { .argv = PY("/var/task/probe_seccomp.py") };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0), "%s: %s", status_str(&r), r.log);
	const char *denied[] = { "ptrace", "mount", "unshare", "bpf", "keyctl", "add_key", "perf_event_open",
	                         "kexec_load", "io_uring_setup", "userfaultfd", "chroot", "setns", "clone_newuser" };
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
		char want[64];
		snprintf(want, sizeof want, "%s errno=1\n", denied[i]);
		CHECK(has(r.log, want), "%s not refused with EPERM: %s", denied[i], r.log);
	}
	CHECK(has(r.log, "clone3 errno=38\n"), "clone3 should give ENOSYS: %s", r.log);
	CHECK(has(r.log, "getpid 1\n"), "getpid broken: %s", r.log);
	CHECK(has(r.log, "fork 3\n"), "fork/wait broken: %s", r.log);
	return 1;
}

static int t_workload(void)
{
	struct run r = { .argv = PY("/var/task/workload.py"), .memory_mb = 256 };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0) && has(r.log, "workload ok"), "Pillow/pyaes/threads/subprocess under the filter: %s\n%s",
	      status_str(&r), r.log);
	say("    cpu %.1f ms, memory %.1f MiB (cgroup)\n", r.usage.cpu_ns / 1e6, r.usage.mem_bytes / 1048576.0);
	return 1;
}

/* The real guest runtime (build/runtime) and each example function load under
 * the nexus-mode filter: the parts other engineers build, here in a sandbox. */
static int t_runtime_imports(void)
{
	char lib[4200];
	snprintf(lib, sizeof lib, "%s/lib/libnexus.so", real_runtime ? real_runtime : "");
	if (!real_runtime || access(lib, R_OK) != 0 || !functions_dir) {
		skip("runtime + examples import", "no built guest runtime (build/runtime/lib/libnexus.so: run 'make all') "
		     "or no functions/ dir given");
		return -1;
	}
	/* The probe script comes from our code dir; the function's app.py from its own. */
	static const char *const fns[] = { "hello", "image-rotate", "wordcount", "pyaes" };
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		char dir[4200], script[8400];
		snprintf(dir, sizeof dir, "%s/%s", functions_dir, fns[i]);
		if (access(dir, F_OK) != 0) {
			say("    %s: not in %s, not checked\n", fns[i], functions_dir);
			continue;
		}
		FILE *f = fopen(strcat(strcpy(script, code_dir), "/probe_runtime.py"), "r");
		CHECK(f, "probe_runtime.py missing");
		size_t n = fread(script, 1, sizeof script - 1, f);
		fclose(f);
		script[n] = 0;
		struct run r = { .argv = PY("-c", script), .code = dir, .runtime = real_runtime };
		CHECK(do_run(&r) == 0, "%s: start: %s", fns[i], r.err);
		CHECK(exited(&r, 0) && has(r.log, "runtime ok"), "%s: %s\n%s", fns[i], status_str(&r), r.log);
		say("    %s: ok\n", fns[i]);
	}
	return 1;
}

static int t_memory_limit(void)
{
	char why[256];
	drv->probe(why, sizeof why);
	if (strstr(why, "NOT enforced")) {
		skip("memory limit", why);
		return -1;
	}
	struct run r = { .argv = PY("/var/task/alloc.py", "32"), .memory_mb = 64 };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(exited(&r, 0) && has(r.log, "allocated 32 MiB"), "32 MiB under a 64 MiB limit failed: %s %s", status_str(&r), r.log);
	memset(&r, 0, sizeof r);
	r.argv = PY("/var/task/alloc.py", "200");
	r.memory_mb = 64;
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	say("    200 MiB under 64 MiB: %s, oom_kills=%u\n", status_str(&r), r.usage.oom_kills);
	CHECK(!has(r.log, "allocated 200"), "allocated 200 MiB under a 64 MiB limit: %s", r.log);
	CHECK(WIFSIGNALED(r.wstatus) && WTERMSIG(r.wstatus) == SIGKILL, "expected an OOM kill, got %s: %s", status_str(&r), r.log);
	CHECK(r.usage.oom_kills >= 1, "usage() reports no OOM kill");
	return 1;
}

static int t_kill(void)
{
	/* A tree of processes: killing the init takes the whole pid namespace. */
	struct run r = { .argv = SH("sleep 100 & sleep 100 & echo started; wait"), .kill_after_ms = 300 };
	CHECK(do_run(&r) == 0, "start: %s", r.err);
	CHECK(WIFSIGNALED(r.wstatus) && WTERMSIG(r.wstatus) == SIGKILL, "expected SIGKILL, got %s", status_str(&r));
	CHECK(r.exit_ms < 1000, "kill took %llu ms", (unsigned long long)r.exit_ms);
	say("    killed in %llu ms\n", (unsigned long long)r.exit_ms);
	/* No process of that sandbox's uid survives on the host (given a moment:
	 * a tracer such as strace can hold exiting tasks briefly). */
	char cmd[160];
	snprintf(cmd, sizeof cmd, "ps -eo uid= | grep -cx ' *%llu'", TEST_UID_BASE + r.instance_id);
	int left = -1;
	for (int tries = 0; tries < 20 && left != 0; tries++) {
		if (tries)
			usleep(50000);
		FILE *p = popen(cmd, "r");
		if (p) {
			if (fscanf(p, "%d", &left) != 1)
				left = -1;
			pclose(p);
		}
	}
	CHECK(left == 0, "%d sandbox processes survived the kill", left);
	return 1;
}

static int t_errors(void)
{
	struct run r = { .argv = SH("true"), .code = "/nonexistent/code" };
	CHECK(do_run(&r) != 0, "started with a missing code dir");
	CHECK(has(r.err, "/nonexistent/code: No such file or directory"), "unclear error: %s", r.err);
	say("    missing code dir: %s\n", r.err);
	memset(&r, 0, sizeof r);
	r.argv = (const char *const[]){ "/usr/bin/no-such-binary", NULL };
	CHECK(do_run(&r) != 0, "started a missing binary");
	CHECK(has(r.err, "execve /usr/bin/no-such-binary: No such file or directory"), "unclear error: %s", r.err);
	say("    missing binary: %s\n", r.err);
	memset(&r, 0, sizeof r);
	r.argv = SH("true");
	r.rootfs = code_dir;   /* a directory without /var/task etc. */
	CHECK(do_run(&r) != 0, "started in a tree that is no rootfs");
	say("    bad rootfs: %s\n", r.err);
	CHECK(has(r.err, "has no /var/task directory: not a Nexus guest root filesystem"), "unclear error: %s", r.err);
	/* A code dir the sandbox's uid could not read is refused up front. */
	char priv[] = "/tmp/nexus-sbtest-private-XXXXXX";
	CHECK(mkdtemp(priv), "mkdtemp");
	memset(&r, 0, sizeof r);
	r.argv = SH("true");
	r.code = priv;
	int rc = do_run(&r);
	rmdir(priv);
	CHECK(rc != 0 && has(r.err, "not readable by the sandbox"), "0700 code dir: rc %d, %s", rc, r.err);
	say("    private code dir: %s\n", r.err);
	return 1;
}

static int t_cgroup_cleanup(void)
{
	char why[256];
	drv->probe(why, sizeof why);
	if (strstr(why, "NOT enforced")) {
		skip("cgroup cleanup", why);
		return -1;
	}
	FILE *p = popen("ls -d /sys/fs/cgroup/memory/nexus/sb-*-$PPID-* /sys/fs/cgroup/nexus/sb-*-$PPID-* 2>/dev/null | wc -l", "r");
	int left = -1;
	if (p) {
		if (fscanf(p, "%d", &left) != 1)
			left = -1;
		pclose(p);
	}
	CHECK(left == 0, "%d instance cgroups left behind", left);
	if (stale_cg[0])
		CHECK(access(stale_cg, F_OK) != 0, "the probe did not sweep the dead nexusd's group %s", stale_cg);
	else
		say("    (no %s before the first probe: the sweep of dead nexusds' groups was not exercised)\n",
		    "/sys/fs/cgroup/memory/nexus");
	return 1;
}

/* Without a usable memory cgroup the driver must still start sandboxes, and say
 * loudly (probe and a one-time warning) that memory is not limited.  Checked in
 * a fresh process whose NEXUS_CGROUP_ROOT is an empty directory. */
static int child_no_cgroup(void)
{
	char why[512];
	int ok = drv->probe(why, sizeof why);
	printf("probe %d: %s\n", ok, why);
	fflush(stdout);
	struct run r = { .argv = SH("echo started-without-cgroup") };
	if (do_run(&r) != 0) {
		printf("start failed: %s\n", r.err);
		return 1;
	}
	printf("%s; log: %s", status_str(&r), r.log);
	return 0;
}

static int t_no_cgroup(void)
{
	char dir[] = "/tmp/nexus-sbtest-nocg-XXXXXX", cmd[8192], out[4096];
	CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(cmd, sizeof cmd, "NEXUS_CGROUP_ROOT=%s /proc/%d/exe --rootfs '%s' --code '%s' --results /nonexistent "
	         "--child-no-cgroup 2>&1", dir, (int)getpid(), rootfs, code_dir);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
	int rc = p ? pclose(p) : -1;
	rmdir(dir);
	out[n] = 0;
	say("%s", out);
	CHECK(rc == 0, "child run failed (%d)", rc);
	CHECK(has(out, "probe 1: ") && has(out, "memory limits NOT enforced"), "probe does not say it: %s", out);
	CHECK(has(out, "WITHOUT a memory limit"), "no loud warning at start: %s", out);
	CHECK(has(out, "exit 0; log: started-without-cgroup"), "did not start without a cgroup: %s", out);
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int t_start_time(void)
{
	enum { N = 15 };
	uint64_t t[N];
	for (int i = 0; i < N; i++) {
		struct run r = { .argv = (const char *const[]){ "/bin/true", NULL } };
		CHECK(do_run(&r) == 0 && exited(&r, 0), "start %d: %s %s", i, r.err, status_str(&r));
		t[i] = r.usage.start_ns;
	}
	qsort(t, N, sizeof t[0], cmp_u64);
	say("    start() to exec: median %.2f ms, min %.2f, max %.2f (n=%d)\n", t[N / 2] / 1e6, t[0] / 1e6, t[N - 1] / 1e6, N);
	CHECK(t[N / 2] > 0 && t[N / 2] < 200000000ull, "median start time %.1f ms", t[N / 2] / 1e6);
	return 1;
}

static const struct { const char *name; int (*fn)(void); } tests[] = {
	{ "probe", t_probe },
	{ "exit status and log", t_exit_status },
	{ "read-only root, code, runtime", t_readonly },
	{ "host filesystem hidden", t_host_fs_hidden },
	{ "uid mapping, no capabilities", t_uid_mapping },
	{ "channel fds 3/4/5 only", t_channel_fds },
	{ "no network in nexus mode", t_network },
	{ "network in baseline mode", t_baseline_network },
	{ "seccomp refuses", t_seccomp },
	{ "example workloads under seccomp", t_workload },
	{ "runtime + examples import", t_runtime_imports },
	{ "memory limit", t_memory_limit },
	{ "kill", t_kill },
	{ "errors say what failed", t_errors },
	{ "cgroups removed", t_cgroup_cleanup },
	{ "no cgroup: runs, warns loudly", t_no_cgroup },
	{ "start time", t_start_time },
};

int main(int argc, char **argv)
{
	setenv("NEXUS_SANDBOX_UID_BASE", "1700000000", 1);
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--rootfs")) rootfs = argv[i + 1];
		else if (!strcmp(argv[i], "--code")) code_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--results")) results_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--runtime")) real_runtime = argv[i + 1];
		else if (!strcmp(argv[i], "--functions")) functions_dir = argv[i + 1];
	}
	if (!rootfs || !code_dir || !results_dir) {
		fprintf(stderr, "usage: %s --rootfs DIR --code DIR --results DIR [--runtime DIR --functions DIR]\n", argv[0]);
		return 2;
	}
	static char code_abs[4096];
	if (!realpath(code_dir, code_abs)) {
		perror(code_dir);
		return 2;
	}
	code_dir = code_abs;
	static char rt_abs[4096], fn_abs[4096];
	if (real_runtime)
		real_runtime = realpath(real_runtime, rt_abs);
	if (functions_dir)
		functions_dir = realpath(functions_dir, fn_abs);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--child-no-cgroup")) {
			if (mkdtemp(runtime_dir))
				chmod(runtime_dir, 0755);
			int rc = child_no_cgroup();
			rmdir(runtime_dir);
			return rc;
		}
	say("test-sandbox: process sandbox driver, rootfs %s\n", rootfs);

	/* Before anything probes: a group left by a nexusd that is gone. */
	if (geteuid() == 0 && !getenv("NEXUS_CGROUP_ROOT") && access("/sys/fs/cgroup/memory/nexus", F_OK) == 0) {
		pid_t dead = fork();   /* a pid that surely has no nexusd behind it any more */
		if (dead == 0)
			_exit(0);
		waitpid(dead, NULL, 0);
		snprintf(stale_cg, sizeof stale_cg, "/sys/fs/cgroup/memory/nexus/sb-0-%d-0", (int)dead);
		if (mkdir(stale_cg, 0755) < 0)
			stale_cg[0] = 0;
	}
	char why[512];
	int usable = geteuid() == 0;
	if (!usable)
		snprintf(why, sizeof why, "not running as root (the process sandbox needs root: run 'sudo make test-sandbox')");
	else if (access(rootfs, F_OK) != 0) {
		usable = 0;
		snprintf(why, sizeof why, "no guest root filesystem at %s (run 'make rootfs')", rootfs);
	} else if (!drv->probe(why, sizeof why))
		usable = 0;
	if (usable) {   /* a stand-in for build/runtime, recognisable at /opt/nexus */
		char marker[4200];
		int fd = -1;
		if (mkdtemp(runtime_dir) && chmod(runtime_dir, 0755) == 0) {
			snprintf(marker, sizeof marker, "%s/runtime-marker", runtime_dir);
			fd = open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		}
		if (fd < 0) {
			perror("runtime dir");
			return 2;
		}
		close(fd);
	}
	for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
		if (!usable) {
			skip(tests[i].name, why);
			continue;
		}
		say("---- %s\n", tests[i].name);
		int r = tests[i].fn();
		if (r > 0) {
			passed++;
			say("ok   %s\n", tests[i].name);
		} else if (r == 0) {
			failed++;
			say("FAIL %s\n", tests[i].name);
		}
	}
	if (usable) {
		char cmd[4200];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", runtime_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", runtime_dir);
	}

	char path[4096];
	snprintf(path, sizeof path, "%s/test-sandbox.counts", results_dir);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return 2;
	}
	fprintf(f, "passed=%d failed=%d skipped=%d\n", passed, failed, skipped);
	for (int i = 0; i < skipped && i < 32; i++)
		fprintf(f, "skip: %s\n", skips[i]);
	fclose(f);
	say("test-sandbox: passed=%d failed=%d skipped=%d\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
