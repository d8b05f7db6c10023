/* nexus-vmm: one process per microVM.
 *
 * Setup (main thread): parse config; open /dev/kvm; create the VM, in-kernel
 * irqchip and PIT; memfd guest RAM; load the kernel/initrd and write boot_params,
 * MP table, page tables; register devices; create vCPUs (threads wait at a
 * barrier); load the seccomp filter for all threads; release the vCPUs.  Then
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

#include "boot_linux.h"
#include "control.h"
#include "cpuid.h"
#include "devices.h"
#include "exit_codes.h"
#include "layout.h"
#include "mptable.h"
#include "seccomp_filter.h"
#include "vcpu.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "dev_nexus.h"
#include "snapshot.h"
#include "vcpu_state.h"
#include "vmm.h"

static struct vmm the_vm;
static struct serial com1;
static struct virtio_blk disks[VMM_MAX_DISKS];
static struct virtio_net net;
static struct nexus_dev nexus_dev;
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
        bool panicked = (code == VMM_EXIT_RESET || code == VMM_EXIT_TRIPLE_FAULT) && com1.panic_seen;
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

static void virtio_set_irq(void *ctx, unsigned irq, int level)
{
    vmm_irq_line(ctx, irq, level);
}

/* NEXUS_VMM_TIMING=1: where setup time goes, ms since process start per phase. */
static bool timing;
static void phase(struct vmm *vm, const char *name)
{
    if (timing)
        vmm_log("timing: %-10s %8.3f ms", name,
                vmm_now_ms() - (vm->t_start.tv_sec * 1e3 + vm->t_start.tv_nsec / 1e6));
}

static int setup_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int setup_fail(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    vmm_log("setup: %s", buf);
    return -1;
}

