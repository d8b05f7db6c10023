/* Build-time generator of nexus-vmm's seccomp filter (vmm/build.mk runs it):
 *
 *   seccomp-gen OUT.c
 *
 * The allow-list is written here with libseccomp, once, and exported as BPF
 * programs (one per --seccomp mode) into OUT.c, which is compiled into the
 * monitor; vmm/src/seccomp_filter.c loads them with one seccomp(2) call.  That
 * keeps libseccomp's filter compilation (1-25 ms here, 25-140 ms in the nested
 * rig) out of every monitor start, as Firecracker does with its compiled filters.
 *
 * What the monitor needs after setup: KVM_RUN and a few vCPU/VM ioctls, file and
 * socket I/O on descriptors it already holds, accept/recvmsg on the control
 * socket, for snapshots the read-only KVM_GET_* state ioctls, ftruncate, and
 * opening files only to create new ones (O_CREAT|O_EXCL|O_WRONLY: never to read
 * or overwrite an existing file), memory management for malloc (never
 * executable), futexes and signals between its own threads, clocks, and exit.
 * Everything else (other opens, socket, execve, ptrace, clone, mprotect to exec,
 * ...) traps: the monitor's SIGSYS handler names the syscall and exits 68. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static scmp_filter_ctx build(uint32_t default_action)
{
    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx)
        return NULL;
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
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (r != 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/* Export ctx as BPF and print it as a C array named `name`. */
static int emit(FILE *out, const char *name, uint32_t default_action)
{
    scmp_filter_ctx ctx = build(default_action);
    char tmp[] = "/tmp/seccomp-gen.XXXXXX";
    int fd = mkstemp(tmp);
    if (!ctx || fd < 0 || seccomp_export_bpf(ctx, fd) != 0)
        return -1;
    unlink(tmp);
    off_t len = lseek(fd, 0, SEEK_END);
    unsigned char *b = malloc((size_t)len);
    if (!b || len <= 0 || len % 8 || pread(fd, b, (size_t)len, 0) != len)
        return -1;
    fprintf(out, "const struct sock_filter %s[] = {\n", name);
    for (off_t i = 0; i < len; i += 8) {
        unsigned short code;
        unsigned int k;
        memcpy(&code, b + i, 2);
        memcpy(&k, b + i + 4, 4);
        fprintf(out, "    { 0x%04x, %u, %u, 0x%08x },\n", code, b[i + 2], b[i + 3], k);
    }
    fprintf(out, "};\nconst unsigned short %s_len = %u;\n", name, (unsigned)(len / 8));
    free(b);
    close(fd);
    seccomp_release(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seccomp-gen OUT.c\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out)
        return 1;
    fprintf(out, "/* Generated by vmm/gen/seccomp_gen.c: do not edit. */\n#include \"seccomp_filter.h\"\n\n");
    /* TRAP rather than KILL so that the monitor's SIGSYS handler names the syscall. */
    if (emit(out, "vmm_seccomp_trap", SCMP_ACT_TRAP) < 0 || emit(out, "vmm_seccomp_log", SCMP_ACT_LOG) < 0) {
        fprintf(stderr, "seccomp-gen: building the filter failed\n");
        fclose(out);
        remove(argv[1]);
        return 1;
    }
    return fclose(out) == 0 ? 0 : 1;
}
