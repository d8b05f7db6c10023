/* Locating the build (relative to the nexus binary itself, so the CLI works from
 * any directory) and the user's state directory. */
#include "nexus.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *env_or(const char *name, char *fallback)
{
    const char *v = getenv(name);
    if (v && *v) {
        free(fallback);
        return xstrdup(v);
    }
    return fallback;
}

/* build/runtime for a build-san/bin/nexus may not exist: fall back to root/build. */
static char *build_artifact(const struct nx_paths *p, const char *name)
{
    char *in_build = xasprintf("%s/%s", p->build, name);
    if (access(in_build, F_OK) == 0)
        return in_build;
    char *in_root = xasprintf("%s/build/%s", p->root, name);
    if (access(in_root, F_OK) == 0) {
        free(in_build);
        return in_root;
    }
    free(in_root);
    return in_build;
}

int paths_init(struct nx_paths *p)
{
    memset(p, 0, sizeof *p);
    const char *root = getenv("NEXUS_ROOT");
    if (root && *root) {
        char *r = realpath(root, NULL);
        if (!r) {
            nx_err("NEXUS_ROOT=%s: %s: set it to the Nexus checkout (the directory holding build/ and scripts/)",
                   root, strerror(errno));
            return -1;
        }
        p->root = r;
        p->build = xasprintf("%s/build", r);
    } else {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            nx_err("cannot read /proc/self/exe (%s): set NEXUS_ROOT to the Nexus checkout", strerror(errno));
            return -1;
        }
        exe[n] = '\0';
        /* exe = ROOT/BUILD/bin/nexus */
        p->build = xstrdup(dirname(dirname(exe)));
        char tmp[PATH_MAX];
        memcpy(tmp, p->build, strlen(p->build) + 1);
        p->root = xstrdup(dirname(tmp));
    }
    p->nexusd = env_or("NEXUS_NEXUSD", xasprintf("%s/bin/nexusd", p->build));
    p->runtime = env_or("NEXUS_RUNTIME_DIR", build_artifact(p, "runtime"));
    p->rootfs = env_or("NEXUS_ROOTFS", build_artifact(p, "rootfs"));
    p->s3_launcher = xasprintf("%s/scripts/s3/s3rver.js", p->root);
    p->s3_package = xasprintf("%s/scripts/s3/node_modules/@20minutes/s3rver", p->root);

    const char *home = getenv("NEXUS_HOME");
    if (home && *home) {
        /* Absolute, so the daemons and later commands from other directories agree. */
        char cwd[PATH_MAX];
        if (home[0] != '/' && getcwd(cwd, sizeof cwd))
            p->home = xasprintf("%s/%s", cwd, home);
        else
            p->home = xstrdup(home);
    } else {
        const char *h = getenv("HOME");
        if (!h || !*h) {
            struct passwd *pw = getpwuid(getuid());
            h = pw ? pw->pw_dir : NULL;
        }
        if (!h) {
            nx_err("cannot find your home directory: set NEXUS_HOME");
            return -1;
        }
        p->home = xasprintf("%s/.nexus", h);
    }
    return 0;
}

char *home_path(const struct nx_paths *p, const char *name)
{
    return xasprintf("%s/%s", p->home, name);
}
