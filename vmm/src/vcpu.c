/* vCPU creation, boot register state, and the run loop. */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "boot_linux.h"
#include "cpuid.h"
#include "exit_codes.h"
#include "layout.h"
#include "vmm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static int set_msrs(struct vcpu *v)
{
    static const struct { uint32_t index; uint64_t data; } boot_msrs[] = {
        { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, { MSR_IA32_SYSENTER_EIP, 0 },
        { MSR_STAR, 0 }, { MSR_LSTAR, 0 }, { MSR_CSTAR, 0 }, { MSR_SYSCALL_MASK, 0 },
        { MSR_KERNEL_GS_BASE, 0 },
        { MSR_IA32_MISC_ENABLE, 1 },                    /* fast strings */
        { MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },          /* MTRRs on, default write-back */
    };
    enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
    struct { struct kvm_msrs hdr; struct kvm_msr_entry e[N]; } m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = N;
    for (unsigned i = 0; i < N; i++) {
        m.e[i].index = boot_msrs[i].index;
        m.e[i].data = boot_msrs[i].data;
    }
    int r = ioctl(v->fd, KVM_SET_MSRS, &m);
    if (r < 0)
        return -errno;
    if (r != N)   /* KVM stops at the first MSR it refuses; the rest are optional */
        vmm_debug(v->vm, "vcpu%u: KVM took %d of %d boot MSRs (refused 0x%x)", v->index, r, N,
                  m.e[r].index);
    return 0;
}

static int set_lint(struct vcpu *v)
{
    struct kvm_lapic_state la;
    if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
        return -errno;
    uint32_t lvt0, lvt1;
    memcpy(&lvt0, la.regs + APIC_LVT0, 4);
    memcpy(&lvt1, la.regs + APIC_LVT1, 4);
    lvt0 = (lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    lvt1 = (lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
    memcpy(la.regs + APIC_LVT0, &lvt0, 4);
    memcpy(la.regs + APIC_LVT1, &lvt1, 4);
    return ioctl(v->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

int vcpu_create(struct vmm *vm, struct vcpu *v, unsigned index, struct kvm_cpuid2 *supported)
{
    memset(v, 0, sizeof(*v));
    v->vm = vm;
    v->index = index;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (v->fd < 0)
        return -errno;
    v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED)
        return -errno;

    size_t sz = sizeof(struct kvm_cpuid2) + supported->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    if (!c)
        return -ENOMEM;
    memcpy(c, supported, sz);
    cpuid_filter(c->entries, c->nent, index, vm->nr_vcpus);
    int r = ioctl(v->fd, KVM_SET_CPUID2, c);
    free(c);
    if (r < 0)
        return -errno;

    if ((r = set_msrs(v)) < 0)
        return r;
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
        return -errno;
    return set_lint(v);
}

static void segment_from_gdt(struct kvm_segment *s, uint64_t e, unsigned idx)
{
    s->base = ((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24);
    uint32_t limit = (uint32_t)((e & 0xffff) | (((e >> 48) & 0xf) << 16));
    s->g = (e >> 55) & 1;
    s->limit = s->g ? (limit << 12) | 0xfff : limit;
    s->selector = (uint16_t)(idx * 8);
    s->type = (e >> 40) & 0xf;
    s->s = (e >> 44) & 1;
    s->dpl = (e >> 45) & 3;
    s->present = (e >> 47) & 1;
    s->avl = (e >> 52) & 1;
    s->l = (e >> 53) & 1;
    s->db = (e >> 54) & 1;
    s->unusable = !s->present;
}

int vcpu_setup_boot_regs(struct vcpu *v, uint64_t entry)
{
    struct kvm_sregs sr;
    if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0)
        return -errno;
    struct kvm_segment code, data, tss;
    segment_from_gdt(&code, boot_gdt[BOOT_GDT_CODE], BOOT_GDT_CODE);
    segment_from_gdt(&data, boot_gdt[BOOT_GDT_DATA], BOOT_GDT_DATA);
    segment_from_gdt(&tss, boot_gdt[BOOT_GDT_TSS], BOOT_GDT_TSS);
    sr.cs = code;
    sr.ds = sr.es = sr.fs = sr.gs = sr.ss = data;
    sr.tr = tss;
    sr.gdt.base = LAYOUT_GDT;
    sr.gdt.limit = sizeof(boot_gdt) - 1;
    sr.idt.base = LAYOUT_IDT;
    sr.idt.limit = 7;
    sr.cr0 = 0x1 | 0x10 | 0x80000000;           /* PE | ET | PG */
    sr.cr3 = LAYOUT_PML4;
    sr.cr4 = 0x20;                              /* PAE */
    sr.efer = 0x100 | 0x400;                    /* LME | LMA */
    if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0)
        return -errno;
    struct kvm_regs r;
    memset(&r, 0, sizeof(r));
    r.rflags = 0x2;
    r.rip = entry;
    r.rsp = r.rbp = LAYOUT_BOOT_STACK;
    r.rsi = LAYOUT_ZERO_PAGE;                   /* boot protocol: rsi = boot_params */
    return ioctl(v->fd, KVM_SET_REGS, &r) < 0 ? -errno : 0;
}

static void kick_handler(int sig)
{
    (void)sig;   /* only there to make KVM_RUN return EINTR */
}

void vcpu_install_kick_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

void vcpu_kick(struct vcpu *v)
{
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

static void dump_regs(struct vcpu *v)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &r) != 0 || ioctl(v->fd, KVM_GET_SREGS, &s) != 0)
        return;
    /* On AMD, KVM re-INITs a vCPU that shut down (the VMCB is undefined after
     * a SHUTDOWN intercept), so these are the reset values, not the fault's:
     * say so rather than let them pass for where the guest died. */
    bool reset = r.rip == 0xfff0 && s.cs.selector == 0xf000 && !(s.cr0 & 1);
    vmm_log("vcpu%u: rip=0x%llx rsp=0x%llx rflags=0x%llx cr0=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx cs=0x%x%s",
            v->index, r.rip, r.rsp, r.rflags, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector,
            reset ? " (the reset state: KVM re-initialised the vCPU at the shutdown, as it does on AMD; "
                    "the faulting state is lost)" : "");
}

static void handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned size = run->io.size;
    uint64_t total = (uint64_t)size * run->io.count;
    if ((size != 1 && size != 2 && size != 4) || run->io.data_offset > (uint64_t)v->vm->run_size ||
        total > (uint64_t)v->vm->run_size - run->io.data_offset)
        return;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    for (uint32_t i = 0; i < run->io.count; i++, data += size)
        io_bus_access(&v->vm->pio, run->io.port, data, size, run->io.direction == KVM_EXIT_IO_OUT);
}

