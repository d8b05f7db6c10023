/* `nexus deploy DIR` and `nexus delete NAME`.
 *
 * deploy zips DIR in memory and calls CreateFunction.  If a function of that name
 * exists it is deleted first and created again: that way every setting (code,
 * handler, memory, timeout, environment and the nexus:* tags) takes effect, using
 * only the calls nexusd serves (no UpdateFunctionConfiguration/TagResource). */
#include "nexus.h"
#include "zipdir.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

static const char deploy_usage[] =
    "usage: nexus deploy DIR [--name N] [--handler module.function] [--memory MB] [--timeout S]\n"
    "                        [--mode nexus|baseline] [--buckets b1,b2] [--sandbox process|vm]\n"
    "                        [--max-instances N] [--env K=V]... [--runtime R]\n"
    "\n"
    "Zips DIR and deploys it (CreateFunction on nexusd): a Python function, or a custom\n"
    "runtime (e.g. C with libnexus) when DIR has an executable `bootstrap`.  A function\n"
    "of the same name is replaced, with all its settings.\n"
    "\n"
    "  --name N          function name (default: DIR's base name)\n"
    "  --handler M.F     handler: function F in module M (default app.handler)\n"
    "  --memory MB       memory limit, 128-10240 (default 128)\n"
    "  --timeout S       timeout in seconds, 1-900 (default 3)\n"
    "  --mode M          nexus (I/O through the node, no network; default) or baseline\n"
    "  --buckets B1,B2   the S3 buckets the function may touch (default: none); they are\n"
    "                    created in the node's S3 if they do not exist\n"
    "  --sandbox S       process or vm (default: nexusd's choice, vm where this machine\n"
    "                    runs real microVM guests, else process)\n"
    "  --max-instances N at most N concurrent instances\n"
    "  --env K=V         an environment variable for the function (repeatable)\n"
    "  --runtime R       python3.11 or provided.al2 (default: provided.al2 if DIR/bootstrap\n"
    "                    is executable, else python3.11)\n";

static const char delete_usage[] =
    "usage: nexus delete NAME\n"
    "\n"
    "Deletes a deployed function (DeleteFunction on nexusd).\n";

/* S3 bucket naming rules, the subset that matters locally. */
static bool valid_bucket(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' && *s != '.')
            return false;
    return true;
}

