/* `nexus s3 ...`: small helpers for the node's S3 endpoint, so a demo or a user
 * can put inputs in place and look at outputs without another tool.  They use the
 * endpoint and credentials recorded by `nexus up` (see `nexus status`). */
#include "nexus.h"
#include "s3xml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char s3_usage[] =
    "usage: nexus s3 mb BUCKET                   create a bucket (no error if it exists)\n"
    "       nexus s3 ls [BUCKET[/PREFIX]]        list buckets, or objects under a prefix\n"
    "       nexus s3 put BUCKET/KEY FILE|-       upload a file (- = standard input)\n"
    "       nexus s3 get BUCKET/KEY [FILE|-]     download an object (default: standard output)\n"
    "       nexus s3 head BUCKET/KEY             show an object's size and type\n"
    "       nexus s3 rm BUCKET/KEY               delete an object\n"
    "\n"
    "Talks to the S3 endpoint of the node started by `nexus up` (the local S3 server, or\n"
    "AWS_ENDPOINT_URL_S3), with the credentials shown by `nexus status`.\n";

/* Splits "bucket/key" (an s3:// prefix is allowed).  key may come back "" (ls). */
static int split(const char *arg, char **bucket, char **key, bool need_key)
{
    if (strncmp(arg, "s3://", 5) == 0)
        arg += 5;
    const char *slash = strchr(arg, '/');
    *bucket = slash ? strndup(arg, (size_t)(slash - arg)) : xstrdup(arg);
    *key = xstrdup(slash ? slash + 1 : "");
    if (!**bucket || (need_key && !**key)) {
        nx_err("s3: '%s': write it as BUCKET/KEY, e.g. demo-in/photo.png", arg);
        free(*bucket);
        free(*key);
        return -1;
    }
    return 0;
}

