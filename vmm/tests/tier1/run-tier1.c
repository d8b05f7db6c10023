/* Tier-1 tests of nexus-vmm: boot the tiny test guest once per case under KVM
 * and check the exit status, the serial output and side effects (disk contents,
 * control socket replies).  Static, so that it runs inside the nested rig's L1
 * with nothing but the files it is given.
 *
 *   vmm-tier1 NEXUS_VMM TESTGUEST_ELF WORKDIR [CASE...]
 *   vmm-tier1 --linux NEXUS_VMM BZIMAGE ROOTFS WORKDIR   (tier 2, see linux_snapshot)
 *
 * Prints one line per case and ends with "tier1: N passed, N failed". */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DISK_BYTES (1 << 20)
#define CASE_TIMEOUT_S 120

static const char *vmm, *guest, *work;
static int passed, failed;
static char fail_msg[512];

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static bool failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
    va_end(ap);
    return false;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(4 << 20);
    size_t n = fread(b, 1, (4 << 20) - 1, f);
    fclose(f);
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

static char *path_in(const char *name)
{
    static char buf[8][512];
    static int i;
    char *p = buf[i++ % 8];
    snprintf(p, 512, "%s/%s", work, name);
    return p;
}

struct run {
    pid_t pid;
    int status;
    char *out, *err;
};

/* Start nexus-vmm with the common arguments plus extra (NULL-terminated). */
static pid_t start_vmm(const char *cmdline, const char *const *extra)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = vmm;
    argv[n++] = "--kernel";
    argv[n++] = guest;
    argv[n++] = "--cmdline";
    argv[n++] = cmdline;
    for (; extra && *extra && n < 62; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(path_in("out.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(path_in("err.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execv(vmm, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Where a process that SIGKILL does not end is stuck: each thread's state,
 * wait channel and kernel stack, for the log. */
static void dump_stuck(pid_t pid)
{
    char path[400];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        static const char *what[] = { "stat", "wchan", "stack" };
        printf("stuck pid %d tid %s:", pid, e->d_name);
        for (int k = 0; k < 3; k++) {   /* not "syscall": reading it waits for the task */
            snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", pid, e->d_name, what[k]);
            char *t = slurp(path, NULL);
            printf(" [%s] %s", what[k], t ? t : "?");
            free(t);
        }
        printf("\n");
    }
    if (d)
        closedir(d);
}

/* Heartbeat (issue 3: the rig sometimes stalls in tier 1): every 20 s, a line
 * saying which case runs since when; past 60 s, the kernel state of every
 * nexus-vmm thread.  If these lines stop, L1 itself stalled; if they go on,
 * they show what the case waits for. */
static const char *volatile current_case = "";
static volatile double case_start;

static void *heartbeat(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(20);
        double t = now_s() - case_start;
        /* Also into the kernel log (L1's console, which run-l1 shows when the rig
         * times out): if it shows heartbeats that stdout did not, the output path
         * stalled, not L1. */
        int km = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
        if (km >= 0) {
            char m[160];
            int l = snprintf(m, sizeof(m), "<5>vmm-tier1 heartbeat: %s running for %.0f s\n", current_case, t);
            if (write(km, m, (size_t)l) < 0) {
            }
            close(km);
        }
        printf("tier1: heartbeat: %s running for %.0f s\n", current_case, t);
        if (t < 60)
            continue;
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char path[300];
            snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
            char *comm = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? slurp(path, NULL) : NULL;
            if (comm && !strncmp(comm, "nexus-vmm", 9))
                dump_stuck(atoi(e->d_name));
            free(comm);
        }
        if (d)
            closedir(d);
    }
    return NULL;
}

static int wait_vmm(pid_t pid, int timeout_s)
{
    double end = now_s() + timeout_s;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            /* A monitor stuck in the (nested) kernel may not die at once: give it
             * 20 s, then leave it behind rather than hang the whole run. */
            for (int i = 0; i < 2000; i++) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                    return -1;
                usleep(10000);
            }
            dump_stuck(pid);
            return -2;
        }
        usleep(2000);
    }
}

static bool expect_exit(int st, int code)
{
    if (st == -1)
        return failf("timed out after %d s", CASE_TIMEOUT_S);
    if (st == -2)
        return failf("timed out after %d s, and SIGKILL did not end it (stuck in KVM?)", CASE_TIMEOUT_S);
    if (WIFSIGNALED(st))
        return failf("killed by signal %d (seccomp violation?)", WTERMSIG(st));
    if (WEXITSTATUS(st) != code)
        return failf("exit %d, expected %d", WEXITSTATUS(st), code);
    return true;
}

static bool expect_out(const char *needle)
{
    char *out = slurp(path_in("out.txt"), NULL);
    bool ok = out && strstr(out, needle);
    free(out);
    return ok ? true : failf("serial output lacks \"%s\"", needle);
}

/* Boot the guest and check its exit code and (optionally) a serial line. */
static bool boot(const char *cmdline, const char *const *extra, int code, const char *needle)
{
    int st = wait_vmm(start_vmm(cmdline, extra), CASE_TIMEOUT_S);
    if (!expect_exit(st, code))
        return false;
    return needle ? expect_out(needle) : true;
}

static uint8_t pattern(uint64_t off) { return (uint8_t)(off % 251 + off / 512); }

static void make_disk(const char *path)
{
    uint8_t *b = malloc(DISK_BYTES);
    for (uint64_t i = 0; i < DISK_BYTES; i++)
        b[i] = pattern(i);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, b, DISK_BYTES) != DISK_BYTES) {
        perror(path);
        exit(2);
    }
    close(fd);
    free(b);
}

/* ---- cases ---- */

static bool t_bootparams(void)
{
    return boot("test=bootparams marker=hello-nexus expect_mem_mb=64 expect_cpus=1",
                (const char *const[]){ "--mem", "64", NULL }, 0, "PASS bootparams");
}

static bool t_bootparams_full(void)
{
    /* initrd, two disks, two vCPUs, more memory: all reflected in boot_params. */
    const char *initrd = path_in("initrd.img");
    FILE *f = fopen(initrd, "wb");
    fputs("NEXUS-INITRD", f);
    for (int i = 0; i < 12345; i++)
        fputc(i & 0xff, f);
    fclose(f);
    make_disk(path_in("bp-a.img"));
    make_disk(path_in("bp-b.img"));
    char ro[600];
    snprintf(ro, sizeof(ro), "%s,ro", path_in("bp-b.img"));
    return boot("test=bootparams marker=hello-nexus expect_mem_mb=256 expect_cpus=2 "
                "expect_initrd=12357 expect_disks=2",
                (const char *const[]){ "--mem", "256", "--vcpus", "2", "--initrd", initrd,
                                       "--disk", path_in("bp-a.img"), "--disk", ro, NULL },
                0, "PASS bootparams");
}

