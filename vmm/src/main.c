/* nexus-vmm: one process per microVM.
 *
 * Setup (main thread): parse config; setup.c builds the VM for a boot (open
 * /dev/kvm; the VM, in-kernel irqchip and PIT; memfd guest RAM; kernel/initrd,
 * boot_params, MP table, page tables; devices; vCPUs) or for a --restore (the
 * same from a snapshot); with --nexus control, wait for nexus-attach; start the
 * vCPU threads (waiting at a barrier); load the seccomp filter for all threads;
 * release the vCPUs.  Then
 * the main thread waits for the end (exit port, fault, signal, control `stop`)
 * while serving the control socket, kicks the vCPUs out and exits with the code. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "exit_codes.h"
#include "seccomp_filter.h"
#include "setup.h"
#include "vcpu.h"
#include "vmm.h"

static struct vmm the_vm;
static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;

void vmm_log(const char *fmt, ...)
{
    /* Format into a buffer and write(2) it: stdio would probe the fd with
     * ioctl(TCGETS), which the seccomp filter does not allow. */
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(buf, sizeof(buf), "nexus-vmm: ");
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    if (write(STDERR_FILENO, buf, (size_t)n) < 0) {
        /* nowhere to report it */
    }
}

double vmm_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

bool vmm_is_exiting(struct vmm *vm)
{
    return __atomic_load_n(&vm->exiting, __ATOMIC_ACQUIRE);
}

void vmm_request_exit(struct vmm *vm, int code, const char *fmt, ...)
{
    pthread_mutex_lock(&exit_lock);
    if (!vm->exiting) {
        /* A reset or triple fault right after the kernel's panic line is a panic. */
        bool panicked = (code == VMM_EXIT_RESET || code == VMM_EXIT_TRIPLE_FAULT) && vmm_serial_panic_seen();
        vm->exit_code = panicked ? VMM_EXIT_GUEST_PANIC : code;
        va_list ap;
        va_start(ap, fmt);
        int n = snprintf(vm->exit_reason, sizeof(vm->exit_reason), "%s",
                         panicked ? "guest kernel panicked (console), then: " : "");
        vsnprintf(vm->exit_reason + n, sizeof(vm->exit_reason) - (size_t)n, fmt, ap);
        va_end(ap);
        __atomic_store_n(&vm->exiting, true, __ATOMIC_RELEASE);
        uint64_t one = 1;
        if (write(vm->exit_efd, &one, sizeof(one)) < 0) {
            /* cannot fail for a fresh eventfd */
        }
    }
    pthread_mutex_unlock(&exit_lock);
}

