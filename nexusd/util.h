/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by nexusd's own files: diagnostics on stderr, request
 * ids, wall-clock formatting and directory utilities.
 */
#ifndef NEXUSD_UTIL_H
#define NEXUSD_UTIL_H

#include <stddef.h>
#include <stdint.h>

enum nxd_level { NXD_ERROR = 0, NXD_WARN = 1, NXD_INFO = 2, NXD_DEBUG = 3 };
extern int nxd_log_level;

void nxd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define nxd_err(...)   nxd_log(NXD_ERROR, __VA_ARGS__)
#define nxd_warn(...)  nxd_log(NXD_WARN, __VA_ARGS__)
#define nxd_info(...)  nxd_log(NXD_INFO, __VA_ARGS__)
#define nxd_debug(...) do { if (nxd_log_level >= NXD_DEBUG) nxd_log(NXD_DEBUG, __VA_ARGS__); } while (0)

/* A random UUID (version 4) as 36 characters + NUL.  Cheap: a per-thread
 * generator seeded once from getrandom(). */
void nxd_uuid(char out[37]);
/* 16 random hex characters + NUL. */
void nxd_rand_hex(char out[17]);

/* Wall clock in milliseconds since the epoch. */
uint64_t nxd_epoch_ms(void);
/* Lambda's LastModified format: 2024-01-31T12:34:56.789+0000 */
void nxd_lambda_time(char *out, size_t cap);

/* mkdir -p with mode 0755. Returns 0 or -errno. */
int nxd_mkdir_p(const char *path);
/* rm -rf without following symlinks. Returns 0 or -errno. */
int nxd_rm_rf(const char *path);

/* Function names as Lambda accepts them: [A-Za-z0-9_-]{1,64}. */
int nxd_valid_name(const char *name);

/* The pid behind a pidfd, from /proc/self/fdinfo (0 when unknown). */
int nxd_pid_of_pidfd(int fd);

#endif
