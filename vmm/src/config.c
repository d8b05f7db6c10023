/* Flags and JSON config for nexus-vmm. */
#include "config.h"
#include "errmsg.h"

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = s ? strdup(s) : NULL;
}

void config_defaults(struct vmm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->mem_mb = 128;
    c->vcpus = 1;
    c->serial = SERIAL_STDOUT;
    c->nexus_fds[0] = c->nexus_fds[1] = c->nexus_fds[2] = -1;
    c->control_fd = -1;
    /* Locally administered unicast MAC. */
    static const uint8_t mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };
    memcpy(c->net_mac, mac, 6);
#if defined(__SANITIZE_ADDRESS__)
    c->seccomp = SECCOMP_LOG;   /* the sanitizer runtime makes syscalls we do not list */
#else
    c->seccomp = SECCOMP_KILL;
#endif
}

void config_free(struct vmm_config *c)
{
    free(c->kernel);
    free(c->initrd);
    free(c->cmdline);
    for (unsigned i = 0; i < c->nr_disks; i++)
        free(c->disks[i].path);
    free(c->net_tap);
    free(c->serial_path);
    free(c->control_path);
    free(c->restore_dir);
    free(c->ws_file);
    memset(c, 0, sizeof(*c));
}

void config_usage(void *stream)
{
    fprintf(stream,
        "usage: nexus-vmm --kernel PATH [--initrd PATH] [--cmdline STR] [--mem MB] [--vcpus N]\n"
        "                 [--disk PATH[,ro]]... [--net TAPNAME[,mac=XX:XX:XX:XX:XX:XX]]\n"
        "                 [--serial stdout|file:PATH|none] [--control SOCKPATH] [--config FILE.json]\n"
        "                 [--nexus REGION_FD,KICK_HOST_FD,KICK_GUEST_FD | --nexus control]\n"
        "                 [--control-fd N]\n"
        "       nexus-vmm --restore DIR [--ws FILE] [--disk ...] [--nexus ...] [--serial ...]\n"
        "                 [--control SOCKPATH] [--control-fd N]   (kernel, mem, vcpus from the snapshot)\n"
        "                 [--seccomp kill|log|off] [--verbose]\n"
        "Exit status: the guest's exit-port value (0..63), or 64 usage, 65 setup error,\n"
        "66 triple fault, 67 guest panic, 68 internal/KVM error, 69 i8042 reset,\n"
        "70 stopped by the host, 71 bad exit-port value, 72 snapshot refused (see docs/vmm.md).\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 0);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int add_disk(struct vmm_config *c, const char *spec, bool ro, char *err, size_t n)
{
    if (c->nr_disks >= VMM_MAX_DISKS)
        return vmm_errf(err, n, "at most %d disks", VMM_MAX_DISKS);
    char *path = strdup(spec);
    char *comma = strchr(path, ',');
    if (comma) {
        *comma = 0;
        char *save = NULL;
        for (char *opt = strtok_r(comma + 1, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
            if (strcmp(opt, "ro") == 0)
                ro = true;
            else if (strcmp(opt, "rw") == 0)
                ro = false;
            else {
                vmm_errf(err, n, "--disk: unknown option '%s' (ro or rw)", opt);   /* opt points into path */
                free(path);
                return -1;
            }
        }
    }
    if (!*path) {
        free(path);
        return vmm_errf(err, n, "--disk: empty path");
    }
    c->disks[c->nr_disks].path = path;
    c->disks[c->nr_disks].ro = ro;
    c->nr_disks++;
    return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return (mac[0] & 1) ? -1 : 0;   /* no multicast MAC */
}

static int set_net(struct vmm_config *c, const char *spec, char *err, size_t n)
{
    char *s = strdup(spec);
    char *comma = strchr(s, ',');
    if (comma) {
        *comma = 0;
        if (strncmp(comma + 1, "mac=", 4) != 0 || parse_mac(comma + 5, c->net_mac) < 0) {
            free(s);
            return vmm_errf(err, n, "--net: expected TAPNAME[,mac=XX:XX:XX:XX:XX:XX]");
        }
    }
    if (!*s || strlen(s) >= 16) {
        free(s);
        return vmm_errf(err, n, "--net: tap name must be 1..15 characters");
    }
    free(c->net_tap);
    c->net_tap = s;
    return 0;
}

static int set_serial(struct vmm_config *c, const char *s, char *err, size_t n)
{
    if (strcmp(s, "stdout") == 0)
        c->serial = SERIAL_STDOUT;
    else if (strcmp(s, "none") == 0)
        c->serial = SERIAL_NONE;
    else if (strncmp(s, "file:", 5) == 0 && s[5]) {
        c->serial = SERIAL_FILE;
        set_str(&c->serial_path, s + 5);
    } else
        return vmm_errf(err, n, "--serial: expected stdout, none or file:PATH");
    return 0;
}

static int set_seccomp(struct vmm_config *c, const char *s, char *err, size_t n)
{
    if (strcmp(s, "kill") == 0)
        c->seccomp = SECCOMP_KILL;
    else if (strcmp(s, "log") == 0)
        c->seccomp = SECCOMP_LOG;
    else if (strcmp(s, "off") == 0)
        c->seccomp = SECCOMP_OFF;
    else
        return vmm_errf(err, n, "--seccomp: expected kill, log or off");
    return 0;
}

static int set_mem(struct vmm_config *c, uint64_t mb, char *err, size_t n)
{
    if (mb < 8 || mb > (1ULL << 20))
        return vmm_errf(err, n, "memory must be 8..1048576 MiB");
    c->mem_mb = mb;
    return 0;
}

static int set_vcpus(struct vmm_config *c, uint64_t v, char *err, size_t n)
{
    if (v < 1 || v > VMM_MAX_VCPUS)
        return vmm_errf(err, n, "vcpus must be 1..%d", VMM_MAX_VCPUS);
    c->vcpus = (unsigned)v;
    return 0;
}

static int load_json(struct vmm_config *c, json_t *root, char *err, size_t n)
{
    if (!json_is_object(root))
        return vmm_errf(err, n, "config: top level must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "kernel") || !strcmp(key, "initrd") || !strcmp(key, "cmdline") ||
            !strcmp(key, "control") || !strcmp(key, "serial") || !strcmp(key, "seccomp")) {
            if (!json_is_string(v))
                return vmm_errf(err, n, "config: '%s' must be a string", key);
            const char *s = json_string_value(v);
            if (!strcmp(key, "kernel"))
                set_str(&c->kernel, s);
            else if (!strcmp(key, "initrd"))
                set_str(&c->initrd, s);
            else if (!strcmp(key, "cmdline"))
                set_str(&c->cmdline, s);
            else if (!strcmp(key, "control"))
                set_str(&c->control_path, s);
            else if (!strcmp(key, "serial")) {
                if (set_serial(c, s, err, n) < 0)
                    return -1;
            } else if (set_seccomp(c, s, err, n) < 0)
                return -1;
        } else if (!strcmp(key, "mem_mb") || !strcmp(key, "vcpus")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return vmm_errf(err, n, "config: '%s' must be a non-negative integer", key);
            uint64_t x = (uint64_t)json_integer_value(v);
            if ((!strcmp(key, "mem_mb") ? set_mem(c, x, err, n) : set_vcpus(c, x, err, n)) < 0)
                return -1;
        } else if (!strcmp(key, "disks")) {
            if (!json_is_array(v))
                return vmm_errf(err, n, "config: 'disks' must be an array");
            size_t i;
            json_t *d;
            json_array_foreach(v, i, d) {
                json_t *p = json_object_get(d, "path"), *ro = json_object_get(d, "ro");
                if (!json_is_string(p) || (ro && !json_is_boolean(ro)))
                    return vmm_errf(err, n, "config: disks[%zu] needs \"path\" (string), optional \"ro\" (bool)", i);
                if (strchr(json_string_value(p), ','))
                    return vmm_errf(err, n, "config: disks[%zu].path must not contain ','", i);
                if (add_disk(c, json_string_value(p), ro && json_is_true(ro), err, n) < 0)
                    return -1;
            }
        } else if (!strcmp(key, "net")) {
            json_t *tap = json_is_object(v) ? json_object_get(v, "tap") : v;
            if (!json_is_string(tap))
                return vmm_errf(err, n, "config: 'net' must be a tap name or {\"tap\":..., \"mac\":...}");
            if (set_net(c, json_string_value(tap), err, n) < 0)
                return -1;
            json_t *mac = json_is_object(v) ? json_object_get(v, "mac") : NULL;
            if (mac && (!json_is_string(mac) || parse_mac(json_string_value(mac), c->net_mac) < 0))
                return vmm_errf(err, n, "config: net.mac must be XX:XX:XX:XX:XX:XX (unicast)");
        } else if (!strcmp(key, "verbose")) {
            c->verbose = json_is_true(v);
        } else {
            return vmm_errf(err, n, "config: unknown key '%s'", key);
        }
    }
    return 0;
}

int config_load_json_string(struct vmm_config *c, const char *text, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    if (!root)
        return vmm_errf(err, n, "config: line %d: %s", je.line, je.text);
    int r = load_json(c, root, err, n);
    json_decref(root);
    return r;
}

int config_load_json(struct vmm_config *c, const char *path, char *err, size_t n)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return vmm_errf(err, n, "config %s: line %d: %s", path, je.line, je.text);
    int r = load_json(c, root, err, n);
    json_decref(root);
    return r;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_VCPUS, OPT_DISK, OPT_NET,
       OPT_SERIAL, OPT_CONTROL, OPT_CONFIG, OPT_SECCOMP, OPT_VERBOSE, OPT_HELP, OPT_NEXUS,
       OPT_CONTROL_FD, OPT_RESTORE, OPT_WS };

/* --nexus R,H,G: three inherited fds (checked further when the device opens them). */
static int set_nexus(struct vmm_config *c, const char *spec, char *err, size_t n)
{
    int f[3];
    char tail;
    if (!strcmp(spec, "control")) {
        c->nexus_control = true;
        return 0;
    }
    if (sscanf(spec, "%d,%d,%d%c", &f[0], &f[1], &f[2], &tail) != 3 || f[0] < 3 || f[1] < 3 || f[2] < 3 ||
        f[0] == f[1] || f[0] == f[2] || f[1] == f[2])
        return vmm_errf(err, n, "--nexus: expected REGION_FD,KICK_HOST_FD,KICK_GUEST_FD (three distinct fds >= 3)");
    memcpy(c->nexus_fds, f, sizeof(f));
    return 0;
}

int config_parse_args(struct vmm_config *c, int argc, char **argv, char *err, size_t n)
{
    static const struct option opts[] = {
        { "kernel", required_argument, 0, OPT_KERNEL },
        { "initrd", required_argument, 0, OPT_INITRD },
        { "cmdline", required_argument, 0, OPT_CMDLINE },
        { "mem", required_argument, 0, OPT_MEM },
        { "vcpus", required_argument, 0, OPT_VCPUS },
        { "disk", required_argument, 0, OPT_DISK },
        { "net", required_argument, 0, OPT_NET },
        { "serial", required_argument, 0, OPT_SERIAL },
        { "control", required_argument, 0, OPT_CONTROL },
        { "config", required_argument, 0, OPT_CONFIG },
        { "seccomp", required_argument, 0, OPT_SECCOMP },
        { "verbose", no_argument, 0, OPT_VERBOSE },
        { "help", no_argument, 0, OPT_HELP },
        { "nexus", required_argument, 0, OPT_NEXUS },
        { "control-fd", required_argument, 0, OPT_CONTROL_FD },
        { "restore", required_argument, 0, OPT_RESTORE },
        { "ws", required_argument, 0, OPT_WS },
        { 0, 0, 0, 0 },
    };
    /* Pass 1: the config file, so that flags override it whatever their order. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
        if (path && config_load_json(c, path, err, n) < 0)
            return -1;
    }
    opterr = 0;
    optind = 1;
    int o;
    uint64_t x;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case OPT_KERNEL: set_str(&c->kernel, optarg); break;
        case OPT_INITRD: set_str(&c->initrd, optarg); break;
        case OPT_CMDLINE: set_str(&c->cmdline, optarg); break;
        case OPT_MEM:
            if (parse_u64(optarg, &x) < 0)
                return vmm_errf(err, n, "--mem: not a number: %s", optarg);
            if (set_mem(c, x, err, n) < 0)
                return -1;
            break;
        case OPT_VCPUS:
            if (parse_u64(optarg, &x) < 0)
                return vmm_errf(err, n, "--vcpus: not a number: %s", optarg);
            if (set_vcpus(c, x, err, n) < 0)
                return -1;
            break;
        case OPT_DISK:
            if (add_disk(c, optarg, false, err, n) < 0)
                return -1;
            break;
        case OPT_NET:
            if (set_net(c, optarg, err, n) < 0)
                return -1;
            break;
        case OPT_SERIAL:
            if (set_serial(c, optarg, err, n) < 0)
                return -1;
            break;
        case OPT_CONTROL: set_str(&c->control_path, optarg); break;
        case OPT_CONFIG: break;   /* handled in pass 1 */
        case OPT_SECCOMP:
            if (set_seccomp(c, optarg, err, n) < 0)
                return -1;
            break;
        case OPT_VERBOSE: c->verbose = true; break;
        case OPT_HELP: return 1;
        case OPT_NEXUS:
            if (set_nexus(c, optarg, err, n) < 0)
                return -1;
            break;
        case OPT_CONTROL_FD:
            if (parse_u64(optarg, &x) < 0 || x < 3 || x > 1000000)
                return vmm_errf(err, n, "--control-fd: expected an fd number >= 3: %s", optarg);
            c->control_fd = (int)x;
            break;
        case OPT_RESTORE: set_str(&c->restore_dir, optarg); break;
        case OPT_WS: set_str(&c->ws_file, optarg); break;
        default:
            return vmm_errf(err, n, "unknown or incomplete option: %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return vmm_errf(err, n, "unexpected argument: %s", argv[optind]);
    if (c->restore_dir && (c->kernel || c->initrd || c->cmdline))
        return vmm_errf(err, n, "--restore: the kernel, initrd and command line come from the snapshot");
    if (c->ws_file && !c->restore_dir)
        return vmm_errf(err, n, "--ws needs --restore");
    if (!c->kernel && !c->restore_dir)
        return vmm_errf(err, n, "--kernel (or --restore DIR) is required");
    if (c->nexus_control && c->control_fd < 0 && !c->control_path)
        return vmm_errf(err, n, "--nexus control needs --control or --control-fd");
    return 0;
}
