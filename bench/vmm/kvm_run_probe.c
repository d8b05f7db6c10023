/* LD_PRELOAD probe for the VMM benchmark: on a process's first ioctl(KVM_RUN) it
 * writes "kvm_run_probe: first_kvm_run_realtime_ns=N cpu_ns=N" to the file named
 * by $KVM_RUN_PROBE_OUT (opened before any seccomp filter: at load time).  Works
 * the same for nexus-vmm and QEMU, so their setup times are measured alike. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int out_fd = -1;
static int fired;
static int (*real_ioctl)(int, unsigned long, ...);

__attribute__((constructor)) static void probe_init(void)
{
    const char *p = getenv("KVM_RUN_PROBE_OUT");
    if (p)
        out_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (req == KVM_RUN && !__atomic_exchange_n(&fired, 1, __ATOMIC_SEQ_CST) && out_fd >= 0) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
                        (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
        char b[128];
        int n = snprintf(b, sizeof(b), "first_kvm_run_realtime_ns=%lld cpu_ns=%lld\n",
                         (long long)t.tv_sec * 1000000000LL + t.tv_nsec, cpu);
        if (write(out_fd, b, (size_t)n) < 0) {
        }
    }
    return real_ioctl(fd, req, arg);
}
