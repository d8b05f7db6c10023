/* Snapshot load time of nexus-vmm, run inside L1 (bench/vmm/snapshot-in-l1.sh):
 *
 *   snap-bench NEXUS_VMM PROBE_SO BZIMAGE ROOTFS WORKDIR RUNS
 *
 * Boots the guest (128 MiB, 1 vCPU) with a python loop printing "count N" every
 * 50 ms, pauses it, snapshots it, kills it.  Then RUNS times each, alternately:
 * a restore without and with --ws (the working set recorded by ws-save on a first
 * restore), each measured from fork+exec to the monitor's first KVM_RUN (wall and
 * CPU, by the LD_PRELOAD probe, as in vmm_bench.c) and to the guest's first
 * console line after the restore.  One line per measurement:
 *   snapshot ms=.. memory_bytes=..
 *   restore|restore-ws setup_wall_ms=.. setup_cpu_ms=.. first_output_ms=.. rss_kib=.. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *vmm, *probe, *work;

static long long now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Start the monitor with stdout on a pipe and the probe preloaded. */
static pid_t spawn(char *const *argv, int *out, const char *probe_out)
{
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        if (probe_out) {
            setenv("LD_PRELOAD", probe, 1);
            setenv("KVM_RUN_PROBE_OUT", probe_out, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out = p[0];
    return pid;
}

/* Read the console until `count` lines containing "count " went by; returns ms
 * since t0 at the first of them, or -1 after 240 s or EOF. */
static double wait_count_lines(int fd, int count, long long t0)
{
    static char buf[1 << 16];
    size_t len = 0;
    int seen = 0;
    double first = -1;
    while (now_ns(CLOCK_MONOTONIC) - t0 < 240LL * 1000000000LL) {
        struct pollfd pf = { fd, POLLIN, 0 };
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            if (!strncmp(buf, "count ", 6) && seen++ == 0)
                first = (now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
            if (seen >= count)
                return first;
            len -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len + 1);
        }
        if (len > sizeof(buf) / 2)
            len = 0;
    }
    return -1;
}

static int ctl(const char *sock, const char *req, char *rep, size_t n)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    for (int i = 0; i < 500 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0; i++)
        usleep(10000);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return -1;
    size_t got = 0;
    while (got < n - 1) {
        ssize_t r = read(fd, rep + got, n - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        rep[got] = 0;
        if (strchr(rep, '\n'))
            break;
    }
    close(fd);
    return strstr(rep, "\"ok\":true") ? 0 : -1;
}

static long vm_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6))
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static void finish(pid_t pid, int fd)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fd);
}

/* One measured restore; ws = NULL or the working-set file.  ws_out: ws-save into it. */
static int restore(const char *label, const char *dir, const char *disk, const char *ws, const char *ws_out)
{
    char probe_out[] = "/tmp/snap-probe.XXXXXX", sock[600], req[700], rep[512];
    close(mkstemp(probe_out));
    snprintf(sock, sizeof(sock), "%s/restore.sock", work);
    char *argv[16] = { (char *)vmm, "--restore", (char *)dir, "--disk", (char *)disk, "--control", sock, NULL };
    if (ws) {
        argv[7] = "--ws";
        argv[8] = (char *)ws;
        argv[9] = NULL;
    }
    int fd;
    long long t0_real = now_ns(CLOCK_REALTIME), t0 = now_ns(CLOCK_MONOTONIC);
    pid_t pid = spawn(argv, &fd, probe_out);
    double first = wait_count_lines(fd, ws_out ? 10 : 1, t0);
    long rss = vm_rss_kib(pid);
    if (ws_out) {
        snprintf(req, sizeof(req), "{\"cmd\":\"ws-save\",\"file\":\"%s\"}\n", ws_out);
        if (ctl(sock, req, rep, sizeof(rep)) < 0)
            fprintf(stderr, "ws-save: %s", rep);
    }
    finish(pid, fd);
    double wall = -1, cpu = -1;
    long long run_ns, cpu_ns;
    FILE *f = fopen(probe_out, "r");
    if (f && fscanf(f, "first_kvm_run_realtime_ns=%lld cpu_ns=%lld", &run_ns, &cpu_ns) == 2) {
        wall = (run_ns - t0_real) / 1e6;
        cpu = cpu_ns / 1e6;
    }
    if (f)
        fclose(f);
    unlink(probe_out);
    if (label)
        printf("%s setup_wall_ms=%.3f setup_cpu_ms=%.3f first_output_ms=%.1f rss_kib=%ld\n", label, wall, cpu,
               first, rss);
    return first < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: snap-bench NEXUS_VMM PROBE_SO BZIMAGE ROOTFS WORKDIR RUNS\n");
        return 2;
    }
    vmm = argv[1];
    probe = argv[2];
    work = argv[5];
    int runs = atoi(argv[6]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir(work, 0755);
    char disk[600], dir[600], sock[600], ws[600], req[700], rep[512];
    snprintf(disk, sizeof(disk), "%s,ro", argv[4]);
    snprintf(dir, sizeof(dir), "%s/snap", work);
    snprintf(sock, sizeof(sock), "%s/boot.sock", work);
    snprintf(ws, sizeof(ws), "%s/ws", work);
    mkdir(dir, 0755);
    /* nexus.cmd: the python loop, percent-encoded word by word (guest/init/README.md). */
    char *cl = "console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k "
               "nexus.cmd=\"/usr/bin/python3 -c import%20time%0Ai%3D0%0Awhile%20True%3A%0A%20i%2B%3D1%0A"
               "%20print%28%27count%27%2Ci%2Cflush%3DTrue%29%0A%20time.sleep%280.05%29\"";
    char *bargv[] = { (char *)vmm, "--kernel", argv[3], "--mem", "128", "--disk", disk, "--control", sock,
                      "--cmdline", cl, NULL };
    int fd;
    long long t0 = now_ns(CLOCK_MONOTONIC);
    pid_t pid = spawn(bargv, &fd, NULL);
    if (wait_count_lines(fd, 3, t0) < 0) {
        fprintf(stderr, "snap-bench: the guest never counted\n");
        return 1;
    }
    snprintf(req, sizeof(req), "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}\n", dir);
    if (ctl(sock, "{\"cmd\":\"pause\"}\n", rep, sizeof(rep)) < 0 || ctl(sock, req, rep, sizeof(rep)) < 0) {
        fprintf(stderr, "snap-bench: snapshot failed: %s", rep);
        return 1;
    }
    finish(pid, fd);
    double ms = -1;
    long long bytes = -1;
    char *p = strstr(rep, "\"ms\":");
    if (p)
        ms = strtod(p + 5, NULL);
    if ((p = strstr(rep, "\"memory_bytes\":")))
        bytes = strtoll(p + 15, NULL, 10);
    printf("snapshot ms=%.1f memory_bytes=%lld\n", ms, bytes);
    /* A first restore runs a while and records its working set. */
    if (restore(NULL, dir, disk, NULL, ws) < 0) {
        fprintf(stderr, "snap-bench: the first restore did not run\n");
        return 1;
    }
    for (int i = 0; i < runs; i++) {
        restore("restore", dir, disk, NULL, NULL);
        restore("restore-ws", dir, disk, ws, NULL);
    }
    return 0;
}
