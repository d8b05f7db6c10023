/* SPDX-License-Identifier: MIT */
/*
 * Function code packages: base64 decoding (OpenSSL), checksum, and safe
 * extraction of a zip (libzip) into a fresh directory.
 */
#ifndef NEXUSD_CODEZIP_H
#define NEXUSD_CODEZIP_H

#include <stddef.h>
#include <stdint.h>

#define NXD_ZIP_MAX        (50u << 20)   /* zipped package, as Lambda's direct upload */
#define NXD_UNZIPPED_MAX   (250u << 20)  /* extracted size, as Lambda */
#define NXD_ZIP_ENTRIES_MAX 20000u

/* Decode base64 (newlines allowed).  Returns malloc'd bytes and *len, or NULL. */
uint8_t *nxd_base64_decode(const char *s, size_t slen, size_t *len);
/* base64(SHA-256(data)) into out (>= 45 bytes). */
void nxd_sha256_b64(const void *data, size_t len, char *out, size_t cap);

/* Extract zip into dir (which must not exist; created).  Rejects absolute
 * paths, "..", symlinks, too many entries and an extracted size over
 * NXD_UNZIPPED_MAX.  Returns 0 or -1 with a message in err. */
int nxd_zip_extract(const void *zip, size_t len, const char *dir, char *err, size_t errlen);

#endif
