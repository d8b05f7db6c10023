/* SPDX-License-Identifier: MIT */
/*
 * nexus-bench-load: the load generator of `nexus bench` (bench/harness/).
 * It records every latency, so the harness can draw CDFs and take any
 * percentile, and it is in C so that the client's own cost stays small and
 * out of the measured node (its CPU is reported apart by the harness).
 *
 *   nexus-bench-load closed URL FUNCTION PAYLOAD_FILE N WARMUP OUT
 *       N sequential invocations over one kept-alive connection (after WARMUP
 *       unrecorded ones); writes one latency in ns per line to OUT.
 *   nexus-bench-load open URL SCHEDULE OUT
 *       Open loop: SCHEDULE has one request per line, "T_US FUNCTION PAYLOAD"
 *       (PAYLOAD = the rest of the line, JSON), sorted by T_US.  Each request
 *       is sent at its time whatever is still in flight (libcurl multi, any
 *       number of connections), so a slow node cannot slow the arrivals down
 *       (no coordinated omission).  Latency counts from the scheduled time.
 *       Writes "FUNCTION LATENCY_NS HTTP_STATUS" per request to OUT.
 *
 * Both print one JSON summary line on stdout.  A request that fails (transport
 * error, HTTP status other than 200, or X-Amz-Function-Error) is recorded with
 * its status (0 for a transport error, 299 for a function error) and counted;
 * in closed mode it is left out of the latencies, reported on stderr, and the
 * run goes on (it stops only when most requests fail).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Keeps the first bytes of the last response (for the error message). */
struct body {
	char text[600];
	size_t len;
};

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	if (b && b->len + 1 < sizeof b->text) {
		size_t k = sz * n < sizeof b->text - 1 - b->len ? sz * n : sizeof b->text - 1 - b->len;
		memcpy(b->text + b->len, p, k);
		b->len += k;
		b->text[b->len] = 0;
	}
	return sz * n;
}

/* A function error comes back as 200 + X-Amz-Function-Error: count it apart. */
static size_t header_cb(char *p, size_t sz, size_t n, void *arg)
{
	static const char name[] = "x-amz-function-error:";
	if (sz * n >= sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0)
		*(int *)arg = 1;
	return sz * n;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)len + 1);
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[len] = 0;
	fclose(f);
	return buf;
}

static struct curl_slist *common_headers(void)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	return curl_slist_append(hdr, "Expect:");
}

static void setup(CURL *h, const char *url, const char *payload, struct curl_slist *hdr, int *ferr)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, ferr);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 900L);
}

static int closed_loop(const char *base, const char *fn, const char *payload_file, long n, long warm,
                       const char *out)
{
	char *payload = read_file(payload_file);
	if (!payload) {
		perror(payload_file);
		return 1;
	}
	char url[1024];
	snprintf(url, sizeof url, "%s/2015-03-31/functions/%s/invocations", base, fn);
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = common_headers();
	int ferr = 0;
	setup(h, url, payload, hdr, &ferr);
	FILE *o = fopen(out, "w");
	if (!o) {
		perror(out);
		return 1;
	}
	long failed = 0;
	unsigned long long total = 0;
	struct body body;
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	for (long i = 0; i < warm + n; i++) {
		ferr = 0;
		body.len = 0;
		body.text[0] = 0;
		unsigned long long t0 = now_ns();
		CURLcode rc = curl_easy_perform(h);
		unsigned long long t1 = now_ns();
		long code = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc != CURLE_OK || code != 200 || ferr) {
			/* Recorded and counted, not fatal: one bad request must not lose a run. */
			fprintf(stderr, "nexus-bench-load: %s request %ld failed: %s (HTTP %ld%s): %s\n", fn, i,
			        curl_easy_strerror(rc), code, ferr ? ", function error" : "", body.text);
			failed++;
			if (failed > 10 && failed * 2 > i + 1)
				return 1;   /* mostly failing: the function is broken */
			continue;
		}
		if (i >= warm) {
			fprintf(o, "%llu\n", t1 - t0);
			total += t1 - t0;
		}
	}
	fclose(o);
	printf("{\"n\": %ld, \"failed\": %ld, \"mean_us\": %.1f}\n", n, failed, total / 1e3 / (double)n);
	fflush(stdout);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(payload);
	return 0;
}

