/* SPDX-License-Identifier: MIT */
/*
 * A byte-range allocator over one arena of the shared region.  All metadata
 * lives in the allocating side's private memory, never in the region, so the
 * other side cannot corrupt it.  nexusd uses it for the host arena (and
 * checks every NX_OP_RELEASE against it: only live allocations it handed out
 * may be released); libnexus uses it for the guest arena.
 *
 * Offsets are region offsets (not arena-relative).  Allocations are aligned
 * to NX_ALIGN.  Freed neighbours coalesce.
 */
#ifndef NEXUS_COMMON_ARENA_H
#define NEXUS_COMMON_ARENA_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct nx_arena;

struct nx_arena *nx_arena_new(uint64_t base_off, uint64_t size);
void nx_arena_destroy(struct nx_arena *a);

/* Drop every allocation (instance reset). */
void nx_arena_reset(struct nx_arena *a);

/* Allocate len bytes (len > 0).  Returns 0 and *off, or -ENOSPC. */
int nx_arena_alloc(struct nx_arena *a, uint64_t len, uint64_t *off);

/* Release the live allocation starting at off.  Returns 0 and its length in
 * *len (may be NULL), or -ENOENT when off is not the start of a live
 * allocation (double free, forged offset). */
int nx_arena_release(struct nx_arena *a, uint64_t off, uint64_t *len);

/* True when [off, off+len) lies inside the arena (overflow-safe). */
bool nx_arena_contains(const struct nx_arena *a, uint64_t off, uint64_t len);

/* Call fn for every free range, in offset order (e.g. to give pages back). */
void nx_arena_for_each_free(const struct nx_arena *a, void (*fn)(void *arg, uint64_t off, uint64_t len), void *arg);

uint64_t nx_arena_used(const struct nx_arena *a);   /* bytes allocated */
uint64_t nx_arena_size(const struct nx_arena *a);
size_t   nx_arena_live(const struct nx_arena *a);   /* live allocations */

#endif
