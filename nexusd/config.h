/* SPDX-License-Identifier: MIT */
/*
 * nexusd's configuration: command-line flags plus the environment
 * (see nexusd/README.md).  Filled once at start-up, read-only afterwards.
 */
#ifndef NEXUSD_CONFIG_H
#define NEXUSD_CONFIG_H

#include <stdbool.h>
#include <limits.h>
#include "s3.h"

struct nxd_config {
	char listen_host[64];
	unsigned listen_port;
	char state_dir[PATH_MAX];
	char runtime_dir[PATH_MAX];   /* empty: not configured */
	char rootfs_dir[PATH_MAX];    /* empty: not configured */
	struct nx_s3_config s3;
	unsigned keep_alive_s;        /* idle instance lifetime */
	unsigned max_instances;       /* default per-function limit */
	unsigned queue_depth;         /* per-function pending invocations */
	unsigned journal_max_mb;      /* write-back journal bound (aio.h) */
	unsigned init_timeout_s;      /* sandbox start to the runtime's READY */
	char account_id[16];          /* for ARNs */
	char ingress_url[128];        /* http://host:port, once listening */
	bool allow_unsandboxed;       /* offer the "host" driver (no sandbox: the benchmark floor) */
};

extern struct nxd_config nxd_cfg;

/* Parse argv (and the environment) into nxd_cfg.  Returns 0, 1 when --help
 * was printed, or -1 after printing an error. */
int nxd_config_parse(int argc, char **argv);

#endif
