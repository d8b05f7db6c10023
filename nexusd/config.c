/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct nxd_config nxd_cfg;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: nexusd --listen HOST:PORT --state-dir DIR [options]\n"
	        "  --listen HOST:PORT     HTTP ingress address (PORT 0 picks a free port)\n"
	        "  --state-dir DIR        functions, code and logs live here (created if missing)\n"
	        "  --runtime-dir DIR      the guest runtime (build/runtime), /opt/nexus in sandboxes\n"
	        "  --rootfs DIR           the guest root filesystem (build/rootfs)\n"
	        "  --s3-endpoint URL      S3 endpoint (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)\n"
	        "  --s3-region R          S3 region (else AWS_REGION / AWS_DEFAULT_REGION, us-east-1)\n"
	        "  --keep-alive SEC       stop instances idle this long (default 600; env NEXUS_KEEP_ALIVE)\n"
	        "  --max-instances N      default per-function instance limit (default 8)\n"
	        "  --queue-depth N        per-function queued invocations before 429 (default 64)\n"
	        "  --log-level LEVEL      error|warn|info|debug (default info)\n"
	        "  --journal-max-mb N     write-back journal bound; async PUTs beyond it get SlowDown\n"
	        "                         (default 1024; env NEXUS_JOURNAL_MAX_MB)\n"
	        "  --init-timeout SEC     an instance that is not READY this long after its start is\n"
	        "                         stopped (default 30; env NEXUS_INIT_TIMEOUT)\n"
	        "  --allow-unsandboxed    offer the \"host\" driver (nexus:sandbox=host): the function runs as\n"
	        "                         a plain host process with nexusd's privileges. Benchmarks only (the\n"
	        "                         A/B floor); never on a node that runs code you do not trust\n"
	        "S3 credentials come only from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.\n");
}

