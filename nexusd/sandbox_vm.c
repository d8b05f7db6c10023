/* SPDX-License-Identifier: MIT */
/*
 * The `vm` sandbox driver: one function instance = one nexus-vmm process running
 * the Nexus guest kernel (guest/kernel) with
 *   /dev/vda  the guest root filesystem image (guest/image), read-only, shared
 *   /dev/vdb  the runtime dir (build/runtime) as a small ext4 image, read-only -> /opt/nexus
 *   /dev/vdc  the function's code as a small ext4 image, read-only           -> /var/task
 *   the Nexus device on the instance's region + eventfds (--nexus 3,4,5), so the
 *   runtime's libnexus finds /dev/nexus (no NEXUS_*_FD in its environment)
 *   no network device in nexus mode; baseline mode adds virtio-net on a tap in the
 *   node network namespace (sandbox_vm_net.c, docs/baseline.md)
 * Guest memory is the function's memory setting.  The guest's nexus-init mounts
 * the two small disks and runs the same command as the process sandbox; its
 * console (kernel messages are `quiet`) is the function's log.
 *
 * Where things are (environment of nexusd, defaults next to nexusd's binary):
 *   NEXUS_VMM           nexus-vmm            (default BIN/nexus-vmm)
 *   NEXUS_GUEST_KERNEL  the guest vmlinux    (default BIN/../guest/vmlinux)
 *   NEXUS_GUEST_IMAGE   the root image       (default BIN/../guest/rootfs.ext4)
 *
 * exit_fd is a pidfd of nexus-vmm; kill is SIGKILL to it (the VM dies with it);
 * usage is nexus-vmm's CPU time and resident memory (guest RAM it touched).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "sandbox_pidfd.h"
#include "sandbox_vm.h"
#include "sandbox_vm_net.h"
#include "loop.h"   /* nx_now_ns */
#include "util.h"

#define KVMIO 0xAE
#define KVM_GET_API_VERSION_NR _IO(KVMIO, 0x00)

static int errf(char *err, size_t n, int e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t n, int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -e;
}

/* A path from the environment, or next to nexusd's own binary. */
static void locate(char *out, size_t n, const char *env, const char *rel)
{
	const char *v = getenv(env);
	if (v && *v) {
		snprintf(out, n, "%s", v);
		return;
	}
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k <= 0) {
		snprintf(out, n, "%s", rel);
		return;
	}
	exe[k] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(out, n, "%.*s/%s", (int)(n / 2), exe, rel) >= n)
		out[0] = 0;
}

static void paths(char *vmm, char *kernel, char *image)
{
	locate(vmm, PATH_MAX, "NEXUS_VMM", "nexus-vmm");
	locate(kernel, PATH_MAX, "NEXUS_GUEST_KERNEL", "../guest/vmlinux");
	locate(image, PATH_MAX, "NEXUS_GUEST_IMAGE", "../guest/rootfs.ext4");
}

/* ------------------------------------------------------------ images */

static _Thread_local uint64_t du_bytes;
static int du_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)p; (void)flag; (void)f;
	du_bytes += (uint64_t)st->st_size + 4096;
	return 0;
}

/* Run a command, output to /dev/null; 0 when it exited 0. */
static int run_quiet(char *const argv[])
{
	pid_t p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0), dup2(nul, 1), dup2(nul, 2);
		}
		/* Only async-signal-safe calls here: nexusd is multithreaded. */
		static char *const env[] = { "PATH=/usr/sbin:/sbin:/usr/bin:/bin", NULL };
		execve(argv[0], argv, env);
		_exit(127);
	}
	int st;
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* An ext4 image of DIR (read-only in the guest): sized as its contents + slack. */
static int make_image(const char *src, const char *img, char *err, size_t errlen)
{
	du_bytes = 0;
	if (nftw(src, du_one, 16, FTW_PHYS) < 0)
		return errf(err, errlen, EIO, "cannot read %s: %s", src, strerror(errno));
	uint64_t mb = du_bytes * 5 / 4 / (1 << 20) + 8;
	char size[32];
	snprintf(size, sizeof size, "%lluM", (unsigned long long)mb);
	char *argv[] = { "/sbin/mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", "-E", "root_owner=0:0",
	                 "-d", (char *)src, (char *)img, size, NULL };
	if (run_quiet(argv) < 0)
		return errf(err, errlen, EIO, "mkfs.ext4 -d %s failed (is e2fsprogs installed?)", src);
	return 0;
}