static const char *content_type_for(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".png", "image/png"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".gif", "image/gif"},
        {".txt", "text/plain"}, {".json", "application/json"}, {".html", "text/html"},
        {".csv", "text/csv"}, {".zip", "application/zip"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int s3_mb(const struct nx_config *c, const char *bucket)
{
    bool created;
    if (s3_make_bucket(c, bucket, &created) < 0)
        return NX_EXIT_FAIL;
    printf("%s s3://%s\n", created ? "created" : "exists:", bucket);
    return NX_EXIT_OK;
}

static int s3_list_buckets(const struct nx_config *c)
{
    struct http_resp rs;
    if (s3_request(c, "GET", NULL, NULL, NULL, NULL, NULL, 0, &rs) < 0)
        return NX_EXIT_FAIL;
    int rc = NX_EXIT_OK;
    xmlDocPtr doc = rs.status == 200 ? s3xml_parse(rs.body, rs.len) : NULL;
    if (!doc) {
        s3_report("listing buckets", &rs);
        rc = NX_EXIT_FAIL;
    } else {
        xmlNodePtr bs = s3xml_first(xmlDocGetRootElement(doc), "Buckets");
        for (xmlNodePtr b = s3xml_first(bs, "Bucket"); b; b = s3xml_next(b, "Bucket")) {
            char *name = s3xml_child_text(b, "Name"), *date = s3xml_child_text(b, "CreationDate");
            printf("%-24s  s3://%s\n", date ? date : "", name ? name : "?");
            free(name);
            free(date);
        }
        xmlFreeDoc(doc);
    }
    http_resp_free(&rs);
    return rc;
}

static int s3_ls(const struct nx_config *c, const char *arg)
{
    if (!arg)
        return s3_list_buckets(c);
    char *bucket, *prefix, *token = NULL;
    if (split(arg, &bucket, &prefix, false) < 0)
        return NX_EXIT_USAGE;
    int rc = NX_EXIT_OK;
    for (;;) {
        /* SigV4 wants the query sorted: continuation-token < list-type < prefix. */
        char *etok = token ? url_encode(token, false) : NULL, *epre = url_encode(prefix, false);
        char *query = xasprintf("%s%s%slist-type=2%s%s", etok ? "continuation-token=" : "", etok ? etok : "",
                                etok ? "&" : "", *prefix ? "&prefix=" : "", *prefix ? epre : "");
        free(etok);
        free(epre);
        struct http_resp rs;
        int r = s3_request(c, "GET", bucket, NULL, query, NULL, NULL, 0, &rs);
        free(query);
        if (r < 0) {
            rc = NX_EXIT_FAIL;
            break;
        }
        xmlDocPtr doc = rs.status == 200 ? s3xml_parse(rs.body, rs.len) : NULL;
        if (!doc) {
            char *what = xasprintf("listing s3://%s/%s", bucket, prefix);
            s3_report(what, &rs);
            free(what);
            http_resp_free(&rs);
            rc = NX_EXIT_FAIL;
            break;
        }
        xmlNodePtr root = xmlDocGetRootElement(doc);
        for (xmlNodePtr o = s3xml_first(root, "Contents"); o; o = s3xml_next(o, "Contents")) {
            char *key = s3xml_child_text(o, "Key"), *size = s3xml_child_text(o, "Size"),
                 *mod = s3xml_child_text(o, "LastModified");
            printf("%10s  %-24s  s3://%s/%s\n", size ? size : "?", mod ? mod : "", bucket, key ? key : "?");
            free(key);
            free(size);
            free(mod);
        }
        char *trunc = s3xml_child_text(root, "IsTruncated");
        free(token);
        token = trunc && strcmp(trunc, "true") == 0 ? s3xml_child_text(root, "NextContinuationToken") : NULL;
        free(trunc);
        xmlFreeDoc(doc);
        http_resp_free(&rs);
        if (!token)
            break;
    }
    free(token);
    free(bucket);
    free(prefix);
    return rc;
}

static int s3_put(const struct nx_config *c, const char *arg, const char *file)
{
    char *bucket, *key;
    if (split(arg, &bucket, &key, true) < 0)
        return NX_EXIT_USAGE;
    size_t len = 0;
    struct http_resp rs = {0};
    int rc = NX_EXIT_FAIL;
    char *data = read_file(file, &len);
    if (!data) {
        nx_err("s3 put: cannot read %s: %s", file, strerror(errno));
    } else if (s3_request(c, "PUT", bucket, key, NULL, content_type_for(key), data, len, &rs) == 0) {
        if (rs.status != 200) {
            char *what = xasprintf("uploading %s to s3://%s/%s", file, bucket, key);
            s3_report(what, &rs);
            free(what);
        } else {
            printf("uploaded %s to s3://%s/%s (%zu bytes)\n", file, bucket, key, len);
            rc = NX_EXIT_OK;
        }
    }
    http_resp_free(&rs);
    free(data);
    free(bucket);
    free(key);
    return rc;
}

static int s3_get(const struct nx_config *c, const char *arg, const char *file)
{
    char *bucket, *key;
    if (split(arg, &bucket, &key, true) < 0)
        return NX_EXIT_USAGE;
    struct http_resp rs = {0};
    int rc = NX_EXIT_FAIL;
    if (s3_request(c, "GET", bucket, key, NULL, NULL, NULL, 0, &rs) < 0) {
        /* reported */
    } else if (rs.status != 200) {
        char *what = xasprintf("downloading s3://%s/%s", bucket, key);
        s3_report(what, &rs);
        free(what);
    } else if (!file || strcmp(file, "-") == 0) {
        fwrite(rs.body, 1, rs.len, stdout);
        rc = NX_EXIT_OK;
    } else if (write_file(file, rs.body, rs.len, 0644) < 0) {
        nx_err("s3 get: cannot write %s: %s", file, strerror(errno));
    } else {
        printf("downloaded s3://%s/%s to %s (%zu bytes)\n", bucket, key, file, rs.len);
        rc = NX_EXIT_OK;
    }
    http_resp_free(&rs);
    free(bucket);
    free(key);
    return rc;
}

static int s3_head_or_rm(const struct nx_config *c, const char *arg, bool rm)
{
    char *bucket, *key;
    if (split(arg, &bucket, &key, true) < 0)
        return NX_EXIT_USAGE;
    struct http_resp rs = {0};
    int rc = NX_EXIT_FAIL;
    if (s3_request(c, rm ? "DELETE" : "HEAD", bucket, key, NULL, NULL, NULL, 0, &rs) < 0) {
        /* reported */
    } else if (rs.status != (rm ? 204 : 200) && !(rm && rs.status == 200)) {
        char *what = xasprintf("%s s3://%s/%s", rm ? "deleting" : "looking up", bucket, key);
        if (!rm && rs.status == 404)
            nx_err("%s failed: no such object (HTTP 404)", what);   /* HEAD has no error body */
        else
            s3_report(what, &rs);
        free(what);
    } else if (rm) {
        printf("deleted s3://%s/%s\n", bucket, key);
        rc = NX_EXIT_OK;
    } else {
        printf("s3://%s/%s  %lld bytes  %s\n", bucket, key, rs.content_length,
               rs.content_type[0] ? rs.content_type : "");
        rc = NX_EXIT_OK;
    }
    http_resp_free(&rs);
    free(bucket);
    free(key);
    return rc;
}

int cmd_s3(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(s3_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? NX_EXIT_USAGE : NX_EXIT_OK;
    }
    const char *sub = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(s3_usage, stdout);
            return NX_EXIT_OK;
        }
    }
    int nargs = argc - 2;
    struct { const char *name; int min, max; } subs[] = {
        {"mb", 1, 1}, {"ls", 0, 1}, {"put", 2, 2}, {"get", 1, 2}, {"head", 1, 1}, {"rm", 1, 1},
    };
    size_t i;
    for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(sub, subs[i].name) == 0)
            break;
    if (i == sizeof subs / sizeof subs[0]) {
        nx_err("s3: unknown command '%s'", sub);
        fputs(s3_usage, stderr);
        return NX_EXIT_USAGE;
    }
    if (nargs < subs[i].min || nargs > subs[i].max) {
        nx_err("s3 %s: wrong number of arguments", sub);
        fputs(s3_usage, stderr);
        return NX_EXIT_USAGE;
    }
    const struct nx_config *c = config_for_command(NULL);
    if (!c)
        return NX_EXIT_FAIL;
    const char *a1 = nargs > 0 ? argv[2] : NULL, *a2 = nargs > 1 ? argv[3] : NULL;
    switch (i) {
    case 0: return s3_mb(c, a1);
    case 1: return s3_ls(c, a1);
    case 2: return s3_put(c, a1, a2);
    case 3: return s3_get(c, a1, a2);
    case 4: return s3_head_or_rm(c, a1, false);
    default: return s3_head_or_rm(c, a1, true);
    }
}
