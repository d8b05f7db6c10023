/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics.  Counters are updated and rendered on the loop thread
 * only, so they need no locks; /metrics asks the loop to render.
 */
#ifndef NEXUSD_METRICS_H
#define NEXUSD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "invocation.h"

struct nx_s3;

void nxd_metrics_invocation(const char *fn, enum nxd_inv_result r, double seconds);
void nxd_metrics_cold_start(const char *fn, double init_seconds);
void nxd_metrics_init(struct nx_s3 *s3);
void nxd_metrics_destroy(void);

/* One metric family in the exposition format: its HELP (if help) and TYPE lines,
 * then one sample per entry, `name{label} value` (just `name value` for a NULL
 * label).  For the subsystems that render their own counters (aio's callers). */
struct nxd_metric_sample {
	const char *label;   /* e.g. result="hit", or NULL */
	uint64_t value;
};
void nxd_metric_family(FILE *f, const char *name, const char *type, const char *help,
                       const struct nxd_metric_sample *s, size_t n);
/* The common case: one unlabelled sample. */
void nxd_metric_one(FILE *f, const char *name, const char *type, const char *help, uint64_t value);

/* Render the exposition text (malloc'd). */
char *nxd_metrics_render(size_t *len);

#endif
