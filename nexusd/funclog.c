/* SPDX-License-Identifier: MIT */
#include "funclog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

#define READ_MAX (8u << 20)

int nxd_funclog_open(const char *name)
{
	char path[4200];
	nxd_fn_log_path(name, path, sizeof path);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

static void put(int fd, const char *s, int n)
{
	if (fd < 0 || n <= 0)
		return;
	ssize_t w = write(fd, s, (size_t)n);
	(void)w;
}

void nxd_funclog_start(int fd, const char *rid)
{
	char b[128];
	put(fd, b, snprintf(b, sizeof b, "START RequestId: %s Version: $LATEST\n", rid));
}

void nxd_funclog_end(int fd, const char *rid, double ms, unsigned memory_mb, uint64_t used, double init_ms,
                     const char *status)
{
	char b[512];
	int n = snprintf(b, sizeof b,
	                 "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %llu ms\t"
	                 "Memory Size: %u MB\tMax Memory Used: %llu MB",
	                 rid, rid, ms, (unsigned long long)(ms + 0.999999), memory_mb,
	                 (unsigned long long)((used + (1 << 20) - 1) >> 20));
	if (init_ms >= 0 && n < (int)sizeof b)
		n += snprintf(b + n, sizeof b - n, "\tInit Duration: %.2f ms", init_ms);
	if (status && n < (int)sizeof b)
		n += snprintf(b + n, sizeof b - n, "\tStatus: %s", status);
	if (n < (int)sizeof b - 1)
		b[n++] = '\n';
	put(fd, b, n < (int)sizeof b ? n : (int)sizeof b - 1);
}

void nxd_funclog_note(int fd, const char *fmt, ...)
{
	char b[640];
	int n = snprintf(b, sizeof b, "[nexusd] ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(b + n, sizeof b - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof b - 2)
		n = (int)sizeof b - 2;
	b[n++] = '\n';
	put(fd, b, n);
}

char *nxd_funclog_read(const char *name, long tail_lines, size_t *len)
{
	char path[4200];
	nxd_fn_log_path(name, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size, want = size > READ_MAX ? READ_MAX : size;
	char *buf = malloc(want + 1);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	ssize_t r = pread(fd, buf, want, (off_t)(size - want));
	close(fd);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	size_t n = (size_t)r, start = 0;
	if (tail_lines > 0) {
		/* Walk back over tail_lines newlines (ignoring a trailing one). */
		size_t i = n;
		if (i && buf[i - 1] == '\n')
			i--;
		long seen = 0;
		while (i > 0) {
			if (buf[i - 1] == '\n' && ++seen == tail_lines)
				break;
			i--;
		}
		start = i;
	}
	memmove(buf, buf + start, n - start);
	*len = n - start;
	buf[*len] = 0;
	return buf;
}

void nxd_funclog_trim(int fd, const char *name)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size <= NXD_FUNCLOG_MAX)
		return;
	/* The writers (sandboxes, us) append with O_APPEND, so after the
	 * truncate they continue at the new end; a line written during the copy
	 * may be lost, which is acceptable for a bounded log. */
	char path[4200];
	nxd_fn_log_path(name, path, sizeof path);
	int rfd = open(path, O_RDWR | O_CLOEXEC);
	char *buf = malloc(NXD_FUNCLOG_KEEP);
	if (rfd < 0 || !buf) {
		if (rfd >= 0)
			close(rfd);
		free(buf);
		return;
	}
	ssize_t n = pread(rfd, buf, NXD_FUNCLOG_KEEP, st.st_size - NXD_FUNCLOG_KEEP);
	if (n > 0) {
		char *nl = memchr(buf, '\n', (size_t)n);
		size_t from = nl ? (size_t)(nl - buf) + 1 : 0;
		if (ftruncate(rfd, 0) == 0) {
			static const char mark[] = "[nexusd] (log trimmed: older lines dropped)\n";
			ssize_t w = pwrite(rfd, mark, sizeof mark - 1, 0);
			w = pwrite(rfd, buf + from, (size_t)n - from, sizeof mark - 1);
			(void)w;
		}
	}
	close(rfd);
	free(buf);
}
