/* `nexus up`, `nexus down`, `nexus status`: the node's lifecycle.
 *
 * `up` starts the local S3 server (unless AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL
 * names one) and nexusd as daemons, each logging to NEXUS_HOME/logs, waits until
 * both answer, then records pids and endpoints in NEXUS_HOME/config.json. */
#include "nexus.h"
#include "proc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char up_usage[] =
    "usage: nexus up [--port N] [--s3-port N] [-- NEXUSD-OPTIONS...]\n"
    "\n"
    "Starts the node: the local S3 server (npm @20minutes/s3rver, credentials S3RVER/S3RVER,\n"
    "region us-east-1) and nexusd, and returns when both answer.  With AWS_ENDPOINT_URL_S3 or\n"
    "AWS_ENDPOINT_URL set, no local S3 server is started: nexusd uses that endpoint with\n"
    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION from your environment.\n"
    "\n"
    "  --port N       nexusd's port on 127.0.0.1 (default $NEXUS_PORT or 9070)\n"
    "  --s3-port N    the local S3 server's port (default $NEXUS_S3_PORT or 9071)\n"
    "  -- OPTIONS     passed to nexusd as they are (e.g. -- --keep-alive 60 --log-level debug)\n"
    "\n"
    "State, pid files and logs live in $NEXUS_HOME (default ~/.nexus).  The build is found\n"
    "next to this binary; NEXUS_ROOT=DIR points at another checkout.  $NEXUS_UP_TIMEOUT\n"
    "(seconds, default 60) bounds the wait for each daemon.\n";

static const char down_usage[] =
    "usage: nexus down [--grace SECONDS]\n"
    "\n"
    "Stops nexusd and the local S3 server started by `nexus up`: SIGTERM, then SIGKILL\n"
    "after the grace period (default 10 s).\n";

static const char status_usage[] =
    "usage: nexus status [--json]\n"
    "\n"
    "Shows the endpoints, the S3 credentials, the deployed functions and the live instances.\n"
    "--json prints one JSON object: {\"ingress\", \"s3\": {\"endpoint\", \"region\", \"access_key\",\n"
    "\"secret_key\", \"local\"}, \"functions\", \"instances\", \"pids\", \"home\"}.\n";

/* ---- readiness probes ---- */

static bool probe_http(const char *url, long want_status)
{
    struct http_req rq = {.method = "GET", .url = url, .timeout_s = 2};
    struct http_resp rs;
    char err[256];
    bool ok = http_do(&rq, &rs, err, sizeof err) == 0 && (want_status == 0 || rs.status == want_status);
    http_resp_free(&rs);
    return ok;
}

static void describe_exit(int st, char *buf, size_t len)
{
    if (WIFEXITED(st))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, len, "status 0x%x", st);
}

/* Waits for `url` to answer, printing a dot every half second.  Returns -1 if the
 * daemon died or did not answer in time, after showing the tail of its log. */