/* ------------------------------------------------------- command line */

/* Append " key=VALUE" with VALUE percent-encoded as nexus-init decodes it. */
static int add_enc(char *cl, size_t cap, const char *key, const char *val)
{
	size_t n = strlen(cl);
	int k = snprintf(cl + n, cap - n, " %s", key);
	if (k < 0 || (size_t)k >= cap - n)
		return -1;
	n += (size_t)k;
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if (n + 4 >= cap)
			return -1;
		if (*p <= ' ' || *p == '%' || *p == '"' || *p >= 0x7f)
			n += (size_t)snprintf(cl + n, cap - n, "%%%02X", *p);
		else
			cl[n++] = (char)*p;
	}
	cl[n] = 0;
	return 0;
}

static int is_channel_env(const char *e)
{
	return !strncmp(e, "NEXUS_REGION_FD=", 16) || !strncmp(e, "NEXUS_KICK_HOST_FD=", 19) ||
	       !strncmp(e, "NEXUS_KICK_GUEST_FD=", 20);
}

static int build_cmdline(const struct nx_sandbox_spec *spec, char *cl, size_t cap, char *err, size_t errlen)
{
	snprintf(cl, cap, "console=ttyS0 quiet loglevel=1 root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init "
	                  "panic=-1 reboot=k nexus.quiet=1");
	int nenv = 0;
	for (const char *const *e = spec->envp; e && *e; e++) {
		if (is_channel_env(*e))
			continue;   /* in a microVM the channel is /dev/nexus */
		if (++nenv > 30)
			return errf(err, errlen, E2BIG, "too many environment variables for a microVM (at most 30)");
		if (add_enc(cl, cap, "nexus.env=", *e) < 0)
			goto too_long;
	}
	int has_mode = 0;
	for (const char *const *e = spec->envp; e && *e; e++)
		has_mode |= !strncmp(*e, "NEXUS_MODE=", 11);
	if (!has_mode && add_enc(cl, cap, "nexus.env=", "NEXUS_MODE=nexus") < 0)
		goto too_long;
	/* /bin/sh mounts the two small disks, then execs the sandbox command. */
	char sh[2048] = "mount -o ro /dev/vdb /opt/nexus && mount -o ro /dev/vdc /var/task && cd /var/task && exec";
	for (const char *const *a = spec->argv; *a; a++) {
		if (strchr(*a, '\''))
			return errf(err, errlen, EINVAL, "sandbox argument with a quote: %s", *a);
		size_t n = strlen(sh);
		if ((size_t)snprintf(sh + n, sizeof sh - n, " '%s'", *a) >= sizeof sh - n)
			goto too_long;
	}
	size_t n = strlen(cl);
	if ((size_t)snprintf(cl + n, cap - n, " nexus.cmd=\"/bin/sh -c ") >= cap - n)
		goto too_long;
	char enc[4096] = "";
	if (add_enc(enc, sizeof enc, "", sh) < 0)
		goto too_long;
	n = strlen(cl);
	if ((size_t)snprintf(cl + n, cap - n, "%s\"", enc + 1) >= cap - n)   /* enc + 1: skip the space */
		goto too_long;
	return 0;
too_long:
	return errf(err, errlen, E2BIG, "the guest command line (environment + command) is over %zu bytes", cap);
}

/* --------------------------------------------------------------- driver */

#define ATTACH_MS 30000   /* nexus-attach answered (a restore verifies the snapshot first) */

static int restore_ready_ms(void)
{
	const char *v = getenv("NEXUS_VM_RESTORE_READY_MS");
	int ms = v && *v ? atoi(v) : 0;
	return ms > 0 ? ms : 20000;
}

static void rm_scratch(struct nx_sandbox *sb)
{
	char p[PATH_MAX + 32];
	if (!sb->dir[0])
		return;
	static const char *const names[] = { "code.ext4", "runtime.ext4", "vmm-stderr" };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof p, "%s/%s", sb->dir, names[i]);
		unlink(p);
	}
	rmdir(sb->dir);
	sb->dir[0] = 0;
}