static void handle_mmio(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned len = run->mmio.len;
    if (len == 0 || len > 8)
        return;
    if (io_bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write) < 0)
        vmm_debug(v->vm, "vcpu%u: unhandled MMIO %s 0x%llx/%u", v->index,
                  run->mmio.is_write ? "write" : "read", (unsigned long long)run->mmio.phys_addr, len);
}

static void note_first_run(struct vmm *vm)
{
    if (vm->setup_wall_ms > 0)
        return;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    vm->setup_cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    vm->setup_wall_ms = vmm_now_ms() - (vm->t_start.tv_sec * 1e3 + vm->t_start.tv_nsec / 1e6);
    if (getenv("NEXUS_VMM_TIMING"))
        vmm_log("timing: setup_wall_ms=%.3f setup_cpu_ms=%.3f", vm->setup_wall_ms, vm->setup_cpu_ms);
}

/* Pause protocol (vmm_pause/vmm_resume): the main thread sets pause_req and kicks;
 * a vCPU parks only after KVM_RUN returned EINTR with immediate_exit set, i.e.
 * after KVM completed any in-flight port/MMIO instruction, so the registers read
 * while it is parked are a clean instruction boundary (the KVM API's requirement
 * for saving state). */
static void park_if_asked(struct vcpu *v)
{
    struct vmm *vm = v->vm;
    pthread_mutex_lock(&vm->run_lock);
    if (vm->pause_req && !vmm_is_exiting(vm)) {
        vm->parked++;
        pthread_cond_broadcast(&vm->run_cond);
        while (vm->pause_req && !vmm_is_exiting(vm))
            pthread_cond_wait(&vm->run_cond, &vm->run_lock);
        vm->parked--;
    }
    pthread_mutex_unlock(&vm->run_lock);
}

static void note_stopped(struct vmm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->stopped++;
    pthread_cond_broadcast(&vm->run_cond);
    pthread_mutex_unlock(&vm->run_lock);
}

bool vmm_paused(struct vmm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    bool p = vm->pause_req && vm->parked + vm->stopped == vm->nr_vcpus;
    pthread_mutex_unlock(&vm->run_lock);
    return p;
}

