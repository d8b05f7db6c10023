/* SPDX-License-Identifier: MIT */
#include "sandbox_pidfd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void sbx_pidfd_kill(int pidfd, bool reaped)
{
	if (!reaped && pidfd >= 0)
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

int sbx_pidfd_reap(int pidfd, bool block, int *wstatus)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int r;
	while ((r = waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL | (block ? 0 : WNOHANG))) < 0 && errno == EINTR)
		;
	if (r < 0)
		return -errno;
	if (si.si_pid == 0)
		return -EAGAIN;   /* still running */
	switch (si.si_code) {
	case CLD_EXITED: *wstatus = W_EXITCODE(si.si_status, 0); break;
	case CLD_DUMPED: *wstatus = W_EXITCODE(0, si.si_status) | 0x80; break;
	default:         *wstatus = W_EXITCODE(0, si.si_status); break;
	}
	return 0;
}

int sbx_pidfd_reap_once(int pidfd, bool *reaped, int *saved, int *wstatus)
{
	if (!*reaped) {
		int r = sbx_pidfd_reap(pidfd, false, saved);
		if (r < 0)
			return r;
		*reaped = true;
	}
	if (wstatus)
		*wstatus = *saved;
	return 0;
}

int sbx_proc_usage(pid_t pid, uint64_t *cpu_ns, uint64_t *mem_bytes)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');   /* comm may contain spaces and parentheses */
	unsigned long long ut = 0, st = 0;
	long long rss = 0;
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %*u %*u %lld",
	                &ut, &st, &rss) == 3) {
		long hz = sysconf(_SC_CLK_TCK);
		*cpu_ns = (ut + st) * (1000000000ull / (unsigned long long)(hz > 0 ? hz : 100));
		*mem_bytes = (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
	}
	return 0;
}
