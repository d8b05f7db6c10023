/* Kernel command line parsing for nexus-init.
 *
 * Tokens are separated by spaces; a double quote toggles quoting (so "a b" is one token)
 * and is itself dropped, as the kernel does for parameter values.  Parsing stops at a
 * bare "--": what follows is the kernel's business (it hands it to us as argv).
 * Every nexus.* value is percent-decoded, so any byte but NUL can be passed. */
#include "cmdline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool init_percent_decode(char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        if (*in != '%') { *out++ = *in; continue; }
        int hi = hexval(in[1]), lo = hi < 0 ? -1 : hexval(in[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
        *out++ = (char)(hi * 16 + lo);
        in += 2;
    }
    *out = '\0';
    return true;
}

/* Cuts the next token out of *pos (in place), removing quote characters.
 * Returns NULL at the end of the line. */
static char *next_token(char **pos)
{
    char *p = *pos;
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (!*p) { *pos = p; return NULL; }
    char *tok = p, *out = p;
    bool quoted = false;
    for (; *p; p++) {
        if (*p == '"') { quoted = !quoted; continue; }
        if (!quoted && (*p == ' ' || *p == '\t' || *p == '\n')) { p++; break; }
        *out++ = *p;
    }
    /* out <= p-1 when we stopped on a separator, so this never clobbers unread input. */
    *out = '\0';
    *pos = p;
    return tok;
}

static bool fail(struct init_config *cfg, const char *what, const char *val)
{
    snprintf(cfg->error, sizeof cfg->error, "%s: '%.80s'", what, val);
    return false;
}

static bool parse_id(const char *val, long *out)
{
    char *end;
    long v = strtol(val, &end, 10);
    if (!*val || *end || v < 0 || v > 65535) return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *val, bool *out)
{
    if (!strcmp(val, "0")) { *out = false; return true; }
    if (!strcmp(val, "1")) { *out = true; return true; }
    return false;
}

/* nexus.cmd: words separated by spaces, each percent-decoded. */
static bool parse_cmd(char *val, struct init_config *cfg)
{
    cfg->argc = 0;
    for (char *w = strtok(val, " \t"); w; w = strtok(NULL, " \t")) {
        if (cfg->argc == INIT_MAX_ARGS) return fail(cfg, "nexus.cmd has too many words", w);
        if (!init_percent_decode(w)) return fail(cfg, "bad %XX escape in nexus.cmd", w);
        cfg->argv[cfg->argc++] = w;
    }
    cfg->argv[cfg->argc] = NULL;
    if (cfg->argc == 0) return fail(cfg, "nexus.cmd is empty", "");
    return true;
}

bool init_parse_cmdline(char *cmdline, struct init_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->cwd = "/";
    cfg->uid = cfg->gid = -1;

    char *pos = cmdline, *tok;
    while ((tok = next_token(&pos))) {
        if (!strcmp(tok, "--")) break;
        if (strncmp(tok, "nexus.", 6)) continue;   /* someone else's option */
        char *eq = strchr(tok, '=');
        if (!eq) return fail(cfg, "nexus option without a value", tok);
        *eq = '\0';
        const char *key = tok + 6;
        char *val = eq + 1;
        if (!strcmp(key, "cmd")) {
            if (!parse_cmd(val, cfg)) return false;
            continue;
        }
        if (!init_percent_decode(val)) return fail(cfg, "bad %XX escape in the value of", tok);
        if (!strcmp(key, "env")) {
            char *e = strchr(val, '=');
            if (!e || e == val) return fail(cfg, "nexus.env wants NAME=VALUE", val);
            if (cfg->envc == INIT_MAX_ENV) return fail(cfg, "too many nexus.env", val);
            cfg->env[cfg->envc++] = val;
            cfg->env[cfg->envc] = NULL;
        } else if (!strcmp(key, "cwd")) {
            if (val[0] != '/') return fail(cfg, "nexus.cwd must be absolute", val);
            cfg->cwd = val;
        } else if (!strcmp(key, "uid")) {
            if (!parse_id(val, &cfg->uid)) return fail(cfg, "nexus.uid must be 0..65535", val);
        } else if (!strcmp(key, "gid")) {
            if (!parse_id(val, &cfg->gid)) return fail(cfg, "nexus.gid must be 0..65535", val);
        } else if (!strcmp(key, "quiet")) {
            if (!parse_bool(val, &cfg->quiet)) return fail(cfg, "nexus.quiet must be 0 or 1", val);
        } else if (!strcmp(key, "exitport")) {
            bool use;
            if (!parse_bool(val, &use)) return fail(cfg, "nexus.exitport must be 0 or 1", val);
            cfg->poweroff_only = !use;
        } else {
            return fail(cfg, "unknown option", tok);
        }
    }
    return true;
}
