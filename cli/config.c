/* NEXUS_HOME/config.json: what `nexus up` started, so every later command (and
 * scripts, through `nexus status --json`) finds the ingress and the S3 endpoint.
 *
 *   {"ingress": "http://127.0.0.1:9070",
 *    "s3": {"endpoint": ..., "region": ..., "access_key": ..., "secret_key": ..., "local": true},
 *    "pids": {"nexusd": 123, "s3": 124}}
 *
 * The secret is written only for the local S3 server (whose well-known key is
 * S3RVER/S3RVER); for an external endpoint it stays in the user's environment. */
#include "nexus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (v && *v)
        return v;
    v = b ? getenv(b) : NULL;
    return v && *v ? v : NULL;
}

static long env_port(const char *name, long def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    long p = parse_long(v, 1, 65535);
    if (p < 0) {
        nx_warn("%s=%s is not a port number; using %ld", name, v, def);
        return def;
    }
    return p;
}

static void defaults(struct nx_config *c)
{
    c->ingress = xasprintf("http://127.0.0.1:%ld", env_port("NEXUS_PORT", NX_DEFAULT_PORT));
    const char *ext = env2("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
    if (ext) {
        c->s3_local = false;
        c->s3_endpoint = xstrdup(ext);
        c->s3_region = xstrdup(env2("AWS_REGION", "AWS_DEFAULT_REGION") ?: NX_LOCAL_S3_REGION);
        c->access_key = xstrdup(getenv("AWS_ACCESS_KEY_ID") ?: "");
        c->secret_key = NULL;
    } else {
        c->s3_local = true;
        c->s3_endpoint = xasprintf("http://127.0.0.1:%ld", env_port("NEXUS_S3_PORT", NX_DEFAULT_S3_PORT));
        c->s3_region = xstrdup(NX_LOCAL_S3_REGION);
        c->access_key = xstrdup(NX_LOCAL_S3_KEY);
        c->secret_key = xstrdup(NX_LOCAL_S3_KEY);
    }
}

static void take_str(json_t *obj, const char *key, char **dst)
{
    const char *v = json_string_value(json_object_get(obj, key));
    if (v) {
        free(*dst);
        *dst = xstrdup(v);
    }
}

void config_load(const struct nx_paths *p, struct nx_config *c)
{
    memset(c, 0, sizeof *c);
    defaults(c);
    char *path = home_path(p, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        /* Absent is normal before the first `nexus up`; garbage is worth a word. */
        if (access(path, F_OK) == 0)
            nx_warn("ignoring %s: %s (line %d); `nexus up` rewrites it", path, jerr.text, jerr.line);
    } else {
        take_str(root, "ingress", &c->ingress);
        json_t *s3 = json_object_get(root, "s3");
        if (json_is_object(s3)) {
            take_str(s3, "endpoint", &c->s3_endpoint);
            take_str(s3, "region", &c->s3_region);
            take_str(s3, "access_key", &c->access_key);
            json_t *sk = json_object_get(s3, "secret_key");
            free(c->secret_key);
            c->secret_key = json_is_string(sk) ? xstrdup(json_string_value(sk)) : NULL;
            c->s3_local = json_is_true(json_object_get(s3, "local"));
        }
        json_t *pids = json_object_get(root, "pids");
        c->nexusd_pid = (pid_t)json_integer_value(json_object_get(pids, "nexusd"));
        c->s3_pid = (pid_t)json_integer_value(json_object_get(pids, "s3"));
        json_decref(root);
    }
    free(path);
    const char *url = getenv("NEXUS_URL");
    if (url && *url) {
        free(c->ingress);
        c->ingress = xstrdup(url);
    }
    /* Strip a trailing slash so paths can be appended. */
    size_t n = strlen(c->ingress);
    while (n > 0 && c->ingress[n - 1] == '/')
        c->ingress[--n] = '\0';
    n = strlen(c->s3_endpoint);
    while (n > 0 && c->s3_endpoint[n - 1] == '/')
        c->s3_endpoint[--n] = '\0';
}

const char *config_secret(const struct nx_config *c)
{
    if (c->secret_key)
        return c->secret_key;
    const char *v = getenv("AWS_SECRET_ACCESS_KEY");
    return v ? v : "";
}

json_t *config_s3_json(const struct nx_config *c)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:b}",
                     "endpoint", c->s3_endpoint, "region", c->s3_region,
                     "access_key", c->access_key,
                     "secret_key", c->secret_key ? json_string(c->secret_key) : json_null(),
                     "local", c->s3_local);
}

int config_save(const struct nx_paths *p, const struct nx_config *c)
{
    json_t *root = json_pack("{s:s, s:o, s:{s:I, s:I}}",
                             "ingress", c->ingress, "s3", config_s3_json(c),
                             "pids", "nexusd", (json_int_t)c->nexusd_pid, "s3", (json_int_t)c->s3_pid);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    char *path = home_path(p, "config.json");
    int rc = write_file(path, text, strlen(text), 0600);
    if (rc < 0)
        nx_err("cannot write %s: %s: check that NEXUS_HOME (%s) is writable", path, strerror(errno), p->home);
    free(path);
    free(text);
    return rc;
}

const struct nx_config *config_for_command(const struct nx_paths **paths)
{
    static struct nx_paths p;   /* static: reachable until exit, not a leak */
    static struct nx_config c;
    if (paths_init(&p) < 0)
        return NULL;
    config_load(&p, &c);
    if (paths)
        *paths = &p;
    return &c;
}
