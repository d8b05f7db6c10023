/* One HTTP request through libcurl's easy interface: enough for a CLI that makes
 * a handful of calls per command.  Collects the body (or streams it to a FILE)
 * and the few response headers the Lambda API and S3 use to signal errors. */
#include "nexus.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

struct sink {
    struct http_resp *rs;
    size_t cap;
    FILE *file;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    if (s->file)
        return fwrite(data, 1, n, s->file);
    struct http_resp *rs = s->rs;
    if (rs->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < rs->len + n + 1)
            cap *= 2;
        char *nb = realloc(rs->body, cap);
        if (!nb)
            return 0;   /* makes curl fail with a write error */
        rs->body = nb;
        s->cap = cap;
    }
    memcpy(rs->body + rs->len, data, n);
    rs->len += n;
    rs->body[rs->len] = '\0';
    return n;
}

/* Copies header NAME's value into dst if this line is that header. */
static void grab(const char *line, size_t n, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= dstlen)
        len = dstlen - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct http_resp *rs = arg;
    size_t n = size * nmemb;
    char cl[32] = "";
    grab(line, n, "X-Amz-Function-Error", rs->fn_error, sizeof rs->fn_error);
    grab(line, n, "x-amzn-ErrorType", rs->err_type, sizeof rs->err_type);
    grab(line, n, "Content-Type", rs->content_type, sizeof rs->content_type);
    grab(line, n, "Content-Length", cl, sizeof cl);
    if (cl[0])
        rs->content_length = strtoll(cl, NULL, 10);
    return n;
}

int http_do(const struct http_req *rq, struct http_resp *rs, char *err, size_t errlen)
{
    memset(rs, 0, sizeof *rs);
    rs->content_length = -1;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    struct sink sink = {.rs = rs, .file = rq->sink};
    struct curl_slist *hdrs = NULL;
    char *line = NULL;
    char cerr[CURL_ERROR_SIZE] = "";

    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    if (rq->timeout_s > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT, rq->timeout_s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    if (getenv("NEXUS_DEBUG_HTTP"))   /* shows every request and response header on stderr */
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rs);
    if (strcmp(rq->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (rq->body || strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    /* Without a Content-Type curl sends form-urlencoded for POSTFIELDS. */
    if (rq->content_type || rq->body || strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
        line = xasprintf("Content-Type: %s", rq->content_type ? rq->content_type : "application/octet-stream");
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }
    /* No 100-continue round trip.  Not with SigV4: libcurl 7.88 would sign the empty
     * "Expect:" header it never sends, and the signature would not match. */
    if (!rq->sigv4)
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (rq->content_sha256) {
        line = xasprintf("x-amz-content-sha256: %s", rq->content_sha256);
        hdrs = curl_slist_append(hdrs, line);
        free(line);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (rq->sigv4) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, rq->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, rq->userpwd);
    }

    CURLcode cc = curl_easy_perform(h);
    int rc = 0;
    if (cc != CURLE_OK) {
        rs->curl_code = (int)cc;
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        rc = -1;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rs->status);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (!rs->body) {
        rs->body = xstrdup("");
        rs->len = 0;
    }
    return rc;
}

void http_resp_free(struct http_resp *rs)
{
    free(rs->body);
    rs->body = NULL;
    rs->len = 0;
}

/* RFC 3986 / SigV4 encoding: only unreserved characters stay as they are. */
char *url_encode(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}
