/* SPDX-License-Identifier: MIT */
/* Starts and stops a local signature-checking S3 server (npm
 * @20minutes/s3rver from scripts/s3/) for the C tests, on a free port, with
 * the buckets "test" and "other" and credentials S3RVER/S3RVER. */
#ifndef TESTS_S3RVER_H
#define TESTS_S3RVER_H

#include <stdbool.h>
#include <sys/types.h>

extern pid_t s3rver_pid;
extern int s3rver_port;
extern char skip_reason[256];   /* set when s3rver cannot run here: skip, loudly */

void start_s3rver(void);        /* exits(1) when installed but not answering */
void stop_s3rver(void);
int free_port(void);
bool port_open(int port);

#endif
