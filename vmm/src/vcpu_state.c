/* A vCPU's architectural state for snapshots: registers, special registers,
 * XSAVE area, XCRs, debug registers, MP state, LAPIC, MSRs and pending events.
 * Read while the vCPU thread is parked outside KVM_RUN (vcpu.c). */
#include "vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "snapshot.h"
#include "vcpu.h"
#include "vmm.h"

/* The MSRs a guest kernel relies on that are not in sregs (EFER, APIC base and
 * FS/GS base are): syscall entry, TSC and its deadline/aux/adjust, the KVM
 * paravirtual clock, async-PF, steal-time and PV-EOI MSRs, PAT, MTRRs, misc
 * enable, speculation control, XSS.  Filtered at setup by what this KVM lists
 * (KVM_GET_MSR_INDEX_LIST) and can read. */
static const uint32_t msr_candidates[] = {
    0x10,                                   /* IA32_TSC */
    0x3b,                                   /* IA32_TSC_ADJUST */
    0x48,                                   /* IA32_SPEC_CTRL */
    0x174, 0x175, 0x176,                    /* SYSENTER_CS/ESP/EIP */
    0x1a0,                                  /* IA32_MISC_ENABLE */
    0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,   /* MTRR phys base/mask 0-3 */
    0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,   /* 4-7 */
    0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,  /* fixed MTRRs */
    0x277,                                  /* IA32_PAT */
    0x2ff,                                  /* MTRR default type */
    0x6e0,                                  /* IA32_TSC_DEADLINE (after the LAPIC) */
    0xda0,                                  /* IA32_XSS */
    0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,   /* STAR, LSTAR, CSTAR, SFMASK */
    0xc0000102, 0xc0000103,                 /* KERNEL_GS_BASE, TSC_AUX */
    0x11, 0x12,                             /* KVM wall clock / system time (old) */
    0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03,   /* KVM wall clock, system time, async PF, steal time */
    0x4b564d04, 0x4b564d05, 0x4b564d06,     /* PV EOI, poll control, async PF interrupt */
};
#define MAX_MSRS (sizeof(msr_candidates) / sizeof(msr_candidates[0]))

static uint32_t snap_msrs[MAX_MSRS];
static unsigned nr_snap_msrs;
static size_t xsave_size = sizeof(struct kvm_xsave);
static bool use_xsave2;

int vcpu_state_init(struct vmm *vm)
{
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + 1024 * sizeof(uint32_t));
    if (!l)
        return -ENOMEM;
    l->nmsrs = 1024;
    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        int e = errno;
        free(l);
        return -e;
    }
    nr_snap_msrs = 0;
    for (unsigned i = 0; i < MAX_MSRS; i++)
        for (unsigned j = 0; j < l->nmsrs; j++)
            if (l->indices[j] == msr_candidates[i]) {
                snap_msrs[nr_snap_msrs++] = msr_candidates[i];
                break;
            }
    free(l);
    int sz = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    if (sz > (int)sizeof(struct kvm_xsave)) {   /* AMX and the like: a larger area */
        xsave_size = (size_t)sz;
        use_xsave2 = true;
    }
    return 0;
}

/* Read the MSR list; an MSR KVM refuses is dropped from the list for good. */
static int get_msrs(struct vcpu *v, struct kvm_msrs *m)
{
    for (;;) {
        m->nmsrs = nr_snap_msrs;
        for (unsigned i = 0; i < nr_snap_msrs; i++)
            m->entries[i] = (struct kvm_msr_entry){ .index = snap_msrs[i] };
        int r = ioctl(v->fd, KVM_GET_MSRS, m);
        if (r < 0)
            return -errno;
        if ((unsigned)r == nr_snap_msrs)
            return 0;
        vmm_debug(v->vm, "vcpu%u: KVM cannot read MSR 0x%x, not saved", v->index, snap_msrs[r]);
        memmove(&snap_msrs[r], &snap_msrs[r + 1], (nr_snap_msrs - (unsigned)r - 1) * sizeof(uint32_t));
        nr_snap_msrs--;
    }
}

#define GET(req, what) do { if (ioctl(v->fd, req, what) < 0) return -errno; } while (0)

int vcpu_save_state(struct vcpu *v, struct snap_out *o)
{
    uint32_t i = v->index;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs dbg;
    struct kvm_mp_state mp;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events ev;
    GET(KVM_GET_REGS, &regs);
    GET(KVM_GET_SREGS, &sregs);
    GET(KVM_GET_XCRS, &xcrs);
    GET(KVM_GET_DEBUGREGS, &dbg);
    GET(KVM_GET_MP_STATE, &mp);
    GET(KVM_GET_LAPIC, &lapic);
    GET(KVM_GET_VCPU_EVENTS, &ev);
    snap_put(o, "regs", i, &regs, sizeof(regs));
    snap_put(o, "sregs", i, &sregs, sizeof(sregs));
    snap_put(o, "xcrs", i, &xcrs, sizeof(xcrs));
    snap_put(o, "debugregs", i, &dbg, sizeof(dbg));
    snap_put(o, "mp_state", i, &mp, sizeof(mp));
    snap_put(o, "lapic", i, &lapic, sizeof(lapic));
    snap_put(o, "events", i, &ev, sizeof(ev));

    void *xs = calloc(1, xsave_size);
    if (!xs)
        return -ENOMEM;
    if (ioctl(v->fd, use_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xs) < 0) {
        int e = errno;
        free(xs);
        return -e;
    }
    snap_put(o, "xsave", i, xs, (uint32_t)xsave_size);
    free(xs);

    struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
    if (!m)
        return -ENOMEM;
    int r = get_msrs(v, m);
    if (r == 0)
        snap_put(o, "msrs", i, m->entries, m->nmsrs * (uint32_t)sizeof(struct kvm_msr_entry));
    free(m);
    return r;
}

