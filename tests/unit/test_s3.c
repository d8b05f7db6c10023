/* SPDX-License-Identifier: MIT */
/*
 * The S3 client (nexusd/s3.c) against a real signature-checking local S3
 * server (npm @20minutes/s3rver from scripts/s3/, started here on a free
 * port), plus a tiny canned HTTP server for retry and error-mapping cases.
 * Without node or s3rver installed the s3rver tests are skipped loudly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "nexusd/loop.h"
#include "nexusd/s3.h"
#include "s3rver.h"

static struct nx_loop *L;

/* ------------------------------------------------------------ helpers */

struct sink { uint8_t *buf; size_t len; int calls; bool refuse; };

static void *sink_alloc(void *arg, size_t len)
{
	struct sink *k = arg;
	k->calls++;
	if (k->refuse)
		return NULL;
	free(k->buf);
	k->buf = malloc(len ? len : 1);
	k->len = len;
	return k->buf;
}

struct done { bool called; struct nx_s3_result res; json_t *list; };

static void on_done(void *arg, struct nx_s3_result *res)
{
	struct done *d = arg;
	d->called = true;
	d->res = *res;
	d->list = res->list ? json_incref(res->list) : NULL;
	nx_loop_stop(L);
}

static void on_timeout(void *arg) { *(bool *)arg = true; nx_loop_stop(L); }

/* Run one request to completion (20 s cap). */
static struct done run(struct nx_s3 *s, struct nx_s3_req req)
{
	struct done d = { 0 };
	bool timed_out = false;
	assert_non_null(nx_s3_submit(s, &req, on_done, &d));
	struct nx_timer *t = nx_loop_timer(L, 20000, on_timeout, &timed_out);
	while (!d.called && !timed_out)
		nx_loop_run(L);
	if (!timed_out)
		nx_timer_cancel(L, t);
	assert_false(timed_out);
	return d;
}

static struct nx_s3 *client(int port, const char *secret, int retries)
{
	struct nx_s3_config c = { .timeout_ms = 15000, .connect_timeout_ms = 2000, .max_retries = retries };
	snprintf(c.endpoint, sizeof(c.endpoint), "http://127.0.0.1:%d", port);
	snprintf(c.region, sizeof(c.region), "us-east-1");
	snprintf(c.access_key, sizeof(c.access_key), "S3RVER");
	snprintf(c.secret_key, sizeof(c.secret_key), "%s", secret);
	struct nx_s3 *s = nx_s3_new(L, &c);
	assert_non_null(s);
	return s;
}

#define NEED_S3RVER() do { if (skip_reason[0]) skip(); } while (0)

static struct done put(struct nx_s3 *s, const char *bucket, const char *key, const void *b, size_t n)
{
	return run(s, (struct nx_s3_req){ .op = NX_S3_PUT, .bucket = bucket, .key = key, .body = b, .body_len = n,
	                                  .content_type = "text/plain" });
}

/* ------------------------------------------------------------ s3rver tests */

