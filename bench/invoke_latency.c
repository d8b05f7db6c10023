/* SPDX-License-Identifier: MIT */
/*
 * nexus-bench-invoke: the latency of one synchronous invocation through a
 * nexusd ingress, measured from a client that keeps one HTTP connection open
 * (so TCP setup is not in the number).  Prints one JSON object with the
 * median, p99, min and max in microseconds.
 *
 *   nexus-bench-invoke URL FUNCTION [-n N] [-w WARMUP] [-p PAYLOAD]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += sz * n;
	return sz * n;
}

static int cmp_u64(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = 1000, warm = 100;
	const char *payload = "{}";
	int opt;
	while ((opt = getopt(argc, argv, "n:w:p:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'w': warm = atol(optarg); break;
		case 'p': payload = optarg; break;
		default: goto usage;
		}
	}
	if (argc - optind != 2 || n <= 0 || warm < 0)
		goto usage;

	char url[1024];
	snprintf(url, sizeof url, "%s/2015-03-31/functions/%s/invocations", argv[optind], argv[optind + 1]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *h = curl_easy_init();
	size_t got = 0;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);

	unsigned long long *lat = calloc((size_t)n, sizeof *lat);
	if (!lat)
		return 1;
	for (long i = 0; i < warm + n; i++) {
		unsigned long long t0 = now_ns();
		CURLcode rc = curl_easy_perform(h);
		unsigned long long t1 = now_ns();
		long code = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc != CURLE_OK || code != 200) {
			fprintf(stderr, "nexus-bench-invoke: request %ld failed: %s (HTTP %ld)\n", i,
			        curl_easy_strerror(rc), code);
			return 1;
		}
		if (i >= warm)
			lat[i - warm] = t1 - t0;
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	printf("{\"n\": %ld, \"median_us\": %.1f, \"p99_us\": %.1f, \"min_us\": %.1f, \"max_us\": %.1f}\n", n,
	       lat[n / 2] / 1e3, lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3, lat[0] / 1e3,
	       lat[n - 1] / 1e3);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(lat);
	curl_global_cleanup();
	return 0;
usage:
	fprintf(stderr, "usage: nexus-bench-invoke URL FUNCTION [-n N] [-w WARMUP] [-p PAYLOAD]\n");
	return 2;
}