/* The key's shared images (<state>/snapshots/<key>.disks/), built once and
 * never replaced: a snapshot's page cache must match its disks. */
static int shared_image(const char *key, const char *name, const char *src, char *out, size_t cap, char *err,
                        size_t errlen)
{
	char d[PATH_MAX], tmp[PATH_MAX + 16];
	vm_snap_path("", NULL, d, sizeof d);
	mkdir(d, 0700);
	vm_snap_path(key, ".disks", d, sizeof d);
	mkdir(d, 0700);
	snprintf(out, cap, "%s/%s", d, name);
	if (access(out, R_OK) == 0)
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	int rc = make_image(src, tmp, err, errlen);
	if (rc == 0 && rename(tmp, out) < 0)
		rc = errf(err, errlen, errno, "rename %s: %s", tmp, strerror(errno));
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* The monitor is gone or must go: kill, reap, forget it.  Its exit code, or -1. */
static int drop_monitor(struct nx_sandbox *sb)
{
	int code = -1, st;
	if (sb->pid > 0) {
		kill(sb->pid, SIGKILL);
		while (waitpid(sb->pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st))
			code = WEXITSTATUS(st);
	}
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	if (sb->ctl >= 0)
		close(sb->ctl);
	sb->pid = 0;
	sb->pidfd = sb->ctl = -1;
	return code;
}

/* fork + exec the monitor.  control: fd 3 is its end of a socketpair
 * (--control-fd 3) and the fds go over it (nexus-attach); else they are
 * inherited as 3, 4, 5 (--nexus 3,4,5).  stderr_fd: the monitor's stderr. */
static int spawn(struct nx_sandbox *sb, const struct nx_sandbox_spec *spec, const char *vmm, char **argv, bool control,
                 int stderr_fd, int netns_fd, char *const *envp, char *err, size_t errlen)
{
	int fds[3] = { spec->region_fd, spec->kick_host_fd, spec->kick_guest_fd };
	int sp[2] = { -1, -1 };
	if (control && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return errf(err, errlen, errno, "socketpair: %s", strerror(errno));
	pid_t parent = getpid();
	sb->pid = fork();
	if (sb->pid < 0) {
		int e = errno;
		if (control)
			close(sp[0]), close(sp[1]);
		return errf(err, errlen, e, "fork: %s", strerror(e));
	}
	if (sb->pid == 0) {
		/* The VM must not outlive nexusd. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int tmpfd[3] = { -1, -1, -1 };
		int n = control ? 1 : 3;
		for (int i = 0; i < n; i++)
			tmpfd[i] = fcntl(control ? sp[1] : fds[i], F_DUPFD, 10);   /* not CLOEXEC */
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(spec->log_fd, 1) < 0 || dup2(stderr_fd, 2) < 0)
			_exit(127);
		for (int i = 0; i < n; i++)
			if (tmpfd[i] < 0 || dup2(tmpfd[i], 3 + i) < 0)
				_exit(127);
		/* Baseline: its tap is in the node network namespace (sandbox_vm_net.c). */
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
			_exit(127);
		/* Nothing else of nexusd's leaks into the monitor. */
		syscall(SYS_close_range, 3 + n, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(vmm, argv, envp ? envp : environ);
		dprintf(2, "nexusd: exec %s: %s\n", vmm, strerror(errno));
		_exit(127);
	}
	if (control) {
		close(sp[1]);
		sb->ctl = sp[0];
	}
	sb->pidfd = (int)syscall(SYS_pidfd_open, sb->pid, 0);
	if (sb->pidfd < 0) {
		int e = errno;
		drop_monitor(sb);
		return errf(err, errlen, e, "pidfd_open: %s", strerror(e));
	}
	fcntl(sb->pidfd, F_SETFD, FD_CLOEXEC);
	if (!control)
		return 0;
	char why[256];
	int r = vmm_nexus_attach(sb->ctl, fds, ATTACH_MS, why, sizeof why);
	if (r < 0) {
		int code = drop_monitor(sb);
		errf(err, errlen, -r, "nexus-vmm did not take the channel: %s (exit status %d)", why, code);
		return code == 72 ? -ESTALE : r;   /* 72: snapshot refused (docs/vmm.md) */
	}
	return 0;
}

/* A restored guest re-attaches and says READY on the fresh region: wait for
 * its first descriptor (the to-host ring's head leaves 0), or the monitor's
 * exit.  Only a hint read from the region; chan.c validates what it is. */
static int wait_reattach(struct nx_sandbox *sb, int region_fd, char *why, size_t n)
{
	size_t len = NX_ARENAS_OFF;
	const uint8_t *r = mmap(NULL, len, PROT_READ, MAP_SHARED, region_fd, 0);
	if (r == MAP_FAILED)
		return errf(why, n, errno, "mmap: %s", strerror(errno));
	const struct nx_ring *to_host = (const void *)(r + NX_TO_HOST_RING_OFF);
	uint64_t end = nx_now_ns() + (uint64_t)restore_ready_ms() * 1000000u;
	int rc = -ETIMEDOUT;
	snprintf(why, n, "the restored runtime did not re-attach within %d ms", restore_ready_ms());
	while (nx_now_ns() < end) {
		if (__atomic_load_n(&to_host->head, __ATOMIC_ACQUIRE) != 0) {
			rc = 0;
			break;
		}
		struct pollfd pf = { .fd = sb->pidfd, .events = POLLIN };
		if (poll(&pf, 1, 2) > 0) {
			snprintf(why, n, "the restored VM exited before its runtime re-attached");
			rc = -ECHILD;
			break;
		}
	}
	munmap((void *)r, len);
	return rc;
}

/* environ plus one "NAME=value" (replacing NAME's old value): a malloc'd
 * array of borrowed pointers, built before fork (no allocation in the child). */
static char **env_with(char *const *env, const char *add)
{
	size_t n = 0, name = strcspn(add, "=") + 1;
	while (env && env[n])
		n++;
	char **out = malloc((n + 2) * sizeof *out);
	if (!out)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], add, name))
			out[k++] = env[i];
	out[k++] = (char *)add;
	out[k] = NULL;
	return out;
}