static int read_file(const char *path, struct boot_image *img)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return setup_fail("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) {
        close(fd);
        return setup_fail("%s: empty or unreadable", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return setup_fail("%s: mmap: %s", path, strerror(errno));
    img->data = p;
    img->size = (size_t)st.st_size;
    return 0;
}

/* IRQ lines for virtio devices: ISA lines no legacy device here uses, then 16-23. */
static int alloc_virtio_irq(struct vmm *vm)
{
    static const unsigned lines[] = { 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 };
    if (vm->next_virtio_irq >= sizeof(lines) / sizeof(lines[0]))
        return -1;
    return (int)lines[vm->next_virtio_irq++];
}

static int add_virtio(struct vmm *vm, struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                      char *cmdline, size_t cmdline_len)
{
    int irq = alloc_virtio_irq(vm);
    if (irq < 0)
        return setup_fail("out of interrupt lines for virtio devices");
    uint64_t base = LAYOUT_VIRTIO_BASE + vm->nr_virtio * LAYOUT_VIRTIO_SIZE;
    virtio_mmio_init(t, ops, dev, &vm->mem, base, (unsigned)irq, virtio_set_irq, vm);
    if (io_bus_register(&vm->mmio, base, LAYOUT_VIRTIO_SIZE, &virtio_mmio_ops, t, ops->name) < 0)
        return setup_fail("cannot register %s", ops->name);
    vm->nr_virtio++;
    char param[64];
    snprintf(param, sizeof(param), " virtio_mmio.device=4K@0x%llx:%d", (unsigned long long)base, irq);
    if (boot_cmdline_add_param(cmdline, cmdline_len, param) < 0)
        return setup_fail("command line too long");
    return 0;
}

static int kvm_setup(struct vmm *vm, int snap_mem_fd)
{
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return setup_fail("/dev/kvm: %s%s", strerror(errno),
                          errno == EACCES ? " (add yourself to the 'kvm' group, see docs/vmm.md)" : "");
    if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return setup_fail("unsupported KVM API version");
    static const struct { int cap; const char *name; } caps[] = {
        { KVM_CAP_IRQCHIP, "IRQCHIP" }, { KVM_CAP_PIT2, "PIT2" }, { KVM_CAP_USER_MEMORY, "USER_MEMORY" },
        { KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" }, { KVM_CAP_EXT_CPUID, "EXT_CPUID" },
    };
    for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
            return setup_fail("KVM lacks KVM_CAP_%s", caps[i].name);
    vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->run_size < (int)sizeof(struct kvm_run))
        return setup_fail("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return setup_fail("KVM_CREATE_VM: %s", strerror(errno));
    /* Intel VMX needs a TSS and an identity-map page in guest-physical space; put
     * them in the top of the 32-bit hole where nothing else lives. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
        return setup_fail("KVM_SET_TSS_ADDR: %s", strerror(errno));
    uint64_t idmap = LAYOUT_KVM_IDMAP;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        return setup_fail("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return setup_fail("KVM_CREATE_IRQCHIP: %s", strerror(errno));
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return setup_fail("KVM_CREATE_PIT2: %s", strerror(errno));

    int r = snap_mem_fd >= 0 ? guest_mem_map_snapshot(&vm->mem, snap_mem_fd, vm->cfg.mem_mb << 20)
                             : guest_mem_init(&vm->mem, vm->cfg.mem_mb << 20);
    if (r < 0)
        return setup_fail("guest memory (%llu MiB): %s", (unsigned long long)vm->cfg.mem_mb, strerror(-r));
    struct kvm_userspace_memory_region slot = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = vm->mem.low_size,
        .userspace_addr = (uint64_t)(uintptr_t)vm->mem.host,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
        return setup_fail("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
    if (vm->mem.high_size) {
        slot.slot = 1;
        slot.guest_phys_addr = GM_HIGH_START;
        slot.memory_size = vm->mem.high_size;
        slot.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.host + vm->mem.low_size);
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
            return setup_fail("KVM_SET_USER_MEMORY_REGION (high): %s", strerror(errno));
    }
    return 0;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return NULL;
        c->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        free(c);
        if (errno != E2BIG)
            return NULL;
    }
    return NULL;
}

static int open_serial_out(const struct vmm_config *c)
{
    if (c->serial == SERIAL_STDOUT)
        return STDOUT_FILENO;
    if (c->serial == SERIAL_NONE)
        return -1;
    int fd = open(c->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        setup_fail("serial file %s: %s", c->serial_path, strerror(errno));
    return fd < 0 ? -2 : fd;
}

/* The devices, in the same order for a boot and a restore (a restored guest
 * finds each at the address and IRQ it had): legacy ports, disks, net, Nexus.
 * Each stateful device also goes into the snapshot table (snapshot.h). */
static int register_devices(struct vmm *vm, int serial_fd, char *cmdline, size_t cmdline_len)
{
    const struct vmm_config *c = &vm->cfg;
    char err[256], ident[48];
    if (serial_register(vm, &com1, serial_fd) < 0 || i8042_register(vm) < 0 ||
        exit_port_register(vm) < 0 || legacy_ports_register(vm) < 0 ||
        vmm_add_snap_dev(vm, "serial", &com1, serial_save, serial_restore) < 0)
        return setup_fail("cannot register legacy devices");
    for (unsigned i = 0; i < c->nr_disks; i++) {
        int r = virtio_blk_open(&disks[i], c->disks[i].path, c->disks[i].ro, i);
        if (r < 0)
            return setup_fail("disk %s: %s", c->disks[i].path, strerror(-r));
        if (add_virtio(vm, &disks[i].transport, &virtio_blk_ops, &disks[i], cmdline, cmdline_len) < 0)
            return -1;
        snprintf(ident, sizeof(ident), "virtio-blk:%s:%llu", disks[i].ro ? "ro" : "rw",
                 (unsigned long long)disks[i].capacity);
        if (vmm_add_snap_dev(vm, ident, &disks[i].transport, virtio_mmio_save, virtio_mmio_restore) < 0)
            return setup_fail("out of memory");
    }
    if (c->net_tap) {
        int r = virtio_net_open(&net, c->net_tap, c->net_mac);
        if (r < 0)
            return setup_fail("tap %s: %s (create it, in the VM's network namespace, before starting)",
                              c->net_tap, strerror(-r));
        if (add_virtio(vm, &net.transport, &virtio_net_ops, &net, cmdline, cmdline_len) < 0)
            return -1;
        if (virtio_net_start(&net) < 0)
            return setup_fail("cannot start the network RX thread");
        if (vmm_add_snap_dev(vm, "virtio-net", &net.transport, virtio_mmio_save, virtio_mmio_restore) < 0)
            return setup_fail("out of memory");
    }
    if (c->nexus_fds[0] >= 0 || c->nexus_control) {   /* the Nexus device: dev_nexus.c (memory slot 2) */
        nexus_dev.region_fd = nexus_dev.kick_host_fd = nexus_dev.kick_guest_fd = -1;
        if (add_virtio(vm, &nexus_dev.transport, &nexus_dev_ops, &nexus_dev, cmdline, cmdline_len) < 0)
            return -1;
        if (vmm_add_snap_dev(vm, "nexus", &nexus_dev, nexus_dev_save, nexus_dev_restore) < 0)
            return setup_fail("out of memory");
    }
    (void)err;
    return 0;
}

int vmm_nexus_attach(struct vmm *vm, int fds[3], char *err, size_t n)
{
    if (nexus_dev.attached) {
        snprintf(err, n, "nexus-attach: the Nexus device already has its region");
        return -1;
    }
    if (vm->started) {
        snprintf(err, n, "nexus-attach: only before the VM starts");
        return -1;
    }
    if (nexus_dev_open(&nexus_dev, fds, err, n) < 0 ||
        nexus_dev_attach(&nexus_dev, vm->vm_fd, &vm->mem, 2, err, n) < 0) {
        if (nexus_dev.region)
            munmap(nexus_dev.region, nexus_dev.size);
        nexus_dev.region = NULL;
        nexus_dev.region_fd = nexus_dev.kick_host_fd = nexus_dev.kick_guest_fd = -1;
        return -1;
    }
    nexus_dev.attached = true;
    vmm_debug(vm, "nexus: region of %llu KiB attached at 0x%llx", (unsigned long long)(nexus_dev.size >> 10),
              (unsigned long long)nexus_dev.gpa);
    return 0;
}

/* The CPU a snapshot needs: vCPU 0's CPUID as the guest sees it (filtered, so
 * that nothing of the host CPU the monitor runs on, such as its APIC id, is in it). */
static uint64_t cpuid_identity(const struct kvm_cpuid2 *c, unsigned nr_vcpus)
{
    size_t sz = c->nent * sizeof(c->entries[0]);
    struct kvm_cpuid_entry2 *e = malloc(sz);
    if (!e)
        return 0;
    memcpy(e, c->entries, sz);
    cpuid_filter(e, c->nent, 0, nr_vcpus);
    uint64_t h = snap_checksum(e, sz);
    free(e);
    return h;
}

static int create_vcpus(struct vmm *vm)
{
    struct kvm_cpuid2 *cpuid = supported_cpuid(vm->kvm_fd);
    if (!cpuid)
        return setup_fail("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
    snapshot_set_cpuid_hash(cpuid_identity(cpuid, vm->nr_vcpus));
    vm->vcpus = calloc(vm->nr_vcpus, sizeof(struct vcpu));
    if (!vm->vcpus)
        return setup_fail("out of memory");
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        int r = vcpu_create(vm, &vm->vcpus[i], i, cpuid);
        if (r < 0)
            return setup_fail("vcpu%u: %s", i, strerror(-r));
    }
    free(cpuid);
    int r = vcpu_state_init(vm);
    if (r < 0)
        return setup_fail("KVM_GET_MSR_INDEX_LIST: %s", strerror(-r));
    return 0;
}

static int open_control(struct vmm *vm, struct control *ctl)
{
    const struct vmm_config *c = &vm->cfg;
    if (c->control_path) {
        int r = control_open(ctl, c->control_path);
        if (r < 0)
            return setup_fail("control socket %s: %s", c->control_path, strerror(-r));
    }
    if (c->control_fd >= 0) {
        int r = control_add_client(ctl, c->control_fd);
        if (r < 0)
            return setup_fail("--control-fd %d: %s (expected a connected AF_UNIX stream socket)",
                              c->control_fd, strerror(-r));
    }
    return 0;
}

static int attach_inherited_nexus(struct vmm *vm)
{
    char err[256];
    if (vm->cfg.nexus_fds[0] < 0)
        return 0;
    int fds[3] = { vm->cfg.nexus_fds[0], vm->cfg.nexus_fds[1], vm->cfg.nexus_fds[2] };
    if (vmm_nexus_attach(vm, fds, err, sizeof(err)) < 0)
        return setup_fail("%s", err);
    return 0;
}

static int setup(struct vmm *vm, struct control *ctl, int *serial_fd)
{
    const struct vmm_config *c = &vm->cfg;
    char err[256];
    phase(vm, "start");
    if (kvm_setup(vm, -1) < 0)
        return -1;
    phase(vm, "kvm+memory");

    struct boot_image kernel, initrd = { 0 };
    if (read_file(c->kernel, &kernel) < 0)
        return -1;
    struct boot_entry be;
    if (boot_load_kernel(&vm->mem, &kernel, &be, err, sizeof(err)) < 0)
        return setup_fail("%s: %s", c->kernel, err);
    if (c->initrd) {
        if (read_file(c->initrd, &initrd) < 0)
            return -1;
        if (boot_load_initrd(&vm->mem, &kernel, &initrd, &be, err, sizeof(err)) < 0)
            return setup_fail("%s", err);
    }

    phase(vm, "kernel");
    *serial_fd = open_serial_out(c);
    if (*serial_fd == -2)
        return -1;
    char cmdline[LAYOUT_CMDLINE_MAX];
    snprintf(cmdline, sizeof(cmdline), "%s", c->cmdline ? c->cmdline : VMM_DEFAULT_CMDLINE);
    if (register_devices(vm, *serial_fd, cmdline, sizeof(cmdline)) < 0 || attach_inherited_nexus(vm) < 0)
        return -1;

    if (boot_write_params(&vm->mem, &kernel, &be, cmdline, err, sizeof(err)) < 0)
        return setup_fail("%s", err);
    if (boot_write_cpu_tables(&vm->mem) < 0)
        return setup_fail("guest RAM too small for the boot page tables");
    /* Always describe the CPUs and the IOAPIC, also for one vCPU: then the
     * kernel routes IRQs through the IOAPIC the same way whatever the count. */
    if (mptable_write(&vm->mem, LAYOUT_EBDA, vm->nr_vcpus) < 0)
        return setup_fail("cannot write the MP table");
    vmm_debug(vm, "kernel %s (%s) entry 0x%llx, cmdline: %s", c->kernel,
              be.format == KERNEL_ELF ? "ELF" : "bzImage", (unsigned long long)be.entry, cmdline);
    munmap((void *)kernel.data, kernel.size);
    if (initrd.data)
        munmap((void *)initrd.data, initrd.size);

    phase(vm, "devices");
    if (create_vcpus(vm) < 0)
        return -1;
    int r = vcpu_setup_boot_regs(&vm->vcpus[0], be.entry);
    if (r < 0)
        return setup_fail("vcpu0 registers: %s", strerror(-r));
    phase(vm, "vcpus");
    return open_control(vm, ctl);
}

/* A snapshot the monitor refuses: one line, exit VMM_EXIT_SNAPSHOT. */
static int refuse_snapshot(const char *dir, const char *why)
{
    vmm_log("restore %s: %s", dir, why);
    return -2;
}

/* --restore DIR: RAM is DIR/memory mapped MAP_PRIVATE, mem/vCPUs come from the
 * header; devices are registered as for a boot, then every state is put back.
 * -1 = setup error (65), -2 = snapshot refused (72). */
static int setup_restore(struct vmm *vm, struct control *ctl, int *serial_fd)
{
    struct vmm_config *c = &vm->cfg;
    char err[512];
    struct snap_in snap;
    int mem_fd;
    phase(vm, "start");
    if (snapshot_load(c->restore_dir, &snap, &mem_fd, err, sizeof(err)) < 0)
        return refuse_snapshot(c->restore_dir, err);
    c->mem_mb = snap.hdr.mem_size >> 20;
    c->vcpus = vm->nr_vcpus = snap.hdr.nr_vcpus;
    vm->restored = true;
    if (kvm_setup(vm, mem_fd) < 0)
        return -1;
    vm->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    phase(vm, "kvm+memory");
    *serial_fd = open_serial_out(c);
    if (*serial_fd == -2)
        return -1;
    char cmdline[LAYOUT_CMDLINE_MAX] = "";   /* the guest read its own long ago */
    if (register_devices(vm, *serial_fd, cmdline, sizeof(cmdline)) < 0 || create_vcpus(vm) < 0)
        return -1;
    phase(vm, "devices");
    int r = 0;
    if (snapshot_check_identity(vm, &snap, err, sizeof(err)) < 0 ||
        snapshot_restore_state(vm, &snap, err, sizeof(err)) < 0)
        r = refuse_snapshot(c->restore_dir, err);
    snapshot_free(&snap);
    if (r < 0)
        return r;
    phase(vm, "state");
    if (attach_inherited_nexus(vm) < 0)
        return -1;
    if (c->ws_file) {
        uint64_t pages;
        if (ws_load(vm, c->ws_file, &pages, err, sizeof(err)) < 0)
            return setup_fail("%s", err);
        phase(vm, "ws");
        vmm_debug(vm, "working set: %llu pages pre-faulted", (unsigned long long)pages);
    }
    return open_control(vm, ctl);
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

static bool nexus_ready(void)
{
    return nexus_dev.attached;
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
    timing = getenv("NEXUS_VMM_TIMING") != NULL;
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
    int sr = vm->cfg.restore_dir ? setup_restore(vm, &ctl, &serial_fd) : setup(vm, &ctl, &serial_fd);
    if (sr < 0)
        return sr == -2 ? VMM_EXIT_SNAPSHOT : VMM_EXIT_SETUP;
    /* --nexus control: the VM does not run before nexus-attach brought the fds
     * (served here, before the seccomp filter: attaching needs mmap and KVM ioctls). */
    if (vm->cfg.nexus_control) {
        main_loop(vm, &ctl, sfd, nexus_ready);
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
    phase(vm, "seccomp");
    vm->started = true;
    pthread_barrier_wait(&go);
    /* A restored guest may sleep on /dev/nexus: one interrupt makes it look, see
     * the new region's generation (ESTALE) and re-attach. */
    if (vm->restored && nexus_dev.attached) {
        uint64_t one = 1;
        if (write(nexus_dev.kick_guest_fd, &one, sizeof(one)) < 0)
            vmm_log("nexus: signalling the restored guest: %s", strerror(errno));
    }

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
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 100 * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
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
