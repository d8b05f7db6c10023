/* SPDX-License-Identifier: MIT */
/*
 * nexusd: the node daemon.  Start-up checks, then the event loop on the main
 * thread, which runs the HTTP ingress (libmicrohttpd in external-epoll mode)
 * and owns the instances, channels and storage transfers.  SIGTERM/SIGINT stop it
 * cleanly: no new connections, pending invocations are failed, instances are
 * stopped, then everything is released.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "config.h"
#include "http.h"
#include "instance.h"
#include "aio.h"
#include "loop.h"
#include "metrics.h"
#include "registry.h"
#include "s3.h"
#include "sandbox.h"
#include "util.h"

static int sigfd = -1;

/* After the instances are gone: let the HTTP server send the answers it
 * was given (and offloaded work finish), then stop the loop. */
static uint64_t drain_start_ns;

static void drain(void *arg)
{
	(void)arg;
	uint64_t waited = nx_now_ns() - drain_start_ns;
	if ((nxd_http_offloads() == 0 && waited >= 200000000ull) || waited >= 5000000000ull) {
		nx_loop_stop(nxd_loop);
		return;
	}
	nx_loop_timer(nxd_loop, 50, drain, NULL);
}

static void shutdown_done(void)
{
	drain_start_ns = nx_now_ns();
	nx_loop_timer(nxd_loop, 50, drain, NULL);
}