static void test_put_get_head_delete(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "S3RVER", 0);
	const char *key = "dir/a b+c~(1)&=?.txt";   /* needs encoding */
	struct done d = put(s, "test", key, "hello world", 11);
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.http_code, 200);
	assert_string_equal(d.res.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");   /* md5("hello world") */

	struct sink k = { 0 };
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = key,
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.body_len, 11);
	assert_int_equal(d.res.content_length, 11);
	assert_int_equal(k.calls, 1);
	assert_memory_equal(k.buf, "hello world", 11);
	assert_string_equal(d.res.etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");
	assert_string_equal(d.res.content_type, "text/plain");
	/* ISO 8601 like 2026-11-27T11:37:25.000Z */
	assert_int_equal(strlen(d.res.last_modified), 24);
	assert_int_equal(d.res.last_modified[10], 'T');
	assert_int_equal(d.res.last_modified[23], 'Z');

	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = key, .range = "bytes=2-6",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.http_code, 206);
	assert_int_equal(d.res.body_len, 5);
	assert_memory_equal(k.buf, "llo w", 5);
	assert_string_equal(d.res.content_range, "bytes 2-6/11");

	d = run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "test", .key = key });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.content_length, 11);

	d = run(s, (struct nx_s3_req){ .op = NX_S3_DELETE, .bucket = "test", .key = key });
	assert_int_equal(d.res.status, NX_S_OK);
	d = run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "test", .key = key });
	assert_int_equal(d.res.status, NX_S_STORAGE_ERROR);
	assert_int_equal(d.res.http_code, 404);
	assert_string_equal(d.res.code, "NoSuchKey");   /* HEAD has no body: mapped from 404 */

	/* empty object */
	d = put(s, "test", "empty", "", 0);
	assert_int_equal(d.res.status, NX_S_OK);
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "empty",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.body_len, 0);
	assert_int_equal(k.len, 0);
	free(k.buf);
	struct nx_s3_stats st;
	nx_s3_stats(s, &st);
	assert_int_equal(st.ops[NX_S3_PUT], 2);
	assert_int_equal(st.errors[NX_S3_HEAD], 1);
	assert_int_equal(st.bytes_out, 11);
	/* Connection reuse: 20 sequential requests on one kept-alive connection. */
	uint64_t before = st.connections;
	for (int i = 0; i < 20; i++)
		assert_int_equal(run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "test", .key = "empty" }).res.status,
		                 NX_S_OK);
	nx_s3_stats(s, &st);
	print_message("connections opened: %lu for %lu requests\n", (unsigned long)st.connections,
	              (unsigned long)(st.ops[NX_S3_HEAD] + st.ops[NX_S3_GET] + st.ops[NX_S3_PUT] + st.ops[NX_S3_DELETE]));
	assert_true(st.connections - before <= 1);
	nx_s3_destroy(s);
}

static void test_big_object(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "S3RVER", 0);
	size_t n = 10u << 20;
	uint8_t *big = malloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (uint8_t)((i * 2654435761u) >> 13);
	struct done d = put(s, "test", "big/10MiB.bin", big, n);
	assert_int_equal(d.res.status, NX_S_OK);
	struct sink k = { 0 };
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "big/10MiB.bin",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.body_len, n);
	assert_int_equal(k.len, n);
	assert_true(memcmp(k.buf, big, n) == 0);
	/* Range inside the big object */
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "big/10MiB.bin",
	                               .range = "bytes=5000000-5999999", .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.body_len, 1000000);
	assert_true(memcmp(k.buf, big + 5000000, 1000000) == 0);
	/* the sink refusing fails the request with NO_SPACE */
	k.refuse = true;
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "big/10MiB.bin",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_NO_SPACE);
	free(k.buf);
	free(big);
	nx_s3_destroy(s);
}

static void test_errors(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "S3RVER", 0);
	struct sink k = { 0 };
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "no/such/key",
	                                           .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_STORAGE_ERROR);
	assert_int_equal(d.res.http_code, 404);
	assert_string_equal(d.res.code, "NoSuchKey");
	assert_true(strlen(d.res.message) > 0);
	assert_int_equal(k.calls, 0);   /* an error body never goes to the sink */
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "nosuchbucket", .key = "k",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_STORAGE_ERROR);
	assert_string_equal(d.res.code, "NoSuchBucket");
	d = run(s, (struct nx_s3_req){ .op = NX_S3_LIST, .bucket = "nosuchbucket" });
	assert_string_equal(d.res.code, "NoSuchBucket");
	d = put(s, "nosuchbucket", "k", "x", 1);
	assert_string_equal(d.res.code, "NoSuchBucket");
	/* argument errors come back asynchronously, no request made */
	d = run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "bad/bucket", .key = "k" });
	assert_int_equal(d.res.status, NX_S_INVALID);
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "k", .range = "bytes=1-2\r\nX: y",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_INVALID);
	free(k.buf);
	nx_s3_destroy(s);
}

