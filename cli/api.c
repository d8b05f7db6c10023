/* Calls to nexusd's HTTP API and readable reports of its errors. */
#include "nexus.h"

#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

static long api_timeout = 120;

void api_set_timeout(long seconds)
{
    api_timeout = seconds;
}

int api_call(const struct nx_config *c, const char *method, const char *path,
             const char *body, size_t body_len, struct http_resp *rs)
{
    char *url = xasprintf("%s%s", c->ingress, path);
    char err[256];
    long timeout = api_timeout;
    const char *env = getenv("NEXUS_HTTP_TIMEOUT");
    if (env && parse_long(env, 1, 86400) > 0)
        timeout = parse_long(env, 1, 86400);
    struct http_req rq = {
        .method = method, .url = url, .content_type = "application/json",
        .body = body, .body_len = body_len, .timeout_s = timeout,
    };
    int rc = http_do(&rq, rs, err, sizeof err);
    if (rc < 0) {
        if (rs->curl_code == CURLE_COULDNT_CONNECT)
            nx_err("nexusd is not running at %s (%s): run `nexus up`%s", c->ingress, err,
                   getenv("NEXUS_URL") ? " or fix NEXUS_URL" : "");
        else if (rs->curl_code == CURLE_OPERATION_TIMEDOUT)
            nx_err("nexusd at %s did not answer %s %s within %ld s: see `nexus status` and nexusd's log "
                   "(NEXUS_HOME/logs/nexusd.log); NEXUS_HTTP_TIMEOUT=SECONDS waits longer",
                   c->ingress, method, path, timeout);
        else
            nx_err("%s %s%s failed: %s: see `nexus status`", method, c->ingress, path, err);
        http_resp_free(rs);
    }
    free(url);
    return rc;
}

void api_report(const char *what, const struct http_resp *rs)
{
    /* Lambda errors: {"Type": "User", "message": "..."} with x-amzn-ErrorType;
     * some services use "Message".  Fall back to the raw body. */
    const char *msg = NULL;
    json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
    if (json_is_object(j)) {
        msg = json_string_value(json_object_get(j, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "Message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "errorMessage"));
    }
    char type[128];
    snprintf(type, sizeof type, "%s", rs->err_type);
    char *colon = strchr(type, ':');   /* "ResourceNotFoundException:http://..." */
    if (colon)
        *colon = '\0';
    nx_err("%s failed: HTTP %ld%s%s: %.*s", what, rs->status, type[0] ? " " : "", type,
           msg ? (int)strlen(msg) : (int)(rs->len > 500 ? 500 : rs->len), msg ? msg : rs->body);
    json_decref(j);
}
