/* SPDX-License-Identifier: MIT */
/*
 * The `vm` sandbox driver: one function instance = one nexus-vmm process running
 * the Nexus guest kernel (guest/kernel) with
 *   /dev/vda  the guest root filesystem image (guest/image), read-only, shared
 *   /dev/vdb  the runtime dir (build/runtime) as a small ext4 image, read-only -> /opt/nexus
 *   /dev/vdc  the function's code as a small ext4 image, read-only           -> /var/task
 *   the Nexus device on the instance's region + eventfds (--nexus 3,4,5), so the
 *   runtime's libnexus finds /dev/nexus (no NEXUS_*_FD in its environment)
 *   no network device (nexus mode; baseline mode is not offered in microVMs yet)
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
#include <time.h>
#include <unistd.h>

#include "sandbox.h"

#define KVMIO 0xAE
#define KVM_GET_API_VERSION_NR _IO(KVMIO, 0x00)

struct nx_sandbox {
	pid_t pid;
	int pidfd;
	int reaped, wstatus;
	uint64_t start_ns;
	char dir[PATH_MAX];        /* per-instance scratch: the two small images */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static void rm_scratch(struct nx_sandbox *sb)
{
	char p[PATH_MAX + 32];
	if (!sb->dir[0])
		return;
	snprintf(p, sizeof p, "%s/code.ext4", sb->dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/runtime.ext4", sb->dir);
	unlink(p);
	rmdir(sb->dir);
	sb->dir[0] = 0;
}

static int vm_start(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen)
{
	uint64_t t0 = now_ns();
	char vmm[PATH_MAX], kernel[PATH_MAX], image[PATH_MAX];
	*out = NULL;
	if (!spec || !spec->argv || !spec->argv[0] || !spec->code_dir || !spec->runtime_dir || spec->region_fd < 0 ||
	    spec->kick_host_fd < 0 || spec->kick_guest_fd < 0 || spec->log_fd < 0)
		return errf(err, errlen, EINVAL, "sandbox spec incomplete (code, runtime, argv and all fds are required)");
	if (spec->mode != NX_MODE_NEXUS)
		return errf(err, errlen, ENOTSUP, "baseline mode is not available in microVMs yet (use nexus:sandbox=process)");
	paths(vmm, kernel, image);
	struct nx_sandbox *sb = calloc(1, sizeof *sb);
	if (!sb)
		return errf(err, errlen, ENOMEM, "out of memory");
	sb->pidfd = -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(sb->dir, sizeof sb->dir, "%s/nexus-vm-%llu-XXXXXX", tmp && *tmp ? tmp : "/tmp",
	         (unsigned long long)spec->instance_id);
	if (!mkdtemp(sb->dir)) {
		int e = errno;
		sb->dir[0] = 0;
		free(sb);
		return errf(err, errlen, e, "mkdtemp: %s", strerror(e));
	}
	char code_img[PATH_MAX + 16], rt_img[PATH_MAX + 16], d_code[PATH_MAX + 32], d_rt[PATH_MAX + 32];
	char d_root[PATH_MAX + 8], mem[16], cl[4096];
	snprintf(code_img, sizeof code_img, "%s/code.ext4", sb->dir);
	snprintf(rt_img, sizeof rt_img, "%s/runtime.ext4", sb->dir);
	int rc = make_image(spec->code_dir, code_img, err, errlen);
	if (rc == 0)
		rc = make_image(spec->runtime_dir, rt_img, err, errlen);
	if (rc == 0)
		rc = build_cmdline(spec, cl, sizeof cl, err, errlen);
	if (rc < 0)
		goto fail;
	snprintf(d_root, sizeof d_root, "%s,ro", image);
	snprintf(d_rt, sizeof d_rt, "%s,ro", rt_img);
	snprintf(d_code, sizeof d_code, "%s,ro", code_img);
	snprintf(mem, sizeof mem, "%u", spec->memory_mb < 128 ? 128 : spec->memory_mb);
	char *argv[] = { vmm, "--kernel", kernel, "--mem", mem, "--disk", d_root, "--disk", d_rt, "--disk", d_code,
	                 "--nexus", "3,4,5", "--serial", "stdout", "--cmdline", cl, NULL };
	int fds[3] = { spec->region_fd, spec->kick_host_fd, spec->kick_guest_fd };
	pid_t parent = getpid();
	sb->pid = fork();
	if (sb->pid < 0) {
		rc = errf(err, errlen, errno, "fork: %s", strerror(errno));
		goto fail;
	}
	if (sb->pid == 0) {
		/* The VM must not outlive nexusd. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int tmpfd[3];
		for (int i = 0; i < 3; i++)
			tmpfd[i] = fcntl(fds[i], F_DUPFD, 10);   /* not CLOEXEC */
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(spec->log_fd, 1) < 0 || dup2(spec->log_fd, 2) < 0)
			_exit(127);
		for (int i = 0; i < 3; i++)
			if (tmpfd[i] < 0 || dup2(tmpfd[i], 3 + i) < 0)
				_exit(127);
		/* Nothing else of nexusd's leaks into the monitor. */
		syscall(SYS_close_range, 6, ~0U, 0);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(vmm, argv);
		dprintf(2, "nexusd: exec %s: %s\n", vmm, strerror(errno));
		_exit(127);
	}
	sb->pidfd = (int)syscall(SYS_pidfd_open, sb->pid, 0);
	if (sb->pidfd < 0) {
		rc = errf(err, errlen, errno, "pidfd_open: %s", strerror(errno));
		kill(sb->pid, SIGKILL);
		waitpid(sb->pid, NULL, 0);
		goto fail;
	}
	fcntl(sb->pidfd, F_SETFD, FD_CLOEXEC);
	sb->start_ns = now_ns() - t0;
	*out = sb;
	return 0;
fail:
	rm_scratch(sb);
	free(sb);
	return rc;
}

static int vm_exit_fd(const struct nx_sandbox *sb)
{
	return sb->pidfd;
}

static void vm_kill(struct nx_sandbox *sb)
{
	if (!sb->reaped && sb->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
}

static int vm_reap(struct nx_sandbox *sb, int *wstatus)
{
	if (!sb->reaped) {
		int st, r;
		while ((r = (int)waitpid(sb->pid, &st, WNOHANG)) < 0 && errno == EINTR)
			;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EAGAIN;
		sb->reaped = 1;
		sb->wstatus = st;
	}
	if (wstatus)
		*wstatus = sb->wstatus;
	return 0;
}

static int vm_usage(const struct nx_sandbox *sb, struct nx_sandbox_usage *u)
{
	memset(u, 0, sizeof *u);
	u->start_ns = sb->start_ns;
	if (sb->reaped)
		return -ESRCH;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)sb->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	long long rss = 0;
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
	                &ut, &st, &rss) == 3) {
		long hz = sysconf(_SC_CLK_TCK);
		u->cpu_ns = (ut + st) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
		u->mem_bytes = (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
	}
	return 0;
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
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	rm_scratch(sb);
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
};
