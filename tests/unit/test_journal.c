/* SPDX-License-Identifier: MIT */
/* The write-back journal (nexusd/journal.c): the record codec (CRC32C, round
 * trips, every truncation and every flipped byte detected), group commit,
 * replay after close, a torn tail, and the size bound. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nexusd/journal.h"
#include "nexusd/loop.h"
#include "nexusd/util.h"

static void test_crc32c_vector(void **state)
{
	(void)state;
	/* the standard check value of CRC-32C (Castagnoli) */
	assert_int_equal(nx_crc32c(0, "123456789", 9), 0xe3069283u);
	/* incremental == one shot, across the 8-byte fast path */
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	uint32_t one = nx_crc32c(0, buf, sizeof buf);
	uint32_t inc = nx_crc32c(nx_crc32c(0, buf, 333), buf + 333, sizeof buf - 333);
	assert_int_equal(one, inc);
}

static size_t encode(const struct nx_jrec *r, uint8_t *out, size_t cap)
{
	size_t total = nx_jrec_size(r);
	assert_true(total <= cap);
	memset(out, 0, total);
	size_t hl = nx_jrec_encode_head(r, out, cap);
	assert_true(hl > 0);
	memcpy(out + hl, r->body, r->body_len);
	return total;
}

static void test_roundtrip_and_detection(void **state)
{
	(void)state;
	static uint8_t body[3001], buf[8192];
	for (size_t i = 0; i < sizeof body; i++)
		body[i] = (uint8_t)(i ^ (i >> 8));
	struct nx_jrec r = { .type = NX_JREC_PUT, .seq = 42, .bucket = "bkt", .key = "dir/obj 1.bin",
	                     .ctype = "application/octet-stream", .body = body, .body_len = sizeof body };
	size_t n = encode(&r, buf, sizeof buf);
	assert_int_equal(n % 8, 0);
	struct nx_jrec d;
	size_t used = 0;
	assert_int_equal(nx_jrec_decode(buf, n, &d, &used), NX_JREC_OK);
	assert_int_equal(used, n);
	assert_int_equal(d.type, NX_JREC_PUT);
	assert_int_equal(d.seq, 42);
	assert_string_equal(d.bucket, "bkt");
	assert_string_equal(d.key, "dir/obj 1.bin");
	assert_string_equal(d.ctype, "application/octet-stream");
	assert_int_equal(d.body_len, sizeof body);
	assert_memory_equal(d.body, body, sizeof body);
	/* a torn tail: every strict prefix is SHORT, never OK */
	for (size_t k = 0; k < n; k++)
		assert_int_equal(nx_jrec_decode(buf, k, &d, &used), NX_JREC_SHORT);
	/* every single flipped byte is detected (CORRUPT, or SHORT when a length grew) */
	for (size_t k = 0; k < n; k++) {
		buf[k] ^= 0x5a;
		int rc = nx_jrec_decode(buf, n, &d, &used);
		assert_true(rc == NX_JREC_CORRUPT || rc == NX_JREC_SHORT);
		buf[k] ^= 0x5a;
	}
	/* a tombstone: empty body, empty content type */
	struct nx_jrec t = { .type = NX_JREC_TOMBSTONE, .seq = 7, .bucket = "b", .key = "k", .ctype = "", .body = "",
	                     .body_len = 0 };
	n = encode(&t, buf, sizeof buf);
	assert_int_equal(nx_jrec_decode(buf, n, &d, &used), NX_JREC_OK);
	assert_int_equal(d.type, NX_JREC_TOMBSTONE);
	assert_int_equal(d.body_len, 0);
	/* names too long are refused by the encoder */
	char longkey[NX_JREC_NAME_MAX + 2];
	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = 0;
	struct nx_jrec bad = { .type = NX_JREC_PUT, .bucket = "b", .key = longkey, .ctype = "", .body = "", .body_len = 0 };
	static uint8_t big[4 * NX_JREC_NAME_MAX];
	assert_int_equal(nx_jrec_encode_head(&bad, big, sizeof big), 0);
}

/* ---------------------------------------------------------------- journal */

#define N 300

static struct {
	struct nx_loop *loop;
	unsigned done, failed;
	uint64_t seq[N], seg[N];
	uint8_t *bodies[N];
	size_t lens[N];
	unsigned replayed;
	uint64_t last_seq;
	int order_ok;
} T;

