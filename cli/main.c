/* nexus — the command-line client of a Nexus node.
 *
 * Every command talks to nexusd's HTTP API (the Lambda REST API plus /nexus/v1);
 * `up`/`down` also start and stop the daemons, and `s3` talks to the node's S3
 * endpoint for setup.  See cli/README.md. */
#include "nexus.h"

#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

const char *nx_argv0 = "nexus";

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"up", cmd_up, "start the node (nexusd + the local S3 server) and wait until it answers"},
    {"down", cmd_down, "stop the node"},
    {"status", cmd_status, "endpoints, S3 credentials, functions, live instances (--json for scripts)"},
    {"deploy", cmd_deploy, "deploy a function from a directory"},
    {"invoke", cmd_invoke, "invoke a function and print its result"},
    {"logs", cmd_logs, "print a function's output"},
    {"delete", cmd_delete, "delete a function"},
    {"s3", cmd_s3, "put/get/list objects and make buckets in the node's S3"},
    {"bench", cmd_bench, "the A/B evaluation, nexus vs baseline (bench/harness; --quick, --out DIR)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fputs("usage: nexus COMMAND [ARGS...]\n\nCommands:\n", out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\n`nexus COMMAND --help` describes one command.\n"
          "Quick start:  nexus up && nexus deploy functions/hello && nexus invoke hello\n"
          "\n"
          "Environment:  NEXUS_HOME (state, default ~/.nexus), NEXUS_PORT (9070), NEXUS_S3_PORT (9071),\n"
          "              NEXUS_URL (talk to a nexusd at this URL), NEXUS_ROOT (the checkout to run from),\n"
          "              AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (use that S3 instead of a local one),\n"
          "              NEXUS_HTTP_TIMEOUT (seconds to wait for nexusd; default 120, invoke 910),\n"
          "              NEXUS_DEBUG_HTTP=1 (print every HTTP request and response header).\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NX_EXIT_USAGE;
    }
    nx_argv0 = argv[0];
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {   /* `nexus help deploy` */
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *args[] = {(char *)commands[i].name, "--help", NULL};
                    return commands[i].run(2, args);
                }
            }
        }
        usage(stdout);
        return NX_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(name, commands[i].name) == 0) {
            curl_global_init(CURL_GLOBAL_DEFAULT);
            int rc = commands[i].run(argc - 1, argv + 1);
            curl_global_cleanup();
            return rc;
        }
    }
    nx_err("unknown command '%s'", name);
    usage(stderr);
    return NX_EXIT_USAGE;
}