static int parse_uint(const char *flag, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "nexusd: %s wants an integer in %u..%u, got '%s'\n", flag, lo, hi, s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int copy(const char *flag, char *dst, size_t cap, const char *s)
{
	if (strlen(s) >= cap) {
		fprintf(stderr, "nexusd: %s value is too long\n", flag);
		return -1;
	}
	strcpy(dst, s);
	return 0;
}

int nxd_config_parse(int argc, char **argv)
{
	struct nxd_config *c = &nxd_cfg;
	memset(c, 0, sizeof *c);
	c->keep_alive_s = 600;
	c->max_instances = 8;
	c->queue_depth = 64;
	strcpy(c->account_id, "000000000000");
	const char *env_ka = getenv("NEXUS_KEEP_ALIVE");
	if (env_ka && *env_ka && parse_uint("NEXUS_KEEP_ALIVE", env_ka, 0, 86400 * 7, &c->keep_alive_s) < 0)
		return -1;
	char listen[128] = "";
	c->journal_max_mb = 1024;
	c->init_timeout_s = 30;
	const char *env_it = getenv("NEXUS_INIT_TIMEOUT");
	if (env_it && *env_it && parse_uint("NEXUS_INIT_TIMEOUT", env_it, 1, 3600, &c->init_timeout_s) < 0)
		return -1;
	const char *env_jm = getenv("NEXUS_JOURNAL_MAX_MB");
	if (env_jm && *env_jm && parse_uint("NEXUS_JOURNAL_MAX_MB", env_jm, 1, 1u << 20, &c->journal_max_mb) < 0)
		return -1;

	enum { O_LISTEN = 256, O_STATE, O_RUNTIME, O_ROOTFS, O_S3EP, O_S3REG, O_KA, O_MAXI, O_QD, O_LOG, O_HELP, O_JMAX, O_UNSANDBOXED, O_INIT };
	static const struct option opts[] = {
		{"listen", required_argument, 0, O_LISTEN},     {"state-dir", required_argument, 0, O_STATE},
		{"runtime-dir", required_argument, 0, O_RUNTIME}, {"rootfs", required_argument, 0, O_ROOTFS},
		{"s3-endpoint", required_argument, 0, O_S3EP},   {"s3-region", required_argument, 0, O_S3REG},
		{"keep-alive", required_argument, 0, O_KA},      {"max-instances", required_argument, 0, O_MAXI},
		{"queue-depth", required_argument, 0, O_QD},     {"log-level", required_argument, 0, O_LOG},
		{"help", no_argument, 0, O_HELP},                {"journal-max-mb", required_argument, 0, O_JMAX},
		{"allow-unsandboxed", no_argument, 0, O_UNSANDBOXED}, {"init-timeout", required_argument, 0, O_INIT},
		{0, 0, 0, 0},
	};
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int r = 0;
		switch (o) {
		case O_LISTEN: r = copy("--listen", listen, sizeof listen, optarg); break;
		case O_STATE: r = copy("--state-dir", c->state_dir, sizeof c->state_dir, optarg); break;
		case O_RUNTIME: r = copy("--runtime-dir", c->runtime_dir, sizeof c->runtime_dir, optarg); break;
		case O_ROOTFS: r = copy("--rootfs", c->rootfs_dir, sizeof c->rootfs_dir, optarg); break;
		case O_S3EP: r = copy("--s3-endpoint", c->s3.endpoint, sizeof c->s3.endpoint, optarg); break;
		case O_S3REG: r = copy("--s3-region", c->s3.region, sizeof c->s3.region, optarg); break;
		case O_KA: r = parse_uint("--keep-alive", optarg, 0, 86400 * 7, &c->keep_alive_s); break;
		case O_MAXI: r = parse_uint("--max-instances", optarg, 1, 1024, &c->max_instances); break;
		case O_QD: r = parse_uint("--queue-depth", optarg, 0, 100000, &c->queue_depth); break;
		case O_LOG:
			if (!strcmp(optarg, "error")) nxd_log_level = NXD_ERROR;
			else if (!strcmp(optarg, "warn")) nxd_log_level = NXD_WARN;
			else if (!strcmp(optarg, "info")) nxd_log_level = NXD_INFO;
			else if (!strcmp(optarg, "debug")) nxd_log_level = NXD_DEBUG;
			else {
				fprintf(stderr, "nexusd: --log-level wants error|warn|info|debug, got '%s'\n", optarg);
				r = -1;
			}
			break;
		case O_JMAX: r = parse_uint("--journal-max-mb", optarg, 1, 1u << 20, &c->journal_max_mb); break;
		case O_UNSANDBOXED: c->allow_unsandboxed = true; break;
		case O_INIT: r = parse_uint("--init-timeout", optarg, 1, 3600, &c->init_timeout_s); break;
		case O_HELP: usage(stdout); return 1;
		default:
			fprintf(stderr, "nexusd: unknown or incomplete option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return -1;
		}
		if (r < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "nexusd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!*listen) {
		fprintf(stderr, "nexusd: --listen HOST:PORT is required (e.g. --listen 127.0.0.1:9070)\n");
		return -1;
	}
	char *colon = strrchr(listen, ':');
	if (!colon || colon == listen) {
		fprintf(stderr, "nexusd: --listen wants HOST:PORT, got '%s'\n", listen);
		return -1;
	}
	*colon = 0;
	char *host = listen;
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:PORT */
		host[hl - 1] = 0;
		host++;
	}
	if (copy("--listen", c->listen_host, sizeof c->listen_host, host) < 0 ||
	    parse_uint("--listen port", colon + 1, 0, 65535, &c->listen_port) < 0)
		return -1;
	if (!*c->state_dir) {
		fprintf(stderr, "nexusd: --state-dir DIR is required\n");
		return -1;
	}
	nx_s3_config_from_env(&c->s3);
	if (!*c->s3.region)
		strcpy(c->s3.region, "us-east-1");
	return 0;
}