static int wait_ready(const char *what, pid_t pid, const char *url, long want_status,
                      double timeout, const char *log)
{
    double t0 = now_s(), dot = t0 + 0.5;
    for (;;) {
        if (probe_http(url, want_status)) {
            printf(" ready (%.1f s)\n", now_s() - t0);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char how[64];
            describe_exit(st, how, sizeof how);
            printf(" failed\n");
            nx_err("%s exited while starting (%s); its log says:", what, how);
            print_log_tail(log, 25);
            return -1;
        }
        if (now_s() - t0 > timeout) {
            printf(" timed out\n");
            nx_err("%s did not answer at %s within %.0f s; its log says:", what, url, timeout);
            print_log_tail(log, 25);
            return -1;
        }
        if (now_s() >= dot) {
            putchar('.');
            fflush(stdout);
            dot += 0.5;
        }
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
}

/* ---- nexus up ---- */

struct pidfiles {
    char *nexusd, *s3;
};

static void pidfiles_init(const struct nx_paths *p, struct pidfiles *pf)
{
    pf->nexusd = home_path(p, "nexusd.pid");
    pf->s3 = home_path(p, "s3.pid");
}

int cmd_up(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"s3-port", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    static struct nx_paths p;   /* static: reachable until exit, not a leak */
    static struct nx_config c;
    long port = -1, s3port = -1;
    int o;
    while ((o = getopt_long(argc, argv, "+hp:", opts, NULL)) != -1) {
        switch (o) {
        case 'p':
        case 's':
            if (parse_long(optarg, 1, 65535) < 0) {
                nx_err("--%s %s: not a port number (1-65535)", o == 'p' ? "port" : "s3-port", optarg);
                return NX_EXIT_USAGE;
            }
            *(o == 'p' ? &port : &s3port) = parse_long(optarg, 1, 65535);
            break;
        case 'h':
            fputs(up_usage, stdout);
            return NX_EXIT_OK;
        default:
            fputs(up_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    /* getopt_long stops at "--" and consumes it; anything before it is a stray word. */
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0) {
        nx_err("up: unexpected argument '%s' (nexusd options go after --)", argv[optind]);
        fputs(up_usage, stderr);
        return NX_EXIT_USAGE;
    }
    /* Output piped into `head` must not kill us halfway, leaving daemons unrecorded. */
    signal(SIGPIPE, SIG_IGN);
    char **extra = argv + optind;
    int nextra = argc - optind;

    if (paths_init(&p) < 0)
        return NX_EXIT_FAIL;
    /* One-shot command: its strings live in statics until exit (no leak reports, no
     * frees on every early return). */
    static char *logs, *state, *s3dir, *health, *s3log, *nlog, **nargv;
    logs = home_path(&p, "logs"), state = home_path(&p, "state"), s3dir = home_path(&p, "s3");
    if (mkdir_p(logs, 0755) < 0 || mkdir_p(state, 0700) < 0) {
        nx_err("cannot create %s: %s: set NEXUS_HOME to a writable directory", p.home, strerror(errno));
        return NX_EXIT_FAIL;
    }

    static struct pidfiles pf;
    pidfiles_init(&p, &pf);
    pid_t old_n = pidfile_read(pf.nexusd), old_s = pidfile_read(pf.s3);
    bool n_alive = proc_is(old_n, "nexusd"), s_alive = proc_is(old_s, "s3rver");
    if (n_alive) {
        if (s_alive)
            nx_err("Nexus is already running (nexusd pid %d, local S3 pid %d): see `nexus status`; "
                   "`nexus down` stops it", (int)old_n, (int)old_s);
        else
            nx_err("nexusd is already running (pid %d): see `nexus status`; `nexus down` stops it",
                   (int)old_n);
        return NX_EXIT_FAIL;
    }
    /* nexusd gone (crashed, killed) but its local S3 server still up: start nexusd
     * again against that same server, whose endpoint the old config.json names. */
    static struct nx_config old;
    bool reuse_s3 = false;
    if (s_alive) {
        config_load(&p, &old);
        if (!old.s3_local || !probe_http(old.s3_endpoint, 0)) {
            nx_err("a local S3 server from an earlier `nexus up` is still running (pid %d) but does not "
                   "answer at %s: run `nexus down`, then `nexus up`", (int)old_s, old.s3_endpoint);
            return NX_EXIT_FAIL;
        }
        reuse_s3 = true;
    }
    if (old_n) {
        printf("removed a stale pid file %s (pid %d is gone)\n", pf.nexusd, (int)old_n);
        unlink(pf.nexusd);
    }
    if (old_s && !s_alive) {
        printf("removed a stale pid file %s (pid %d is gone)\n", pf.s3, (int)old_s);
        unlink(pf.s3);
    }

    /* Fresh configuration: from the environment, not from an old config.json. */
    char *cfgpath = home_path(&p, "config.json");
    unlink(cfgpath);
    free(cfgpath);
    if (port > 0 || s3port > 0) {
        char buf[32];
        if (port > 0) {
            snprintf(buf, sizeof buf, "%ld", port);
            setenv("NEXUS_PORT", buf, 1);
        }
        if (s3port > 0) {
            snprintf(buf, sizeof buf, "%ld", s3port);
            setenv("NEXUS_S3_PORT", buf, 1);
        }
    }
    config_load(&p, &c);
    if (getenv("NEXUS_URL"))
        nx_warn("NEXUS_URL is set (%s): `nexus up` ignores it and starts nexusd on NEXUS_PORT", c.ingress);
    long nport = parse_long(getenv("NEXUS_PORT") ?: "", 1, 65535);
    if (nport < 0)
        nport = NX_DEFAULT_PORT;
    free(c.ingress);
    c.ingress = xasprintf("http://127.0.0.1:%ld", nport);
    if (reuse_s3) {
        free(c.s3_endpoint);
        free(c.s3_region);
        free(c.access_key);
        free(c.secret_key);
        c = (struct nx_config){.ingress = c.ingress, .s3_endpoint = old.s3_endpoint, .s3_region = old.s3_region,
                               .access_key = old.access_key, .secret_key = old.secret_key, .s3_local = true};
    }

    /* Everything we need must exist before anything starts. */
    if (!is_executable(p.nexusd)) {
        nx_err("nexusd is not built (%s is missing): run `make` in %s", p.nexusd, p.root);
        return NX_EXIT_FAIL;
    }
    if (!is_dir(p.runtime))
        nx_warn("the guest runtime %s is missing: run `make`; functions cannot start without it", p.runtime);
    if (!is_dir(p.rootfs))
        nx_warn("the guest root filesystem %s is missing: run `make rootfs`; functions cannot start "
                "without it", p.rootfs);
    if (c.s3_local && !reuse_s3 && !is_dir(p.s3_package)) {
        nx_err("the local S3 server is not installed (%s is missing): run `make deps` "
               "(it runs `npm ci` in scripts/s3)", p.s3_package);
        return NX_EXIT_FAIL;
    }
    health = xasprintf("%s/health", c.ingress);
    if (probe_http(health, 0)) {
        nx_err("something already answers on %s (not started by this NEXUS_HOME=%s): stop it, or use "
               "another port with `nexus up --port N`", c.ingress, p.home);
        return NX_EXIT_FAIL;
    }
    double timeout = 60;
    if (getenv("NEXUS_UP_TIMEOUT") && parse_long(getenv("NEXUS_UP_TIMEOUT"), 1, 3600) > 0)
        timeout = (double)parse_long(getenv("NEXUS_UP_TIMEOUT"), 1, 3600);

    printf("Starting Nexus (state in %s)\n", p.home);
    pid_t s3pid = 0;
    s3log = xasprintf("%s/s3.log", logs);
    if (reuse_s3) {
        s3pid = old_s;
        printf("  local S3 server   %s  already running (pid %d): reusing it\n", c.s3_endpoint, (int)s3pid);
    } else if (c.s3_local) {
        if (mkdir_p(s3dir, 0700) < 0) {
            nx_err("cannot create %s: %s", s3dir, strerror(errno));
            return NX_EXIT_FAIL;
        }
        if (probe_http(c.s3_endpoint, 0)) {
            nx_err("something already answers on %s: stop it, or use another port with "
                   "`nexus up --s3-port N` (or NEXUS_S3_PORT)", c.s3_endpoint);
            return NX_EXIT_FAIL;
        }
        const char *portstr = strrchr(c.s3_endpoint, ':') + 1;
        char *s3argv[] = {"node", "--openssl-legacy-provider", p.s3_launcher, "--directory", s3dir,
                          "--address", "127.0.0.1", "--port", (char *)portstr, "--silent", NULL};
        printf("  local S3 server   %s ", c.s3_endpoint);
        fflush(stdout);
        s3pid = proc_spawn(s3argv, NULL, s3log);
        /* The pid file goes first, so `nexus down` finds the daemon even if this
         * command is interrupted while waiting. */
        if (s3pid > 0)
            pidfile_write(pf.s3, s3pid);
        if (s3pid < 0 || wait_ready("the local S3 server", s3pid, c.s3_endpoint, 0, timeout, s3log) < 0) {
            if (s3pid > 0) {
                proc_stop(s3pid, 5);
                unlink(pf.s3);
            }
            nx_err("could not start the local S3 server: fix the cause above and run `nexus up` again");
            return NX_EXIT_FAIL;
        }
    } else {
        printf("  S3 endpoint       %s (from %s; no local S3 server)\n", c.s3_endpoint,
               getenv("AWS_ENDPOINT_URL_S3") && *getenv("AWS_ENDPOINT_URL_S3") ? "AWS_ENDPOINT_URL_S3"
                                                                                 : "AWS_ENDPOINT_URL");
        if (!getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY"))
            nx_warn("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set: nexusd's S3 requests "
                    "will be refused");
    }

    /* nexusd: credentials only through its environment (never on a command line). */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%ld", nport);
    int nargs = 14 + nextra + 1, i = 0;
    nargv = xmalloc(sizeof(char *) * (size_t)nargs);
    nargv[i++] = p.nexusd;
    nargv[i++] = "--listen";
    nargv[i++] = listen;
    nargv[i++] = "--state-dir";
    nargv[i++] = state;
    nargv[i++] = "--runtime-dir";
    nargv[i++] = p.runtime;
    nargv[i++] = "--rootfs";
    nargv[i++] = p.rootfs;
    nargv[i++] = "--s3-endpoint";
    nargv[i++] = c.s3_endpoint;
    nargv[i++] = "--s3-region";
    nargv[i++] = c.s3_region;
    for (int k = 0; k < nextra; k++)
        nargv[i++] = extra[k];
    nargv[i] = NULL;
    char *env_local[] = {"AWS_ACCESS_KEY_ID=" NX_LOCAL_S3_KEY, "AWS_SECRET_ACCESS_KEY=" NX_LOCAL_S3_KEY,
                         "AWS_REGION=" NX_LOCAL_S3_REGION, NULL};
    nlog = xasprintf("%s/nexusd.log", logs);
    printf("  nexusd            %s ", c.ingress);
    fflush(stdout);
    pid_t npid = proc_spawn(nargv, c.s3_local ? env_local : NULL, nlog);
    if (npid > 0)
        pidfile_write(pf.nexusd, npid);
    if (npid < 0 || wait_ready("nexusd", npid, health, 200, timeout, nlog) < 0) {
        if (npid > 0) {
            proc_stop(npid, 5);
            unlink(pf.nexusd);
        }
        if (s3pid > 0 && !reuse_s3) {   /* stop only what this command started */
            proc_stop(s3pid, 5);
            unlink(pf.s3);
        }
        nx_err("could not start nexusd: fix the cause above (full log: %s) and run `nexus up` again", nlog);
        return NX_EXIT_FAIL;
    }
    c.nexusd_pid = npid;
    c.s3_pid = s3pid;
    if (config_save(&p, &c) < 0)
        return NX_EXIT_FAIL;

    printf("\nNexus is up.\n");
    printf("  Lambda API (ingress)  %s   (nexusd pid %d)\n", c.ingress, (int)npid);
    if (c.s3_local) {
        printf("  S3 endpoint           %s   (local s3rver pid %d, region %s)\n", c.s3_endpoint, (int)s3pid,
               c.s3_region);
        printf("  S3 credentials        AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", c.access_key,
               c.secret_key);
    } else {
        printf("  S3 endpoint           %s   (region %s, your AWS_* credentials)\n", c.s3_endpoint, c.s3_region);
    }
    printf("  state and logs        %s   (logs/nexusd.log%s)\n", p.home, c.s3_local ? ", logs/s3.log" : "");
    printf("Try:   %s deploy functions/hello && %s invoke hello\n", nx_argv0, nx_argv0);
    printf("       AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=%s \\\n"
           "         aws lambda list-functions --endpoint-url %s\n", c.s3_region, c.ingress);
    printf("Stop:  %s down\n", nx_argv0);
    return NX_EXIT_OK;
}

/* ---- nexus down ---- */

static int stop_one(const char *what, const char *pidfile, const char *needle, double grace, bool *any)
{
    pid_t pid = pidfile_read(pidfile);
    if (!pid)
        return 0;
    *any = true;
    if (!proc_is(pid, needle)) {
        printf("%s was not running (removed the stale pid file for pid %d)\n", what, (int)pid);
        unlink(pidfile);
        return 0;
    }
    printf("stopping %s (pid %d) ...", what, (int)pid);
    fflush(stdout);
    int rc = proc_stop(pid, grace);
    if (rc < 0) {
        printf(" failed\n");
        nx_err("%s (pid %d) survived SIGKILL: check `ps -p %d`", what, (int)pid, (int)pid);
        return -1;
    }
    if (rc == 1)
        printf(" stopped with SIGKILL (it ignored SIGTERM for %.0f s)\n", grace);
    else
        printf(" stopped\n");
    unlink(pidfile);
    return 0;
}

int cmd_down(int argc, char **argv)
{
    static const struct option opts[] = {
        {"grace", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    double grace = 10;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'g':
            if (parse_long(optarg, 0, 3600) < 0) {
                nx_err("--grace %s: give whole seconds (0-3600)", optarg);
                return NX_EXIT_USAGE;
            }
            grace = (double)parse_long(optarg, 0, 3600);
            break;
        case 'h':
            fputs(down_usage, stdout);
            return NX_EXIT_OK;
        default:
            fputs(down_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        nx_err("down: unexpected argument '%s'", argv[optind]);
        return NX_EXIT_USAGE;
    }
    static struct nx_paths p;   /* static: reachable until exit, not a leak */
    if (paths_init(&p) < 0)
        return NX_EXIT_FAIL;
    static struct pidfiles pf;
    pidfiles_init(&p, &pf);
    bool any = false;
    /* nexusd first: it may still be writing back to S3 while it drains. */
    int rc = stop_one("nexusd", pf.nexusd, "nexusd", grace, &any);
    rc |= stop_one("the local S3 server", pf.s3, "s3rver", grace, &any);
    if (!any)
        printf("Nexus is not running (no pid files in %s): nothing to stop.\n", p.home);
    return rc ? NX_EXIT_FAIL : NX_EXIT_OK;
}

/* ---- nexus status ---- */

/* First string among several spellings of a field (Lambda's and nexusd's own). */
static const char *field_s(json_t *o, const char *a, const char *b)
{
    const char *v = json_string_value(json_object_get(o, a));
    return v ? v : (b ? json_string_value(json_object_get(o, b)) : NULL);
}

static json_int_t field_i(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (!v && b)
        v = json_object_get(o, b);
    return json_integer_value(v);
}

static void print_functions(json_t *fns)
{
    printf("Functions (%zu):\n", json_array_size(fns));
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f) {
        if (json_is_string(f)) {
            printf("  %s\n", json_string_value(f));
            continue;
        }
        json_t *tags = json_object_get(f, "Tags");
        const char *mode = field_s(f, "mode", NULL);
        const char *buckets = field_s(f, "buckets", NULL);
        if (!mode)
            mode = json_string_value(json_object_get(tags, "nexus:mode"));
        if (!buckets)
            buckets = json_string_value(json_object_get(tags, "nexus:buckets"));
        json_t *bl = json_object_get(f, "buckets");
        char *bjoined = NULL;
        if (json_is_array(bl)) {   /* nexusd may list buckets as an array */
            size_t k;
            json_t *b;
            bjoined = xstrdup("");
            json_array_foreach(bl, k, b) {
                char *n = xasprintf("%s%s%s", bjoined, k ? "," : "", json_string_value(b) ?: "?");
                free(bjoined);
                bjoined = n;
            }
            buckets = bjoined;
        }
        printf("  %-20s handler %-18s %4lld MB %4llds  mode %-8s buckets %s\n",
               field_s(f, "FunctionName", "name") ?: "?", field_s(f, "Handler", "handler") ?: "?",
               (long long)field_i(f, "MemorySize", "memory_mb"), (long long)field_i(f, "Timeout", "timeout_s"),
               mode ?: "nexus", buckets && *buckets ? buckets : "(none)");
        free(bjoined);
    }
}

static void print_instances(json_t *ins)
{
    printf("Instances (%zu):\n", json_array_size(ins));
    size_t i;
    json_t *x;
    json_array_foreach(ins, i, x) {
        json_t *id = json_object_get(x, "id");
        char idbuf[64];
        if (json_is_integer(id))
            snprintf(idbuf, sizeof idbuf, "%lld", (long long)json_integer_value(id));
        else
            snprintf(idbuf, sizeof idbuf, "%s", json_string_value(id) ?: "?");
        printf("  %-10s %-20s %-10s pid %lld\n", idbuf, field_s(x, "function", NULL) ?: "?",
               field_s(x, "state", NULL) ?: "?", (long long)json_integer_value(json_object_get(x, "pid")));
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool as_json = false;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'j':
            as_json = true;
            break;
        case 'h':
            fputs(status_usage, stdout);
            return NX_EXIT_OK;
        default:
            fputs(status_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        nx_err("status: unexpected argument '%s'", argv[optind]);
        return NX_EXIT_USAGE;
    }
    const struct nx_paths *p;
    const struct nx_config *c = config_for_command(&p);
    if (!c)
        return NX_EXIT_FAIL;
    struct http_resp rs;
    if (api_call(c, "GET", "/nexus/v1/status", NULL, 0, &rs) < 0)
        return NX_EXIT_FAIL;
    if (rs.status != 200) {
        api_report("GET /nexus/v1/status", &rs);
        http_resp_free(&rs);
        return NX_EXIT_FAIL;
    }
    json_error_t jerr;
    json_t *st = json_loadb(rs.body, rs.len, 0, &jerr);
    http_resp_free(&rs);
    if (!json_is_object(st)) {
        nx_err("nexusd at %s answered /nexus/v1/status with something that is not a JSON object (%s): "
               "check its log in %s/logs/nexusd.log", c->ingress, jerr.text, p->home);
        json_decref(st);
        return NX_EXIT_FAIL;
    }
    /* Both are lists per the contract; anything else shows as empty. */
    json_t *fns = json_object_get(st, "functions");
    json_t *ins = json_object_get(st, "instances");
    if (!json_is_array(fns))
        json_object_set_new(st, "functions", fns = json_array());
    if (!json_is_array(ins))
        json_object_set_new(st, "instances", ins = json_array());
    static struct pidfiles pf;
    pidfiles_init(p, &pf);
    pid_t np = pidfile_read(pf.nexusd), sp = pidfile_read(pf.s3);
    json_t *out = json_pack("{s:s, s:o, s:O, s:O, s:{s:o, s:o}, s:s}",
                            "ingress", c->ingress, "s3", config_s3_json(c),
                            "functions", fns, "instances", ins,
                            "pids",
                            "nexusd", proc_is(np, "nexusd") ? json_integer(np) : json_null(),
                            "s3", proc_is(sp, "s3rver") ? json_integer(sp) : json_null(),
                            "home", p->home);
    if (as_json) {
        char *text = json_dumps(out, JSON_INDENT(2));
        puts(text);
        free(text);
    } else {
        bool s3_ok = probe_http(c->s3_endpoint, 0);
        printf("Nexus is running.\n");
        printf("  Lambda API (ingress)  %s\n", c->ingress);
        printf("  S3 endpoint           %s   (%s, region %s)%s\n", c->s3_endpoint,
               c->s3_local ? "local s3rver" : "external", c->s3_region, s3_ok ? "" : "   NOT ANSWERING");
        if (c->secret_key)
            printf("  S3 credentials        AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", c->access_key,
                   c->secret_key);
        else
            printf("  S3 credentials        AWS_ACCESS_KEY_ID=%s (secret from your environment)\n", c->access_key);
        printf("  state and logs        %s\n", p->home);
        print_functions(fns);
        print_instances(ins);
    }
    json_decref(out);
    json_decref(st);
    return NX_EXIT_OK;
}