static char *base64(const unsigned char *data, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

/* Warns when the handler's module is not in DIR: the first invoke would fail with
 * Runtime.ImportModuleError, and it is kinder to say so now. */
static void check_handler(const char *dir, const char *handler)
{
    const char *dot = strrchr(handler, '.');
    char *mod = xstrdup(handler);
    mod[dot - handler] = '\0';
    for (char *c = mod; *c; c++)
        if (*c == '.')
            *c = '/';
    char *py = xasprintf("%s/%s.py", dir, mod), *pkg = xasprintf("%s/%s/__init__.py", dir, mod);
    if (access(py, F_OK) != 0 && access(pkg, F_OK) != 0)
        nx_warn("handler %s: neither %s nor %s exists; invocations will fail with "
                "Runtime.ImportModuleError", handler, py, pkg);
    free(mod);
    free(py);
    free(pkg);
}

struct deploy_opts {
    const char *dir, *name, *handler, *mode, *buckets, *sandbox, *runtime;
    long memory, timeout, max_instances;
    json_t *env;
};

static int parse_deploy(int argc, char **argv, struct deploy_opts *d)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"handler", required_argument, NULL, 'H'},
        {"memory", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'M'},
        {"buckets", required_argument, NULL, 'b'},
        {"sandbox", required_argument, NULL, 's'},
        {"max-instances", required_argument, NULL, 'x'},
        {"env", required_argument, NULL, 'e'},
        {"runtime", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    *d = (struct deploy_opts){.handler = "app.handler", .mode = "nexus", .sandbox = NULL,
                              .memory = 128, .timeout = 3, .max_instances = 0, .env = json_object()};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'n': d->name = optarg; break;
        case 'H': d->handler = optarg; break;
        case 'M': d->mode = optarg; break;
        case 'b': d->buckets = optarg; break;
        case 's': d->sandbox = optarg; break;
        case 'r': d->runtime = optarg; break;
        case 'm':
            if ((d->memory = parse_long(optarg, 128, 10240)) < 0) {
                nx_err("deploy: --memory %s: give megabytes between 128 and 10240", optarg);
                return NX_EXIT_USAGE;
            }
            break;
        case 't':
            if ((d->timeout = parse_long(optarg, 1, 900)) < 0) {
                nx_err("deploy: --timeout %s: give whole seconds between 1 and 900", optarg);
                return NX_EXIT_USAGE;
            }
            break;
        case 'x':
            if ((d->max_instances = parse_long(optarg, 1, 100000)) < 0) {
                nx_err("deploy: --max-instances %s: give a positive number", optarg);
                return NX_EXIT_USAGE;
            }
            break;
        case 'e': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                nx_err("deploy: --env %s: write it as NAME=VALUE", optarg);
                return NX_EXIT_USAGE;
            }
            char *k = xstrdup(optarg);
            k[eq - optarg] = '\0';
            json_object_set_new(d->env, k, json_string(eq + 1));
            free(k);
            break;
        }
        case 'h':
            fputs(deploy_usage, stdout);
            return -1;
        default:
            fputs(deploy_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        nx_err("deploy: which directory? e.g. `nexus deploy functions/hello`");
        fputs(deploy_usage, stderr);
        return NX_EXIT_USAGE;
    }
    if (optind + 1 < argc) {
        nx_err("deploy: one directory at a time (got '%s' and '%s')", argv[optind], argv[optind + 1]);
        return NX_EXIT_USAGE;
    }
    d->dir = argv[optind];
    if (!d->runtime) {
        /* A directory with an executable `bootstrap` is a custom-runtime (e.g. C)
         * function, as on Lambda; everything else is Python. */
        char *boot = xasprintf("%s/bootstrap", d->dir);
        d->runtime = access(boot, X_OK) == 0 ? "provided.al2" : "python3.11";
        free(boot);
    }
    if (strcmp(d->mode, "nexus") != 0 && strcmp(d->mode, "baseline") != 0) {
        nx_err("deploy: --mode %s: use nexus or baseline", d->mode);
        return NX_EXIT_USAGE;
    }
    if (d->sandbox && strcmp(d->sandbox, "process") != 0 && strcmp(d->sandbox, "vm") != 0) {
        nx_err("deploy: --sandbox %s: use process or vm", d->sandbox);
        return NX_EXIT_USAGE;
    }
    const char *dot = strrchr(d->handler, '.');
    if (!dot || dot == d->handler || !dot[1]) {
        nx_err("deploy: --handler %s: write it as module.function, e.g. app.handler", d->handler);
        return NX_EXIT_USAGE;
    }
    if (d->buckets) {
        char *list = xstrdup(d->buckets), *save = NULL;
        for (char *b = strtok_r(list, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
            if (!valid_bucket(b)) {
                nx_err("deploy: --buckets: '%s' is not a valid bucket name (3-63 characters: a-z, 0-9, '-', '.')", b);
                free(list);
                return NX_EXIT_USAGE;
            }
        }
        free(list);
    }
    return 0;
}

static int create_buckets(const struct nx_config *c, const char *buckets)
{
    char *list = xstrdup(buckets), *save = NULL;
    int rc = 0;
    for (char *b = strtok_r(list, ",", &save); b && rc == 0; b = strtok_r(NULL, ",", &save)) {
        bool created;
        rc = s3_make_bucket(c, b, &created);
        if (rc == 0 && created)
            printf("  created bucket s3://%s\n", b);
    }
    free(list);
    return rc;
}

/* The CreateFunction request body (JSON text, malloc'd). */
static char *create_request(const struct deploy_opts *d, const char *name, const unsigned char *zip,
                            size_t ziplen)
{
    char *b64 = base64(zip, ziplen);
    json_t *tags = json_pack("{s:s}", "nexus:mode", d->mode);
    if (d->sandbox) /* else nexusd's default: vm where real microVM guests run, else process */
        json_object_set_new(tags, "nexus:sandbox", json_string(d->sandbox));
    if (d->buckets && *d->buckets)
        json_object_set_new(tags, "nexus:buckets", json_string(d->buckets));
    if (d->max_instances > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", d->max_instances);
        json_object_set_new(tags, "nexus:max-instances", json_string(buf));
    }
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:I, s:I, s:{s:O}, s:o}",
                            "FunctionName", name, "Runtime", d->runtime, "Handler", d->handler,
                            "Role", "arn:aws:iam::000000000000:role/nexus-local",
                            "Code", "ZipFile", b64, "MemorySize", (json_int_t)d->memory,
                            "Timeout", (json_int_t)d->timeout, "Environment", "Variables", d->env, "Tags", tags);
    free(b64);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return body;
}

