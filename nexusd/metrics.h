/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics.  Counters are updated and rendered on the loop thread
 * only, so they need no locks; /metrics asks the loop to render.
 */
#ifndef NEXUSD_METRICS_H
#define NEXUSD_METRICS_H

#include <stddef.h>
#include "invocation.h"

struct nx_s3;

void nxd_metrics_invocation(const char *fn, enum nxd_inv_result r, double seconds);
void nxd_metrics_cold_start(const char *fn, double init_seconds);
void nxd_metrics_init(struct nx_s3 *s3);
void nxd_metrics_destroy(void);

/* Render the exposition text (malloc'd). */
char *nxd_metrics_render(size_t *len);

#endif
