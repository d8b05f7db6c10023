/* nexus CLI — declarations shared by the command files.
 *
 * The CLI talks only to nexusd's HTTP API (Lambda REST API + /nexus/v1) and, for
 * setup helpers (`nexus s3 ...`, bucket creation on deploy), to the S3 endpoint
 * the node uses, with the credentials the user owns.  Per-user state lives in
 * NEXUS_HOME (default ~/.nexus): config.json, pid files, logs, nexusd state, S3 data.
 */
#ifndef NEXUS_CLI_H
#define NEXUS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <jansson.h>

/* Exit codes: 0 success, 1 the operation failed, 2 the command line was wrong. */
enum { NX_EXIT_OK = 0, NX_EXIT_FAIL = 1, NX_EXIT_USAGE = 2 };

#define NX_DEFAULT_PORT    9070
#define NX_DEFAULT_S3_PORT 9071
#define NX_LOCAL_S3_KEY    "S3RVER"
#define NX_LOCAL_S3_REGION "us-east-1"

/* How the user ran us (argv[0]), for hints they can paste: "build/bin/nexus down". */
extern const char *nx_argv0;

/* ---- util.c: messages, strings, files ---- */
void nx_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nx_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xstrdup(const char *s);
void *xmalloc(size_t n);
/* Reads a whole file ("-" = stdin).  Returns NULL and sets errno on failure. */
char *read_file(const char *path, size_t *len);
int write_file(const char *path, const void *buf, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
bool is_dir(const char *path);
bool is_executable(const char *path);
/* A function name the CLI sends: 1-64 characters, letters, digits, '-', '_'. */
bool valid_function_name(const char *s);
/* Parses a positive decimal integer in [min, max]; returns -1 if it is not one. */
long parse_long(const char *s, long min, long max);
/* Prints the last `lines` lines of a log file, indented, to stderr. */
void print_log_tail(const char *path, int lines);
double now_s(void);

/* ---- paths.c: where the build lives, where the user's state lives ---- */
struct nx_paths {
    char *root;      /* the checkout: NEXUS_ROOT, else two levels above the nexus binary */
    char *build;     /* the build tree holding bin/, runtime/, rootfs */
    char *nexusd;    /* the nexusd binary (NEXUS_NEXUSD overrides) */
    char *runtime;   /* build/runtime (NEXUS_RUNTIME_DIR overrides) */
    char *rootfs;    /* build/rootfs  (NEXUS_ROOTFS overrides) */
    char *s3_launcher;  /* scripts/s3/s3rver.js */
    char *s3_package;   /* scripts/s3/node_modules/@20minutes/s3rver */
    char *home;      /* NEXUS_HOME, default ~/.nexus */
};
int paths_init(struct nx_paths *p);
char *home_path(const struct nx_paths *p, const char *name);

/* ---- config.c: NEXUS_HOME/config.json ---- */
struct nx_config {
    char *ingress;        /* base URL of nexusd, e.g. http://127.0.0.1:9070 */
    char *s3_endpoint;
    char *s3_region;
    char *access_key;
    char *secret_key;     /* NULL for an external endpoint: taken from the environment */
    bool s3_local;        /* true when `nexus up` runs the local s3rver */
    pid_t nexusd_pid, s3_pid;
};
/* Loads config.json if present, else defaults from the environment.  NEXUS_URL
 * overrides the ingress (to point the CLI at a nexusd started some other way). */
void config_load(const struct nx_paths *p, struct nx_config *c);
int config_save(const struct nx_paths *p, const struct nx_config *c);
/* For a command that talks to the node: the paths and config.json, loaded into static storage
 * (reachable until exit, not a leak).  NULL when the paths cannot be set up (paths_init said
 * why).  `paths`, unless NULL, receives the paths too. */
const struct nx_config *config_for_command(const struct nx_paths **paths);
json_t *config_s3_json(const struct nx_config *c);
const char *config_secret(const struct nx_config *c);

/* ---- http.c: one libcurl request ---- */
struct http_req {
    const char *method;
    const char *url;
    const char *content_type;
    const void *body;
    size_t body_len;
    const char *sigv4;          /* CURLOPT_AWS_SIGV4 provider, e.g. "aws:amz:us-east-1:s3" */
    const char *userpwd;        /* access:secret for SigV4 */
    const char *content_sha256; /* x-amz-content-sha256 (libcurl 7.88 does not add it) */
    FILE *sink;                 /* if set, the response body is written here */
    long timeout_s;             /* 0 = no overall limit */
};
struct http_resp {
    long status;
    char *body;
    size_t len;
    char fn_error[64];          /* X-Amz-Function-Error */
    char err_type[128];         /* x-amzn-ErrorType */
    char content_type[128];
    long long content_length;   /* Content-Length, -1 if absent */
    int curl_code;              /* CURLcode of a transport failure, 0 if a response arrived */
};
/* Returns 0 when an HTTP response arrived (any status), -1 with `err` filled when not. */
int http_do(const struct http_req *rq, struct http_resp *rs, char *err, size_t errlen);
void http_resp_free(struct http_resp *rs);
char *url_encode(const char *s, bool keep_slash);

/* ---- api.c: nexusd's API ---- */
/* Calls nexusd; on a transport failure prints "nexusd is not running ..." and returns -1. */
int api_call(const struct nx_config *c, const char *method, const char *path,
             const char *body, size_t body_len, struct http_resp *rs);
/* Bounds every later api_call (seconds; default 120, NEXUS_HTTP_TIMEOUT overrides). */
void api_set_timeout(long seconds);
/* Prints "nexus: WHAT failed: HTTP 404 ResourceNotFoundException: message". */
void api_report(const char *what, const struct http_resp *rs);

/* ---- s3.c: S3 requests for the setup helpers ---- */
int s3_request(const struct nx_config *c, const char *method, const char *bucket,
               const char *key, const char *query, const char *content_type,
               const void *body, size_t len, struct http_resp *rs);
/* Prints "nexus: WHAT failed: Code: Message" from an S3 error response. */
void s3_report(const char *what, const struct http_resp *rs);
/* Creates a bucket unless it exists; 0 on success (created or already there). */
int s3_make_bucket(const struct nx_config *c, const char *bucket, bool *created);

/* ---- the commands ---- */
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_invoke(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_s3(int argc, char **argv);
int cmd_bench(int argc, char **argv);   /* bench.c: execs bench/harness/main.py */

/* Argument helpers shared by commands: true when argv holds -h/--help. */
bool wants_help(int argc, char **argv);

#endif