static bool t_serial_stdout(void)
{
    return boot("test=serial", NULL, 0,
                "serial: line one\nserial: dec 12345 hex 0xbeef\nserial: ring 3 line 0\n"
                "serial: ring 3 line 1\nserial: ring 3 line 2\nPASS serial\n");
}

static bool t_serial_file(void)
{
    char spec[600];
    snprintf(spec, sizeof(spec), "file:%s", path_in("serial.txt"));
    if (!boot("test=serial", (const char *const[]){ "--serial", spec, NULL }, 0, NULL))
        return false;
    char *s = slurp(path_in("serial.txt"), NULL), *o = slurp(path_in("out.txt"), NULL);
    bool ok = s && strstr(s, "serial: dec 12345 hex 0xbeef\n") && strstr(s, "PASS serial") &&
              o && !strstr(o, "serial:");
    free(s);
    free(o);
    return ok ? true : failf("serial file missing the output, or output also on stdout");
}

static bool t_exit_codes(void)
{
    static const struct { const char *code; int want; } c[] = {
        { "0", 0 }, { "42", 42 }, { "63", 63 }, { "99", 71 },
    };
    for (unsigned i = 0; i < 4; i++) {
        char cl[64];
        snprintf(cl, sizeof(cl), "test=exit code=%s", c[i].code);
        if (!boot(cl, NULL, c[i].want, NULL))
            return failf("guest exit %s: %s", c[i].code, fail_msg);
    }
    return true;
}

static bool t_triple_fault(void) { return boot("test=triplefault", NULL, 66, NULL); }
static bool t_reset(void) { return boot("test=reset", NULL, 69, NULL); }
static bool t_pvpanic(void) { return boot("test=pvpanic", NULL, 67, NULL); }
static bool t_panic_line(void) { return boot("test=panicline", NULL, 67, NULL); }
static bool t_exception(void) { return boot("test=exception", NULL, 32 + 6, NULL); }

static bool t_blk(void)
{
    const char *a = path_in("disk-rw.img"), *b = path_in("disk-ro.img");
    make_disk(a);
    make_disk(b);
    char ro[600];
    snprintf(ro, sizeof(ro), "%s,ro", b);
    if (!boot("test=blk disk_sectors=2048", (const char *const[]){ "--disk", a, "--disk", ro, NULL },
              0, "PASS blk"))
        return false;
    size_t n;
    uint8_t *d = (uint8_t *)slurp(a, &n), *e = (uint8_t *)slurp(b, NULL);
    bool ok = d && e && n == DISK_BYTES;
    for (int i = 0; ok && i < 1024; i++)
        ok = d[100 * 512 + i] == (uint8_t)(0x5a ^ i);
    for (uint64_t i = 0; ok && i < DISK_BYTES; i++)
        ok = (i >= 100 * 512 && i < 102 * 512) || d[i] == pattern(i);
    for (uint64_t i = 0; ok && i < DISK_BYTES; i++)
        ok = e[i] == pattern(i);
    free(d);
    free(e);
    return ok ? true : failf("disk files do not hold exactly what the guest wrote");
}

static bool t_blk_hostile(void)
{
    const char *a = path_in("disk-h.img");
    make_disk(a);
    return boot("test=blkhostile", (const char *const[]){ "--disk", a, NULL }, 0, "PASS blkhostile");
}

static bool t_smp(void)
{
    return boot("test=smp expect_cpus=4", (const char *const[]){ "--vcpus", "4", NULL }, 0, "PASS smp");
}

static int ctl_connect(const char *path, double timeout_s)
{
    double end = now_s() + timeout_s;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    while (now_s() < end) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        close(fd);
        usleep(10000);
    }
    return -1;
}

/* One request, one reply line; a monitor that does not answer within 60 s is a
 * failure of the case, not a hang of the whole run. */
static bool ctl_ask(int fd, const char *req, char *rep, size_t n)
{
    rep[0] = 0;
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return false;
    size_t got = 0;
    while (got < n - 1) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, 60000) != 1) {
            snprintf(rep, n, "(no reply within 60 s to %.60s)", req);
            return false;
        }
        ssize_t r = read(fd, rep + got, n - 1 - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
        rep[got] = 0;
        if (strchr(rep, '\n'))
            return true;
    }
    return false;
}

static bool t_control(void)
{
    const char *sock = path_in("ctl.sock");
    pid_t pid = start_vmm("test=hang", (const char *const[]){ "--control", sock, NULL });
    int fd = ctl_connect(sock, 30);
    char rep[1024];
    if (fd < 0) {
        kill(pid, SIGKILL);
        wait_vmm(pid, 5);
        return failf("control socket never appeared");
    }
    bool ok = ctl_ask(fd, "status\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"running\"") &&
              strstr(rep, "\"vcpus\":1");
    if (!ok)
        failf("bad status reply: %s", rep);
    /* The seccomp filter is in place while the guest runs. */
    char st_path[64];
    snprintf(st_path, sizeof(st_path), "/proc/%d/status", pid);
    char *st = slurp(st_path, NULL);
    if (ok && !(st && strstr(st, "Seccomp:\t2")))
        ok = failf("monitor is not in seccomp filter mode");
    free(st);
    if (ok && !(ctl_ask(fd, "{\"cmd\":\"bogus\"}\n", rep, sizeof(rep)) && strstr(rep, "\"ok\":false")))
        ok = failf("unknown command not refused: %s", rep);
    if (ok && !(ctl_ask(fd, "{\"cmd\":\"stop\"}\n", rep, sizeof(rep)) && strstr(rep, "\"ok\":true")))
        ok = failf("bad stop reply: %s", rep);
    close(fd);
    int s = wait_vmm(pid, 30);
    return ok && expect_exit(s, 70);
}

static bool t_sigterm(void)
{
    const char *sock = path_in("ctl2.sock");
    pid_t pid = start_vmm("test=hang", (const char *const[]){ "--control", sock, NULL });
    int fd = ctl_connect(sock, 30);
    if (fd >= 0)
        close(fd);
    kill(pid, SIGTERM);
    return expect_exit(wait_vmm(pid, 30), 70);
}

static bool t_config_json(void)
{
    const char *cfg = path_in("vm.json");
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"kernel\": \"%s\", \"cmdline\": \"test=exit code=5\", \"mem_mb\": 32, \"vcpus\": 1}\n", guest);
    fclose(f);
    /* --kernel and --cmdline from start_vmm override the file: use a raw exec. */
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(path_in("out.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        execl(vmm, vmm, "--config", cfg, (char *)NULL);
        _exit(127);
    }
    return expect_exit(wait_vmm(pid, CASE_TIMEOUT_S), 5);
}

/* virtio-net: in a fresh network namespace, make a persistent tap, bring it up,
 * and play the peer through a packet socket on it: expect the guest's NEXUS-PING
 * broadcast, answer with NEXUS-PONG to its MAC.  Runs in a child process so the
 * namespace dies with it; the child's exit status is the verdict. */