void vmm_irq_line(struct vmm *vm, unsigned gsi, int level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        vmm_debug(vm, "KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

/* Serve the control socket and signals until the VM ends, or (before start)
 * until `ready` says the VM may run. */
static void main_loop(struct vmm *vm, struct control *ctl, int sfd, bool (*ready)(void))
{
    while (!vmm_is_exiting(vm) && !(ready && ready())) {
        struct pollfd p[2 + 1 + CONTROL_MAX_CLIENTS];
        int n = 0;
        p[n++] = (struct pollfd){ vm->exit_efd, POLLIN, 0 };
        p[n++] = (struct pollfd){ sfd, POLLIN, 0 };
        int nctl = control_pollfds(ctl, p + n);
        if (poll(p, (nfds_t)(n + nctl), -1) < 0) {
            if (errno == EINTR)
                continue;
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == sizeof(si))
                vmm_request_exit(vm, VMM_EXIT_STOPPED, "stopped by signal %u", si.ssi_signo);
        }
        control_handle(ctl, vm, p + n, nctl);
    }
}


int main(int argc, char **argv)
{
    struct vmm *vm = &the_vm;
    clock_gettime(CLOCK_MONOTONIC, &vm->t_start);
    vm->kvm_fd = vm->vm_fd = -1;
    vm->pio.name = "pio";
    vm->mmio.name = "mmio";

    char err[256];
    config_defaults(&vm->cfg);
    int pr = config_parse_args(&vm->cfg, argc, argv, err, sizeof(err));
    if (pr == 1) {
        config_usage(stdout);
        return 0;
    }
    if (pr < 0) {
        vmm_log("%s", err);
        config_usage(stderr);
        return VMM_EXIT_USAGE;
    }
    vm->nr_vcpus = vm->cfg.vcpus;
    vm->verbose = vm->cfg.verbose;

    /* Signals: SIGTERM/SIGINT arrive on a signalfd in the main loop; SIGUSR1
     * kicks vCPUs (unblocked only in their threads); SIGPIPE is ignored. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    vcpu_install_kick_handler();
    sigdelset(&sigs, SIGUSR1);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sfd < 0 || vm->exit_efd < 0) {
        vmm_log("signalfd/eventfd: %s", strerror(errno));
        return VMM_EXIT_SETUP;
    }

    struct control ctl;
    control_init(&ctl);
    int serial_fd = -1;
    vm->pagemap_fd = -1;
    pthread_mutex_init(&vm->run_lock, NULL);
    pthread_cond_init(&vm->run_cond, NULL);
    int sr = vm->cfg.restore_dir ? vmm_setup_restore(vm, &ctl, &serial_fd) : vmm_setup_boot(vm, &ctl, &serial_fd);
    if (sr < 0)
        return sr == -2 ? VMM_EXIT_SNAPSHOT : VMM_EXIT_SETUP;
    /* --nexus control: the VM does not run before nexus-attach brought the fds
     * (served here, before the seccomp filter: attaching needs mmap and KVM ioctls). */
    if (vm->cfg.nexus_control) {
        main_loop(vm, &ctl, sfd, vmm_nexus_attached);
        if (vmm_is_exiting(vm)) {
            vmm_log("%s before the Nexus device was attached (exit %d)", vm->exit_reason, vm->exit_code);
            return vm->exit_code;
        }
    }

    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, vm->nr_vcpus + 1);
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        int r = vcpu_start(&vm->vcpus[i], &go);
        if (r < 0) {
            vmm_log("vcpu%u thread: %s", i, strerror(-r));
            return VMM_EXIT_SETUP;
        }
    }
    /* jansson seeds its hash function from /dev/urandom on first use: do it now,
     * while open() is still allowed. */
    json_object_seed(0);
    int r = seccomp_filter_install(vm->cfg.seccomp);
    if (r < 0) {
        vmm_log("seccomp: %s", strerror(-r));
        return VMM_EXIT_SETUP;
    }
    vmm_phase(vm, "seccomp");
    vm->started = true;
    pthread_barrier_wait(&go);
    /* A restored guest may sleep on /dev/nexus: one interrupt makes it look, see
     * the new region's generation (ESTALE) and re-attach. */
    if (vm->restored)
        vmm_nexus_wake_guest();

    main_loop(vm, &ctl, sfd, NULL);

    pthread_mutex_lock(&vm->run_lock);   /* wake parked vCPUs: they see `exiting` */
    pthread_cond_broadcast(&vm->run_cond);
    pthread_mutex_unlock(&vm->run_lock);
    /* Kick the vCPUs out and wait for them, kicking again every 100 ms: one kick
     * is enough by construction (immediate_exit + signal), but a nested
     * hypervisor has been seen to sit on one, and a monitor that never exits is
     * worse than a second signal. */
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        vcpu_kick(&vm->vcpus[i]);
        for (;;) {
            struct timespec until = vmm_realtime_after_ms(100);
            if (pthread_timedjoin_np(vm->vcpus[i].thread, NULL, &until) != ETIMEDOUT)
                break;
            vcpu_kick(&vm->vcpus[i]);
        }
    }
    if (serial_fd >= 0)
        fdatasync(serial_fd);   /* EINVAL on a tty/pipe is fine */
    if (vm->exit_code > VMM_EXIT_GUEST_MAX || vm->verbose)
        vmm_log("%s (exit %d)", vm->exit_reason, vm->exit_code);
    if (vm->verbose)
        vmm_log("unhandled accesses: pio %llu, mmio %llu",
                (unsigned long long)vm->pio.unhandled, (unsigned long long)vm->mmio.unhandled);
    return vm->exit_code;
}
