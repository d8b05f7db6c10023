/* SPDX-License-Identifier: MIT */
/*
 * The "host" driver: NO sandbox.  The function's runtime runs as a plain host
 * process, with nexusd's privileges, talking to nexusd over the same channel
 * (fds 3, 4, 5) as a sandboxed one.  It exists for one purpose: the floor of
 * the A/B benchmark (issue 5: "the same handler run as a plain host process
 * calling the same nexusd channel, with no sandbox"), measured through the same
 * HTTP ingress and the same S3 server as the sandboxed modes, so that
 * nexus/floor is the price of the sandbox alone.
 *
 * Because it isolates nothing, nexusd offers it only when started with
 * --allow-unsandboxed (registry_spec.c's nxd_sandbox_driver), and only for
 * nexus mode.  Paths: the sandboxes see the runtime at /opt/nexus and the code
 * at /var/task; here those prefixes of argv are rewritten to the host
 * directories and NEXUS_TASK_ROOT / LAMBDA_TASK_ROOT point at the code.
 * Python comes from the host (/usr/bin/python3, the same Debian release as the
 * guest root filesystem).  No memory limit, no namespaces, no seccomp.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>

#include "config.h"
#include "sandbox.h"
#include "sandbox_pidfd.h"
#include "loop.h"   /* nx_now_ns */
#include "util.h"

struct nx_sandbox {
	pid_t pid;
	int pidfd;
	bool reaped;
	int wstatus;
	uint64_t start_ns;
};

/* "/opt/nexus/x" -> "<runtime_dir>/x", "/var/task/x" -> "<code_dir>/x"; else a copy. */
static char *host_path(const struct nx_sandbox_spec *spec, const char *p)
{
	static const char rt[] = "/opt/nexus", task[] = "/var/task";
	const char *dir = NULL, *rest = NULL;
	if (!strncmp(p, rt, sizeof rt - 1) && (p[sizeof rt - 1] == '/' || !p[sizeof rt - 1]))
		dir = spec->runtime_dir, rest = p + sizeof rt - 1;
	else if (!strncmp(p, task, sizeof task - 1) && (p[sizeof task - 1] == '/' || !p[sizeof task - 1]))
		dir = spec->code_dir, rest = p + sizeof task - 1;
	if (!dir)
		return strdup(p);
	char *s = NULL;
	return asprintf(&s, "%s%s", dir, rest) < 0 ? NULL : s;
}

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* Append a formatted string to env[*k]; -1 (nothing appended) when out of memory. */
static int env_add(char **env, size_t *k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	env[(*k)++] = s;
	return 0;
}