static int net_peer(void)
{
    if (unshare(CLONE_NEWNET) < 0) {
        printf("net: unshare(CLONE_NEWNET): %s\n", strerror(errno));
        return 10;
    }
    int tun = open("/dev/net/tun", O_RDWR);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strcpy(ifr.ifr_name, "nxt0");
    if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0 || ioctl(tun, TUNSETPERSIST, 1) < 0) {
        printf("net: cannot make tap nxt0: %s\n", strerror(errno));
        return 11;
    }
    close(tun);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "nxt0");
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
        printf("net: cannot bring nxt0 up: %s\n", strerror(errno));
        return 12;
    }
    close(s);
    int ps = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
                               .sll_ifindex = (int)if_nametoindex("nxt0") };
    if (ps < 0 || bind(ps, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        printf("net: packet socket: %s\n", strerror(errno));
        return 13;
    }
    pid_t vm = start_vmm("test=net", (const char *const[]){ "--net", "nxt0", NULL });
    struct pollfd p = { ps, POLLIN, 0 };
    uint8_t f[2048];
    ssize_t n = 0;
    double end = now_s() + 90;
    while (now_s() < end) {
        if (poll(&p, 1, 500) == 1) {
            n = recv(ps, f, sizeof(f), 0);
            if (n >= 24 && !memcmp(f + 14, "NEXUS-PING", 10))
                break;
        }
        n = 0;
        if (waitpid(vm, NULL, WNOHANG) == vm)
            return 14;   /* the VM ended without sending */
    }
    if (n == 0) {
        kill(vm, SIGKILL);
        waitpid(vm, NULL, 0);
        printf("net: no NEXUS-PING frame from the guest\n");
        return 15;
    }
    uint8_t r[60];
    memset(r, 0, sizeof(r));
    memcpy(r, f + 6, 6);                                      /* to the guest's MAC */
    memcpy(r + 6, "\x02\x00\x00\x00\x00\x01", 6);
    r[12] = 0x88; r[13] = 0xb5;
    memcpy(r + 14, "NEXUS-PONG", 10);
    if (send(ps, r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        printf("net: send: %s\n", strerror(errno));
        return 16;
    }
    int st = wait_vmm(vm, CASE_TIMEOUT_S);
    if (st == -1 || !WIFEXITED(st))
        return 17;
    return WEXITSTATUS(st) == 0 ? 0 : 18;
}

static bool t_net(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(net_peer());
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return failf("net peer failed (%d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return expect_out("PASS net");
}


/* ---- snapshots (vmm/tests/guest/snap.c: test=count) ---- */

#define COUNT_CMDLINE "test=count shift=21"

/* Wait until the file holds at least `n` complete "tick" lines. */
static bool wait_ticks(const char *file, int n, double timeout_s, pid_t pid)
{
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        char *o = slurp(file, NULL);
        int k = 0;
        for (char *q = o; q && (q = strstr(q, "tick ")); q++)
            if (strchr(q, '\n'))
                k++;
        free(o);
        if (k >= n)
            return true;
        siginfo_t si = { 0 };   /* ended? (WNOWAIT: the caller still reaps it) */
        if (pid > 0 && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return false;
        usleep(20000);
    }
    return false;
}

/* The serial stream `text` must be "testguest..." then tick lines numbered
 * consecutively from 1: what a restored clone prints continues the original's
 * stream byte for byte.  Returns the number of ticks, or -1. */
static int consecutive_ticks(const char *text)
{
    const char *q = strstr(text, "tick ");
    long want = 1;
    int n = 0;
    while (q && (q = strstr(q, "tick "))) {
        char *e;
        long v = strtol(q + 5, &e, 10);
        if (*e != '\n')
            break;   /* a line still being written */
        if (v != want)
            return -1;
        want++;
        n++;
        q = e;
    }
    return n;
}

static pid_t start_restore(const char *dir, const char *serial, const char *ctl, const char *const *extra)
{
    char spec[600];
    snprintf(spec, sizeof(spec), "file:%s", serial);
    const char *argv[40];
    int n = 0;
    argv[n++] = vmm;
    argv[n++] = "--restore";
    argv[n++] = dir;
    argv[n++] = "--serial";
    argv[n++] = spec;
    if (ctl) {
        argv[n++] = "--control";
        argv[n++] = ctl;
    }
    for (; extra && *extra && n < 38; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        char errf[600];
        snprintf(errf, sizeof(errf), "%s.err", serial);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(e, 2);
        execv(vmm, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static uint64_t file_sum(const char *path)
{
    int fd = open(path, O_RDONLY);
    uint64_t h = 1469598103934665603ULL;
    uint8_t b[65536];
    ssize_t r;
    while (fd >= 0 && (r = read(fd, b, sizeof(b))) > 0)
        for (ssize_t i = 0; i < r; i++)
            h = (h ^ b[i]) * 1099511628211ULL;
    if (fd >= 0)
        close(fd);
    return h;
}

/* Boot `cmdline` with a control socket, let it print `ticks` ticks (0: none),
 * pause, snapshot into dir; the serial text at that moment goes to *prefix.
 * The original is stopped afterwards. */
static bool make_snapshot(const char *cmdline, int ticks, const char *dir, char **prefix, const char *vcpus)
{
    const char *sock = path_in("snap-orig.sock"), *serial = path_in("snap-orig.txt");
    char spec[600], rep[1024], req[700];
    snprintf(spec, sizeof(spec), "file:%s", serial);
    pid_t pid = start_vmm(cmdline, (const char *const[]){ "--control", sock, "--serial", spec, "--vcpus", vcpus, NULL });
    int fd = ctl_connect(sock, 30);
    bool ok = fd >= 0;
    if (!ok)
        failf("control socket never appeared");
    if (ok && ticks && !wait_ticks(serial, ticks, 60, pid))
        ok = failf("the original guest printed fewer than %d ticks", ticks);
    mkdir(dir, 0755);
    snprintf(req, sizeof(req), "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}\n", dir);
    if (ok && !(ctl_ask(fd, req, rep, sizeof(rep)) && strstr(rep, "\"ok\":false") && strstr(rep, "not paused")))
        ok = failf("snapshot of a running VM not refused: %s", rep);
    if (ok && !(ctl_ask(fd, "{\"cmd\":\"pause\"}\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"paused\"")))
        ok = failf("bad pause reply: %s", rep);
    if (ok && !(ctl_ask(fd, "status\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"paused\"")))
        ok = failf("status while paused: %s", rep);
    if (ok && !(ctl_ask(fd, req, rep, sizeof(rep)) && strstr(rep, "\"ok\":true") && strstr(rep, "\"memory_bytes\":")))
        ok = failf("bad snapshot reply: %s", rep);
    if (ok && prefix)
        *prefix = slurp(serial, NULL);
    if (ok && !(ctl_ask(fd, "{\"cmd\":\"resume\"}\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"running\"")))
        ok = failf("bad resume reply: %s", rep);
    if (ok && ticks && !wait_ticks(serial, ticks + 2, 60, pid))
        ok = failf("the original did not go on counting after resume");
    if (fd >= 0) {
        ctl_ask(fd, "stop\n", rep, sizeof(rep));
        close(fd);
    }
    int st = wait_vmm(pid, 30);
    return ok && expect_exit(st, 70);
}

static bool t_snapshot_restore(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/snap1", work);
    char *prefix = NULL;
    if (!make_snapshot(COUNT_CMDLINE, 3, dir, &prefix, "1"))
        return false;
    char mem[600];
    snprintf(mem, sizeof(mem), "%s/memory", dir);
    uint64_t before = file_sum(mem);
    int base = consecutive_ticks(prefix);
    if (base < 3) {
        free(prefix);
        return failf("the original's ticks are not consecutive (%d)", base);
    }
    /* Two clones of the one snapshot, at the same time. */
    const char *ser[2] = { path_in("clone-a.txt"), path_in("clone-b.txt") };
    const char *ctl[2] = { path_in("clone-a.sock"), path_in("clone-b.sock") };
    pid_t pid[2];
    for (int i = 0; i < 2; i++)
        pid[i] = start_restore(dir, ser[i], ctl[i], NULL);
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++)
        if (!wait_ticks(ser[i], 4, 60, pid[i])) {
            char ef[600];
            snprintf(ef, sizeof(ef), "%s.err", ser[i]);
            char *e = slurp(ef, NULL), *o = slurp(ser[i], NULL);
            ok = failf("clone %c printed fewer than 4 ticks: serial [%.100s] stderr [%.250s]", 'a' + i,
                       o ? o : "", e ? e : "");
            free(e);
            free(o);
        }
    for (int i = 0; i < 2; i++) {
        int fd = ctl_connect(ctl[i], 5);
        char rep[1024] = "";
        if (fd >= 0 && ok && !(ctl_ask(fd, "status\n", rep, sizeof(rep)) && strstr(rep, "\"restored\":true")))
            ok = failf("clone status: %s", rep);
        if (fd >= 0)
            close(fd);
        kill(pid[i], SIGTERM);
        int st = wait_vmm(pid[i], 30);
        if (ok && !expect_exit(st, 70))
            ok = failf("clone %c: %s", 'a' + i, fail_msg);
    }
    for (int i = 0; i < 2 && ok; i++) {
        char *c = slurp(ser[i], NULL);
        size_t lp = strlen(prefix), lc = c ? strlen(c) : 0;
        char *all = malloc(lp + lc + 1);
        memcpy(all, prefix, lp);
        memcpy(all + lp, c ? c : "", lc + 1);
        int n = consecutive_ticks(all);
        if (n < base + 3)
            ok = failf("clone %c does not continue the count from tick %d (%d consecutive ticks in all): %.200s",
                       'a' + i, base, n, c ? c : "");
        free(all);
        free(c);
    }
    if (ok && file_sum(mem) != before)
        ok = failf("the snapshot's memory file changed while clones ran (must be MAP_PRIVATE)");
    free(prefix);
    return ok;
}

static bool copy_file(const char *from, const char *to, long flip_at, int set_version)
{
    size_t n;
    char *b = slurp(from, &n);
    if (!b)
        return false;
    if (flip_at >= 0 && (size_t)flip_at < n)
        b[flip_at] ^= 0x40;
    if (set_version >= 0)
        memcpy(b + 8, &set_version, 4);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0 && write(fd, b, n) == (ssize_t)n;
    close(fd);
    free(b);
    return ok;
}

/* Copy a sparse memory file (its data extents) and flip one byte 100 bytes
 * into its first data extent, i.e. inside a page the guest had written. */
static bool copy_sparse_flip(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct stat st;
    bool ok = in >= 0 && out >= 0 && fstat(in, &st) == 0 && ftruncate(out, st.st_size) == 0;
    static char buf[1 << 16];
    off_t first = -1;
    for (off_t off = 0; ok && off < st.st_size;) {
        off_t data = lseek(in, off, SEEK_DATA);
        if (data < 0)
            break;
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (first < 0)
            first = data;
        for (off_t p = data; ok && p < hole;) {
            ssize_t k = pread(in, buf, (size_t)(hole - p) < sizeof(buf) ? (size_t)(hole - p) : sizeof(buf), p);
            ok = k > 0 && pwrite(out, buf, (size_t)k, p) == k;
            p += k > 0 ? k : 0;
        }
        off = hole;
    }
    char c;
    ok = ok && first >= 0 && pread(in, &c, 1, first + 100) == 1;
    c ^= 0x40;
    ok = ok && pwrite(out, &c, 1, first + 100) == 1;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (!ok)
        failf("copying %s with a flipped byte failed", from);
    return ok;
}

/* Restore from a bad snapshot: must exit 72 with `why` on stderr, before running. */
static bool expect_refused(const char *dir, const char *why, const char *const *extra)
{
    const char *ser = path_in("refused.txt");
    pid_t pid = start_restore(dir, ser, NULL, extra);
    int st = wait_vmm(pid, CASE_TIMEOUT_S);
    char errf[600];
    snprintf(errf, sizeof(errf), "%s.err", ser);
    char *e = slurp(errf, NULL), *o = slurp(ser, NULL);
    bool ok = expect_exit(st, 72);
    printf("tier1:   restore %s -> %s\n", dir, ok ? "72" : fail_msg);
    if (ok && !(e && strstr(e, why)))
        ok = failf("stderr lacks \"%s\": %s", why, e ? e : "");
    if (ok && o && strstr(o, "tick"))
        ok = failf("the guest ran although the snapshot was refused");
    if (!ok) {
        char m[sizeof(fail_msg)];
        memcpy(m, fail_msg, sizeof(m));
        failf("%.200s: %.300s", dir, m);
    }
    free(e);
    free(o);
    return ok;
}

static bool t_snapshot_refused(void)
{
    char dir[512];   /* not path_in()'s rotating buffers: used all along */
    snprintf(dir, sizeof(dir), "%s/snap2", work);
    if (!make_snapshot(COUNT_CMDLINE, 1, dir, NULL, "1"))
        return false;
    char vs[600], mem[600], d[512], p[600];
    snprintf(vs, sizeof(vs), "%s/vmstate", dir);
    snprintf(mem, sizeof(mem), "%s/memory", dir);
    size_t len;
    free(slurp(vs, &len));
    bool ok = true;
    /* corrupt vmstate: one flipped byte in the middle */
    snprintf(d, sizeof(d), "%s/bad-sum", work);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/vmstate", d);
    ok = ok && copy_file(vs, p, (long)len / 2, -1);
    snprintf(p, sizeof(p), "%s/memory", d);
    ok = ok && link(mem, p) == 0;
    ok = ok && expect_refused(d, "checksum mismatch", NULL);
    /* format version from the future */
    snprintf(d, sizeof(d), "%s/bad-version", work);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/vmstate", d);
    ok = ok && copy_file(vs, p, -1, 99);
    snprintf(p, sizeof(p), "%s/memory", d);
    ok = ok && link(mem, p) == 0;
    ok = ok && expect_refused(d, "format version 99", NULL);
    /* truncated memory file */
    snprintf(d, sizeof(d), "%s/bad-memory", work);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/vmstate", d);
    ok = ok && link(vs, p) == 0;
    snprintf(p, sizeof(p), "%s/memory", d);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok = ok && fd >= 0 && ftruncate(fd, 64 << 20) == 0;
    close(fd);
    ok = ok && expect_refused(d, "truncated", NULL);
    /* one flipped byte inside the memory file's data: restores without
     * verification (only the size is checked), refused with it, naming the file */
    snprintf(d, sizeof(d), "%s/bad-memsum", work);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/vmstate", d);
    ok = ok && link(vs, p) == 0;
    snprintf(p, sizeof(p), "%s/memory", d);
    ok = ok && copy_sparse_flip(mem, p);
    setenv("NEXUS_VMM_VERIFY_MEMORY", "1", 1);   /* = --verify-memory (docs/vmm.md) */
    char why[700];
    snprintf(why, sizeof(why), "%s: memory checksum mismatch", p);
    ok = ok && expect_refused(d, why, NULL);
    unsetenv("NEXUS_VMM_VERIFY_MEMORY");
    /* other devices than at snapshot time */
    const char *disk = path_in("snap-extra.img");
    make_disk(disk);
    ok = ok && expect_refused(dir, "devices differ", (const char *const[]){ "--disk", disk, NULL });
    /* and the good one still restores (and counts on), its memory verified */
    if (ok) {
        const char *ser = path_in("snap2-clone.txt");
        setenv("NEXUS_VMM_VERIFY_MEMORY", "1", 1);
        pid_t pid = start_restore(dir, ser, NULL, NULL);
        unsetenv("NEXUS_VMM_VERIFY_MEMORY");
        if (!wait_ticks(ser, 2, 60, pid)) {
            char ef[600];
            snprintf(ef, sizeof(ef), "%s.err", ser);
            char *e = slurp(ef, NULL);
            ok = failf("the intact snapshot did not restore: %.300s", e ? e : "");
            free(e);
        }
        printf("tier1:   intact snapshot restored: %s\n", ok ? "yes" : fail_msg);
        kill(pid, SIGTERM);
        int st = wait_vmm(pid, 30);
        if (ok && !expect_exit(st, 70))
            ok = false;
    }
    return ok;
}

/* A snapshot of a restored VM (its RAM is a private file mapping, scanned page by
 * page), restored again: the count goes on across both generations, and the
 * second memory file is sparse too. */
static bool t_snapshot_chain(void)
{
    char a[512], b[512], req[700], rep[1024];
    snprintf(a, sizeof(a), "%s/chain-a", work);
    snprintf(b, sizeof(b), "%s/chain-b", work);
    char *prefix = NULL;
    /* Two vCPUs: the second sits in wait-for-SIPI, its state (MP state, LAPIC)
     * goes through both generations too. */
    if (!make_snapshot(COUNT_CMDLINE, 2, a, &prefix, "2"))
        return false;
    const char *ser1 = path_in("chain-1.txt"), *sock1 = path_in("chain-1.sock");
    pid_t pid = start_restore(a, ser1, sock1, NULL);
    bool ok = wait_ticks(ser1, 2, 60, pid);
    if (!ok)
        failf("the first restore did not count");
    int fd = ok ? ctl_connect(sock1, 10) : -1;
    if (ok && !(fd >= 0 && ctl_ask(fd, "status\n", rep, sizeof(rep)) && strstr(rep, "\"vcpus\":2")))
        ok = failf("restored status: %s", rep);
    mkdir(b, 0755);
    snprintf(req, sizeof(req), "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}\n", b);
    if (ok && !(fd >= 0 && ctl_ask(fd, "pause\n", rep, sizeof(rep)) && ctl_ask(fd, req, rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":true")))
        ok = failf("snapshot of the restored VM: %s", rep);
    char *mid = ok ? slurp(ser1, NULL) : NULL;
    if (fd >= 0) {
        ctl_ask(fd, "stop\n", rep, sizeof(rep));
        close(fd);
    }
    int st = wait_vmm(pid, 30);
    ok = ok && expect_exit(st, 70);
    char mem[600];
    snprintf(mem, sizeof(mem), "%s/memory", b);
    struct stat sb;
    if (ok && !(stat(mem, &sb) == 0 && sb.st_size == 128 << 20 && sb.st_blocks * 512LL < (32LL << 20)))
        ok = failf("second-generation memory file: %lld bytes, %lld allocated (want sparse)",
                   (long long)sb.st_size, (long long)sb.st_blocks * 512);
    if (ok) {
        const char *ser2 = path_in("chain-2.txt");
        pid = start_restore(b, ser2, NULL, NULL);
        ok = wait_ticks(ser2, 2, 60, pid);
        kill(pid, SIGTERM);
        st = wait_vmm(pid, 30);
        ok = ok ? expect_exit(st, 70) : failf("the second-generation restore did not count");
        char *c = slurp(ser2, NULL);
        size_t l1 = strlen(prefix), l2 = strlen(mid), l3 = c ? strlen(c) : 0;
        char *all = malloc(l1 + l2 + l3 + 1);
        memcpy(all, prefix, l1);
        memcpy(all + l1, mid, l2);
        memcpy(all + l1 + l2, c ? c : "", l3 + 1);
        int n = consecutive_ticks(all);
        if (ok && n < consecutive_ticks(prefix) + 4)
            ok = failf("the count does not go on across two generations (%d consecutive ticks)", n);
        free(all);
        free(c);
    }
    free(prefix);
    free(mid);
    return ok;
}

/* ---- --nexus control: the region and eventfds as SCM_RIGHTS on --control-fd ---- */

static bool send_fds(int sock, const char *line, const int *fds, int n)
{
    union { char b[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr a; } c;
    memset(&c, 0, sizeof(c));
    struct iovec iov = { (void *)line, 1 };   /* the fds ride on the first byte */
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n) };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)n);
    if (sendmsg(sock, &m, 0) != 1)
        return false;
    size_t rest = strlen(line) - 1;
    return write(sock, line + 1, rest) == (ssize_t)rest;
}

static bool read_reply(int fd, char *rep, size_t n)
{
    size_t got = 0;
    rep[0] = 0;
    while (got < n - 1) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, 60000) != 1)
            return false;
        ssize_t r = read(fd, rep + got, n - 1 - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
        rep[got] = 0;
        if (strchr(rep, '\n'))
            return true;
    }
    return false;
}