/* GetFunction, bucket creation, DeleteFunction if it exists, CreateFunction. */
static int deploy_to(const struct nx_config *c, const struct deploy_opts *d, const char *name, const char *body)
{
    char fpath[128];
    snprintf(fpath, sizeof fpath, "/2015-03-31/functions/%s", name);   /* name is <= 64 safe chars */
    struct http_resp rs;
    /* Is it there already?  Also tells us early whether nexusd is up. */
    if (api_call(c, "GET", fpath, NULL, 0, &rs) < 0)
        return NX_EXIT_FAIL;
    bool exists = rs.status == 200;
    if (rs.status != 200 && rs.status != 404) {
        api_report("GetFunction", &rs);
        http_resp_free(&rs);
        return NX_EXIT_FAIL;
    }
    http_resp_free(&rs);
    if (d->buckets && *d->buckets && create_buckets(c, d->buckets) < 0) {
        nx_err("deploy: the function needs its buckets; fix the S3 problem above and deploy again");
        return NX_EXIT_FAIL;
    }
    if (exists) {
        if (api_call(c, "DELETE", fpath, NULL, 0, &rs) < 0)
            return NX_EXIT_FAIL;
        bool ok = rs.status == 204 || rs.status == 200 || rs.status == 404;
        if (!ok)
            api_report("replacing the existing function (DeleteFunction)", &rs);
        http_resp_free(&rs);
        if (!ok)
            return NX_EXIT_FAIL;
        printf("  replaced the existing %s\n", name);
    }
    if (api_call(c, "POST", "/2015-03-31/functions", body, strlen(body), &rs) < 0)
        return NX_EXIT_FAIL;
    bool ok = rs.status == 201 || rs.status == 200;
    if (!ok)
        api_report("CreateFunction", &rs);
    http_resp_free(&rs);
    return ok ? NX_EXIT_OK : NX_EXIT_FAIL;
}

int cmd_deploy(int argc, char **argv)
{
    static struct deploy_opts d;   /* static: reachable until exit, not a leak */
    int rc = parse_deploy(argc, argv, &d);
    if (rc != 0)
        return rc < 0 ? NX_EXIT_OK : rc;
    if (!is_dir(d.dir)) {
        nx_err("deploy: %s is not a directory: give the directory holding the function's code", d.dir);
        return NX_EXIT_USAGE;
    }
    char abs[PATH_MAX], base[PATH_MAX];
    if (!realpath(d.dir, abs)) {
        nx_err("deploy: %s: %s", d.dir, strerror(errno));
        return NX_EXIT_USAGE;
    }
    snprintf(base, sizeof base, "%s", abs);
    const char *name = d.name ? d.name : basename(base);
    if (!valid_function_name(name)) {
        nx_err("deploy: '%s' is not a valid function name (1-64 characters: letters, digits, '-', '_')%s", name,
               d.name ? "" : ": choose one with --name");
        return NX_EXIT_USAGE;
    }
    if (!strncmp(d.runtime, "python", 6))
        check_handler(d.dir, d.handler);
    const struct nx_config *c = config_for_command(NULL);
    if (!c)
        return NX_EXIT_FAIL;

    unsigned char *zip;
    size_t ziplen, nfiles;
    if (zip_directory(abs, &zip, &ziplen, &nfiles) < 0)
        return NX_EXIT_FAIL;
    char *body = create_request(&d, name, zip, ziplen);
    free(zip);
    printf("deploying %s from %s (%zu files, %zu bytes zipped)\n", name, d.dir, nfiles, ziplen);
    rc = deploy_to(c, &d, name, body);
    free(body);
    if (rc == NX_EXIT_OK) {
        printf("deployed %s: handler %s, %ld MB, %ld s, mode %s, sandbox %s, buckets %s\n", name, d.handler,
               d.memory, d.timeout, d.mode, d.sandbox ? d.sandbox : "nexusd default", d.buckets && *d.buckets ? d.buckets : "(none)");
        printf("  invoke it: nexus invoke %s --payload '{...}'\n", name);
    }
    return rc;
}

int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (o == 'h') {
            fputs(delete_usage, stdout);
            return NX_EXIT_OK;
        }
        fputs(delete_usage, stderr);
        return NX_EXIT_USAGE;
    }
    if (optind + 1 != argc) {
        nx_err("delete: give exactly one function name");
        fputs(delete_usage, stderr);
        return NX_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!valid_function_name(name)) {
        nx_err("delete: '%s' is not a valid function name", name);
        return NX_EXIT_USAGE;
    }
    const struct nx_config *c = config_for_command(NULL);
    if (!c)
        return NX_EXIT_FAIL;
    char path[128];
    snprintf(path, sizeof path, "/2015-03-31/functions/%s", name);   /* name is <= 64 safe chars */
    struct http_resp rs;
    if (api_call(c, "DELETE", path, NULL, 0, &rs) < 0)
        return NX_EXIT_FAIL;
    bool ok = rs.status == 204 || rs.status == 200;
    if (ok)
        printf("deleted %s\n", name);
    else
        api_report("DeleteFunction", &rs);
    http_resp_free(&rs);
    return ok ? NX_EXIT_OK : NX_EXIT_FAIL;
}
