/* SPDX-License-Identifier: MIT */
/* The TLV argument codec: round trips and every rejection rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/tlv.h"

static void test_roundtrip(void **state)
{
	(void)state;
	uint8_t buf[NX_ARGS_MAX];
	size_t pos = 0;
	assert_int_equal(nx_tlv_put(buf, sizeof(buf), &pos, NX_ARG_BUCKET, "bkt", 3), 0);
	assert_int_equal(nx_tlv_put(buf, sizeof(buf), &pos, NX_ARG_KEY, "a/b c.txt", 9), 0);
	assert_int_equal(nx_tlv_put(buf, sizeof(buf), &pos, NX_ARG_PREFIX, "", 0), 0);
	assert_int_equal(pos, 4 + 3 + 4 + 9 + 4);
	/* little-endian header */
	assert_int_equal(buf[0], NX_ARG_BUCKET);
	assert_int_equal(buf[1], 0);
	assert_int_equal(buf[2], 3);
	assert_int_equal(buf[3], 0);
	struct nx_args a;
	assert_int_equal(nx_tlv_parse(buf, pos, &a), 0);
	char s[64];
	assert_int_equal(nx_args_str(&a, NX_ARG_BUCKET, s, sizeof(s)), 3);
	assert_string_equal(s, "bkt");
	assert_int_equal(nx_args_str(&a, NX_ARG_KEY, s, sizeof(s)), 9);
	assert_string_equal(s, "a/b c.txt");
	assert_int_equal(nx_args_str(&a, NX_ARG_PREFIX, s, sizeof(s)), 0);
	assert_string_equal(s, "");
	assert_int_equal(nx_args_str(&a, NX_ARG_RANGE, s, sizeof(s)), -ENOENT);
	assert_int_equal(nx_args_str(&a, NX_ARG_KEY, s, 9), -E2BIG);      /* no room for NUL */
	assert_int_equal(nx_args_str(&a, 0, s, sizeof(s)), -ENOENT);
	assert_int_equal(nx_args_str(&a, 999, s, sizeof(s)), -ENOENT);
	assert_int_equal(nx_tlv_parse(buf, 0, &a), 0);                   /* empty is fine */
	assert_null(a.val[NX_ARG_BUCKET]);
}

static void test_rejects(void **state)
{
	(void)state;
	struct nx_args a;
	uint8_t b[16];
	/* truncated header */
	memcpy(b, "\x01\x00\x01", 3);
	assert_int_equal(nx_tlv_parse(b, 3, &a), -EINVAL);
	/* truncated value */
	memcpy(b, "\x01\x00\x05\x00" "abc", 7);
	assert_int_equal(nx_tlv_parse(b, 7, &a), -EINVAL);
	/* zero tag */
	memcpy(b, "\x00\x00\x01\x00" "a", 5);
	assert_int_equal(nx_tlv_parse(b, 5, &a), -EINVAL);
	/* unknown tag */
	b[0] = NX_ARG__MAX;
	assert_int_equal(nx_tlv_parse(b, 5, &a), -EINVAL);
	memcpy(b, "\xff\xff\x01\x00" "a", 5);
	assert_int_equal(nx_tlv_parse(b, 5, &a), -EINVAL);
	/* duplicate tag */
	memcpy(b, "\x02\x00\x01\x00" "a" "\x02\x00\x01\x00" "b", 10);
	assert_int_equal(nx_tlv_parse(b, 10, &a), -EINVAL);
	assert_null(a.val[NX_ARG_KEY]);                 /* output cleared on error */
	/* NUL inside a value */
	memcpy(b, "\x02\x00\x03\x00" "a\0b", 7);
	assert_int_equal(nx_tlv_parse(b, 7, &a), -EINVAL);
	/* NULL buffer with a length */
	assert_int_equal(nx_tlv_parse(NULL, 4, &a), -EINVAL);
}

static void test_limits(void **state)
{
	(void)state;
	static uint8_t big[NX_ARGS_MAX + 16];
	struct nx_args a;
	size_t pos = 0;
	static char v[NX_FIELD_MAX + 1];
	memset(v, 'x', sizeof(v));
	assert_int_equal(nx_tlv_put(big, sizeof(big), &pos, NX_ARG_KEY, v, NX_FIELD_MAX + 1), -E2BIG);
	assert_int_equal(pos, 0);
	assert_int_equal(nx_tlv_put(big, sizeof(big), &pos, NX_ARG_KEY, v, NX_FIELD_MAX), 0);
	assert_int_equal(nx_tlv_put(big, sizeof(big), &pos, NX_ARG_PREFIX, v, NX_FIELD_MAX - 12), 0);
	/* one more field would cross NX_ARGS_MAX even though cap allows it */
	assert_int_equal(nx_tlv_put(big, sizeof(big), &pos, NX_ARG_BUCKET, v, 8), -E2BIG);
	assert_int_equal(nx_tlv_put(big, sizeof(big), &pos, NX_ARG_BUCKET, v, 0), 0);
	assert_int_equal(pos, NX_ARGS_MAX);
	assert_int_equal(nx_tlv_parse(big, pos, &a), 0);
	assert_int_equal(a.len[NX_ARG_KEY], NX_FIELD_MAX);
	assert_int_equal(nx_tlv_parse(big, NX_ARGS_MAX + 1, &a), -EINVAL);
	/* small cap */
	uint8_t s[6];
	pos = 0;
	assert_int_equal(nx_tlv_put(s, sizeof(s), &pos, NX_ARG_KEY, "abc", 3), -E2BIG);
	assert_int_equal(nx_tlv_put(s, sizeof(s), &pos, NX_ARG_KEY, "ab", 2), 0);
	assert_int_equal(nx_tlv_put(s, sizeof(s), &pos, NX_ARG_BUCKET, "", 0), -E2BIG);
	assert_int_equal(nx_tlv_put(s, sizeof(s), &pos, 0, "", 0), -E2BIG);
	/* a value declared longer than NX_FIELD_MAX is rejected by the parser */
	big[0] = NX_ARG_KEY; big[1] = 0;
	big[2] = (NX_FIELD_MAX + 1) & 0xff; big[3] = (NX_FIELD_MAX + 1) >> 8;
	memset(big + 4, 'y', NX_FIELD_MAX + 1);
	assert_int_equal(nx_tlv_parse(big, 4 + NX_FIELD_MAX + 1, &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests_name("tlv", tests, NULL, NULL);
}