static bool t_nexus_attach(void)
{
    enum { REGION = 4 << 20 };
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
        return failf("socketpair: %s", strerror(errno));
    fcntl(sp[0], F_SETFD, FD_CLOEXEC);
    int region = memfd_create("region", MFD_CLOEXEC), small = memfd_create("small", MFD_CLOEXEC);
    int bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), irq = eventfd(0, EFD_CLOEXEC);
    const char *plain = path_in("not-a-memfd");
    int file = open(plain, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (region < 0 || small < 0 || bell < 0 || irq < 0 || file < 0 || ftruncate(region, REGION) < 0 ||
        ftruncate(small, 1 << 20) < 0 || ftruncate(file, REGION) < 0)
        return failf("cannot make the fds");
    uint64_t *r = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_SHARED, region, 0);
    r[8] = 0x4e4558555352474eULL;
    char fdarg[16], cl[96];
    snprintf(fdarg, sizeof(fdarg), "%d", sp[1]);
    snprintf(cl, sizeof(cl), "test=nexus expect_len=%d", REGION);
    pid_t pid = start_vmm(cl, (const char *const[]){ "--control-fd", fdarg, "--nexus", "control", NULL });
    close(sp[1]);
    char rep[1024];
    bool ok = ctl_ask(sp[0], "status\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"created\"");
    if (!ok)
        failf("status before nexus-attach: %s", rep);
    const char *att = "{\"cmd\":\"nexus-attach\"}\n";
    if (ok && !(send_fds(sp[0], att, (int[]){ file, bell, irq }, 3) && read_reply(sp[0], rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":false") && strstr(rep, "memfd")))
        ok = failf("a regular file as the region was not refused: %s", rep);
    if (ok && !(send_fds(sp[0], att, (int[]){ small, bell, irq }, 3) && read_reply(sp[0], rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":false")))
        ok = failf("a too-small region was not refused: %s", rep);
    if (ok && !(send_fds(sp[0], att, (int[]){ region, bell }, 2) && read_reply(sp[0], rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":false")))
        ok = failf("nexus-attach with two fds was not refused: %s", rep);
    char *o = slurp(path_in("out.txt"), NULL);
    if (ok && o && strstr(o, "testguest"))
        ok = failf("the guest ran before nexus-attach");
    free(o);
    /* The good set, plus a pipe's write end as an extra fd the monitor must close. */
    int pp[2];
    if (pipe(pp) < 0)
        return failf("pipe");
    if (ok && !(send_fds(sp[0], att, (int[]){ region, bell, irq, pp[1] }, 4) && read_reply(sp[0], rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":true")))
        ok = failf("nexus-attach refused: %s", rep);
    close(pp[1]);
    struct pollfd pf = { pp[0], POLLIN, 0 };
    char c;
    if (ok && !(poll(&pf, 1, 10000) == 1 && read(pp[0], &c, 1) == 0))
        ok = failf("the extra fd sent with nexus-attach was not closed");
    int st = wait_vmm(pid, CASE_TIMEOUT_S);
    ok = ok && expect_exit(st, 0) && expect_out("PASS nexus");
    uint64_t kicks = 0;
    if (ok && r[16] != 0x600dcafe600dcafeULL)
        ok = failf("the guest's write is not in the region");
    if (ok && !(read(bell, &kicks, 8) == 8 && kicks >= 1))
        ok = failf("the doorbell eventfd was not signalled");
    if (!ok && waitpid(pid, NULL, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        wait_vmm(pid, 5);
    }
    close(sp[0]);
    close(region); close(small); close(bell); close(irq); close(file); close(pp[0]);
    munmap(r, REGION);
    return ok;
}

