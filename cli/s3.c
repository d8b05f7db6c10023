/* S3 requests for the setup helpers (`nexus s3 ...`, bucket creation on deploy).
 * Signed with libcurl's CURLOPT_AWS_SIGV4; libcurl 7.88 does not add
 * x-amz-content-sha256 itself and signs the query string as given, so callers pass
 * it sorted and percent-encoded (see DESIGN §5). */
#include "nexus.h"
#include "s3xml.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
}

int s3_request(const struct nx_config *c, const char *method, const char *bucket,
               const char *key, const char *query, const char *content_type,
               const void *body, size_t len, struct http_resp *rs)
{
    char *ekey = url_encode(key ? key : "", true);
    char *url = xasprintf("%s/%s%s%s%s%s", c->s3_endpoint, bucket ? bucket : "",
                          key ? "/" : "", ekey, query ? "?" : "", query ? query : "");
    char *sigv4 = xasprintf("aws:amz:%s:s3", c->s3_region);
    char *userpwd = xasprintf("%s:%s", c->access_key, config_secret(c));
    char sha[65], err[256];
    sha256_hex(body, len, sha);
    struct http_req rq = {
        .method = method, .url = url, .body = body, .body_len = len,
        .sigv4 = sigv4, .userpwd = userpwd, .content_sha256 = sha, .content_type = content_type,
        .timeout_s = 300,
    };
    int rc = http_do(&rq, rs, err, sizeof err);
    if (rc < 0) {
        nx_err("cannot reach the S3 endpoint %s (%s): %s", c->s3_endpoint, err,
               c->s3_local ? "start the node with `nexus up`"
                           : "check AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL");
        http_resp_free(rs);
    }
    free(ekey);
    free(url);
    free(sigv4);
    free(userpwd);
    return rc;
}

void s3_report(const char *what, const struct http_resp *rs)
{
    char *code = NULL, *msg = NULL;
    xmlDocPtr doc = s3xml_parse(rs->body, rs->len);
    if (doc) {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        code = s3xml_child_text(root, "Code");
        msg = s3xml_child_text(root, "Message");
        xmlFreeDoc(doc);
    }
    if (!code && rs->status == 404)
        code = xstrdup("NotFound");
    nx_err("%s failed: HTTP %ld %s%s%s", what, rs->status, code ? code : "",
           msg ? ": " : "", msg ? msg : "");
    free(code);
    free(msg);
}

static bool bucket_usable(const struct nx_config *c, const char *bucket)
{
    struct http_resp rs;
    if (s3_request(c, "HEAD", bucket, NULL, NULL, NULL, NULL, 0, &rs) < 0)
        return false;
    bool ok = rs.status == 200;
    http_resp_free(&rs);
    return ok;
}

int s3_make_bucket(const struct nx_config *c, const char *bucket, bool *created)
{
    struct http_resp rs;
    *created = false;
    if (s3_request(c, "PUT", bucket, NULL, NULL, NULL, NULL, 0, &rs) < 0)
        return -1;
    int rc = 0;
    if (rs.status == 200) {
        *created = true;
    } else if (rs.status == 409 && bucket_usable(c, bucket)) {
        /* Already there and ours to use.  s3rver answers BucketAlreadyExists even to
         * its owner, so the HEAD decides rather than the error code. */
    } else {
        char *what = xasprintf("creating bucket %s", bucket);
        s3_report(what, &rs);
        free(what);
        rc = -1;
    }
    http_resp_free(&rs);
    return rc;
}
