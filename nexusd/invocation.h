/* SPDX-License-Identifier: MIT */
/*
 * One invocation on its way through nexusd.  The HTTP handler fills in the
 * request half and hands it to the instance manager (nxd_im_invoke, on the
 * loop thread); the instance manager fills in the result half and calls
 * nxd_inv_complete, which calls on_done (the HTTP side answers and resumes
 * its connection).  Asynchronous (InvocationType Event) invocations have no
 * on_done and are freed there.
 */
#ifndef NEXUSD_INVOCATION_H
#define NEXUSD_INVOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nxd_function;
struct nxd_instance;

enum nxd_inv_result {
	NXD_INV_OK,            /* handler returned: body = its JSON */
	NXD_INV_HANDLER_ERROR, /* handler raised: body = Lambda error JSON, Unhandled */
	NXD_INV_TIMEOUT,       /* Sandbox.Timedout, Unhandled */
	NXD_INV_CRASH,         /* Runtime.ExitError (or protocol violation), Unhandled */
	NXD_INV_THROTTLED,     /* 429 TooManyRequestsException */
	NXD_INV_GONE,          /* 404: the function was deleted meanwhile */
	NXD_INV_FAILED,        /* 5xx ServiceException: nexusd could not run it */
};

struct nxd_invocation {
	/* request, set by the HTTP side */
	struct nxd_function *fn;      /* reference, released by the owner */
	char request_id[37];
	const void *event;
	size_t event_len;
	bool async;                   /* Event: loop frees it (event is owned) */
	/* Completion calls on_done(inv) on the loop thread; on_done owns inv
	 * from then on.  NULL only for async invocations. */
	void (*on_done)(struct nxd_invocation *inv);
	void *ctx;
	uint64_t t_recv_ns;
	bool want_log_tail;           /* X-Amz-Log-Type: Tail */
	long long log_start, log_end; /* this invocation's bytes in the function log */

	/* loop-thread bookkeeping */
	uint64_t id;
	uint64_t t_start_ns;
	struct nxd_instance *inst;
	struct nxd_invocation *next;  /* pool queue */

	/* result, set by nxd_inv_complete */
	enum nxd_inv_result result;
	char *body;                   /* malloc'd: handler JSON, Lambda error JSON for
	                                 Unhandled results, else a plain message */
	const char *error_type;       /* static string, for error results */
	size_t body_len;
};

void nxd_inv_init(struct nxd_invocation *inv);
void nxd_inv_fini(struct nxd_invocation *inv);

/* Loop thread: finish with result and body (taken over; may be NULL). */
void nxd_inv_complete(struct nxd_invocation *inv, enum nxd_inv_result r, char *body, size_t len);
/* Loop thread: finish with a Lambda error object {"errorMessage","errorType"}. */
void nxd_inv_fail(struct nxd_invocation *inv, enum nxd_inv_result r, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