/* Snapshot of a guest using the Nexus device, restored with a fresh region over
 * --control-fd/--nexus control: the VM waits for nexus-attach, a region of another
 * size is refused, and the guest sees the new region at the address it had. */
static bool nexus_ticks(const char *text, long *first, long *last, uint64_t *marker, int *n)
{
    *n = 0;
    for (const char *q = text; (q = strstr(q, "tick ")); q++) {
        long t;
        unsigned long m;
        if (!strchr(q, '\n') || sscanf(q, "tick %ld region %lx", &t, &m) != 2)
            continue;
        if (*n && t != *last + 1)
            return false;
        if (!*n)
            *first = t;
        *last = t;
        *marker = m;
        (*n)++;
    }
    return true;
}

static bool t_snapshot_nexus(void)
{
    enum { REGION = 4 << 20 };
    int ra = memfd_create("region-a", MFD_CLOEXEC), rb = memfd_create("region-b", MFD_CLOEXEC);
    int rc = memfd_create("region-c", MFD_CLOEXEC);
    int e[4];
    for (int i = 0; i < 4; i++)
        e[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ra < 0 || rb < 0 || rc < 0 || ftruncate(ra, REGION) < 0 || ftruncate(rb, REGION) < 0 ||
        ftruncate(rc, 2 * REGION) < 0)
        return failf("cannot make the regions");
    uint64_t ma = 0xaaaa000000000001ULL, mb = 0xbbbb000000000002ULL;
    if (pwrite(ra, &ma, 8, 64) != 8 || pwrite(rb, &mb, 8, 64) != 8)
        return failf("cannot write the markers");
    char dir[512], fdarg[16], rep[1024], req[700];
    snprintf(dir, sizeof(dir), "%s/snap-nexus", work);
    mkdir(dir, 0755);
    const char *att = "{\"cmd\":\"nexus-attach\"}\n";

    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    fcntl(sp[0], F_SETFD, FD_CLOEXEC);
    snprintf(fdarg, sizeof(fdarg), "%d", sp[1]);
    const char *serial = path_in("nx-orig.txt");
    char spec[600];
    snprintf(spec, sizeof(spec), "file:%s", serial);
    pid_t pid = start_vmm("test=nexuscount shift=21", (const char *const[]){ "--control-fd", fdarg, "--nexus",
                                                                         "control", "--serial", spec, NULL });
    close(sp[1]);
    bool ok = send_fds(sp[0], att, (int[]){ ra, e[0], e[1] }, 3) && read_reply(sp[0], rep, sizeof(rep)) &&
              strstr(rep, "\"ok\":true");
    if (!ok)
        failf("nexus-attach (boot): %s", rep);
    if (ok && !wait_ticks(serial, 2, 60, pid))
        ok = failf("the guest did not count");
    snprintf(req, sizeof(req), "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}\n", dir);
    if (ok && !(ctl_ask(sp[0], "pause\n", rep, sizeof(rep)) && ctl_ask(sp[0], req, rep, sizeof(rep)) &&
                strstr(rep, "\"ok\":true")))
        ok = failf("pause/snapshot: %s", rep);
    char *prefix = ok ? slurp(serial, NULL) : NULL;
    ctl_ask(sp[0], "stop\n", rep, sizeof(rep));
    close(sp[0]);
    int st = wait_vmm(pid, 30);
    ok = ok && expect_exit(st, 70);
    long f0 = 0, l0 = 0;
    uint64_t m0 = 0;
    int n0 = 0;
    if (ok && !(prefix && nexus_ticks(prefix, &f0, &l0, &m0, &n0) && n0 >= 2 && m0 == ma))
        ok = failf("the original's ticks: %d, region marker %lx", n0, (unsigned long)m0);

    /* Restore, with a fresh region that arrives over the control connection. */
    if (ok) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
        fcntl(sp[0], F_SETFD, FD_CLOEXEC);
        snprintf(fdarg, sizeof(fdarg), "%d", sp[1]);
        const char *ser = path_in("nx-clone.txt");
        pid = start_restore(dir, ser, NULL, (const char *const[]){ "--control-fd", fdarg, "--nexus", "control", NULL });
        close(sp[1]);
        if (!(ctl_ask(sp[0], "status\n", rep, sizeof(rep)) && strstr(rep, "\"state\":\"created\"")))
            ok = failf("restored VM before nexus-attach: %s", rep);
        usleep(300000);
        char *o = slurp(ser, NULL);
        if (ok && o && strstr(o, "tick"))
            ok = failf("the restored guest ran before nexus-attach");
        free(o);
        if (ok && !(send_fds(sp[0], att, (int[]){ rc, e[2], e[3] }, 3) && read_reply(sp[0], rep, sizeof(rep)) &&
                    strstr(rep, "\"ok\":false") && strstr(rep, "snapshotted")))
            ok = failf("a region of another size than the snapshotted one was not refused: %s", rep);
        if (ok && !(send_fds(sp[0], att, (int[]){ rb, e[2], e[3] }, 3) && read_reply(sp[0], rep, sizeof(rep)) &&
                    strstr(rep, "\"ok\":true")))
            ok = failf("nexus-attach (restore): %s", rep);
        if (ok && !wait_ticks(ser, 3, 60, pid))
            ok = failf("the restored guest did not count");
        ctl_ask(sp[0], "stop\n", rep, sizeof(rep));
        close(sp[0]);
        st = wait_vmm(pid, 30);
        ok = ok && expect_exit(st, 70);
        o = slurp(ser, NULL);
        long f1 = 0, l1 = 0;
        uint64_t m1 = 0;
        int n1 = 0;
        /* The first line may be the rest of one the original had begun. */
        const char *from = o ? strchr(o, '\n') : NULL;
        if (ok && !(from && nexus_ticks(from, &f1, &l1, &m1, &n1) && n1 >= 2 && m1 == mb &&
                    (f1 == l0 + 1 || f1 == l0 + 2)))
            ok = failf("restored ticks %ld..%ld (%d) after %ld, region marker %lx (want %lx)", f1, l1, n1, l0,
                       (unsigned long)m1, (unsigned long)mb);
        free(o);
    }
    free(prefix);
    close(ra); close(rb); close(rc);
    for (int i = 0; i < 4; i++)
        close(e[i]);
    return ok;
}

