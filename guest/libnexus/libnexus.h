/* SPDX-License-Identifier: MIT */
/*
 * libnexus — the guest side of the Nexus channel (include/nexus/channel.h),
 * for C functions and for the Python runtime (which binds it with ctypes, so
 * the channel is implemented once, here).
 *
 * Concurrency model: one struct nx_guest per process, usable from any number
 * of threads.  A mutex guards the to-host ring (producer side), the guest
 * arena and the table of outstanding requests.  Completions are matched to
 * requests by tag: whichever waiting thread finds nobody else polling becomes
 * the poller — it drains the to-guest ring (without the mutex held), files
 * each completion with its waiter and wakes them all; the others sleep on a
 * condition variable.  The poller spins briefly (NEXUS_SPIN_US, default 0 µs: transport_common.c)
 * and then arms the ring's sleep flag and blocks on the doorbell, so an idle
 * guest costs no CPU.  Invocations (NX_OP_INVOKE) that arrive while a thread
 * polls for a completion are queued for nx_next_invocation.
 *
 * Buffers: pointers returned here point into the shared region.  Host-arena
 * buffers handed over by a reply or an invocation belong to the caller until
 * it gives them back with nx_release / nx_reply_release.  Guest-arena buffers
 * come from nx_alloc and go back with nx_free.
 *
 * Errors: functions return 0 or a negative errno for local failures
 * (-ENOSPC guest arena full, -E2BIG argument too long, -EPROTO channel broken,
 * -ESTALE the region was replaced under the request (snapshot restore),
 * -ETIMEDOUT, -EINVAL).  A request that reached the host returns 0 and the
 * host's verdict in reply->status (enum nx_status); on error reply->meta is a
 * JSON object {"Code", "Message", "HTTPStatusCode"}.
 */
#ifndef NEXUS_LIBNEXUS_H
#define NEXUS_LIBNEXUS_H

#include <stddef.h>
#include <stdint.h>
#include <nexus/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NX_API __attribute__((visibility("default")))

struct nx_guest;

/* A completion handed to the caller.  meta/body point into the host arena
 * (NULL when absent); *_off are their region offsets for nx_release.
 * meta is JSON and not NUL-terminated. */
struct nx_reply {
	uint32_t status;          /* enum nx_status */
	uint32_t opcode;
	const char *meta;
	uint64_t meta_len;
	const uint8_t *body;
	uint64_t body_len;
	uint64_t meta_off;
	uint64_t body_off;
};

/* One invocation (NX_OP_INVOKE): event and context JSON in the host arena. */
struct nx_invocation {
	uint64_t tag;             /* invocation id: pass to nx_invoke_done */
	const char *event;
	uint64_t event_len;
	const char *context;
	uint64_t context_len;
	uint64_t event_off;
	uint64_t context_off;
};

/* ------------------------------------------------------------- attaching */

/* Attach using the environment (NEXUS_REGION_FD, NEXUS_KICK_HOST_FD,
 * NEXUS_KICK_GUEST_FD).  The fds are used as they are (not duplicated). */
NX_API int nx_attach_env(struct nx_guest **out);

/* Attach to explicit fds (duplicated: the caller keeps its own). */
NX_API int nx_attach_fds(int region_fd, int kick_host_fd, int kick_guest_fd, struct nx_guest **out);

/* Unmap and close.  No request may be in flight. */
NX_API void nx_detach(struct nx_guest *g);

NX_API void *nx_region_base(const struct nx_guest *g);
NX_API uint64_t nx_region_size(const struct nx_guest *g);
NX_API uint64_t nx_generation(const struct nx_guest *g);
/* How often the channel re-attached to a fresh region (snapshot restore: the
 * header's generation changed).  Re-attaching is automatic: requests in flight
 * fail with -ESTALE (do not free or release their buffers: they belonged to
 * the old region), queued invocations are dropped and READY is sent again. */
NX_API uint64_t nx_reattach_count(const struct nx_guest *g);

/* ------------------------------------------------------------- requests */

/* Generic request: copies the TLV args (<= NX_ARGS_MAX, may be empty) into the
 * guest arena, posts opcode with buf0 = args and buf1 = [body_off, body_len)
 * (a guest-arena buffer from nx_alloc, or 0/0), waits for the completion and
 * frees the args buffer.  The body buffer stays the caller's. */
NX_API int nx_call(struct nx_guest *g, uint16_t opcode, const void *args, size_t args_len,
                   uint64_t body_off, uint64_t body_len, struct nx_reply *out);

/* Null round trip (NX_OP_NOP).  Returns 0 or -errno. */
NX_API int nx_nop(struct nx_guest *g);

/* NX_OP_READY with RUNTIME=runtime; out->meta is the function config JSON. */
NX_API int nx_ready(struct nx_guest *g, const char *runtime, struct nx_reply *out);

/* Wait for the next invocation; timeout_ms < 0 waits forever.
 * Returns 0, -ETIMEDOUT, -EPROTO. */
NX_API int nx_next_invocation(struct nx_guest *g, struct nx_invocation *inv, int timeout_ms);

