/* SPDX-License-Identifier: MIT */
/* A stand-in for nexusd/s3.c (same symbols) used by the channel unit tests
 * and the drain fuzzer: records requests, and completes them either inside
 * nx_s3_submit (sync mode) or when the test says so. */
#ifndef TESTS_FAKE_S3_H
#define TESTS_FAKE_S3_H

#include <stdbool.h>
#include <stddef.h>
#include "nexusd/s3.h"

#define FAKE_S3_MAX 512

struct fake_call {
	enum nx_s3_op op;
	char bucket[256], key[4100], src_bucket[256], range[128];
	void *body_copy; size_t body_len;   /* what the request pointed at, copied at submit */
	const void *body_ptr;               /* the pointer itself */
	struct nx_s3_req req;               /* callbacks only */
	nx_s3_cb cb;
	void *arg;
	bool cancelled, done;
};

extern bool fake_s3_sync;             /* complete inside submit */
extern int  fake_s3_status;           /* status for sync completions */
extern const void *fake_s3_get_body;  /* GET body for completions */
extern size_t fake_s3_get_len;
extern bool fake_s3_fail_submit;      /* nx_s3_submit returns NULL */
extern int  fake_s3_ncalls;
extern struct fake_call fake_s3_calls[FAKE_S3_MAX];

/* Complete call i now (deferred mode) with the given status. */
void fake_s3_complete(int i, int status);
void fake_s3_reset(void);

#endif