static int refuse(char *err, size_t n, unsigned vcpu, const char *what, int e)
{
    snprintf(err, n, "vcpu%u: %s%s%s", vcpu, what, e ? ": " : "", e ? strerror(e) : "");
    return -1;
}

/* Order as KVM needs it: MP state and registers, then special registers (which
 * set the APIC base), the FPU/XSAVE state, then the LAPIC, then the MSRs (the
 * TSC deadline needs the LAPIC), then pending events last. */
int vcpu_restore_state(struct vcpu *v, const struct snap_in *in, char *err, size_t n)
{
    uint32_t i = v->index;
    const struct kvm_regs *regs = snap_get(in, "regs", i, sizeof(*regs));
    const struct kvm_sregs *sregs = snap_get(in, "sregs", i, sizeof(*sregs));
    const struct kvm_xcrs *xcrs = snap_get(in, "xcrs", i, sizeof(*xcrs));
    const struct kvm_debugregs *dbg = snap_get(in, "debugregs", i, sizeof(*dbg));
    const struct kvm_mp_state *mp = snap_get(in, "mp_state", i, sizeof(*mp));
    const struct kvm_lapic_state *lapic = snap_get(in, "lapic", i, sizeof(*lapic));
    const struct kvm_vcpu_events *ev = snap_get(in, "events", i, sizeof(*ev));
    uint32_t xlen = 0, mlen = 0;
    const void *xs = snap_get_var(in, "xsave", i, &xlen);
    const struct kvm_msr_entry *msrs = snap_get_var(in, "msrs", i, &mlen);
    if (!regs || !sregs || !xcrs || !dbg || !mp || !lapic || !ev || !xs || !msrs)
        return refuse(err, n, i, "state records missing or of the wrong size", 0);
    if (xlen < sizeof(struct kvm_xsave) || xlen > xsave_size)
        return refuse(err, n, i, "XSAVE area of a size this host's KVM does not use", 0);
    if (mlen % sizeof(struct kvm_msr_entry) || mlen / sizeof(struct kvm_msr_entry) > MAX_MSRS)
        return refuse(err, n, i, "bad MSR record", 0);

    if (ioctl(v->fd, KVM_SET_MP_STATE, mp) < 0)
        return refuse(err, n, i, "KVM_SET_MP_STATE", errno);
    if (ioctl(v->fd, KVM_SET_REGS, regs) < 0)
        return refuse(err, n, i, "KVM_SET_REGS", errno);
    if (ioctl(v->fd, KVM_SET_SREGS, sregs) < 0)
        return refuse(err, n, i, "KVM_SET_SREGS", errno);
    void *x = calloc(1, xsave_size);   /* an aligned, full-size copy for KVM */
    if (!x)
        return refuse(err, n, i, "out of memory", 0);
    memcpy(x, xs, xlen);
    int r = ioctl(v->fd, KVM_SET_XSAVE, x);
    int e = errno;
    free(x);
    if (r < 0)
        return refuse(err, n, i, "KVM_SET_XSAVE", e);
    if (ioctl(v->fd, KVM_SET_XCRS, xcrs) < 0)
        return refuse(err, n, i, "KVM_SET_XCRS", errno);
    if (ioctl(v->fd, KVM_SET_DEBUGREGS, dbg) < 0)
        return refuse(err, n, i, "KVM_SET_DEBUGREGS", errno);
    if (ioctl(v->fd, KVM_SET_LAPIC, lapic) < 0)
        return refuse(err, n, i, "KVM_SET_LAPIC", errno);

    unsigned nm = mlen / sizeof(struct kvm_msr_entry);
    struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
    if (!m)
        return refuse(err, n, i, "out of memory", 0);
    /* KVM stops at the first MSR it refuses: report it and go on with the rest. */
    for (unsigned start = 0; start < nm;) {
        m->nmsrs = nm - start;
        memcpy(m->entries, msrs + start, m->nmsrs * sizeof(struct kvm_msr_entry));
        r = ioctl(v->fd, KVM_SET_MSRS, m);
        if (r < 0) {
            e = errno;
            free(m);
            return refuse(err, n, i, "KVM_SET_MSRS", e);
        }
        if ((unsigned)r == m->nmsrs)
            break;
        vmm_log("restore: vcpu%u: KVM refused MSR 0x%x (skipped)", i, msrs[start + (unsigned)r].index);
        start += (unsigned)r + 1;
    }
    free(m);

    struct kvm_vcpu_events evs = *ev;
    evs.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
    if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &evs) < 0)
        return refuse(err, n, i, "KVM_SET_VCPU_EVENTS", errno);
    return 0;
}