/* Report an invocation's result (status NX_S_OK or NX_S_HANDLER_ERROR,
 * payload JSON, copied into the guest arena).  Returns once the result is
 * posted, without waiting for the host's ack: that completion (sent without a
 * doorbell) is filed by the next wait on the channel (nx_next_invocation, a
 * request), which frees the result buffer; a refused result (e.g. NO_SPACE)
 * is then logged on stderr and counted (nx_invoke_done_failures).
 * NEXUS_INVOKE_DONE_WAIT=1 in the environment restores the old behaviour
 * (wait for the ack; it then arrives with the host's next doorbell).
 * Returns 0, -E2BIG, -ENOSPC, -ESTALE (the region changed: the result is
 * lost with it), -EPROTO. */
NX_API int nx_invoke_done(struct nx_guest *g, uint64_t tag, uint32_t status,
                          const void *payload, size_t len);
/* INVOKE_DONEs whose ack said the host did not take the result, and the last
 * such status (may be NULL). */
NX_API uint64_t nx_invoke_done_failures(struct nx_guest *g, uint32_t *last_status);
/* INVOKE_DONEs posted whose ack has not been filed yet (tests, diagnostics). */
NX_API unsigned nx_invoke_done_unacked(struct nx_guest *g);

/* Give a host-arena buffer back (NX_OP_RELEASE; no completion).  off 0 is a no-op. */
NX_API int nx_release(struct nx_guest *g, uint64_t off);
/* Release a reply's meta and body buffers and clear them. */
NX_API void nx_reply_release(struct nx_guest *g, struct nx_reply *r);
/* Release an invocation's event and context buffers. */
NX_API void nx_invocation_release(struct nx_guest *g, struct nx_invocation *inv);

/* -------------------------------------------------------- guest arena */

/* Allocate len bytes in the guest arena; *ptr (may be NULL) gets its address. */
NX_API int nx_alloc(struct nx_guest *g, uint64_t len, uint64_t *off, void **ptr);
NX_API int nx_free(struct nx_guest *g, uint64_t off);

/* -------------------------------------------------------------- S3 */

/* GetObject.  range ("bytes=A-B") and if_match may be NULL.  On success
 * out->body/body_len is the object (in the region, no copy), out->meta its
 * metadata JSON; release both with nx_reply_release. */
NX_API int nx_s3_get(struct nx_guest *g, const char *bucket, const char *key, const char *range,
                     const char *if_match, struct nx_reply *out);

/* PutObject: copies len bytes into the guest arena once (content_type may be NULL). */
NX_API int nx_s3_put(struct nx_guest *g, const char *bucket, const char *key, const void *data,
                     size_t len, const char *content_type, struct nx_reply *out);

/* PutObject of a body already in the guest arena (from nx_alloc): no copy.
 * The buffer stays the caller's (free it after this returns). */
NX_API int nx_s3_put_buf(struct nx_guest *g, const char *bucket, const char *key, uint64_t body_off,
                         uint64_t body_len, const char *content_type, struct nx_reply *out);

NX_API int nx_s3_head(struct nx_guest *g, const char *bucket, const char *key, struct nx_reply *out);
NX_API int nx_s3_delete(struct nx_guest *g, const char *bucket, const char *key, struct nx_reply *out);

/* ListObjectsV2; every string may be NULL, max_keys 0 = the default. */
struct nx_list_args {
	const char *prefix, *delimiter, *cont_token, *start_after;
	int max_keys;
};
NX_API int nx_s3_list(struct nx_guest *g, const char *bucket, const struct nx_list_args *la,
                      struct nx_reply *out);

NX_API int nx_s3_copy(struct nx_guest *g, const char *src_bucket, const char *src_key,
                      const char *bucket, const char *key, struct nx_reply *out);

/* ------------------------------------------------------ C functions */

/*
 * A C function is an executable /var/task/bootstrap (Lambda runtime
 * "provided") that calls nx_serve.  The handler gets the invocation (event
 * and context JSON, valid during the call) and sets *result to a malloc'd
 * JSON value (freed by nx_serve) and returns 0; or returns non-zero for an
 * error, with *result a malloc'd NUL-terminated message (or NULL), reported
 * as {"errorType": "HandlerError", ...}.
 */
typedef int (*nx_handler_fn)(struct nx_guest *g, const struct nx_invocation *inv, char **result,
                             size_t *result_len, void *arg);

/* Attach from the environment, post READY (runtime name), then serve
 * invocations forever.  Returns only on a channel failure (-errno). */
NX_API int nx_serve(const char *runtime, nx_handler_fn fn, void *arg);

/* ---------------------------------------------------------------- misc */

/* "OK", "STORAGE_ERROR", ... */
NX_API const char *nx_status_name(uint32_t status);

/* Copy the value of a top-level string or number field of a flat JSON object
 * (e.g. "ETag" or "ContentLength" of a reply's meta) into dst as a string,
 * with the common escapes decoded.  Returns its length, -ENOENT, -E2BIG. */
NX_API int nx_meta_field(const char *json, size_t len, const char *name, char *dst, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
