/* SPDX-License-Identifier: MIT */
/*
 * The `process` sandbox with zygote cold starts (sandbox_zygote.c): selected
 * per function by the tag "nexus:snapshot": "zygote" (Python, nexus or
 * baseline mode).
 * Same driver table as nx_sandbox_process; falls back to a fresh process
 * sandbox whenever the zygote cannot serve.
 */
#ifndef NEXUSD_SANDBOX_ZYGOTE_H
#define NEXUSD_SANDBOX_ZYGOTE_H

#include <stdint.h>
#include "sandbox.h"

extern const struct nx_sandbox_driver nx_sandbox_zygote;

/* Counters since nexusd started (for metrics/status). */
struct zy_stats {
	uint64_t spawned;   /* zygotes started */
	uint64_t forked;    /* instances forked from a zygote */
	uint64_t fresh;     /* instances started fresh instead (fallback) */
	uint64_t died;      /* zygotes found dead or misbehaving, replaced */
	uint64_t live;      /* zygotes in use now */
};
void zy_get_stats(struct zy_stats *out);

/* A baseline zygote's own sandbox runs under this pseudo instance id: the
 * first instance's id + this (never a real id; the same id modulo 10^6, so the
 * same host uid as a nexus-mode zygote).  It holds an address slot for the
 * zygote's egress but is never an instance the forwarder talks to. */
#define NX_ZYGOTE_ID_OFFSET (1000000ull << 40)

#endif
