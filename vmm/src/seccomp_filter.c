/* After setup the monitor needs only: KVM_RUN and a few vCPU/VM ioctls, file
 * and socket I/O on descriptors it already holds, accept on the control socket,
 * for snapshots the read-only KVM_GET_* state ioctls, ftruncate, and opening
 * files only to create new ones (O_CREAT|O_EXCL|O_WRONLY: never to read or
 * overwrite an existing file),
 * memory management for malloc (never executable), futexes and signals between
 * its own threads, clocks, and exit.  Everything else (open, socket, execve,
 * ptrace, mprotect to exec, ...) ends the process with VMM_EXIT_INTERNAL and the
 * syscall number on stderr (or is only logged with
 * --seccomp log; sanitizer builds default to log). */
#include "seccomp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "exit_codes.h"

/* A blocked syscall raises SIGSYS: say which one, then die.  Only async-signal-
 * safe calls here, all of them on the allow-list. */
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
    /* TRAP rather than KILL so that the log names the syscall; the handler exits. */
    scmp_filter_ctx ctx = seccomp_init(mode == SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
    if (!ctx)
        return -ENOMEM;
    static const int plain[] = {
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
        SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
        SCMP_SYS(fdatasync), SCMP_SYS(fsync), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat),
        SCMP_SYS(newfstatat),
        SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(accept4), SCMP_SYS(recvmsg), SCMP_SYS(ftruncate),
        SCMP_SYS(futex), SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn),
        SCMP_SYS(rt_sigprocmask), SCMP_SYS(tgkill), SCMP_SYS(gettid), SCMP_SYS(getpid),
        SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
        SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(mremap),
        SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall), SCMP_SYS(getrusage),
        SCMP_SYS(getrandom), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
    };
    int r = 0;
    for (unsigned i = 0; i < sizeof(plain) / sizeof(plain[0]) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
    /* mmap only without PROT_EXEC (malloc arenas, thread stacks are already made). */
    /* mmap/mprotect only without PROT_EXEC (malloc arenas: glibc maps a new
     * thread arena PROT_NONE and mprotects it read-write). */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* Snapshot files and ws-save: create-only opens. */
    if (r == 0)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_EXCL,
                                     O_WRONLY | O_CREAT | O_EXCL));
    static const unsigned long ioctls[] = {
        KVM_RUN, KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS, KVM_GET_REGS, KVM_GET_SREGS,
        /* snapshot (all read-only): */
        KVM_GET_XCRS, KVM_GET_DEBUGREGS, KVM_GET_MP_STATE, KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS,
        KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_GET_MSRS, KVM_GET_CLOCK, KVM_GET_PIT2, KVM_GET_IRQCHIP,
    };
    for (unsigned i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]) && r == 0; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_EQ, ioctls[i]));
    if (r == 0)
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);   /* all threads, atomically */
    if (r == 0)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    return r;
}
