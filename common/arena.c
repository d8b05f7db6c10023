/* SPDX-License-Identifier: MIT */
/*
 * Arena allocator with private metadata (see arena.h).
 *
 * The arena is described by a sorted array of segments that tile it exactly;
 * each segment is free or used, and no two free segments are adjacent (they
 * are coalesced on release).  Allocation is first-fit over the array (O(n));
 * release finds the segment by binary search on its start (O(log n)) and only
 * accepts the exact start of a used segment, so a forged or repeated offset
 * from the other side is rejected with -ENOENT.  n is the number of live
 * allocations plus holes: tens to a few hundred per instance.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nexus/channel.h>
#include "arena.h"

struct seg {
	uint64_t off;      /* region offset, NX_ALIGN aligned */
	uint64_t size;     /* bytes, multiple of NX_ALIGN */
	uint64_t req;      /* requested length (used segments) */
	int used;
};

struct nx_arena {
	uint64_t base, size;     /* aligned view of the arena */
	uint64_t used;
	size_t live;
	struct seg *seg;
	size_t n, cap;
};

static uint64_t align_up(uint64_t v) { return (v + NX_ALIGN - 1) & ~(uint64_t)(NX_ALIGN - 1); }

void nx_arena_reset(struct nx_arena *a)
{
	a->n = 0;
	a->used = 0;
	a->live = 0;
	if (a->size) {
		a->seg[0] = (struct seg){ .off = a->base, .size = a->size };
		a->n = 1;
	}
}

struct nx_arena *nx_arena_new(uint64_t base_off, uint64_t size)
{
	struct nx_arena *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	uint64_t base = align_up(base_off);
	if (base < base_off || base - base_off > size) {
		size = 0;
	} else {
		size -= base - base_off;
		size &= ~(uint64_t)(NX_ALIGN - 1);
	}
	a->base = base;
	a->size = size;
	a->cap = 16;
	a->seg = calloc(a->cap, sizeof(*a->seg));
	if (!a->seg) {
		free(a);
		return NULL;
	}
	nx_arena_reset(a);
	return a;
}

void nx_arena_destroy(struct nx_arena *a)
{
	if (!a)
		return;
	free(a->seg);
	free(a);
}

static int insert_at(struct nx_arena *a, size_t i, struct seg s)
{
	if (a->n == a->cap) {
		size_t cap = a->cap * 2;
		struct seg *p = realloc(a->seg, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		a->seg = p;
		a->cap = cap;
	}
	memmove(&a->seg[i + 1], &a->seg[i], (a->n - i) * sizeof(*a->seg));
	a->seg[i] = s;
	a->n++;
	return 0;
}

static void remove_at(struct nx_arena *a, size_t i)
{
	memmove(&a->seg[i], &a->seg[i + 1], (a->n - i - 1) * sizeof(*a->seg));
	a->n--;
}

int nx_arena_alloc(struct nx_arena *a, uint64_t len, uint64_t *off)
{
	if (len == 0 || len > a->size)
		return -ENOSPC;
	uint64_t need = align_up(len);
	for (size_t i = 0; i < a->n; i++) {
		struct seg *s = &a->seg[i];
		if (s->used || s->size < need)
			continue;
		if (s->size > need) {
			struct seg rest = { .off = s->off + need, .size = s->size - need };
			if (insert_at(a, i + 1, rest) < 0)
				return -ENOSPC;
			s = &a->seg[i];   /* the array may have moved */
			s->size = need;
		}
		s->used = 1;
		s->req = len;
		a->used += need;
		a->live++;
		*off = s->off;
		return 0;
	}
	return -ENOSPC;
}

/* Index of the segment starting exactly at off, or -1. */
static long find_seg(const struct nx_arena *a, uint64_t off)
{
	size_t lo = 0, hi = a->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a->seg[mid].off == off)
			return (long)mid;
		if (a->seg[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int nx_arena_release(struct nx_arena *a, uint64_t off, uint64_t *len)
{
	long i = find_seg(a, off);
	if (i < 0 || !a->seg[i].used)
		return -ENOENT;
	struct seg *s = &a->seg[i];
	if (len)
		*len = s->req;
	s->used = 0;
	s->req = 0;
	a->used -= s->size;
	a->live--;
	/* Coalesce with the next, then with the previous free neighbour. */
	if ((size_t)i + 1 < a->n && !a->seg[i + 1].used) {
		a->seg[i].size += a->seg[i + 1].size;
		remove_at(a, (size_t)i + 1);
	}
	if (i > 0 && !a->seg[i - 1].used) {
		a->seg[i - 1].size += a->seg[i].size;
		remove_at(a, (size_t)i);
	}
	return 0;
}

bool nx_arena_contains(const struct nx_arena *a, uint64_t off, uint64_t len)
{
	if (off < a->base)
		return false;
	uint64_t rel = off - a->base;
	return rel <= a->size && len <= a->size - rel;
}

uint64_t nx_arena_used(const struct nx_arena *a) { return a->used; }
uint64_t nx_arena_size(const struct nx_arena *a) { return a->size; }
size_t nx_arena_live(const struct nx_arena *a) { return a->live; }

void nx_arena_for_each_free(const struct nx_arena *a, void (*fn)(void *arg, uint64_t off, uint64_t len), void *arg)
{
	for (size_t i = 0; i < a->n; i++)
		if (!a->seg[i].used)
			fn(arg, a->seg[i].off, a->seg[i].size);
}