static void on_signal(void *arg, uint32_t ev)
{
	(void)arg;
	(void)ev;
	struct signalfd_siginfo si;
	if (read(sigfd, &si, sizeof si) != (ssize_t)sizeof si)
		return;
	if (nxd_stopping) {
		nxd_warn("second signal %u: stopping now", si.ssi_signo);
		nx_loop_stop(nxd_loop);
		return;
	}
	nxd_info("signal %u (%s): shutting down", si.ssi_signo, strsignal((int)si.ssi_signo));
	nxd_stopping = 1;
	nxd_http_quiesce();
	nxd_im_shutdown(shutdown_done);
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *dir, const char *rel)
{
	char p[4200];
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Problems that make nexusd useless are errors; ones that only stop
 * invocations are loud warnings, so the API (deploy, status) still works. */
static int startup_checks(void)
{
	int r = nxd_mkdir_p(nxd_cfg.state_dir);
	if (r < 0 || access(nxd_cfg.state_dir, W_OK) < 0) {
		fprintf(stderr, "nexusd: state directory %s is not usable: %s\n", nxd_cfg.state_dir,
		        strerror(r < 0 ? -r : errno));
		return -1;
	}
	char *abs = realpath(nxd_cfg.state_dir, NULL);
	if (abs) {
		snprintf(nxd_cfg.state_dir, sizeof nxd_cfg.state_dir, "%s", abs);
		free(abs);
	}
	struct { char *dir; const char *flag, *probe, *hint; } paths[] = {
		{nxd_cfg.runtime_dir, "--runtime-dir", "python/bootstrap.py", "build it with `make` (build/runtime)"},
		{nxd_cfg.rootfs_dir, "--rootfs", "usr/bin/python3", "build it with `make rootfs` (build/rootfs)"},
	};
	for (int i = 0; i < 2; i++) {
		if (!*paths[i].dir) {
			nxd_warn("no %s given: functions can be deployed but not invoked", paths[i].flag);
			continue;
		}
		if (!is_dir(paths[i].dir)) {
			fprintf(stderr, "nexusd: %s %s: not a directory; %s\n", paths[i].flag, paths[i].dir, paths[i].hint);
			return -1;
		}
		char *a = realpath(paths[i].dir, NULL);
		if (a) {
			snprintf(paths[i].dir, PATH_MAX, "%s", a);
			free(a);
		}
		if (!is_file(paths[i].dir, paths[i].probe))
			nxd_warn("%s %s has no %s: Python functions will fail to start; %s", paths[i].flag, paths[i].dir,
			         paths[i].probe, paths[i].hint);
	}
	static const char *const drivers[] = {"process", "vm", "host"};
	for (int i = 0; i < 2 + nxd_cfg.allow_unsandboxed; i++) {
		const struct nx_sandbox_driver *d = nxd_sandbox_driver(drivers[i]);
		char why[512] = "";
		if (!d)
			nxd_info("sandbox driver %s: not built into this nexusd", drivers[i]);
		else if (d->probe && !d->probe(why, sizeof why))
			nxd_warn("sandbox driver %s: not usable on this machine: %s", d->name, *why ? why : "unknown reason");
		else if (d == nxd_sandbox_driver("host"))
			nxd_warn("sandbox driver host: ENABLED by --allow-unsandboxed — %s", why);
		else {
			nxd_info("sandbox driver %s: available%s%s", d->name, *why ? " — " : "", why);
			if (!strcmp(d->name, "vm"))
				nxd_default_sandbox = "vm";
		}
	}
	nxd_info("default sandbox: %s%s", nxd_default_sandbox,
	         strcmp(nxd_default_sandbox, "vm") ? " (microVMs cannot run real guests here; see above)"
	                                           : " (this machine runs real microVM guests)");
	if (!*nxd_cfg.s3.access_key || !*nxd_cfg.s3.secret_key)
		nxd_warn("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set: storage requests will be refused by S3");
	if (!*nxd_cfg.s3.endpoint)
		nxd_warn("no S3 endpoint (--s3-endpoint, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL)");
	return 0;
}

int main(int argc, char **argv)
{
	int pr = nxd_config_parse(argc, argv);
	if (pr)
		return pr > 0 ? 0 : 2;
	if (startup_checks() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/* Every connection and every instance (memfd, eventfds, pidfd, log) costs
	 * fds: use the hard limit. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Block the stop signals in every thread (MHD's inherit the mask); the
	 * loop reads them from a signalfd. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "nexusd: libcurl failed to initialise\n");
		return 1;
	}
	nxd_loop = nx_loop_new();
	if (!nxd_loop || sigfd < 0 || nx_loop_add_fd(nxd_loop, sigfd, EPOLLIN, on_signal, NULL) < 0) {
		fprintf(stderr, "nexusd: cannot set up the event loop: %s\n", strerror(errno));
		return 1;
	}
	struct nx_s3 *s3 = nx_s3_new(nxd_loop, &nxd_cfg.s3);
	if (!s3) {
		fprintf(stderr, "nexusd: cannot set up the S3 client for %s\n",
		        *nxd_cfg.s3.endpoint ? nxd_cfg.s3.endpoint : "(no endpoint)");
		return 1;
	}
	if (nxd_registry_init() < 0) {
		fprintf(stderr, "nexusd: cannot load functions from %s\n", nxd_cfg.state_dir);
		return 1;
	}
	nxd_metrics_init(s3);
	nxd_im_init(nxd_loop, s3);
	/* write-back journal replay (uploads what a crash left) and prefetch */
	if (nx_aio_init(nxd_loop, s3, nxd_cfg.state_dir, (uint64_t)nxd_cfg.journal_max_mb << 20) < 0) {
		fprintf(stderr, "nexusd: cannot start the write-back journal\n");
		return 1;
	}
	char err[512];
	if (nxd_http_start(err, sizeof err) < 0) {
		fprintf(stderr, "nexusd: %s\n", err);
		return 1;
	}
	nxd_info("state %s, runtime %s, rootfs %s, S3 %s (%s), keep-alive %u s, max %u instances, queue %u",
	         nxd_cfg.state_dir, *nxd_cfg.runtime_dir ? nxd_cfg.runtime_dir : "-",
	         *nxd_cfg.rootfs_dir ? nxd_cfg.rootfs_dir : "-", *nxd_cfg.s3.endpoint ? nxd_cfg.s3.endpoint : "-",
	         nxd_cfg.s3.region, nxd_cfg.keep_alive_s, nxd_cfg.max_instances, nxd_cfg.queue_depth);
	fprintf(stderr, "nexusd: ready on %s\n", nxd_cfg.ingress_url);
	fflush(stderr);

	nx_loop_run(nxd_loop);

	nxd_stopping = 1;
	nxd_http_stop();
	nxd_im_destroy();
	nx_aio_shutdown();
	nx_s3_destroy(s3);
	nxd_metrics_destroy();
	nxd_registry_shutdown();
	nx_loop_del_fd(nxd_loop, sigfd);
	nx_loop_destroy(nxd_loop);
	close(sigfd);
	curl_global_cleanup();
	nxd_info("stopped");
	return 0;
}
