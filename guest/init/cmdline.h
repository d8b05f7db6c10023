/* Parsing of the kernel command line for nexus-init (see README.md for the syntax).
 * Kept apart from init.c, free of side effects, so it can be tested on the host. */
#ifndef NEXUS_INIT_CMDLINE_H
#define NEXUS_INIT_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

#define INIT_MAX_ARGS 64
#define INIT_MAX_ENV  32

struct init_config {
    char *argv[INIT_MAX_ARGS + 1];  /* command, NULL-terminated; argc == 0: none given */
    int argc;
    char *env[INIT_MAX_ENV + 1];    /* nexus.env=NAME=VALUE, NULL-terminated */
    int envc;
    const char *cwd;                /* nexus.cwd, default "/" */
    long uid, gid;                  /* nexus.uid / nexus.gid, -1 = stay root */
    bool quiet;                     /* nexus.quiet=1: only errors on the console */
    bool poweroff_only;             /* nexus.exitport=0: do not touch port 0x501 */
    char error[160];                /* set when parsing fails */
};

/* Parses CMDLINE (the contents of /proc/cmdline; modified in place, and the config
 * points into it).  Returns false with cfg->error set on a malformed nexus.* option. */
bool init_parse_cmdline(char *cmdline, struct init_config *cfg);

/* Decodes %XX escapes in place.  Returns false on a malformed escape or on %00. */
bool init_percent_decode(char *s);

#endif
