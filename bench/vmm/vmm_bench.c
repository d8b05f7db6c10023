/* One measured boot, run inside L1:
 *
 *   vmm-bench LABEL PROBE_SO MARKER -- VMM_COMMAND...
 *
 * Starts VMM_COMMAND with the KVM_RUN probe preloaded, reads its console (stdout)
 * until MARKER appears (the guest init's first line), samples the monitor's memory
 * there, waits for it to exit, and prints one line:
 *   LABEL setup_wall_ms=.. setup_cpu_ms=.. init_ms=.. rss_kib=.. own_kib=.. guest_kib=.. exit=..
 * guest_kib = resident pages of the guest-RAM memfd mappings (both monitors get
 * memfd guest memory; /proc/PID/smaps names them "/memfd:..."), own_kib = VmRSS
 * minus that: the monitor's own memory (binary and libraries included). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Resident KiB of the mappings backed by a memfd (guest RAM). */
static long memfd_rss_kib(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
    FILE *f = fopen(path, "r");
    long sum = 0;
    int in_memfd = 0;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' '))
            in_memfd = strstr(line, "/memfd:") != NULL;
        else if (in_memfd && !strncmp(line, "Rss:", 4))
            sum += strtol(line + 4, NULL, 10);
    }
    if (f)
        fclose(f);
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 6 || strcmp(argv[4], "--")) {
        fprintf(stderr, "usage: vmm-bench LABEL PROBE_SO MARKER -- CMD...\n");
        return 2;
    }
    const char *label = argv[1], *probe = argv[2], *marker = argv[3];
    char probe_out[] = "/tmp/kvm-run-probe.XXXXXX";
    close(mkstemp(probe_out));
    int p[2];
    if (pipe(p) < 0)
        return 2;
    long long t0_real = now_ns(CLOCK_REALTIME), t0 = now_ns(CLOCK_MONOTONIC);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        setenv("LD_PRELOAD", probe, 1);
        setenv("KVM_RUN_PROBE_OUT", probe_out, 1);
        execvp(argv[5], argv + 5);
        _exit(127);
    }
    close(p[1]);
    static char buf[1 << 20];
    size_t len = 0;
    double init_ms = -1;
    long rss = -1, shmem = -1;
    int timed_out = 0;
    for (;;) {
        /* A boot that takes over 240 s is a failure: kill it, report init_ms=-1. */
        struct pollfd pf = { p[0], POLLIN, 0 };
        if (poll(&pf, 1, 1000) == 0) {
            if (now_ns(CLOCK_MONOTONIC) - t0 > 240LL * 1000000000LL && !timed_out) {
                kill(pid, SIGKILL);
                timed_out = 1;
            }
            continue;
        }
        ssize_t r = read(p[0], buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        len += (size_t)r;
        buf[len] = 0;
        if (init_ms < 0 && strstr(buf, marker)) {
            init_ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
            rss = status_kib(pid, "VmRSS");
            shmem = memfd_rss_kib(pid);
        }
        if (len > sizeof(buf) / 2) {   /* keep the tail only */
            memmove(buf, buf + len - 4096, 4096);
            len = 4096;
        }
    }
    int st;
    waitpid(pid, &st, 0);
    double setup_wall = -1, setup_cpu = -1;
    FILE *f = fopen(probe_out, "r");
    long long run_ns, cpu_ns;
    if (f && fscanf(f, "first_kvm_run_realtime_ns=%lld cpu_ns=%lld", &run_ns, &cpu_ns) == 2) {
        setup_wall = (run_ns - t0_real) / 1e6;
        setup_cpu = cpu_ns / 1e6;
    }
    if (f)
        fclose(f);
    unlink(probe_out);
    printf("%s setup_wall_ms=%.3f setup_cpu_ms=%.3f init_ms=%.1f rss_kib=%ld own_kib=%ld guest_kib=%ld exit=%d\n",
           label, setup_wall, setup_cpu, init_ms, rss, rss >= 0 ? rss - shmem : -1, shmem,
           WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