/* ---- tier 2: the real Linux guest (run from tests/rig/guest-checks.sh) ----
 *   vmm-tier1 --linux NEXUS_VMM BZIMAGE ROOTFS WORKDIR
 * Boots the guest with a python loop that, every 0.2 s, reads a 4 KiB block of
 * /dev/vda with O_DIRECT (a real virtio-blk request each time) and prints a
 * counter, its monotonic and wall clocks; snapshots it, kills the original,
 * restores: the count must go on from where it was, the clocks must be sane and
 * the disk reads must keep working (the virtqueue state survived).  Then
 * ws-save, and a second restore with --ws.  Prints "CHECK nexus:NAME PASS|FAIL". */

static const char linux_prog[] =
    "import os, time, mmap\n"
    "fd = os.open('/dev/vda', os.O_RDONLY | os.O_DIRECT)\n"
    "buf = mmap.mmap(-1, 4096)\n"
    "blocks = os.lseek(fd, 0, os.SEEK_END) // 4096\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    n = os.preadv(fd, [buf], (i * 7919 % blocks) * 4096)\n"
    "    print('count %d mono %.3f real %.3f blk %d' % (i, time.monotonic(), time.time(), n), flush=True)\n"
    "    time.sleep(0.2)\n";

static void pct_encode(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 4 < n; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '_')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, n - o, "%%%02X", c);
    }
    out[o] = 0;
}

