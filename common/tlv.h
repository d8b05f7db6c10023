/* SPDX-License-Identifier: MIT */
/*
 * Request arguments: the TLV encoding of include/nexus/channel.h.
 * The parser is the first thing nexusd runs on guest-written bytes (after
 * copying them out of the region): it is strict and fuzzed.
 */
#ifndef NEXUS_COMMON_TLV_H
#define NEXUS_COMMON_TLV_H

#include <stddef.h>
#include <stdint.h>
#include <nexus/channel.h>

/* Parsed view into a private buffer.  val[t] is NULL when tag t is absent.
 * Values are not NUL-terminated; use nx_args_str to copy one out. */
struct nx_args {
	const uint8_t *val[NX_ARG__MAX];
	uint16_t len[NX_ARG__MAX];
};

/* Parse buf[0..len).  Rejects (returns -EINVAL): truncated headers or values,
 * unknown or zero tags, duplicate tags, values over NX_FIELD_MAX, len over
 * NX_ARGS_MAX, and values containing a NUL byte. */
int nx_tlv_parse(const uint8_t *buf, size_t len, struct nx_args *out);

/* Copy tag t as a NUL-terminated string into dst (cap bytes).  Returns its
 * length, -ENOENT when absent, -E2BIG when it does not fit. */
int nx_args_str(const struct nx_args *a, unsigned t, char *dst, size_t cap);

/* Encoder: append one field at buf+*pos.  Returns 0, or -E2BIG when it would
 * not fit in cap or exceeds the limits above. */
int nx_tlv_put(uint8_t *buf, size_t cap, size_t *pos, unsigned tag, const void *val, size_t len);

#endif
