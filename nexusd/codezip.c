/* SPDX-License-Identifier: MIT */
#include "codezip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zip.h>

#include "util.h"

uint8_t *nxd_base64_decode(const char *s, size_t slen, size_t *len)
{
	if (slen > (size_t)INT32_MAX)
		return NULL;
	uint8_t *out = malloc(slen / 4 * 3 + 4);
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	if (!out || !ctx)
		goto fail;
	EVP_DecodeInit(ctx);
	int n = 0, m = 0;
	if (EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)s, (int)slen) < 0)
		goto fail;
	if (EVP_DecodeFinal(ctx, out + n, &m) < 0)
		goto fail;
	EVP_ENCODE_CTX_free(ctx);
	*len = (size_t)n + (size_t)m;
	return out;
fail:
	EVP_ENCODE_CTX_free(ctx);
	free(out);
	return NULL;
}

void nxd_sha256_b64(const void *data, size_t len, char *out, size_t cap)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	unsigned char b64[64];
	EVP_EncodeBlock(b64, md, sizeof md);
	snprintf(out, cap, "%s", (char *)b64);
}

/* A safe relative path: no leading '/', no "..", no backslashes, no NUL
 * tricks (libzip names are C strings), bounded length. */
static int safe_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 1024 || name[0] == '/' || strchr(name, '\\'))
		return 0;
	const char *p = name;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += len;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* Create the parent directories of rel under dirfd. */
static int make_parents(int dirfd, const char *rel)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s", rel);
	for (char *p = tmp; (p = strchr(p, '/')); p++) {
		*p = 0;
		if (*tmp && strcmp(tmp, ".") && mkdirat(dirfd, tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int nxd_zip_extract(const void *data, size_t len, const char *dir, char *err, size_t errlen)
{
	zip_error_t ze;
	zip_error_init(&ze);
	zip_t *za = NULL;
	int dirfd = -1, rc = -1;
	uint8_t *buf = NULL;
	zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
	if (!src || !(za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze))) {
		snprintf(err, errlen, "Could not unzip uploaded file. Please check your file, then try to upload again. (%s)",
		         zip_error_strerror(&ze));
		if (src)
			zip_source_free(src);
		zip_error_fini(&ze);
		return -1;
	}
	zip_error_fini(&ze);
	if (nxd_mkdir_p(dir) < 0 || (dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create code directory %s: %s", dir, strerror(errno));
		goto out;
	}
	zip_int64_t n = zip_get_num_entries(za, 0);
	if (n < 0 || (uint64_t)n > NXD_ZIP_ENTRIES_MAX) {
		snprintf(err, errlen, "zip has too many entries (limit %u)", NXD_ZIP_ENTRIES_MAX);
		goto out;
	}
	buf = malloc(65536);
	if (!buf)
		goto out;
	uint64_t total = 0;
	for (zip_int64_t i = 0; i < n; i++) {
		zip_stat_t st;
		if (zip_stat_index(za, (zip_uint64_t)i, 0, &st) < 0 || !(st.valid & ZIP_STAT_NAME)) {
			snprintf(err, errlen, "zip entry %lld is unreadable", (long long)i);
			goto out;
		}
		const char *name = st.name;
		if (!safe_name(name)) {
			snprintf(err, errlen, "zip entry '%.200s' has an unsafe path", name);
			goto out;
		}
		zip_uint8_t opsys;
		zip_uint32_t attr;
		mode_t mode = 0644;
		if (zip_file_get_external_attributes(za, (zip_uint64_t)i, 0, &opsys, &attr) == 0 &&
		    opsys == ZIP_OPSYS_UNIX) {
			mode_t m = (attr >> 16) & 0xffff;
			if (S_ISLNK(m)) {
				snprintf(err, errlen, "zip entry '%.200s' is a symbolic link (not allowed)", name);
				goto out;
			}
			if (m & 0111)
				mode = 0755;
		}
		/* Lambda's custom-runtime entry point must be executable even when the
		 * zip tool dropped the mode bits. */
		if (!strcmp(name, "bootstrap"))
			mode = 0755;
		size_t nl = strlen(name);
		if (make_parents(dirfd, name) < 0) {
			snprintf(err, errlen, "zip entry '%.200s': cannot create its directory", name);
			goto out;
		}
		if (name[nl - 1] == '/') { /* a directory entry */
			char d[1100];
			snprintf(d, sizeof d, "%.*s", (int)(nl - 1), name);
			if (mkdirat(dirfd, d, 0755) < 0 && errno != EEXIST) {
				snprintf(err, errlen, "zip entry '%.200s': %s", name, strerror(errno));
				goto out;
			}
			continue;
		}
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0) {
			snprintf(err, errlen, "zip entry '%.200s': %s", name, strerror(errno));
			goto out;
		}
		zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)i, 0);
		if (!zf) {
			close(fd);
			snprintf(err, errlen, "zip entry '%.200s': %s", name, zip_strerror(za));
			goto out;
		}
		zip_int64_t r;
		int bad = 0;
		while ((r = zip_fread(zf, buf, 65536)) > 0) {
			total += (uint64_t)r;
			if (total > NXD_UNZIPPED_MAX) {
				snprintf(err, errlen, "Unzipped size must be smaller than %u bytes", NXD_UNZIPPED_MAX);
				bad = 1;
				break;
			}
			if (write(fd, buf, (size_t)r) != r) {
				snprintf(err, errlen, "writing code: %s", strerror(errno));
				bad = 1;
				break;
			}
		}
		if (r < 0 && !bad) {
			snprintf(err, errlen, "zip entry '%.200s' is corrupt: %s", name, zip_file_strerror(zf));
			bad = 1;
		}
		zip_fclose(zf);
		close(fd);
		if (bad)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	if (dirfd >= 0)
		close(dirfd);
	zip_discard(za);
	if (rc < 0)
		nxd_rm_rf(dir);
	return rc;
}
