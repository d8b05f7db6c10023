/* nexus bench — the A/B evaluation harness (bench/harness/main.py, Python glue
 * around build/bin/nexus-bench-load and the node's own accounting).  This
 * command only finds the checkout and execs the harness with the system
 * python3 (/usr/bin/python3: it sees Debian's Pillow and boto3); every option
 * is the harness's (`nexus bench --help`).  See bench/README.md. */
#include "nexus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_bench(int argc, char **argv)
{
    struct nx_paths p;
    if (paths_init(&p) < 0)
        return NX_EXIT_FAIL;
    char script[4096];
    snprintf(script, sizeof script, "%s/bench/harness/main.py", p.root);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "nexus bench: %s: %s (run from a Nexus checkout, or set NEXUS_ROOT)\n", script,
                strerror(errno));
        return NX_EXIT_FAIL;
    }
    /* The harness finds binaries under $NEXUS_ROOT/$BUILD (an absolute BUILD wins). */
    setenv("BUILD", p.build, 1);
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args)
        return NX_EXIT_FAIL;
    args[0] = "/usr/bin/python3";
    args[1] = script;
    for (int i = 1; i < argc; i++)   /* argv[0] is "bench" */
        args[i + 1] = argv[i];
    execv(args[0], args);
    fprintf(stderr, "nexus bench: cannot run /usr/bin/python3: %s (install python3)\n", strerror(errno));
    return NX_EXIT_FAIL;
}