/* Kick, and kick again every 50 ms until every vCPU is parked (a kick cannot be
 * lost by this code, but a nested hypervisor has been seen to sit on one); give up
 * after 10 s rather than leave the control socket hanging. */
int vmm_pause(struct vmm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->pause_req = true;
    int r = 0;
    for (int round = 0; vm->parked + vm->stopped < vm->nr_vcpus && !vmm_is_exiting(vm); round++) {
        if (round == 200) {
            r = -1;
            break;
        }
        pthread_mutex_unlock(&vm->run_lock);
        for (unsigned i = 0; i < vm->nr_vcpus; i++)
            vcpu_kick(&vm->vcpus[i]);
        pthread_mutex_lock(&vm->run_lock);
        struct timespec until = vmm_realtime_after_ms(50);
        while (vm->parked + vm->stopped < vm->nr_vcpus && !vmm_is_exiting(vm) &&
               pthread_cond_timedwait(&vm->run_cond, &vm->run_lock, &until) == 0) {
        }
    }
    if (vmm_is_exiting(vm))
        r = -1;
    if (r < 0) {   /* not paused after all: let the parked ones go on */
        vm->pause_req = false;
        pthread_cond_broadcast(&vm->run_cond);
    }
    pthread_mutex_unlock(&vm->run_lock);
    return r;
}

void vmm_resume(struct vmm *vm)
{
    pthread_mutex_lock(&vm->run_lock);
    vm->pause_req = false;
    pthread_cond_broadcast(&vm->run_cond);
    pthread_mutex_unlock(&vm->run_lock);
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    struct vmm *vm = v->vm;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (!vmm_is_exiting(vm)) {
        if (v->index == 0)
            note_first_run(vm);
        int r = ioctl(v->fd, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                park_if_asked(v);
                continue;
            }
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "vcpu%u: KVM_RUN: %s", v->index, strerror(errno));
            break;
        }
        v->exits++;
        switch (v->run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(v);
            break;
        case KVM_EXIT_MMIO:
            handle_mmio(v);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_SHUTDOWN:
            dump_regs(v);
            vmm_request_exit(vm, VMM_EXIT_TRIPLE_FAULT, "vcpu%u: triple fault (KVM_EXIT_SHUTDOWN)", v->index);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (v->run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                vmm_request_exit(vm, VMM_EXIT_RESET, "vcpu%u: system reset", v->index);
            else if (v->run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
                vmm_request_exit(vm, VMM_EXIT_GUEST_PANIC, "vcpu%u: guest crash event", v->index);
            else
                vmm_request_exit(vm, 0, "vcpu%u: system event %u (power off)", v->index,
                                 v->run->system_event.type);
            break;
        case KVM_EXIT_HLT:
            /* Only without an in-kernel LAPIC; we always have one. */
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "vcpu%u: unexpected HLT exit", v->index);
            break;
        case KVM_EXIT_FAIL_ENTRY:
            dump_regs(v);
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "vcpu%u: VM entry failed (reason 0x%llx)", v->index,
                             (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            dump_regs(v);
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "vcpu%u: KVM internal error, suberror %u", v->index,
                             v->run->internal.suberror);
            break;
        default:
            dump_regs(v);
            vmm_request_exit(vm, VMM_EXIT_INTERNAL, "vcpu%u: unexpected exit reason %u", v->index,
                             v->run->exit_reason);
            break;
        }
    }
    note_stopped(vm);
    return NULL;
}

struct start_arg { struct vcpu *v; pthread_barrier_t *go; };

static void *vcpu_trampoline(void *arg)
{
    struct start_arg a = *(struct start_arg *)arg;
    free(arg);
    pthread_barrier_wait(a.go);   /* released once the seccomp filter is in place */
    return vcpu_thread(a.v);
}

int vcpu_start(struct vcpu *v, pthread_barrier_t *go)
{
    struct start_arg *a = malloc(sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->v = v;
    a->go = go;
    int r = pthread_create(&v->thread, NULL, vcpu_trampoline, a);
    if (r) {
        free(a);
        return -r;
    }
    /* A name per thread (/proc/PID/task/TID/comm), so that a VM's CPU can be
     * split into guest execution and device work (bench/vm-density).  Set
     * from here, before the seccomp filter: it writes to /proc.  Cosmetic,
     * so a failure is ignored. */
    char name[16];
    snprintf(name, sizeof name, "vcpu%u", v->index);
    pthread_setname_np(v->thread, name);
    return 0;
}
