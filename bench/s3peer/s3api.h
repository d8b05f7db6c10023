/* SPDX-License-Identifier: MIT */
/* nexus-s3peer's S3 REST API on libmicrohttpd (s3api.c). */
#ifndef S3PEER_S3API_H
#define S3PEER_S3API_H

#include <stddef.h>
#include <microhttpd.h>

struct s3api_config {
	const char *access_key, *secret_key;
	size_t max_object;       /* bytes; larger uploads get EntityTooLarge */
	int verbose;             /* log every request to stderr */
};

/* Start serving on addr:port (port 0 = any); *bound gets the port. */
struct MHD_Daemon *s3api_start(const struct s3api_config *cfg, const char *addr, int port, unsigned threads,
                               int *bound);

#endif
