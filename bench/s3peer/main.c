/* SPDX-License-Identifier: MIT */
/*
 * nexus-s3peer: a small, fast S3-compatible server for the benchmarks
 * (README.md).  Objects live in memory; every request is SigV4-checked.
 *
 *   nexus-s3peer [--address A] [--port N] [--threads N] [--access-key K]
 *                [--secret-key S] [--max-object-mib N] [--port-file F] [--verbose]
 *
 * Prints "nexus-s3peer listening on http://A:PORT" once it accepts, then
 * serves until SIGTERM or SIGINT.
 */
#include "s3api.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: nexus-s3peer [--address 127.0.0.1] [--port 0] [--threads NPROC]\n"
	           "                    [--access-key S3RVER] [--secret-key S3RVER] [--max-object-mib 1024]\n"
	           "                    [--port-file FILE] [--verbose]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "address", required_argument, 0, 'a' },  { "port", required_argument, 0, 'p' },
		{ "threads", required_argument, 0, 't' },  { "access-key", required_argument, 0, 'k' },
		{ "secret-key", required_argument, 0, 's' }, { "max-object-mib", required_argument, 0, 'm' },
		{ "port-file", required_argument, 0, 'f' }, { "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },           { 0, 0, 0, 0 },
	};
	/* S3RVER/S3RVER: the local s3rver's well-known key, so a node set up for
	 * one works with the other. */
	struct s3api_config cfg = { .access_key = "S3RVER", .secret_key = "S3RVER", .max_object = 1024u << 20 };
	const char *addr = "127.0.0.1", *port_file = NULL;
	long port = 0, threads = sysconf(_SC_NPROCESSORS_ONLN);
	int c;
	while ((c = getopt_long(argc, argv, "a:p:t:k:s:m:f:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'a': addr = optarg; break;
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 't': threads = strtol(optarg, NULL, 10); break;
		case 'k': cfg.access_key = optarg; break;
		case 's': cfg.secret_key = optarg; break;
		case 'm': cfg.max_object = (size_t)strtoul(optarg, NULL, 10) << 20; break;
		case 'f': port_file = optarg; break;
		case 'v': cfg.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || port < 0 || port > 65535 || threads < 1 || threads > 64) {
		usage(stderr);
		return 2;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	/* Blocked before MHD's threads start, so they inherit the mask. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int bound = 0;
	struct MHD_Daemon *d = s3api_start(&cfg, addr, (int)port, (unsigned)threads, &bound);
	if (!d) {
		fprintf(stderr, "nexus-s3peer: cannot listen on %s:%ld\n", addr, port);
		return 1;
	}
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		if (!f || fprintf(f, "%d\n", bound) < 0 || fclose(f) != 0) {
			fprintf(stderr, "nexus-s3peer: cannot write %s\n", port_file);
			MHD_stop_daemon(d);
			return 1;
		}
	}
	printf("nexus-s3peer listening on http://%s:%d\n", addr, bound);
	fflush(stdout);
	sigdelset(&set, SIGPIPE);
	int sig;
	while (sigwait(&set, &sig) != 0)
		;
	MHD_stop_daemon(d);
	return 0;
}