static void test_wrong_secret_rejected(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "NOT-THE-SECRET", 0);
	struct done d = put(s, "test", "signed", "x", 1);
	assert_int_not_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.http_code, 403);
	assert_string_equal(d.res.code, "SignatureDoesNotMatch");
	struct sink k = { 0 };
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "test", .key = "big/10MiB.bin",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_string_equal(d.res.code, "SignatureDoesNotMatch");
	free(k.buf);
	nx_s3_destroy(s);
}

static json_t *list(struct nx_s3 *s, const char *prefix, const char *delim, const char *token, int max)
{
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_LIST, .bucket = "test", .prefix = prefix,
	                                           .delimiter = delim, .cont_token = token, .max_keys = max });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_non_null(d.list);
	return d.list;
}

static void test_list_and_copy(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "S3RVER", 0);
	const char *keys[] = { "l/a", "l/b", "l/c d", "l/e+f", "l/g", "l/sub/x", "l/sub/y" };
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(put(s, "test", keys[i], keys[i], strlen(keys[i])).res.status, NX_S_OK);
	/* paginate 3 at a time */
	char token[1024] = "";
	size_t seen = 0;
	for (int page = 0; page < 10; page++) {
		json_t *l = list(s, "l/", NULL, token[0] ? token : NULL, 3);
		json_t *c = json_object_get(l, "Contents");
		size_t i;
		json_t *e;
		json_array_foreach(c, i, e) {
			assert_string_equal(json_string_value(json_object_get(e, "Key")), keys[seen]);
			assert_int_equal(json_integer_value(json_object_get(e, "Size")), strlen(keys[seen]));
			assert_non_null(json_object_get(e, "ETag"));
			assert_non_null(json_object_get(e, "LastModified"));
			seen++;
		}
		bool more = json_is_true(json_object_get(l, "IsTruncated"));
		if (more) {
			const char *t = json_string_value(json_object_get(l, "NextContinuationToken"));
			assert_non_null(t);
			snprintf(token, sizeof(token), "%s", t);
			assert_int_equal(json_integer_value(json_object_get(l, "KeyCount")), 3);
		}
		json_decref(l);
		if (!more)
			break;
	}
	assert_int_equal(seen, 7);
	/* delimiter: common prefixes */
	json_t *l = list(s, "l/", "/", NULL, 0);
	json_t *cp = json_object_get(l, "CommonPrefixes");
	assert_int_equal(json_array_size(cp), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(cp, 0), "Prefix")), "l/sub/");
	assert_int_equal(json_array_size(json_object_get(l, "Contents")), 5);
	json_decref(l);
	/* COPY across buckets, then read the copy back */
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_COPY, .src_bucket = "test", .src_key = "l/c d",
	                                           .bucket = "other", .key = "copied/c d" });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_true(strlen(d.res.etag) > 2);
	assert_true(strlen(d.res.last_modified) > 0);
	assert_non_null(d.list);
	assert_string_equal(json_string_value(json_object_get(d.list, "ETag")), d.res.etag);
	json_decref(d.list);
	struct sink k = { 0 };
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "other", .key = "copied/c d",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_memory_equal(k.buf, "l/c d", 5);
	/* COPY from a missing key */
	d = run(s, (struct nx_s3_req){ .op = NX_S3_COPY, .src_bucket = "test", .src_key = "nope",
	                               .bucket = "other", .key = "x" });
	assert_int_equal(d.res.status, NX_S_STORAGE_ERROR);
	assert_string_equal(d.res.code, "NoSuchKey");
	free(k.buf);
	nx_s3_destroy(s);
}

/* Many transfers at once through one multi handle; one of them cancelled. */
struct par { int done; int ok; };
static void on_par(void *arg, struct nx_s3_result *res)
{
	struct par *p = arg;
	p->done++;
	if (res->status == NX_S_OK && res->body_len == 11)
		p->ok++;
	if (p->done == 19)
		nx_loop_stop(L);
}

