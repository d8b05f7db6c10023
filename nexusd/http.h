/* SPDX-License-Identifier: MIT */
/*
 * HTTP ingress on libmicrohttpd, run by the nexusd loop itself (MHD's epoll
 * fd is watched by the loop; handlers run on the loop thread).  A handler
 * that must wait — an invocation, or a slow operation such as unzipping code,
 * which runs on a worker thread — suspends its connection and stores its
 * response in the request; the connection is resumed when it is ready.  So a
 * warm invocation costs no thread hand-off inside nexusd at all.
 */
#ifndef NEXUSD_HTTP_H
#define NEXUSD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>
#include <jansson.h>

struct nx_loop;

/* One request being received (MHD's per-request context). */
struct nxd_req {
	const struct route *route;
	char name[256];               /* {name} from the URL (a name or an ARN) */
	char *body;
	size_t len, cap, limit;
	bool too_large;
	char request_id[37];
	struct MHD_Connection *conn;
	bool deferred;                /* replies are stored in pending, not queued */
	bool suspended;
	struct MHD_Response *pending;
	unsigned pending_status;
	/* Offloaded work that produced no reply continues with then(r) on the
	 * loop thread (e.g. a large payload validated, now invoke). */
	void (*then)(struct nxd_req *r);
	void *ctx;
	bool flag;
	long arg;
};

extern struct nx_loop *nxd_loop;
extern volatile int nxd_stopping;   /* set once shutdown begins */

int  nxd_http_start(char *err, size_t errlen); /* listens on nxd_cfg; fills nxd_cfg.ingress_url */
void nxd_http_quiesce(void);                   /* stop accepting connections */
void nxd_http_stop(void);
int  nxd_http_offloads(void);                  /* worker threads still running */

/* Loop thread: a deferred request has its response (r->pending): resume it. */
void nxd_req_resume(struct nxd_req *r);
/* Run handler on a worker thread (for slow work: unzip, disk); the response
 * is sent when it returns.  The handler must only build its reply. */
enum MHD_Result nxd_offload(struct MHD_Connection *c, struct nxd_req *r,
                            enum MHD_Result (*handler)(struct MHD_Connection *, struct nxd_req *));

/* Run fn(arg) on the loop thread and wait for it.  -1 when shutting down. */
int nxd_call_on_loop(void (*fn)(void *), void *arg);

/* Responses.  Every one carries x-amzn-RequestId.  body is taken over. */
enum MHD_Result nxd_reply(struct MHD_Connection *c, struct nxd_req *r, unsigned status, const char *ctype,
                          char *body, size_t len);
enum MHD_Result nxd_reply_json(struct MHD_Connection *c, struct nxd_req *r, unsigned status, json_t *obj);
enum MHD_Result nxd_reply_raw(struct MHD_Connection *c, struct nxd_req *r, unsigned status, struct MHD_Response *resp);
/* Lambda's error shape: x-amzn-ErrorType header + {"Type","message"}. */
enum MHD_Result nxd_reply_error(struct MHD_Connection *c, struct nxd_req *r, unsigned status, const char *type,
                                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Route handlers (api_*.c). */
typedef enum MHD_Result (*nxd_handler)(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_create(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_list(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_get(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_get_config(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_delete(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_update_code(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_update_config(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_list_tags(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_tag(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_untag(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_invoke(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_health(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_metrics(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_status(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_logs(struct MHD_Connection *c, struct nxd_req *r);

#endif