struct count_line { long n; double mono, real; int blk; };

/* Parse the complete "count" lines of a console log; returns how many. */
static int count_lines(const char *text, struct count_line *out, int max)
{
    int k = 0;
    for (const char *q = text; q && k < max && (q = strstr(q, "count ")); q++) {
        const char *nl = strchr(q, '\n');
        if (!nl)
            break;
        struct count_line c;
        if (sscanf(q, "count %ld mono %lf real %lf blk %d", &c.n, &c.mono, &c.real, &c.blk) == 4)
            out[k++] = c;
    }
    return k;
}

static int wait_counts(const char *file, int n, double timeout_s, pid_t pid)
{
    static struct count_line cl[4096];
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        char *o = slurp(file, NULL);
        int k = o ? count_lines(o, cl, 4096) : 0;
        free(o);
        if (k >= n)
            return k;
        siginfo_t si = { 0 };
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            return -1;
        usleep(100000);
    }
    return -1;
}

static void check_line(const char *name, bool ok, const char *detail)
{
    printf("CHECK nexus:%s %s %s\n", name, ok ? "PASS" : "FAIL", detail);
}

static int linux_snapshot(const char *kernel, const char *disk)
{
    static char enc[8192], cmdline[9000], diskarg[600], spec[600], rep[1024], req[700], msg[600];
    static struct count_line a[4096], b[4096];
    pct_encode(linux_prog, enc, sizeof(enc));
    snprintf(cmdline, sizeof(cmdline), "console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 "
             "init=/sbin/nexus-init panic=-1 reboot=k nexus.cmd=\"/usr/bin/python3 -c %s\"", enc);
    snprintf(diskarg, sizeof(diskarg), "%s,ro", disk);
    const char *sock = path_in("lx-orig.sock"), *serial = path_in("lx-orig.txt");
    snprintf(spec, sizeof(spec), "file:%s", serial);
    pid_t pid = fork();
    if (pid == 0) {
        int e = open(path_in("lx-orig.err"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(e, 2);
        execl(vmm, vmm, "--kernel", kernel, "--mem", "128", "--disk", diskarg, "--serial", spec,
              "--control", sock, "--cmdline", cmdline, (char *)NULL);
        _exit(127);
    }
    bool ok = wait_counts(serial, 5, 240, pid) >= 5;
    int fd = ok ? ctl_connect(sock, 10) : -1;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/lx-snap", work);
    mkdir(dir, 0755);
    snprintf(req, sizeof(req), "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}\n", dir);
    ok = ok && fd >= 0 && ctl_ask(fd, "pause\n", rep, sizeof(rep)) && strstr(rep, "paused") &&
         ctl_ask(fd, req, rep, sizeof(rep)) && strstr(rep, "\"ok\":true");
    printf("INFO nexus: snapshot of the Linux guest (128 MiB): %s", ok ? rep : "failed\n");
    char *pre = slurp(serial, NULL);
    int na = pre ? count_lines(pre, a, 4096) : 0;
    free(pre);
    kill(pid, SIGKILL);   /* the original is gone for good */
    wait_vmm(pid, 30);
    if (fd >= 0)
        close(fd);
    if (!ok || na < 5) {
        char *e = slurp(path_in("lx-orig.err"), NULL);
        snprintf(msg, sizeof(msg), "the original guest did not count or could not be snapshotted: %.300s",
                 e ? e : "");
        free(e);
        check_line("snapshot-restore", false, msg);
        return 1;
    }

    /* Restore (a new process), with the disk given again. */
    const char *ser2 = path_in("lx-clone.txt"), *sock2 = path_in("lx-clone.sock");
    pid_t c = start_restore(dir, ser2, sock2, (const char *const[]){ "--disk", diskarg, NULL });
    int nb = wait_counts(ser2, 6, 120, c);
    char *post = slurp(ser2, NULL);
    nb = post ? count_lines(post, b, 4096) : 0;
    free(post);
    struct count_line *last = &a[na - 1];
    bool cont = nb >= 6 && (b[0].n == last->n + 1 || b[0].n == last->n + 2);
    for (int i = 1; cont && i < nb; i++)
        cont = b[i].n == b[i - 1].n + 1;
    snprintf(msg, sizeof(msg), "snapshot at count %ld; restored guest printed %d lines from count %ld", last->n, nb,
             nb ? b[0].n : -1L);
    check_line("snapshot-restore-counter", cont, msg);
    bool mono = nb >= 6;
    for (int i = 0; mono && i < nb; i++)
        mono = b[i].mono > (i ? b[i - 1].mono : last->mono) && b[i].mono - (i ? b[i - 1].mono : last->mono) < 30 &&
               b[i].real >= last->real;
    snprintf(msg, sizeof(msg), "guest monotonic %.3f at the snapshot, %.3f .. %.3f after restore (wall %.3f -> %.3f)",
             last->mono, nb ? b[0].mono : 0, nb ? b[nb - 1].mono : 0, last->real, nb ? b[nb - 1].real : 0);
    check_line("snapshot-restore-clock", mono, msg);
    bool blk = nb >= 6;
    for (int i = 0; blk && i < nb; i++)
        blk = b[i].blk == 4096;
    check_line("snapshot-restore-virtio-blk", blk,
               blk ? "every O_DIRECT read of /dev/vda after restore returned 4096 bytes"
                   : "a virtio-blk read after restore failed or the guest stopped counting");

    /* Working set of the clone, then a second restore pre-faulting it. */
    const char *ws = path_in("lx.ws");
    fd = ctl_connect(sock2, 10);
    snprintf(req, sizeof(req), "{\"cmd\":\"ws-save\",\"file\":\"%s\"}\n", ws);
    bool wsok = fd >= 0 && ctl_ask(fd, req, rep, sizeof(rep)) && strstr(rep, "\"ok\":true");
    if (fd >= 0)
        close(fd);
    kill(c, SIGTERM);
    wait_vmm(c, 30);
    printf("INFO nexus: ws-save: %s", wsok ? rep : "failed\n");
    if (wsok) {
        const char *ser3 = path_in("lx-ws.txt");
        pid_t w = start_restore(dir, ser3, NULL, (const char *const[]){ "--disk", diskarg, "--ws", ws, NULL });
        wsok = wait_counts(ser3, 3, 120, w) >= 3;
        kill(w, SIGTERM);
        wsok = expect_exit(wait_vmm(w, 30), 70) && wsok;
    }
    check_line("snapshot-ws-restore", wsok, wsok ? "ws-save wrote the touched pages; a restore with --ws counts on"
                                                  : "ws-save or the --ws restore failed");
    return cont && mono && blk && wsok ? 0 : 1;
}

static const struct { const char *name; bool (*fn)(void); } cases[] = {
    { "bootparams", t_bootparams },
    { "bootparams-initrd-disks-2cpu", t_bootparams_full },
    { "serial-stdout", t_serial_stdout },
    { "serial-file", t_serial_file },
    { "exit-codes", t_exit_codes },
    { "triple-fault", t_triple_fault },
    { "i8042-reset", t_reset },
    { "pvpanic", t_pvpanic },
    { "panic-line", t_panic_line },
    { "guest-exception", t_exception },
    { "virtio-blk", t_blk },
    { "virtio-blk-hostile", t_blk_hostile },
    { "smp-4-vcpus", t_smp },
    { "virtio-net", t_net },
    { "control-socket", t_control },
    { "sigterm", t_sigterm },
    { "config-json", t_config_json },
    { "snapshot-restore-2-clones", t_snapshot_restore },
    { "snapshot-refused", t_snapshot_refused },
    { "snapshot-of-restored", t_snapshot_chain },
    { "nexus-attach-scm-rights", t_nexus_attach },
    { "snapshot-restore-nexus", t_snapshot_nexus },
};

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "--linux")) {
        vmm = argv[2];
        work = argv[5];
        mkdir(work, 0755);
        setvbuf(stdout, NULL, _IOLBF, 0);
        return linux_snapshot(argv[3], argv[4]);
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s NEXUS_VMM TESTGUEST_ELF WORKDIR [CASE...]\n", argv[0]);
        return 2;
    }
    vmm = argv[1];
    guest = argv[2];
    work = argv[3];
    mkdir(work, 0755);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t hb;
    pthread_create(&hb, NULL, heartbeat, NULL);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool want = argc == 4;
        for (int a = 4; a < argc; a++)
            want |= !strcmp(argv[a], cases[i].name);
        if (!want)
            continue;
        double t0 = now_s();
        current_case = cases[i].name;
        case_start = t0;
        fail_msg[0] = 0;
        bool ok = cases[i].fn();
        if (ok) {
            passed++;
            printf("tier1: ok   %-30s (%.2f s)\n", cases[i].name, now_s() - t0);
        } else {
            failed++;
            printf("tier1: FAIL %-30s %s\n", cases[i].name, fail_msg);
            char *o = slurp(path_in("out.txt"), NULL), *e = slurp(path_in("err.txt"), NULL);
            printf("---- serial/stdout ----\n%s\n---- stderr ----\n%s\n----\n", o ? o : "", e ? e : "");
            free(o);
            free(e);
        }
    }
    printf("tier1: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