static void test_parallel_and_cancel(void **state)
{
	(void)state;
	NEED_S3RVER();
	struct nx_s3 *s = client(s3rver_port, "S3RVER", 0);
	assert_int_equal(put(s, "test", "par", "hello world", 11).res.status, NX_S_OK);
	struct par p = { 0 };
	struct sink k[20] = { 0 };
	struct nx_s3_xfer *x[20];
	for (int i = 0; i < 20; i++) {
		struct nx_s3_req r = { .op = NX_S3_GET, .bucket = "test", .key = "par",
		                       .sink_alloc = sink_alloc, .sink_arg = &k[i] };
		x[i] = nx_s3_submit(s, &r, on_par, &p);
		assert_non_null(x[i]);
	}
	nx_s3_cancel(s, x[7]);
	bool to = false;
	struct nx_timer *t = nx_loop_timer(L, 20000, on_timeout, &to);
	while (p.done < 19 && !to)
		nx_loop_run(L);
	assert_false(to);
	nx_timer_cancel(L, t);
	assert_int_equal(p.ok, 19);
	assert_int_equal(k[7].calls, 0);   /* the cancelled one never touched its sink */
	for (int i = 0; i < 20; i++)
		free(k[i].buf);
	assert_int_equal(put(s, "test", "after-cancel", "x", 1).res.status, NX_S_OK);
	nx_s3_destroy(s);
}

/* ------------------------------------------------------------ canned server */

/* status 0: never answers; stall: answers 200 with a 1 MiB Content-Length, sends
 * the first 64 KiB of the body and then nothing more (a transfer that is
 * certainly in progress, whatever the speed of the machine). */
struct canned { int fd, port, status, requests, hangups; const char *body; bool stop, no_clen, stall; pthread_t th; };

static void *canned_main(void *arg)
{
	struct canned *c = arg;
	for (;;) {
		int fd = accept(c->fd, NULL, NULL);
		if (fd < 0 || c->stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		char buf[8192];
		size_t n = 0;
		while (n < sizeof(buf) - 1) {
			ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
			buf[n] = 0;
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		__atomic_add_fetch(&c->requests, 1, __ATOMIC_SEQ_CST);
		if (c->stall) {
			static char part[64 * 1024];
			memset(part, 'x', sizeof(part));
			int hl = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
			                  "Connection: close\r\n\r\n", 1 << 20);
			if (write(fd, buf, (size_t)hl) < 0 || write(fd, part, sizeof(part)) < 0) { /* client gone */ }
		}
		if (c->status == 0 || c->stall) {   /* no answer, or no more of it */
			while (!c->stop && read(fd, buf, sizeof(buf)) > 0)
				;
			if (!c->stop)   /* the client closed its end */
				__atomic_add_fetch(&c->hangups, 1, __ATOMIC_SEQ_CST);
			close(fd);
			continue;
		}
		bool head = strncmp(buf, "HEAD ", 5) == 0;
		char resp[1024], clen[64] = "";
		if (!c->no_clen)
			snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", head ? 0 : strlen(c->body));
		int len = snprintf(resp, sizeof(resp),
		                   "HTTP/1.1 %d X\r\nContent-Type: application/xml\r\n%s"
		                   "Connection: close\r\n\r\n%s",
		                   c->status, clen, head ? "" : c->body);
		if (write(fd, resp, (size_t)len) < 0) { /* client gone */ }
		close(fd);
	}
}

static void canned_start(struct canned *c, int status, const char *body)
{
	c->status = status;
	c->body = body;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c->fd, 16), 0);
	getsockname(c->fd, (struct sockaddr *)&a, &l);
	c->port = ntohs(a.sin_port);
	pthread_create(&c->th, NULL, canned_main, c);
}

static void canned_stop(struct canned *c)
{
	c->stop = true;
	port_open(c->port);   /* wake accept */
	pthread_join(c->th, NULL);
	close(c->fd);
}

