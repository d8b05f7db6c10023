/* nexus-vmm setup, for a boot and for a --restore: the KVM VM, irqchip, PIT and
 * memory slots; guest RAM (a memfd, or the snapshot's memory file MAP_PRIVATE);
 * kernel/initrd loading and boot tables (boot); the devices, in one order for
 * both paths; the vCPUs; the control socket; the Nexus device's attachment.
 * main.c then starts the vCPUs, loads the seccomp filter and serves the VM. */
#include "setup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_linux.h"
#include "control.h"
#include "cpuid.h"
#include "dev_nexus.h"
#include "devices.h"
#include "layout.h"
#include "mptable.h"
#include "snapshot.h"
#include "vcpu.h"
#include "vcpu_state.h"
#include "virtio_blk.h"
#include "virtio_net.h"
#include "vmm.h"

static struct serial com1;
static struct virtio_blk disks[VMM_MAX_DISKS];
static struct virtio_net net;
static struct nexus_dev nexus_dev;

bool vmm_serial_panic_seen(void)
{
    return com1.panic_seen;
}

bool vmm_nexus_attached(void)
{
    return nexus_dev.attached;
}

void vmm_nexus_wake_guest(void)
{
    uint64_t one = 1;
    if (nexus_dev.attached && write(nexus_dev.kick_guest_fd, &one, sizeof(one)) < 0)
        vmm_log("nexus: signalling the restored guest: %s", strerror(errno));
}

static void virtio_set_irq(void *ctx, unsigned irq, int level)
{
    vmm_irq_line(ctx, irq, level);
}

/* NEXUS_VMM_TIMING=1: where setup time goes, ms since process start per phase. */
void vmm_phase(struct vmm *vm, const char *name)
{
    static int timing = -1;
    if (timing < 0)
        timing = getenv("NEXUS_VMM_TIMING") != NULL;
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
    /* No PIT tick catch-up: with reinjection on, KVM's kvm-pit worker replays every
     * tick the guest missed, each through the IOAPIC lock that KVM_IRQ_LINE (serial,
     * virtio) also takes. Under a slow or nested host (the rig's L1) that backlog was
     * seen livelocking the two (docs/vmm.md).  Linux uses the PIT only to calibrate,
     * so a dropped tick costs nothing; QEMU's lost_tick_policy=discard is the same. */
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_REINJECT_CONTROL) > 0) {
        struct kvm_reinject_control rc = { .pit_reinject = 0 };
        if (ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &rc) < 0)
            return setup_fail("KVM_REINJECT_CONTROL: %s", strerror(errno));
    }

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

int vmm_setup_boot(struct vmm *vm, struct control *ctl, int *serial_fd)
{
    const struct vmm_config *c = &vm->cfg;
    char err[256];
    vmm_phase(vm, "start");
    if (kvm_setup(vm, -1) < 0)
        return -1;
    vmm_phase(vm, "kvm+memory");

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

    vmm_phase(vm, "kernel");
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

    vmm_phase(vm, "devices");
    if (create_vcpus(vm) < 0)
        return -1;
    int r = vcpu_setup_boot_regs(&vm->vcpus[0], be.entry);
    if (r < 0)
        return setup_fail("vcpu0 registers: %s", strerror(-r));
    vmm_phase(vm, "vcpus");
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
int vmm_setup_restore(struct vmm *vm, struct control *ctl, int *serial_fd)
{
    struct vmm_config *c = &vm->cfg;
    char err[512];
    struct snap_in snap;
    int mem_fd;
    vmm_phase(vm, "start");
    if (snapshot_load(c->restore_dir, &snap, &mem_fd, err, sizeof(err)) < 0)
        return refuse_snapshot(c->restore_dir, err);
    c->mem_mb = snap.hdr.mem_size >> 20;
    c->vcpus = vm->nr_vcpus = snap.hdr.nr_vcpus;
    vm->restored = true;
    if (kvm_setup(vm, mem_fd) < 0)
        return -1;
    vm->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    vmm_phase(vm, "kvm+memory");
    *serial_fd = open_serial_out(c);
    if (*serial_fd == -2)
        return -1;
    char cmdline[LAYOUT_CMDLINE_MAX] = "";   /* the guest read its own long ago */
    if (register_devices(vm, *serial_fd, cmdline, sizeof(cmdline)) < 0 || create_vcpus(vm) < 0)
        return -1;
    vmm_phase(vm, "devices");
    int r = 0;
    if (snapshot_check_identity(vm, &snap, err, sizeof(err)) < 0 ||
        snapshot_restore_state(vm, &snap, err, sizeof(err)) < 0)
        r = refuse_snapshot(c->restore_dir, err);
    snapshot_free(&snap);
    if (r < 0)
        return r;
    vmm_phase(vm, "state");
    if (attach_inherited_nexus(vm) < 0)
        return -1;
    if (c->ws_file) {
        uint64_t pages;
        if (ws_load(vm, c->ws_file, &pages, err, sizeof(err)) < 0)
            return setup_fail("%s", err);
        vmm_phase(vm, "ws");
        vmm_debug(vm, "working set: %llu pages pre-faulted", (unsigned long long)pages);
    }
    return open_control(vm, ctl);
}