/* Copy what a restored monitor wrote to stderr into the function's log. */
static void flush_stderr_file(struct nx_sandbox *sb)
{
	char p[PATH_MAX + 16], buf[4096];
	if (!sb->dir[0] || sb->log_fd < 0)
		return;
	snprintf(p, sizeof p, "%s/vmm-stderr", sb->dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t k;
	while ((k = read(fd, buf, sizeof buf)) > 0)
		if (write(sb->log_fd, buf, (size_t)k) != k)
			break;
	close(fd);
}

/* Try the function's snapshot.  0: restored and re-attached; < 0: booting
 * fresh is the way (the snapshot was refused and deleted where it was at fault). */
static int try_restore(struct nx_sandbox *sb, const struct nx_sandbox_spec *spec, const char *vmm, const char *image,
                       const char *rt_img, const char *code_img)
{
	uint64_t snap_gen, t0 = nx_now_ns();
	if (!vm_snap_present(sb->key, &snap_gen))
		return -ENOENT;
	/* A fresh region with a generation the snapshot's guest has not seen. */
	uint64_t gen = snap_gen + 1;
	if (pwrite(spec->region_fd, &gen, sizeof gen, offsetof(struct nx_region_hdr, generation)) != sizeof gen)
		return -EIO;
	sb->region_gen = gen;
	char dir[PATH_MAX], d_root[PATH_MAX + 8], d_rt[PATH_MAX + 32], d_code[PATH_MAX + 32], errp[PATH_MAX + 16];
	vm_snap_path(sb->key, NULL, dir, sizeof dir);
	snprintf(d_root, sizeof d_root, "%s,ro", image);
	snprintf(d_rt, sizeof d_rt, "%s,ro", rt_img);
	snprintf(d_code, sizeof d_code, "%s,ro", code_img);
	char *argv[20] = { (char *)vmm, "--restore", dir, "--disk", d_root, "--disk", d_rt, "--disk", d_code, "--nexus",
	                   "control", "--control-fd", "3", "--serial", "stdout" };
	/* The working set the first restored instance recorded (README-vm.md,
	 * "Working set"): the monitor pre-faults those pages before the guest runs. */
	char ws[PATH_MAX];
	vm_snap_ws_path(sb->key, ws, sizeof ws);
	sb->ws_used = vm_snap_ws_on() && access(ws, R_OK) == 0;
	if (sb->ws_used) {
		argv[15] = "--ws";
		argv[16] = ws;
	}
	snprintf(errp, sizeof errp, "%s/vmm-stderr", sb->dir);
	int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (efd < 0)
		return -errno;
	/* Memory integrity: the first restore of a snapshot this nexusd did not
	 * write (found on disk at start) has nexus-vmm verify the memory file's
	 * checksum (NEXUS_VMM_VERIFY_MEMORY=1, i.e. --verify-memory) before the
	 * guest runs; the verdict is kept for this process (vm_snap_trust). */
	bool verify = !vm_snap_trusted(sb->key);
	char **envp = verify ? env_with(environ, "NEXUS_VMM_VERIFY_MEMORY=1") : NULL;
	char err[512], why[600];
	int r = verify && !envp ? -ENOMEM : spawn(sb, spec, vmm, argv, true, efd, -1, envp, err, sizeof err);
	free(envp);
	close(efd);
	if (r == -ENOMEM)
		snprintf(err, sizeof err, "out of memory");
	if (r == 0)
		r = wait_reattach(sb, spec->region_fd, why, sizeof why);
	else
		snprintf(why, sizeof why, "%s", err);
	if (r == 0) {
		sb->restored = true;
		vm_snap_count(VMS_RESTORES);
		if (verify) {
			vm_snap_trust(sb->key, true);
			vm_snap_count(VMS_MEM_VERIFIED);
		}
		if (sb->ws_used)
			vm_snap_count(VMS_WS_RESTORES);
		else if (vm_snap_ws_on())
			vm_snap_ws_record(sb, spec->region_fd);
		nxd_info("instance %llu (%s) restored from vm snapshot %s%s%s: runtime re-attached %.1f ms after the restore "
		         "began", (unsigned long long)spec->instance_id, sb->function, sb->key,
		         verify ? " (memory file verified first)" : "", sb->ws_used ? " with its working set (--ws)" : "",
		         (double)(nx_now_ns() - t0) / 1e6);
		return 0;
	}
	int code = sb->pid > 0 ? drop_monitor(sb) : (r == -ESTALE ? 72 : -1);
	/* The monitor's own one-line reason (it exits 72 before touching the guest). */
	char reason[256] = "";
	FILE *f = fopen(errp, "re");
	while (f && fgets(reason, sizeof reason, f))
		;
	if (f)
		fclose(f);
	reason[strcspn(reason, "\n")] = 0;
	const char *rs = strncmp(reason, "nexus-vmm: ", 11) ? reason : reason + 11;
	char msg[900];
	snprintf(msg, sizeof msg, "%s%s%s%s", why, *rs ? " (nexus-vmm: " : "", rs, *rs ? ")" : "");
	if (sb->ws_used) {
		unlink(ws);   /* maybe it was what failed (a bad ws file fails the monitor's setup): record it anew */
		sb->ws_used = false;
	}
	if (code == 72 || r == -ETIMEDOUT || r == -ECHILD || r == -ESTALE)
		vm_snap_refuse(sb->key, msg);
	else
		nxd_warn("vm snapshot %s not used: %s; booting fresh", sb->key, msg);
	/* Back to the region as it was for a fresh boot. */
	sb->region_gen = snap_gen;
	if (pwrite(spec->region_fd, &sb->region_gen, sizeof gen, offsetof(struct nx_region_hdr, generation)) != sizeof gen)
		return -EIO;
	return -EAGAIN;
}

static int vm_start(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen)
{
	uint64_t t0 = nx_now_ns();
	char vmm[PATH_MAX], kernel[PATH_MAX], image[PATH_MAX];
	*out = NULL;
	if (!spec || !spec->argv || !spec->argv[0] || !spec->code_dir || !spec->runtime_dir || spec->region_fd < 0 ||
	    spec->kick_host_fd < 0 || spec->kick_guest_fd < 0 || spec->log_fd < 0)
		return errf(err, errlen, EINVAL, "sandbox spec incomplete (code, runtime, argv and all fds are required)");
	paths(vmm, kernel, image);
	struct vmm_caps caps;
	vmm_caps_get(vmm, &caps);
	struct nx_sandbox *sb = calloc(1, sizeof *sb);
	if (!sb)
		return errf(err, errlen, ENOMEM, "out of memory");
	sb->pidfd = sb->ctl = sb->region_fd = sb->log_fd = -1;
	snprintf(sb->function, sizeof sb->function, "%s", spec->function_name ? spec->function_name : "?");
	const char *tmp = getenv("TMPDIR");
	snprintf(sb->dir, sizeof sb->dir, "%s/nexus-vm-%llu-XXXXXX", tmp && *tmp ? tmp : "/tmp",
	         (unsigned long long)spec->instance_id);
	if (!mkdtemp(sb->dir)) {
		int e = errno;
		sb->dir[0] = 0;
		free(sb);
		return errf(err, errlen, e, "mkdtemp: %s", strerror(e));
	}
	sb->log_fd = fcntl(spec->log_fd, F_DUPFD_CLOEXEC, 3);
	int rc;
	struct vm_net_info *net = NULL;   /* baseline: tap, address, relay; no snapshots */
	struct nx_sandbox_spec bspec;
	if (spec->mode == NX_MODE_BASELINE) {
		if ((rc = vm_net_start(sb, spec, &net, err, errlen)) < 0)
			goto fail;
		bspec = *spec;
		bspec.envp = net->envp;
		spec = &bspec;
	}
	if (pread(spec->region_fd, &sb->region_gen, sizeof sb->region_gen,
	          offsetof(struct nx_region_hdr, generation)) != sizeof sb->region_gen)
		sb->region_gen = 0;
	if (!net)
		vm_snap_key(spec, vmm, kernel, image, &caps, sb->key, sizeof sb->key);
	char code_img[PATH_MAX + 16], rt_img[PATH_MAX + 16], d_code[PATH_MAX + 32], d_rt[PATH_MAX + 32];
	char d_root[PATH_MAX + 8], mem[16], cl[4096];
	if (sb->key[0]) {
		vm_snap_cleanup_tmp();
		rc = shared_image(sb->key, "runtime.ext4", spec->runtime_dir, rt_img, sizeof rt_img, err, errlen);
		if (rc == 0)
			rc = shared_image(sb->key, "code.ext4", spec->code_dir, code_img, sizeof code_img, err, errlen);
		if (rc == 0) {
			rc = try_restore(sb, spec, vmm, image, rt_img, code_img);
			if (rc == 0)
				goto started;
			if (rc != -ENOENT && rc != -EAGAIN) {
				errf(err, errlen, -rc, "preparing the restore: %s", strerror(-rc));
				goto fail;
			}
		}
		if (rc < 0 && rc != -ENOENT && rc != -EAGAIN)
			goto fail;
	} else {
		snprintf(code_img, sizeof code_img, "%s/code.ext4", sb->dir);
		snprintf(rt_img, sizeof rt_img, "%s/runtime.ext4", sb->dir);
		rc = make_image(spec->code_dir, code_img, err, errlen);
		if (rc == 0)
			rc = make_image(spec->runtime_dir, rt_img, err, errlen);
		if (rc < 0)
			goto fail;
	}
	rc = build_cmdline(spec, cl, sizeof cl, err, errlen);
	if (rc == 0 && net && strlen(cl) + strlen(net->ip_arg) >= sizeof cl)
		rc = errf(err, errlen, E2BIG, "the guest command line is over %zu bytes", sizeof cl);
	if (rc < 0)
		goto fail;
	if (net)
		strcat(cl, net->ip_arg);
	snprintf(d_root, sizeof d_root, "%s,ro", image);
	snprintf(d_rt, sizeof d_rt, "%s,ro", rt_img);
	snprintf(d_code, sizeof d_code, "%s,ro", code_img);
	snprintf(mem, sizeof mem, "%u", spec->memory_mb < 128 ? 128 : spec->memory_mb);
	bool control = caps.control_fd && caps.nexus_control;
	char *argv[24] = { vmm, "--kernel", kernel, "--mem", mem, "--disk", d_root, "--disk", d_rt, "--disk", d_code,
	                   "--serial", "stdout", "--cmdline", cl, "--nexus", control ? "control" : "3,4,5" };
	int an = 17;
	if (net)
		argv[an++] = "--net", argv[an++] = net->net_arg;
	if (control)
		argv[an++] = "--control-fd", argv[an++] = "3";
	rc = spawn(sb, spec, vmm, argv, control, spec->log_fd, net ? net->node_ns_fd : -1, NULL, err, errlen);
	if (rc < 0)
		goto fail;
	if (sb->key[0]) {
		vm_snap_count(VMS_FRESH_BOOTS);
		sb->want_snapshot = true;
		sb->region_fd = fcntl(spec->region_fd, F_DUPFD_CLOEXEC, 3);
	}
started:
	sb->start_ns = nx_now_ns() - t0;
	*out = sb;
	return 0;
fail:
	if (sb->log_fd >= 0)
		close(sb->log_fd);
	rm_scratch(sb);
	vm_net_stop(sb);
	free(sb);
	return rc;
}

static int vm_after_ready(struct nx_sandbox *sb, void (*done)(void *), void *arg)
{
	return vm_snap_after_ready(sb, done, arg);
}

static int vm_exit_fd(const struct nx_sandbox *sb)
{
	return sb->pidfd;
}

static void vm_kill(struct nx_sandbox *sb)
{
	sbx_pidfd_kill(sb->pidfd, sb->reaped);
}

static int vm_reap(struct nx_sandbox *sb, int *wstatus)
{
	return sbx_pidfd_reap_once(sb->pidfd, &sb->reaped, &sb->wstatus, wstatus);
}

static int vm_usage(const struct nx_sandbox *sb, struct nx_sandbox_usage *u)
{
	memset(u, 0, sizeof *u);
	u->start_ns = sb->start_ns;
	if (sb->reaped)
		return -ESRCH;
	return sbx_proc_usage(sb->pid, &u->cpu_ns, &u->mem_bytes);   /* the monitor: VM RAM it touched, its CPU */
}

static void vm_destroy(struct nx_sandbox *sb)
{
	if (!sb)
		return;
	if (!sb->reaped && sb->pid > 0) {
		vm_kill(sb);
		while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	vm_snap_join(sb);   /* the monitor is gone: its control socket answers at once */
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	if (sb->ctl >= 0)
		close(sb->ctl);
	if (sb->region_fd >= 0)
		close(sb->region_fd);
	flush_stderr_file(sb);
	if (sb->log_fd >= 0)
		close(sb->log_fd);
	rm_scratch(sb);
	vm_net_stop(sb);   /* the monitor is gone: its tap can go */
	free(sb);
}

/* Usable where nexus-vmm can run real Linux guests: /dev/kvm with hardware
 * virtualization (VMX/SVM in this CPU's flags; PVM's /dev/kvm cannot boot a
 * stock guest kernel), and the monitor, guest kernel and root image present. */
static int vm_probe(char *why, size_t whylen)
{
	char vmm[PATH_MAX], kernel[PATH_MAX], image[PATH_MAX];
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "/dev/kvm: %s (microVMs need KVM; the process driver stays the default)",
		         strerror(errno));
		return 0;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION_NR, 0);
	close(fd);
	if (api != 12) {
		snprintf(why, whylen, "/dev/kvm answers API version %d, not 12", api);
		return 0;
	}
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	int hw = 0;
	while (f && !hw && fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm")))
			hw = 1;
	if (f)
		fclose(f);
	if (!hw) {
		snprintf(why, whylen, "/dev/kvm has no hardware virtualization behind it (no vmx/svm CPU flag: PVM?), "
		                      "on which the Linux guest cannot boot");
		return 0;
	}
	paths(vmm, kernel, image);
	const char *need[3][2] = { { vmm, "make vmm" }, { kernel, "make guest-kernel" }, { image, "make guest-image" } };
	for (int i = 0; i < 3; i++)
		if (access(need[i][0], R_OK) < 0) {
			snprintf(why, whylen, "%s: %s (%s)", need[i][0], strerror(errno), need[i][1]);
			return 0;
		}
	snprintf(why, whylen, "nexus-vmm %s, kernel %s, root image %s", vmm, kernel, image);
	return 1;
}

const struct nx_sandbox_driver nx_sandbox_vm = {
	.name    = "vm",
	.probe   = vm_probe,
	.start   = vm_start,
	.exit_fd = vm_exit_fd,
	.kill    = vm_kill,
	.reap    = vm_reap,
	.usage   = vm_usage,
	.destroy = vm_destroy,
	.after_ready = vm_after_ready,
};