static void test_retries_on_5xx_not_4xx(void **state)
{
	(void)state;
	struct canned c = { 0 };
	canned_start(&c, 500, "<Error><Code>InternalError</Code><Message>boom</Message></Error>");
	struct nx_s3 *s = client(c.port, "x", 2);
	uint64_t t0 = nx_now_ns();
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_DELETE, .bucket = "b", .key = "k" });
	uint64_t ms = (nx_now_ns() - t0) / 1000000;
	assert_int_equal(d.res.status, NX_S_STORAGE_ERROR);
	assert_string_equal(d.res.code, "InternalError");
	assert_string_equal(d.res.message, "boom");
	assert_int_equal(c.requests, 3);            /* 1 + 2 retries */
	assert_true(ms >= 300);                      /* backoff 100 + 200 ms */
	struct nx_s3_stats st;
	nx_s3_stats(s, &st);
	assert_int_equal(st.retries, 2);
	/* 4xx: no retry; HEAD 403 without a body maps to AccessDenied */
	c.status = 403;
	c.requests = 0;
	d = run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "b", .key = "k" });
	assert_int_equal(c.requests, 1);
	assert_int_equal(d.res.status, NX_S_ACCESS_DENIED);
	assert_string_equal(d.res.code, "AccessDenied");
	c.status = 404;
	c.body = "<Error><Code>NoSuchBucket</Code><Message>nb</Message></Error>";
	d = run(s, (struct nx_s3_req){ .op = NX_S3_LIST, .bucket = "b" });
	assert_int_equal(c.requests, 2);
	assert_string_equal(d.res.code, "NoSuchBucket");
	nx_s3_destroy(s);
	canned_stop(&c);
}

static void test_timeout(void **state)
{
	(void)state;
	struct canned c = { 0 };
	canned_start(&c, 0, "");
	struct nx_s3_config cfg = { .timeout_ms = 300, .connect_timeout_ms = 300, .max_retries = -1 };
	snprintf(cfg.endpoint, sizeof(cfg.endpoint), "http://127.0.0.1:%d", c.port);
	snprintf(cfg.access_key, sizeof(cfg.access_key), "a");
	snprintf(cfg.secret_key, sizeof(cfg.secret_key), "b");
	struct nx_s3 *s = nx_s3_new(L, &cfg);
	uint64_t t0 = nx_now_ns();
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_HEAD, .bucket = "b", .key = "k" });
	uint64_t ms = (nx_now_ns() - t0) / 1000000;
	assert_int_equal(d.res.status, NX_S_IO_ERROR);
	assert_string_equal(d.res.code, "RequestTimeout");
	assert_true(ms >= 250 && ms < 3000);
	assert_int_equal(c.requests, 1);   /* max_retries < 0: no retry */
	nx_s3_destroy(s);   /* closes the client side: the canned server's read returns */
	canned_stop(&c);
}

/* Cancel while the body is arriving: the server has sent the headers and part
 * of the body and then stalls, so the transfer is in progress however fast the
 * machine (a timer-based cancel of a real 10 MiB GET lost that race on a fast
 * CI machine).  The callback never runs, the sink is left alone after the
 * cancel, and the client goes on working. */
static void test_cancel_mid_transfer(void **state)
{
	(void)state;
	struct canned c = { .stall = true };
	canned_start(&c, 200, "ok");
	struct nx_s3 *s = client(c.port, "x", 0);
	struct sink big = { 0 };
	struct done never = { 0 };
	struct nx_s3_xfer *x = nx_s3_submit(s, &(struct nx_s3_req){ .op = NX_S3_GET, .bucket = "b", .key = "k",
	                                                             .sink_alloc = sink_alloc, .sink_arg = &big },
	                                    on_done, &never);
	assert_non_null(x);
	uint64_t t0 = nx_now_ns();
	while (big.calls == 0 && !never.called && nx_now_ns() - t0 < 10000000000ull) {
		bool tick = false;
		nx_loop_timer(L, 10, on_timeout, &tick);
		nx_loop_run(L);
	}
	assert_false(never.called);
	assert_int_equal(big.calls, 1);          /* headers in: the body has started */
	assert_int_equal(big.len, 1 << 20);
	nx_s3_cancel(s, x);
	t0 = nx_now_ns();   /* the cancel closed the connection: the server sees its client go */
	while (__atomic_load_n(&c.hangups, __ATOMIC_SEQ_CST) == 0 && nx_now_ns() - t0 < 10000000000ull) {
		bool tick = false;
		nx_loop_timer(L, 10, on_timeout, &tick);
		nx_loop_run(L);
	}
	assert_int_equal(__atomic_load_n(&c.hangups, __ATOMIC_SEQ_CST), 1);
	assert_false(never.called);
	assert_int_equal(big.calls, 1);
	free(big.buf);
	c.stall = false;                          /* the same client, a request that completes */
	struct sink k = { 0 };
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "b", .key = "k2",
	                                           .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(k.len, 2);
	assert_memory_equal(k.buf, "ok", 2);
	free(k.buf);
	nx_s3_destroy(s);
	canned_stop(&c);
}