static void on_done(void *arg, int err, uint64_t seq, uint64_t seg, const char *etag)
{
	size_t i = (size_t)(uintptr_t)arg;
	if (err)
		T.failed++;
	T.seq[i] = seq;
	T.seg[i] = seg;
	assert_int_equal(strlen(etag), 34);   /* "md5hex" */
	if (++T.done + T.failed == N)
		nx_loop_stop(T.loop);
}

static struct nx_journal *J;

static void do_appends(void *arg)
{
	(void)arg;
	char key[32];
	for (size_t i = 0; i < N; i++) {
		snprintf(key, sizeof key, "k/%04zu", i);
		int r = nx_journal_append(J, NX_JREC_PUT, "bkt", key, "text/plain", T.bodies[i], T.lens[i], on_done,
		                          (void *)(uintptr_t)i, NULL);
		assert_int_equal(r, 0);
	}
}

static void on_replay(void *arg, const struct nx_jrec *r, uint64_t seg)
{
	(void)arg;
	(void)seg;
	unsigned i;
	assert_int_equal(sscanf(r->key, "k/%04u", &i), 1);
	assert_true(i < N);
	assert_int_equal(r->body_len, T.lens[i]);
	assert_memory_equal(r->body, T.bodies[i], T.lens[i]);
	if (r->seq <= T.last_seq)
		T.order_ok = 0;
	T.last_seq = r->seq;
	T.replayed++;
}

static void test_group_commit_and_replay(void **state)
{
	(void)state;
	char dir[] = "/tmp/nexus-journal-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char jdir[64];
	snprintf(jdir, sizeof jdir, "%s/journal", dir);
	for (size_t i = 0; i < N; i++) {
		T.lens[i] = (i * 977) % 20000;
		T.bodies[i] = malloc(T.lens[i] + 1);
		for (size_t k = 0; k < T.lens[i]; k++)
			T.bodies[i][k] = (uint8_t)(i + k);
	}
	T.loop = nx_loop_new();
	J = nx_journal_open(T.loop, jdir, 64u << 20);
	assert_non_null(J);
	assert_int_equal(nx_journal_replay(J, on_replay, NULL), 0);
	nx_loop_post(T.loop, do_appends, NULL);
	nx_loop_run(T.loop);
	assert_int_equal(T.failed, 0);
	assert_int_equal(T.done, N);
	struct nx_journal_stats st;
	nx_journal_stats(J, &st);
	assert_int_equal(st.appends, N);
	assert_true(st.fsyncs >= 1 && st.fsyncs < N);   /* group commit: fewer fsyncs than appends */
	printf("journal: %u appends covered by %llu fsyncs\n", N, (unsigned long long)st.fsyncs);
	nx_journal_close(J);

	/* replay: every record back, in sequence order, byte for byte */
	J = nx_journal_open(T.loop, jdir, 64u << 20);
	T.order_ok = 1;
	assert_int_equal(nx_journal_replay(J, on_replay, NULL), N);
	assert_int_equal(T.replayed, N);
	assert_true(T.order_ok);
	nx_journal_close(J);

	/* a torn tail: cut the last segment in the middle of its last record */
	DIR *d = opendir(jdir);
	char last[256] = "";
	struct dirent *de;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "seg-", 4) && strcmp(de->d_name, last) > 0)
			snprintf(last, sizeof last, "%s", de->d_name);
	closedir(d);
	char path[400];
	snprintf(path, sizeof path, "%s/%s", jdir, last);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 5), 0);
	J = nx_journal_open(T.loop, jdir, 64u << 20);
	T.replayed = 0;
	T.last_seq = 0;
	assert_int_equal(nx_journal_replay(J, on_replay, NULL), N - 1);
	nx_journal_close(J);

	/* the bound: a journal already holding more than max refuses appends (push back) */
	J = nx_journal_open(T.loop, jdir, 1u << 20);
	T.replayed = 0;
	T.last_seq = 0;
	nx_journal_replay(J, on_replay, NULL);
	assert_int_equal(nx_journal_append(J, NX_JREC_PUT, "b", "k", "", "x", 1, on_done, NULL, NULL), -ENOSPC);
	nx_journal_stats(J, &st);
	assert_int_equal(st.full, 1);
	nx_journal_close(J);
	nx_loop_destroy(T.loop);
	for (size_t i = 0; i < N; i++)
		free(T.bodies[i]);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vector),
		cmocka_unit_test(test_roundtrip_and_detection),
		cmocka_unit_test(test_group_commit_and_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
