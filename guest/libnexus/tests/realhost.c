/* SPDX-License-Identifier: MIT */
/*
 * realhost: a guest runtime (or any libnexus program) against nexusd's REAL
 * channel server — nexusd/chan.c on nexusd/loop.c — with an in-memory object
 * store standing in for S3 (realhost_s3.c).  No sandbox, no HTTP: this
 * isolates the guest side and the channel.
 *
 *   realhost [--invoke N] [--event JSON] [--buckets b1,b2] [--handler H] [--mode M]
 *            [--expect-error] [--expect SUBSTRING] [--label TEXT] -- CMD [ARGS...]
 *
 * CMD runs with the region and doorbells as fds 3, 4, 5 and NEXUS_* set, as
 * the process sandbox would start it.  After its READY, N invocations of
 * EVENT are delivered one after another; each result is checked (status OK,
 * or HANDLER_ERROR with --expect-error; the result contains SUBSTRING with
 * --expect), the first is printed, and the
 * host-side round trip (nx_chan_invoke -> invoke_done) is reported.
 * Exits 0 when CMD exited 0 (N = 0) or all N invocations succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "../../../nexusd/chan.h"
#include "../../../nexusd/loop.h"
#include "../../../nexusd/s3.h"

struct nx_s3 *realhost_s3_new(struct nx_loop *loop);
void realhost_s3_destroy(struct nx_s3 *s);

struct state {
	struct nx_loop *loop;
	struct nx_chan *chan;
	const char *event;
	long todo, sent, failed;
	bool expect_error, ready;
	const char *expect, *label;
	uint64_t t_start, t_ready, t_sent;
	uint64_t *lat;
	pid_t pid;
	int status;
};

static void next(struct state *s)
{
	if (s->sent >= s->todo) {
		kill(s->pid, SIGTERM);
		return;
	}
	char ctx[512];
	snprintf(ctx, sizeof ctx,
	         "{\"aws_request_id\":\"rh-%ld\",\"deadline_ms\":%llu,\"function_name\":\"realhost-fn\","
	         "\"memory_limit_in_mb\":128,\"function_version\":\"$LATEST\",\"invoked_function_arn\":"
	         "\"arn:aws:lambda:us-east-1:000000000000:function:realhost-fn\",\"log_group_name\":"
	         "\"/aws/lambda/realhost-fn\",\"log_stream_name\":\"realhost\"}",
	         s->sent, 9999999999999ull);
	s->t_sent = nx_now_ns();
	int r = nx_chan_invoke(s->chan, (uint64_t)s->sent + 1, s->event, strlen(s->event), ctx);
	if (r < 0) {
		fprintf(stderr, "realhost: nx_chan_invoke: %s\n", strerror(-r));
		s->failed++;
		kill(s->pid, SIGKILL);
	}
	s->sent++;
}

static void on_ready(void *owner, const char *runtime)
{
	struct state *s = owner;
	s->ready = true;
	s->t_ready = nx_now_ns();
	fprintf(stderr, "realhost: READY from runtime '%s' after %.1f ms\n", runtime,
	        (double)(s->t_ready - s->t_start) / 1e6);
	if (s->todo)
		next(s);
}

static void on_done(void *owner, uint64_t inv_id, int status, const void *payload, size_t len)
{
	struct state *s = owner;
	s->lat[inv_id - 1] = nx_now_ns() - s->t_sent;
	bool ok = s->expect_error ? status == NX_S_HANDLER_ERROR : status == NX_S_OK;
	if (s->expect && !memmem(payload, len, s->expect, strlen(s->expect)))
		ok = false;
	if (!ok || inv_id == 1)
		printf("invocation %llu: status %d: %.*s\n", (unsigned long long)inv_id, status,
		       (int)(len > 2000 ? 2000 : len), (const char *)payload);
	if (!ok)
		s->failed++;
	next(s);
}

static void on_violation(void *owner, const char *why)
{
	struct state *s = owner;
	fprintf(stderr, "realhost: protocol violation: %s\n", why);
	s->failed++;
	kill(s->pid, SIGKILL);
}

static void on_exit_fd(void *arg, uint32_t ev)
{
	struct state *s = arg;
	(void)ev;
	waitpid(s->pid, &s->status, 0);
	nx_loop_stop(s->loop);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "invoke", required_argument, NULL, 'n' }, { "event", required_argument, NULL, 'e' },
		{ "buckets", required_argument, NULL, 'b' }, { "handler", required_argument, NULL, 'H' },
		{ "mode", required_argument, NULL, 'm' }, { "expect-error", no_argument, NULL, 'x' },
		{ "expect", required_argument, NULL, 'E' }, { "label", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	struct state s = { .event = "{}", .label = "handler" };
	const char *handler = "app.handler", *mode = "nexus";
	char *buckets = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'n': s.todo = atol(optarg); break;
		case 'e': s.event = optarg; break;
		case 'b': buckets = optarg; break;
		case 'H': handler = optarg; break;
		case 'm': mode = optarg; break;
		case 'x': s.expect_error = true; break;
		case 'E': s.expect = optarg; break;
		case 'L': s.label = optarg; break;
		default: return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: realhost [--invoke N] [--event JSON] [--buckets b1,b2] [--handler H] "
		                "[--mode M] [--expect-error] [--expect SUBSTRING] -- CMD [ARGS...]\n");
		return 2;
	}
	s.lat = calloc((size_t)s.todo + 1, sizeof *s.lat);
	const char *blist[16] = { NULL };
	int nb = 0;
	for (char *tok = buckets ? strtok(buckets, ",") : NULL; tok && nb < 15; tok = strtok(NULL, ","))
		blist[nb++] = tok;
	char meta[512];
	snprintf(meta, sizeof meta,
	         "{\"function_name\":\"realhost-fn\",\"handler\":\"%s\",\"memory_mb\":128,\"timeout_s\":30,"
	         "\"mode\":\"%s\",\"version\":\"$LATEST\"}", handler, mode);
	s.loop = nx_loop_new();
	struct nx_s3 *s3 = realhost_s3_new(s.loop);
	struct nx_chan_config cfg = { .region_size = 32u << 20, .buckets = blist, .ready_meta_json = meta,
	                              .generation = 1 };
	static const struct nx_chan_ops ops = { on_ready, on_done, on_violation };
	s.chan = nx_chan_new(s.loop, s3, &cfg, &ops, &s);
	if (!s.chan) {
		fprintf(stderr, "realhost: nx_chan_new failed\n");
		return 1;
	}
	int fds[3] = { nx_chan_region_fd(s.chan), nx_chan_kick_host_fd(s.chan), nx_chan_kick_guest_fd(s.chan) };
	s.t_start = nx_now_ns();
	s.pid = fork();
	if (s.pid == 0) {
		/* Move the fds to 3, 4, 5 without clobbering one another. */
		int tmp[3];
		for (int i = 0; i < 3; i++)
			tmp[i] = fcntl(fds[i], F_DUPFD, 10);
		for (int i = 0; i < 3; i++)
			if (dup2(tmp[i], 3 + i) < 0)
				_exit(127);
		setenv("NEXUS_REGION_FD", "3", 1);
		setenv("NEXUS_KICK_HOST_FD", "4", 1);
		setenv("NEXUS_KICK_GUEST_FD", "5", 1);
		setenv("NEXUS_MODE", mode, 1);
		execvp(argv[optind], argv + optind);
		perror("realhost: exec");
		_exit(127);
	}
	int pidfd = (int)syscall(SYS_pidfd_open, s.pid, 0);
	if (pidfd < 0) {
		perror("realhost: pidfd_open");
		return 1;
	}
	nx_loop_add_fd(s.loop, pidfd, EPOLLIN, on_exit_fd, &s);
	nx_loop_run(s.loop);
	nx_loop_del_fd(s.loop, pidfd);
	close(pidfd);
	nx_chan_destroy(s.chan);
	realhost_s3_destroy(s3);
	nx_loop_destroy(s.loop);

	int rc = 0;
	if (s.todo) {
		long done = s.sent - (s.sent > 0 && s.lat[s.sent - 1] == 0);
		if (!s.ready || done < s.todo || s.failed) {
			fprintf(stderr, "realhost: %ld of %ld invocations completed, %ld failed (ready: %d)\n", done,
			        s.todo, s.failed, s.ready);
			rc = 1;
		} else if (s.todo >= 20) {
			long skip = s.todo > 20 ? s.todo / 10 : 0;   /* warm-up */
			long n = s.todo - skip;
			uint64_t *l = s.lat + skip;
			qsort(l, (size_t)n, sizeof *l, cmp_u64);
			printf("bench: runtime warm invocation (%s) through nexusd's chan.c, no HTTP: median %.1f us, "
			       "p99 %.1f, min %.1f, max %.1f (%ld invocations)\n", s.label, l[n / 2] / 1e3,
			       l[n * 99 / 100] / 1e3, l[0] / 1e3, l[n - 1] / 1e3, n);
		}
	} else if (!WIFEXITED(s.status) || WEXITSTATUS(s.status) != 0) {
		fprintf(stderr, "realhost: %s exited with status %d\n", argv[optind], s.status);
		rc = 1;
	}
	if (s.failed)
		rc = 1;
	free(s.lat);
	return rc;
}
