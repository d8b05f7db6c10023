/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the S3 XML response parsers of nexusd/s3_xml.c
 * (ListObjectsV2, CopyObject, Error) on arbitrary bytes.  Storage is not
 * the guest, but a broken or hostile endpoint must not crash nexusd either. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>

#include "nexusd/s3_internal.h"

static void silent(void *ctx, const char *msg, ...) { (void)ctx; (void)msg; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		xmlInitParser();
		xmlSetGenericErrorFunc(NULL, silent);
		init = 1;
	}
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	char code[64], msg[256], etag[128], lm[64];
	code[0] = msg[0] = etag[0] = lm[0] = 0;
	if (nx_s3_xml_error(buf, size, code, sizeof(code), msg, sizeof(msg)) == 0 &&
	    (strlen(code) >= sizeof(code) || strlen(msg) >= sizeof(msg)))
		abort();
	json_t *l = nx_s3_xml_list(buf, size);
	if (l) {
		/* Always the documented shape. */
		if (!json_is_array(json_object_get(l, "Contents")) || !json_is_array(json_object_get(l, "CommonPrefixes")) ||
		    !json_is_boolean(json_object_get(l, "IsTruncated")) || !json_is_integer(json_object_get(l, "KeyCount")))
			abort();
		char *s = json_dumps(l, JSON_COMPACT);
		free(s);
		json_decref(l);
	}
	nx_s3_xml_copy(buf, size, etag, sizeof(etag), lm, sizeof(lm));
	free(buf);
	return 0;
}
