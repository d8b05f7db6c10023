/* SPDX-License-Identifier: MIT */
/*
 * Stateless checks of the channel host side (chan_validate.h): the region
 * layout and what a descriptor copied out of the to-host ring may contain.
 * The checks that need state (RELEASE against live host allocations, TLV
 * arguments, pending invocations, the allow-list) follow in chan.c and
 * chan_storage.c.
 */
#include "chan_validate.h"

void nx_chan_layout_for(uint64_t size, struct nx_chan_layout *l)
{
	uint64_t arenas = size - NX_ARENAS_OFF;
	l->region_size = size;
	l->guest_off = NX_ARENAS_OFF;
	l->guest_size = (arenas / 2) & ~(uint64_t)4095;
	l->host_off = l->guest_off + l->guest_size;
	l->host_size = size - l->host_off;
}

bool nx_chan_in_guest_arena(const struct nx_chan_layout *l, uint64_t off, uint64_t len)
{
	if (len == 0)
		return true;
	if (off < l->guest_off)
		return false;
	uint64_t rel = off - l->guest_off;
	return rel < l->guest_size && len <= l->guest_size - rel;
}

static bool in_host_arena(const struct nx_chan_layout *l, uint64_t off)
{
	return off >= l->host_off && off - l->host_off < l->host_size;
}

int nx_chan_check_desc(const struct nx_chan_layout *l, const struct nx_desc *d)
{
	if (d->flags != 0)
		return NX_S_INVALID;  /* the guest never posts completions */
	if (d->opcode != NX_OP_INVOKE_DONE && d->status != 0)
		return NX_S_INVALID;
	const struct nx_buf *b = d->buf;
	switch (d->opcode) {
	case NX_OP_NOP:
		return NX_S_OK;
	case NX_OP_READY:
		return b[0].len <= NX_ARGS_MAX && nx_chan_in_guest_arena(l, b[0].off, b[0].len)
		       ? NX_S_OK : NX_S_INVALID;
	case NX_OP_INVOKE:
		return NX_S_INVALID;  /* host-to-guest only */
	case NX_OP_INVOKE_DONE:
		if (d->status != NX_S_OK && d->status != NX_S_HANDLER_ERROR)
			return NX_S_INVALID;
		return b[1].len <= NX_PAYLOAD_MAX && nx_chan_in_guest_arena(l, b[1].off, b[1].len)
		       ? NX_S_OK : NX_S_INVALID;
	case NX_OP_RELEASE:
		return in_host_arena(l, b[0].off) ? NX_S_OK : NX_S_INVALID;
	case NX_OP_S3_PUT:
		if (!nx_chan_in_guest_arena(l, b[1].off, b[1].len))
			return NX_S_INVALID;
		/* fall through */
	case NX_OP_S3_GET:
	case NX_OP_S3_HEAD:
	case NX_OP_S3_DELETE:
	case NX_OP_S3_LIST:
	case NX_OP_S3_COPY:
		return b[0].len > 0 && b[0].len <= NX_ARGS_MAX && nx_chan_in_guest_arena(l, b[0].off, b[0].len)
		       ? NX_S_OK : NX_S_INVALID;
	default:
		return NX_S_UNSUPPORTED;
	}
}

