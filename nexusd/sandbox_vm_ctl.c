/* SPDX-License-Identifier: MIT */
/*
 * The vm driver's side of nexus-vmm's control socket (docs/vmm.md, "Control
 * socket"; the snapshot contract): newline-delimited JSON, one reply line per
 * command.  nexusd passes the monitor one end of a socketpair (--control-fd),
 * so there is no path and no race at start.  The region memfd and the two
 * eventfds ride as SCM_RIGHTS on {"cmd":"nexus-attach"} (--nexus control).
 *
 * Which of these the monitor offers is read once from its --help text: an
 * older nexus-vmm gets the fds inherited as 3,4,5 (--nexus 3,4,5) and no
 * snapshots.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sandbox_vm.h"

static pthread_mutex_t caps_mu = PTHREAD_MUTEX_INITIALIZER;
static char caps_for[PATH_MAX];
static struct vmm_caps caps_cached;

/* `vmm --help` into buf (stdout and stderr); bytes read or -1. */
static ssize_t help_text(const char *vmm, char *buf, size_t cap)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl(vmm, vmm, "--help", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		if (poll(&pf, 1, 5000) <= 0)
			break;
		ssize_t k = read(p[0], buf + n, cap - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		if (n >= cap - 1)
			break;
	}
	close(p[0]);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	buf[n] = 0;
	return (ssize_t)n;
}

void vmm_caps_get(const char *vmm, struct vmm_caps *out)
{
	pthread_mutex_lock(&caps_mu);
	if (strcmp(caps_for, vmm) != 0) {
		char buf[8192];
		memset(&caps_cached, 0, sizeof caps_cached);
		if (help_text(vmm, buf, sizeof buf) > 0) {
			caps_cached.control_fd = strstr(buf, "--control-fd") != NULL;
			caps_cached.nexus_control = strstr(buf, "--nexus control") != NULL;
			caps_cached.restore = strstr(buf, "--restore") != NULL;
		}
		/* Snapshots need the whole contract: the fds over the socket too. */
		caps_cached.restore &= caps_cached.control_fd && caps_cached.nexus_control;
		snprintf(caps_for, sizeof caps_for, "%s", vmm);
	}
	*out = caps_cached;
	pthread_mutex_unlock(&caps_mu);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Read one line (without '\n') within timeout_ms. */
static int read_line(int fd, int timeout_ms, char *line, size_t cap)
{
	size_t n = 0;
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)(end - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		char c;
		ssize_t k = read(fd, &c, 1);   /* byte by byte: replies are short and rare */
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EPIPE;
		if (c == '\n') {
			line[n] = 0;
			return 0;
		}
		if (n + 1 < cap)
			line[n++] = c;
	}
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The reply line says "ok": true?  Else its "error" (or the line) into err. */
static int reply_ok(const char *line, char *err, size_t errlen)
{
	json_t *j = json_loads(line, 0, NULL);
	int ok = j && json_is_true(json_object_get(j, "ok"));
	if (!ok && err && errlen) {
		const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
		snprintf(err, errlen, "%.200s", e ? e : line);
	}
	json_decref(j);
	return ok ? 0 : -EPROTO;
}

int vmm_nexus_attach(int ctl, const int fds[3], int timeout_ms, char *err, size_t errlen)
{
	static const char line[] = "{\"cmd\":\"nexus-attach\"}\n";
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct iovec iov = { .iov_base = (void *)line, .iov_len = 1 };   /* the fds ride on the first byte */
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(3 * sizeof(int));
	memcpy(CMSG_DATA(c), fds, 3 * sizeof(int));
	ssize_t k;
	while ((k = sendmsg(ctl, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (k != 1 || send_all(ctl, line + 1, sizeof line - 2) < 0) {
		snprintf(err, errlen, "the monitor closed its control socket");
		return -EPIPE;
	}
	char reply[512];
	int r = read_line(ctl, timeout_ms, reply, sizeof reply);
	if (r < 0) {
		snprintf(err, errlen, r == -ETIMEDOUT ? "no answer to nexus-attach within %d ms" : "the monitor exited",
		         timeout_ms);
		return r;
	}
	return reply_ok(reply, err, errlen);
}

int vmm_command(int ctl, const char *cmd_json, int timeout_ms, char *reply, size_t cap)
{
	char line[PATH_MAX + 128];
	int n = snprintf(line, sizeof line, "%s\n", cmd_json);
	if (n < 0 || (size_t)n >= sizeof line)
		return -E2BIG;
	if (send_all(ctl, line, (size_t)n) < 0) {
		snprintf(reply, cap, "the monitor closed its control socket");
		return -EPIPE;
	}
	int r = read_line(ctl, timeout_ms, reply, cap);
	if (r < 0) {
		snprintf(reply, cap, r == -ETIMEDOUT ? "no answer within %d ms" : "the monitor exited", timeout_ms);
		return r;
	}
	char err[256];
	if (reply_ok(reply, err, sizeof err) < 0) {
		snprintf(reply, cap, "%s", err);
		return -EPROTO;
	}
	return 0;
}
