/* SPDX-License-Identifier: MIT */
/* The channel ABI layout: every offset and value other code depends on
 * (the guest runtime in Python hard-codes these numbers too). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <nexus/channel.h>

static void test_header_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct nx_region_hdr), 4096);
	assert_int_equal(offsetof(struct nx_region_hdr, magic), 0);
	assert_int_equal(offsetof(struct nx_region_hdr, abi_major), 4);
	assert_int_equal(offsetof(struct nx_region_hdr, abi_minor), 6);
	assert_int_equal(offsetof(struct nx_region_hdr, region_size), 8);
	assert_int_equal(offsetof(struct nx_region_hdr, generation), 16);
	assert_int_equal(offsetof(struct nx_region_hdr, ring_entries), 24);
	assert_int_equal(offsetof(struct nx_region_hdr, flags), 28);
	assert_int_equal(offsetof(struct nx_region_hdr, to_host_ring_off), 32);
	assert_int_equal(offsetof(struct nx_region_hdr, to_guest_ring_off), 40);
	assert_int_equal(offsetof(struct nx_region_hdr, guest_arena_off), 48);
	assert_int_equal(offsetof(struct nx_region_hdr, guest_arena_size), 56);
	assert_int_equal(offsetof(struct nx_region_hdr, host_arena_off), 64);
	assert_int_equal(offsetof(struct nx_region_hdr, host_arena_size), 72);
	assert_int_equal(NX_MAGIC, 0x4752584e);
}

static void test_desc_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct nx_buf), 16);
	assert_int_equal(sizeof(struct nx_desc), 64);
	assert_int_equal(offsetof(struct nx_desc, opcode), 0);
	assert_int_equal(offsetof(struct nx_desc, flags), 2);
	assert_int_equal(offsetof(struct nx_desc, status), 4);
	assert_int_equal(offsetof(struct nx_desc, tag), 8);
	assert_int_equal(offsetof(struct nx_desc, buf[0].off), 16);
	assert_int_equal(offsetof(struct nx_desc, buf[0].len), 24);
	assert_int_equal(offsetof(struct nx_desc, buf[1]), 32);
	assert_int_equal(offsetof(struct nx_desc, buf[2]), 48);
	assert_int_equal(sizeof(struct nx_tlv_hdr), 4);
}

static void test_ring_layout(void **state)
{
	(void)state;
	assert_int_equal(offsetof(struct nx_ring, head), 0);
	assert_int_equal(offsetof(struct nx_ring, tail), 64);
	assert_int_equal(offsetof(struct nx_ring, consumer_sleeping), 128);
	assert_int_equal(offsetof(struct nx_ring, desc), 192);
	assert_int_equal(NX_RING_BYTES, 192 + 64 * 256);
	assert_int_equal(NX_TO_HOST_RING_OFF, 4096);
	assert_int_equal(NX_TO_GUEST_RING_OFF, 4096 + NX_RING_BYTES);
	assert_int_equal(NX_ARENAS_OFF, 40960);
	assert_true((NX_ARENAS_OFF % 4096) == 0);
	assert_true(NX_ARENAS_OFF >= NX_TO_GUEST_RING_OFF + NX_RING_BYTES);
}

static void test_abi_numbers(void **state)
{
	(void)state;
	/* Opcodes, statuses and tags are wire values: renumbering breaks guests. */
	assert_int_equal(NX_OP_NOP, 0);
	assert_int_equal(NX_OP_READY, 1);
	assert_int_equal(NX_OP_INVOKE, 2);
	assert_int_equal(NX_OP_INVOKE_DONE, 3);
	assert_int_equal(NX_OP_RELEASE, 4);
	assert_int_equal(NX_OP_S3_GET, 16);
	assert_int_equal(NX_OP_S3_PUT, 17);
	assert_int_equal(NX_OP_S3_HEAD, 18);
	assert_int_equal(NX_OP_S3_DELETE, 19);
	assert_int_equal(NX_OP_S3_LIST, 20);
	assert_int_equal(NX_OP_S3_COPY, 21);
	assert_int_equal(NX_S_OK, 0);
	assert_int_equal(NX_S_ACCESS_DENIED, 3);
	assert_int_equal(NX_S_TOO_LARGE, 8);
	assert_int_equal(NX_ARG_BUCKET, 1);
	assert_int_equal(NX_ARG_RUNTIME, 13);
	assert_int_equal(NX_F_COMPLETION, 1);
	assert_int_equal(NX_ALIGN, 64);
	assert_int_equal(NX_ARGS_MAX, 8192);
	assert_int_equal(NX_FIELD_MAX, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_desc_layout),
		cmocka_unit_test(test_ring_layout),
		cmocka_unit_test(test_abi_numbers),
	};
	return cmocka_run_group_tests_name("abi", tests, NULL, NULL);
}
