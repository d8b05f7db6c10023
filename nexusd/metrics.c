/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instance.h"
#include "aio.h"
#include "s3.h"

static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
#define NB (sizeof bounds / sizeof bounds[0])

static const char *const result_names[] = {
	[NXD_INV_OK] = "success",   [NXD_INV_HANDLER_ERROR] = "error", [NXD_INV_TIMEOUT] = "timeout",
	[NXD_INV_CRASH] = "crash",  [NXD_INV_THROTTLED] = "throttled", [NXD_INV_GONE] = "not_found",
	[NXD_INV_FAILED] = "failed",
};
#define NR (sizeof result_names / sizeof result_names[0])

struct fn_metrics {
	char name[65];
	unsigned long long results[NR];
	unsigned long long buckets[NB + 1]; /* last = +Inf */
	double sum;
	unsigned long long count;
	unsigned long long cold_starts;
	double init_sum;
};

static struct fn_metrics *fns;
static size_t nfns, capfns;
static unsigned long long cold_total;
static struct nx_s3 *s3;

void nxd_metric_family(FILE *f, const char *name, const char *type, const char *help,
                       const struct nxd_metric_sample *s, size_t n)
{
	if (help)
		fprintf(f, "# HELP %s %s\n", name, help);
	fprintf(f, "# TYPE %s %s\n", name, type);
	for (size_t i = 0; i < n; i++) {
		if (s[i].label)
			fprintf(f, "%s{%s} %" PRIu64 "\n", name, s[i].label, s[i].value);
		else
			fprintf(f, "%s %" PRIu64 "\n", name, s[i].value);
	}
}

void nxd_metric_one(FILE *f, const char *name, const char *type, const char *help, uint64_t value)
{
	nxd_metric_family(f, name, type, help, &(struct nxd_metric_sample){ NULL, value }, 1);
}

void nxd_metrics_init(struct nx_s3 *s)
{
	s3 = s;
}

void nxd_metrics_destroy(void)
{
	free(fns);
	fns = NULL;
	nfns = capfns = 0;
}

static struct fn_metrics *get(const char *name)
{
	for (size_t i = 0; i < nfns; i++)
		if (!strcmp(fns[i].name, name))
			return &fns[i];
	if (nfns == capfns) {
		size_t cap = capfns ? capfns * 2 : 16;
		struct fn_metrics *n = realloc(fns, cap * sizeof *n);
		if (!n)
			return NULL;
		fns = n;
		capfns = cap;
	}
	struct fn_metrics *m = &fns[nfns++];
	memset(m, 0, sizeof *m);
	snprintf(m->name, sizeof m->name, "%s", name);
	return m;
}

void nxd_metrics_invocation(const char *fn, enum nxd_inv_result r, double s)
{
	struct fn_metrics *m = get(fn);
	if (!m || (unsigned)r >= NR)
		return;
	m->results[r]++;
	if (r == NXD_INV_THROTTLED || r == NXD_INV_GONE)
		return; /* never ran: not a latency sample */
	size_t i = 0;
	while (i < NB && s > bounds[i])
		i++;
	m->buckets[i]++;
	m->sum += s;
	m->count++;
}

void nxd_metrics_cold_start(const char *fn, double init_s)
{
	struct fn_metrics *m = get(fn);
	cold_total++;
	if (m) {
		m->cold_starts++;
		m->init_sum += init_s;
	}
}

char *nxd_metrics_render(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		return NULL;
	fprintf(f, "# HELP nexus_invocations_total Invocations by function and result.\n"
	           "# TYPE nexus_invocations_total counter\n");
	for (size_t i = 0; i < nfns; i++)
		for (size_t r = 0; r < NR; r++)
			if (fns[i].results[r] || r == NXD_INV_OK)
				fprintf(f, "nexus_invocations_total{function=\"%s\",result=\"%s\"} %llu\n", fns[i].name,
				        result_names[r], fns[i].results[r]);
	fprintf(f, "# HELP nexus_invocation_duration_seconds Invocation latency inside nexusd (request in to response out).\n"
	           "# TYPE nexus_invocation_duration_seconds histogram\n");
	for (size_t i = 0; i < nfns; i++) {
		unsigned long long acc = 0;
		for (size_t b = 0; b < NB; b++) {
			acc += fns[i].buckets[b];
			fprintf(f, "nexus_invocation_duration_seconds_bucket{function=\"%s\",le=\"%g\"} %llu\n", fns[i].name,
			        bounds[b], acc);
		}
		acc += fns[i].buckets[NB];
		fprintf(f, "nexus_invocation_duration_seconds_bucket{function=\"%s\",le=\"+Inf\"} %llu\n", fns[i].name, acc);
		fprintf(f, "nexus_invocation_duration_seconds_sum{function=\"%s\"} %.9f\n", fns[i].name, fns[i].sum);
		fprintf(f, "nexus_invocation_duration_seconds_count{function=\"%s\"} %llu\n", fns[i].name, fns[i].count);
	}
	nxd_metric_one(f, "nexus_cold_starts_total", "counter", "Instances started and ready.", cold_total);
	fprintf(f, "# HELP nexus_function_cold_starts_total Cold starts by function.\n"
	           "# TYPE nexus_function_cold_starts_total counter\n");
	for (size_t i = 0; i < nfns; i++)
		fprintf(f, "nexus_function_cold_starts_total{function=\"%s\"} %llu\n", fns[i].name, fns[i].cold_starts);
	fprintf(f, "# HELP nexus_instances Live instances by function and state.\n# TYPE nexus_instances gauge\n");
	nxd_im_metrics(f);
	struct nx_s3_stats st;
	memset(&st, 0, sizeof st);
	if (s3)
		nx_s3_stats(s3, &st);
	fprintf(f, "# HELP nexus_storage_operations_total Storage requests by operation and result.\n"
	           "# TYPE nexus_storage_operations_total counter\n");
	for (int op = 0; op < NX_S3__OPS; op++) {
		unsigned long long ok = st.ops[op] >= st.errors[op] ? st.ops[op] - st.errors[op] : 0;
		fprintf(f, "nexus_storage_operations_total{op=\"%s\",result=\"ok\"} %llu\n", nx_s3_op_name(op), ok);
		fprintf(f, "nexus_storage_operations_total{op=\"%s\",result=\"error\"} %llu\n", nx_s3_op_name(op),
		        (unsigned long long)st.errors[op]);
	}
	nxd_metric_one(f, "nexus_storage_retries_total", "counter", "Storage requests retried.", st.retries);
	const struct nxd_metric_sample bytes[] = { { "direction=\"in\"", st.bytes_in }, { "direction=\"out\"", st.bytes_out } };
	nxd_metric_family(f, "nexus_storage_bytes_total", "counter", "Storage body bytes by direction.", bytes, 2);
	nx_aio_metrics(f);   /* write-back journal and prefetch */
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
