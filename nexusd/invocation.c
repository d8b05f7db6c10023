/* SPDX-License-Identifier: MIT */
#include "invocation.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "registry.h"
#include "aio.h"

void nxd_inv_init(struct nxd_invocation *inv)
{
	memset(inv, 0, sizeof *inv);
}

void nxd_inv_fini(struct nxd_invocation *inv)
{
	free(inv->body);
	inv->body = NULL;
}

void nxd_inv_complete(struct nxd_invocation *inv, enum nxd_inv_result r, char *body, size_t len)
{
	nx_aio_inv_end(inv);   /* drop its unclaimed prefetches */
	inv->result = r;
	free(inv->body);
	inv->body = body;
	inv->body_len = len;
	if (inv->on_done) {
		inv->on_done(inv);
		return;
	}
	/* An Event invocation: nobody waits, its outcome is in the log. */
	nxd_fn_unref(inv->fn);
	free((void *)inv->event);
	nxd_inv_fini(inv);
	free(inv);
}

void nxd_inv_fail(struct nxd_invocation *inv, enum nxd_inv_result r, const char *type, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	inv->error_type = type;
	char *body;
	if (r == NXD_INV_HANDLER_ERROR || r == NXD_INV_TIMEOUT || r == NXD_INV_CRASH) {
		json_t *o = json_pack("{s:s,s:s}", "errorMessage", msg, "errorType", type);
		body = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
	} else {
		body = strdup(msg);
	}
	nxd_inv_complete(inv, r, body, body ? strlen(body) : 0);
}