/* spec->envp without the variables set here, then ours. */
static char **host_env(const struct nx_sandbox_spec *spec)
{
	static const char *const drop[] = { NX_ENV_REGION_FD "=", NX_ENV_KICK_HOST_FD "=", NX_ENV_KICK_GUEST_FD "=",
		                            "NEXUS_MODE=", "NEXUS_TASK_ROOT=", "LAMBDA_TASK_ROOT=", NULL };
	size_t n = 0;
	for (const char *const *e = spec->envp; e && *e; e++)
		n++;
	char **env = calloc(n + 7, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (const char *const *e = spec->envp; e && *e; e++) {
		bool ours = false;
		for (const char *const *d = drop; *d; d++)
			ours |= !strncmp(*e, *d, strlen(*d));
		if (!ours && env_add(env, &k, "%s", *e) < 0)
			goto fail;
	}
	if (env_add(env, &k, "%s=3", NX_ENV_REGION_FD) < 0 || env_add(env, &k, "%s=4", NX_ENV_KICK_HOST_FD) < 0 ||
	    env_add(env, &k, "%s=5", NX_ENV_KICK_GUEST_FD) < 0 || env_add(env, &k, "NEXUS_MODE=nexus") < 0 ||
	    env_add(env, &k, "NEXUS_TASK_ROOT=%s", spec->code_dir) < 0 ||
	    env_add(env, &k, "LAMBDA_TASK_ROOT=%s", spec->code_dir) < 0)
		goto fail;
	return env;
fail:
	free_strv(env);
	return NULL;
}

/* The child, between fork and exec: async-signal-safe calls only (nexusd has threads). */
static void __attribute__((noreturn)) host_child(const struct nx_sandbox_spec *spec, char **argv, char **env)
{
	/* Move the channel fds out of the way of 0..5 first, so no dup2 clobbers another. */
	int fds[4] = { spec->region_fd, spec->kick_host_fd, spec->kick_guest_fd, spec->log_fd };
	for (int i = 0; i < 4; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(127);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(fds[3], 1) < 0 || dup2(fds[3], 2) < 0 ||
	    dup2(fds[0], 3) < 0 || dup2(fds[1], 4) < 0 || dup2(fds[2], 5) < 0)
		_exit(127);
	syscall(SYS_close_range, 6u, ~0u, 0u);
	setsid();   /* its own session: a terminal's signals to nexusd do not reach it */
	if (chdir(spec->code_dir) < 0)
		_exit(127);
	execve(argv[0], argv, env);
	_exit(127);
}

static int host_start(const struct nx_sandbox_spec *spec, struct nx_sandbox **out, char *err, size_t errlen)
{
	if (spec->mode != NX_MODE_NEXUS) {
		snprintf(err, errlen, "the host driver (the benchmark floor) runs nexus mode only");
		return -EINVAL;
	}
	size_t argc = 0;
	while (spec->argv && spec->argv[argc])
		argc++;
	char **argv = calloc(argc + 1, sizeof *argv), **env = host_env(spec);
	struct nx_sandbox *sb = calloc(1, sizeof *sb);
	int rc = -ENOMEM;
	if (!argc) {
		snprintf(err, errlen, "no command to run");
		rc = -EINVAL;
		goto out;
	}
	if (!argv || !env || !sb)
		goto nomem;
	for (size_t i = 0; i < argc; i++)
		if (!(argv[i] = host_path(spec, spec->argv[i])))
			goto nomem;
	sb->start_ns = nx_now_ns();
	sb->pid = fork();
	if (sb->pid < 0) {
		rc = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (sb->pid == 0)
		host_child(spec, argv, env);
	sb->pidfd = (int)syscall(SYS_pidfd_open, sb->pid, 0);
	if (sb->pidfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		kill(sb->pid, SIGKILL);
		waitpid(sb->pid, NULL, 0);
		goto out;
	}
	sb->start_ns = nx_now_ns() - sb->start_ns;
	nxd_info("instance %llu of %s: UNSANDBOXED host process %d (the host driver)",
	         (unsigned long long)spec->instance_id, spec->function_name, (int)sb->pid);
	*out = sb;
	sb = NULL;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	free_strv(argv);
	free_strv(env);
	free(sb);
	return rc;
}

static int host_exit_fd(const struct nx_sandbox *sb)
{
	return sb->pidfd;
}

static void host_kill(struct nx_sandbox *sb)
{
	sbx_pidfd_kill(sb->pidfd, sb->reaped);
}

static int host_reap(struct nx_sandbox *sb, int *wstatus)
{
	return sbx_pidfd_reap_once(sb->pidfd, &sb->reaped, &sb->wstatus, wstatus);
}

static int host_usage(const struct nx_sandbox *sb, struct nx_sandbox_usage *u)
{
	memset(u, 0, sizeof *u);
	u->start_ns = sb->start_ns;
	if (sb->reaped)
		return -ESRCH;
	sbx_proc_usage(sb->pid, &u->cpu_ns, &u->mem_bytes);
	return 0;
}

static void host_destroy(struct nx_sandbox *sb)
{
	if (!sb)
		return;
	if (!sb->reaped && sb->pidfd >= 0) {
		sbx_pidfd_kill(sb->pidfd, false);
		sbx_pidfd_reap(sb->pidfd, true, &sb->wstatus);
	}
	if (sb->pidfd >= 0)
		close(sb->pidfd);
	free(sb);
}

static int host_probe(char *why, size_t whylen)
{
	snprintf(why, whylen, "NO isolation: plain host processes with nexusd's privileges (--allow-unsandboxed; "
	                      "for the benchmark floor only)");
	return 1;
}

const struct nx_sandbox_driver nx_sandbox_host = {
	.name    = "host",
	.probe   = host_probe,
	.start   = host_start,
	.exit_fd = host_exit_fd,
	.kill    = host_kill,
	.reap    = host_reap,
	.usage   = host_usage,
	.destroy = host_destroy,
};
