/* SPDX-License-Identifier: MIT */
/*
 * Per-function log files (<state-dir>/logs/<name>.log): the sandboxes'
 * stdout/stderr go there directly (O_APPEND fd handed to the driver), and
 * nexusd adds Lambda's START / END / REPORT lines around each invocation.
 */
#ifndef NEXUSD_FUNCLOG_H
#define NEXUSD_FUNCLOG_H

#include <stddef.h>
#include <stdint.h>

/* Open (create) a function's log for appending.  Returns an fd or -errno. */
int nxd_funclog_open(const char *name);

void nxd_funclog_start(int fd, const char *request_id);
/* init_ms < 0: not a cold start.  status: NULL or e.g. "timeout". */
void nxd_funclog_end(int fd, const char *request_id, double duration_ms, unsigned memory_mb,
                     uint64_t mem_used_bytes, double init_ms, const char *status);
/* A line from nexusd itself (instance crashed, stopped, ...). */
void nxd_funclog_note(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the log bounded: past NXD_FUNCLOG_MAX bytes, keep only its last
 * NXD_FUNCLOG_KEEP bytes (from a line start).  Cheap to call often. */
#define NXD_FUNCLOG_MAX  (32u << 20)
#define NXD_FUNCLOG_KEEP (4u << 20)
void nxd_funclog_trim(int fd, const char *name);

/* The log's text, or only its last tail_lines lines when tail_lines > 0
 * (at most the last 8 MiB either way).  malloc'd; NULL with errno set. */
char *nxd_funclog_read(const char *name, long tail_lines, size_t *len);

#endif
