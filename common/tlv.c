/* SPDX-License-Identifier: MIT */
/*
 * Strict TLV codec for request arguments (format: include/nexus/channel.h).
 * The parser runs on a private copy of guest bytes; it never reads past len
 * and accepts only well-formed input, so everything downstream can trust
 * struct nx_args.  Fuzzed by tests/fuzz/fuzz_tlv.c.
 */
#include <errno.h>
#include <string.h>

#include "tlv.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

int nx_tlv_parse(const uint8_t *buf, size_t len, struct nx_args *out)
{
	memset(out, 0, sizeof(*out));
	if (len > NX_ARGS_MAX || (len && !buf))
		return -EINVAL;
	size_t pos = 0;
	while (pos < len) {
		if (len - pos < sizeof(struct nx_tlv_hdr))
			goto bad;
		unsigned tag = rd16(buf + pos), vlen = rd16(buf + pos + 2);
		pos += sizeof(struct nx_tlv_hdr);
		if (tag == 0 || tag >= NX_ARG__MAX || out->val[tag])
			goto bad;
		if (vlen > NX_FIELD_MAX || vlen > len - pos)
			goto bad;
		if (memchr(buf + pos, 0, vlen))
			goto bad;
		/* A zero-length value is present but empty: point at a valid byte. */
		out->val[tag] = buf + pos;
		out->len[tag] = (uint16_t)vlen;
		pos += vlen;
	}
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return -EINVAL;
}

int nx_args_str(const struct nx_args *a, unsigned t, char *dst, size_t cap)
{
	if (t == 0 || t >= NX_ARG__MAX || !a->val[t])
		return -ENOENT;
	size_t n = a->len[t];
	if (cap == 0 || n >= cap)
		return -E2BIG;
	memcpy(dst, a->val[t], n);
	dst[n] = '\0';
	return (int)n;
}

int nx_tlv_put(uint8_t *buf, size_t cap, size_t *pos, unsigned tag, const void *val, size_t len)
{
	if (tag == 0 || tag >= NX_ARG__MAX || len > NX_FIELD_MAX)
		return -E2BIG;
	size_t p = *pos;
	if (p > cap || cap - p < sizeof(struct nx_tlv_hdr) + len || p + sizeof(struct nx_tlv_hdr) + len > NX_ARGS_MAX)
		return -E2BIG;
	buf[p] = (uint8_t)tag;
	buf[p + 1] = (uint8_t)(tag >> 8);
	buf[p + 2] = (uint8_t)len;
	buf[p + 3] = (uint8_t)(len >> 8);
	if (len)
		memcpy(buf + p + 4, val, len);
	*pos = p + 4 + len;
	return 0;
}
