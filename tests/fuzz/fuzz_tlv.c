/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the TLV argument parser (common/tlv.c) on arbitrary
 * bytes.  Accepted input must satisfy every documented rule, and re-encoding
 * the parsed fields must parse back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Private copy, exactly sized, so ASan catches any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct nx_args a;
	int r = nx_tlv_parse(buf, size, &a);
	if (r != 0) {
		for (unsigned t = 0; t < NX_ARG__MAX; t++)
			if (a.val[t])
				abort();   /* rejected input leaves nothing behind */
		free(buf);
		return 0;
	}
	if (size > NX_ARGS_MAX)
		abort();
	uint8_t enc[NX_ARGS_MAX];
	size_t pos = 0, total = 0;
	if (a.val[0])
		abort();
	for (unsigned t = 1; t < NX_ARG__MAX; t++) {
		if (!a.val[t])
			continue;
		if (a.val[t] < buf || a.val[t] + a.len[t] > buf + size || a.len[t] > NX_FIELD_MAX)
			abort();
		if (memchr(a.val[t], 0, a.len[t]))
			abort();
		char s[NX_FIELD_MAX + 1];
		if (nx_args_str(&a, t, s, sizeof(s)) != a.len[t] || strlen(s) != a.len[t])
			abort();
		if (nx_tlv_put(enc, sizeof(enc), &pos, t, a.val[t], a.len[t]) != 0)
			abort();
		total += 4 + a.len[t];
	}
	if (total != size || pos != size)
		abort();   /* every byte belonged to exactly one field */
	struct nx_args b;
	if (nx_tlv_parse(enc, pos, &b) != 0)
		abort();
	for (unsigned t = 1; t < NX_ARG__MAX; t++)
		if (!a.val[t] != !b.val[t] || a.len[t] != b.len[t] ||
		    (a.val[t] && memcmp(a.val[t], b.val[t], a.len[t]) != 0))
			abort();
	free(buf);
	return 0;
}