struct req {
	unsigned long long t_us;
	char *fn, *payload;
	char url[512];
	int ferr;
	unsigned long long start;
};

static int open_loop(const char *base, const char *sched_file, const char *out)
{
	char *text = read_file(sched_file);
	if (!text) {
		perror(sched_file);
		return 1;
	}
	size_t cap = 1024, n = 0;
	struct req *reqs = malloc(cap * sizeof *reqs);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (!sp2)
			continue;
		*sp1 = *sp2 = 0;
		if (n == cap)
			reqs = realloc(reqs, (cap *= 2) * sizeof *reqs);
		struct req *r = &reqs[n++];
		memset(r, 0, sizeof *r);
		r->t_us = strtoull(line, NULL, 10);
		r->fn = sp1 + 1;
		r->payload = sp2 + 1;
		snprintf(r->url, sizeof r->url, "%s/2015-03-31/functions/%s/invocations", base, r->fn);
	}
	FILE *o = fopen(out, "w");
	if (!o) {
		perror(out);
		return 1;
	}
	CURLM *m = curl_multi_init();
	/* At most 256 connections: beyond that, requests wait in the client (their
	 * latency still counts from the scheduled time).  With no cap an overloaded
	 * node got >1000 connections and stopped answering (see docs/results.md). */
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 256L);
	struct curl_slist *hdr = common_headers();
	/* Easy handles are recycled so their connections are reused. */
	CURL **pool = malloc(n * sizeof *pool);
	size_t npool = 0, next = 0, inflight = 0, failed = 0, maxinflight = 0;
	unsigned long long t0 = now_ns();
	while (next < n || inflight) {
		unsigned long long now = now_ns();
		while (next < n && t0 + reqs[next].t_us * 1000ull <= now) {
			struct req *r = &reqs[next++];
			CURL *h = npool ? pool[--npool] : curl_easy_init();
			r->start = t0 + r->t_us * 1000ull;
			setup(h, r->url, r->payload, hdr, &r->ferr);
			curl_easy_setopt(h, CURLOPT_PRIVATE, r);
			curl_multi_add_handle(m, h);
			if (++inflight > maxinflight)
				maxinflight = inflight;
		}
		int running;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *h = msg->easy_handle;
			struct req *r;
			long code = 0;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result != CURLE_OK)
				code = 0;
			else if (code == 200 && r->ferr)
				code = 299;
			if (code != 200)
				failed++;
			fprintf(o, "%s %llu %ld\n", r->fn, now_ns() - r->start, code);
			curl_multi_remove_handle(m, h);
			pool[npool++] = h;
			inflight--;
		}
		long wait_ms = 50;
		if (next < n) {
			unsigned long long due = t0 + reqs[next].t_us * 1000ull, t = now_ns();
			wait_ms = due > t ? (long)((due - t) / 1000000ull) : 0;
		}
		if (wait_ms > 0 || inflight)
			curl_multi_poll(m, NULL, 0, (int)(wait_ms > 50 ? 50 : wait_ms), NULL);
	}
	fclose(o);
	printf("{\"n\": %zu, \"failed\": %zu, \"max_inflight\": %zu, \"seconds\": %.2f}\n", n, failed, maxinflight,
	       (now_ns() - t0) / 1e9);
	for (size_t i = 0; i < npool; i++)
		curl_easy_cleanup(pool[i]);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	free(pool);
	free(reqs);
	free(text);
	return 0;
}

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = 2;
	if (argc == 8 && strcmp(argv[1], "closed") == 0)
		rc = closed_loop(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]), argv[7]);
	else if (argc == 5 && strcmp(argv[1], "open") == 0)
		rc = open_loop(argv[2], argv[3], argv[4]);
	else
		fprintf(stderr, "usage: nexus-bench-load closed URL FUNCTION PAYLOAD_FILE N WARMUP OUT\n"
		                "       nexus-bench-load open URL SCHEDULE OUT\n");
	curl_global_cleanup();
	return rc;
}