static void test_unreachable_gives_io_error(void **state)
{
	(void)state;
	int port = free_port();   /* nothing listens there */
	struct nx_s3 *s = client(port, "x", 1);
	struct sink k = { 0 };
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "b", .key = "k",
	                                           .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_IO_ERROR);
	struct nx_s3_stats st;
	nx_s3_stats(s, &st);
	assert_int_equal(st.retries, 1);
	assert_int_equal(k.calls, 0);
	nx_s3_destroy(s);
}

static void test_get_needs_content_length(void **state)
{
	(void)state;
	struct canned c = { 0 };
	canned_start(&c, 200, "hello world");
	struct nx_s3 *s = client(c.port, "x", 0);
	struct sink k = { 0 };
	struct done d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "b", .key = "k",
	                                           .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_OK);
	assert_int_equal(d.res.body_len, 11);
	assert_memory_equal(k.buf, "hello world", 11);
	/* Without Content-Length the body size is unknown: refused, sink untouched. */
	c.no_clen = true;
	k.calls = 0;
	d = run(s, (struct nx_s3_req){ .op = NX_S3_GET, .bucket = "b", .key = "k",
	                               .sink_alloc = sink_alloc, .sink_arg = &k });
	assert_int_equal(d.res.status, NX_S_IO_ERROR);
	assert_int_equal(k.calls, 0);
	free(k.buf);
	nx_s3_destroy(s);
	canned_stop(&c);
}

static void test_config_from_env(void **state)
{
	(void)state;
	struct nx_s3_config c = { 0 };
	setenv("AWS_ENDPOINT_URL", "http://generic:1", 1);
	setenv("AWS_ENDPOINT_URL_S3", "http://s3specific:2", 1);
	setenv("AWS_REGION", "eu-west-3", 1);
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	nx_s3_config_from_env(&c);
	assert_string_equal(c.endpoint, "http://s3specific:2");
	assert_string_equal(c.region, "eu-west-3");
	assert_string_equal(c.access_key, "AK");
	assert_string_equal(c.secret_key, "SK");
	struct nx_s3_config k = { .region = "keep" };
	unsetenv("AWS_ENDPOINT_URL_S3");
	nx_s3_config_from_env(&k);
	assert_string_equal(k.endpoint, "http://generic:1");
	assert_string_equal(k.region, "keep");
	assert_string_equal(nx_s3_op_name(NX_S3_LIST), "list");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	L = nx_loop_new();
	start_s3rver();
	if (skip_reason[0]) {
		printf("SKIP-REASON: %s\n", skip_reason);
		fprintf(stderr, "!! SKIPPING the s3rver tests: %s\n", skip_reason);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_head_delete),
		cmocka_unit_test(test_big_object),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_wrong_secret_rejected),
		cmocka_unit_test(test_list_and_copy),
		cmocka_unit_test(test_parallel_and_cancel),
		cmocka_unit_test(test_retries_on_5xx_not_4xx),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel_mid_transfer),
		cmocka_unit_test(test_unreachable_gives_io_error),
		cmocka_unit_test(test_get_needs_content_length),
		cmocka_unit_test(test_config_from_env),
	};
	int r = cmocka_run_group_tests_name("s3", tests, NULL, NULL);
	stop_s3rver();
	nx_loop_destroy(L);
	return r;
}
