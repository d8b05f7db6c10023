/* SPDX-License-Identifier: MIT */
/*
 * Private to libnexus (not installed, not exported): the guest-arena buffer
 * a request carries its arguments or body in, shared by guest.c and s3.c.
 */
#ifndef LIBNEXUS_REQUEST_BUF_H
#define LIBNEXUS_REQUEST_BUF_H

#include <stddef.h>
#include <stdint.h>

struct nx_guest;

/* Copies len bytes into a new guest-arena buffer at *off; *off stays 0 when
 * len is 0 (nothing to send).  Returns 0 or nx_alloc's error. */
int request_buf_copy(struct nx_guest *g, const void *data, size_t len, uint64_t *off);

/* Frees the buffer at off (0 = none) once its request returned r. */
void request_buf_done(struct nx_guest *g, uint64_t off, int r);

#endif
