/* `nexus invoke NAME` and `nexus logs NAME`. */
#include "nexus.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char invoke_usage[] =
    "usage: nexus invoke NAME [--payload JSON|@FILE|@-] [--cli-timeout S]\n"
    "\n"
    "Invokes a function (RequestResponse) and prints what it returned.  The payload is the\n"
    "event, as JSON text, @FILE or @- for standard input (default {}).  If the handler fails,\n"
    "its error JSON (errorMessage, errorType, stackTrace) goes to standard error and the exit\n"
    "status is 1.  --cli-timeout S gives up waiting for nexusd after S seconds (default 910:\n"
    "longer than any function's timeout).\n";

static const char logs_usage[] =
    "usage: nexus logs NAME [--tail N]\n"
    "\n"
    "Prints the function's output (print, logging, START/END lines) from all its instances;\n"
    "--tail N shows only the last N lines.\n";

int cmd_invoke(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, NULL, 'p'},
        {"cli-timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *payload_arg = "{}";
    long invoke_timeout = 910;
    int o;
    while ((o = getopt_long(argc, argv, "hp:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': payload_arg = optarg; break;
        case 't':
            if ((invoke_timeout = parse_long(optarg, 1, 86400)) < 0) {
                nx_err("invoke: --cli-timeout %s: give whole seconds", optarg);
                return NX_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(invoke_usage, stdout);
            return NX_EXIT_OK;
        default:
            fputs(invoke_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        nx_err(optind >= argc ? "invoke: which function? e.g. `nexus invoke hello`"
                              : "invoke: give exactly one function name");
        fputs(invoke_usage, stderr);
        return NX_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!valid_function_name(name)) {
        nx_err("invoke: '%s' is not a valid function name (letters, digits, '-', '_')", name);
        return NX_EXIT_USAGE;
    }
    char *payload;
    size_t plen;
    if (payload_arg[0] == '@') {
        payload = read_file(payload_arg + 1, &plen);
        if (!payload) {
            nx_err("invoke: cannot read the payload file %s: %s", payload_arg + 1, strerror(errno));
            return NX_EXIT_USAGE;
        }
    } else {
        payload = xstrdup(payload_arg);
        plen = strlen(payload);
    }
    /* Catch a typo here rather than as a confusing error from inside the function. */
    json_error_t jerr;
    json_t *check = json_loadb(payload, plen, JSON_DECODE_ANY, &jerr);
    if (!check) {
        nx_err("invoke: the payload is not valid JSON (%s at line %d, column %d)", jerr.text, jerr.line,
               jerr.column);
        free(payload);
        return NX_EXIT_USAGE;
    }
    json_decref(check);

    const struct nx_config *c = config_for_command(NULL);
    if (!c) {
        free(payload);
        return NX_EXIT_FAIL;
    }
    /* A handler may run for up to 900 s (Lambda's limit); nexusd answers by then. */
    api_set_timeout(invoke_timeout);
    char *path = xasprintf("/2015-03-31/functions/%s/invocations", name);
    struct http_resp rs;
    int rc = api_call(c, "POST", path, payload, plen, &rs);
    free(path);
    free(payload);
    if (rc < 0)
        return NX_EXIT_FAIL;
    if (rs.status != 200) {
        char *what = xasprintf("invoking %s", name);
        api_report(what, &rs);
        if (rs.status == 404)
            fprintf(stderr, "nexus: deploy it first: `nexus deploy DIR --name %s`\n", name);
        free(what);
        http_resp_free(&rs);
        return NX_EXIT_FAIL;
    }
    bool nl = rs.len > 0 && rs.body[rs.len - 1] == '\n';
    if (rs.fn_error[0]) {
        fwrite(rs.body, 1, rs.len, stderr);
        if (!nl)
            fputc('\n', stderr);
        nx_err("%s failed (%s error): see `nexus logs %s`", name, rs.fn_error, name);
        http_resp_free(&rs);
        return NX_EXIT_FAIL;
    }
    fwrite(rs.body, 1, rs.len, stdout);
    if (!nl)
        fputc('\n', stdout);
    http_resp_free(&rs);
    return NX_EXIT_OK;
}

int cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tail", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    long tail = 0;
    int o;
    while ((o = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
        switch (o) {
        case 't':
        case 'n':
            if ((tail = parse_long(optarg, 1, 1000000)) < 0) {
                nx_err("logs: --tail %s: give a positive number of lines", optarg);
                return NX_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(logs_usage, stdout);
            return NX_EXIT_OK;
        default:
            fputs(logs_usage, stderr);
            return NX_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        nx_err(optind >= argc ? "logs: which function? e.g. `nexus logs hello`"
                              : "logs: give exactly one function name");
        fputs(logs_usage, stderr);
        return NX_EXIT_USAGE;
    }
    const char *name = argv[optind];
    if (!valid_function_name(name)) {
        nx_err("logs: '%s' is not a valid function name", name);
        return NX_EXIT_USAGE;
    }
    const struct nx_config *c = config_for_command(NULL);
    if (!c)
        return NX_EXIT_FAIL;
    char *path = tail ? xasprintf("/nexus/v1/functions/%s/logs?tail=%ld", name, tail)
                      : xasprintf("/nexus/v1/functions/%s/logs", name);
    struct http_resp rs;
    int rc = api_call(c, "GET", path, NULL, 0, &rs);
    free(path);
    if (rc < 0)
        return NX_EXIT_FAIL;
    if (rs.status != 200) {
        char *what = xasprintf("reading the logs of %s", name);
        api_report(what, &rs);
        free(what);
        http_resp_free(&rs);
        return NX_EXIT_FAIL;
    }
    fwrite(rs.body, 1, rs.len, stdout);
    http_resp_free(&rs);
    return NX_EXIT_OK;
}
