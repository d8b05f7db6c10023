/* SPDX-License-Identifier: MIT */
/*
 * HTTP ingress on libmicrohttpd (one thread per connection: a handler may
 * block until the loop thread has finished its invocation), the router and
 * response helpers shared by the api_*.c handlers.
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
};

extern struct nx_loop *nxd_loop;
extern volatile int nxd_stopping;   /* set once shutdown begins */

int  nxd_http_start(char *err, size_t errlen); /* listens on nxd_cfg; fills nxd_cfg.ingress_url */
void nxd_http_quiesce(void);                   /* stop accepting connections */
void nxd_http_stop(void);

/* Run fn(arg) on the loop thread and wait for it.  -1 when shutting down. */
int nxd_call_on_loop(void (*fn)(void *), void *arg);

/* Responses.  Every one carries x-amzn-RequestId.  body is taken over. */
enum MHD_Result nxd_reply(struct MHD_Connection *c, struct nxd_req *r, unsigned status, const char *ctype,
                          char *body, size_t len);
enum MHD_Result nxd_reply_json(struct MHD_Connection *c, struct nxd_req *r, unsigned status, json_t *obj);
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
enum MHD_Result nxd_api_invoke(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_health(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_metrics(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_status(struct MHD_Connection *c, struct nxd_req *r);
enum MHD_Result nxd_api_logs(struct MHD_Connection *c, struct nxd_req *r);

#endif
