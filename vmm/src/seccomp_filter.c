/* The post-setup syscall filter: the BPF programs vmm/gen/seccomp_gen.c compiled
 * from the allow-list at build time (see there for what is allowed and why),
 * loaded for all threads at once.  A blocked syscall raises SIGSYS: the handler
 * names it and exits with VMM_EXIT_INTERNAL (--seccomp log only logs; sanitizer
 * builds default to log). */
#include "seccomp_filter.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exit_codes.h"

/* Only async-signal-safe calls here, all of them on the allow-list. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    char msg[] = "nexus-vmm: seccomp: blocked syscall 000, exiting\n";
    int nr = si->si_syscall;
    char *d = strstr(msg, "000");
    d[0] = (char)('0' + (nr / 100) % 10);
    d[1] = (char)('0' + (nr / 10) % 10);
    d[2] = (char)('0' + nr % 10);
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
    }
    _exit(VMM_EXIT_INTERNAL);
}

int seccomp_filter_install(enum seccomp_mode mode)
{
    if (mode == SECCOMP_OFF)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    struct sock_fprog prog = {
        .len = mode == SECCOMP_LOG ? vmm_seccomp_log_len : vmm_seccomp_trap_len,
        .filter = (struct sock_filter *)(mode == SECCOMP_LOG ? vmm_seccomp_log : vmm_seccomp_trap),
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    /* TSYNC: every thread, atomically; a positive result names a thread that could not be synced. */
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
    if (r < 0)
        return -errno;
    return r > 0 ? -EAGAIN : 0;
}
