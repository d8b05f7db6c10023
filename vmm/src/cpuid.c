/* Per-vCPU CPUID filtering (see cpuid.h). */
#include "cpuid.h"

#include <stdint.h>
#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT        (1u << 28)

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid_entry2 *e, unsigned nent, uint32_t fn, uint32_t idx)
{
    for (unsigned i = 0; i < nent; i++)
        if (e[i].function == fn && e[i].index == idx)
            return &e[i];
    return NULL;
}

/* XSAVE state components whose CPU feature is absent must not be offered in
 * leaf 0xd either: a guest kernel then sizes its buffers from one and its
 * XCR0 from the other ("XSAVE consistency problem").  Seen under nested
 * emulation, where the L1 CPU model has XSAVE state for AVX but no AVX. */
static void filter_xsave(struct kvm_cpuid_entry2 *e, unsigned nent)
{
    struct kvm_cpuid_entry2 *l1 = find(e, nent, 1, 0), *l7 = find(e, nent, 7, 0), *d0 = find(e, nent, 0xd, 0);
    if (!l1 || !d0)
        return;
    uint32_t l7b = l7 ? l7->ebx : 0, l7c = l7 ? l7->ecx : 0;
    uint64_t mask = ~0ULL;
    if (!(l1->ecx & (1u << 28)))
        mask &= ~(1ULL << 2);                                  /* AVX: YMM state */
    if (!(l7b & (1u << 14)))
        mask &= ~((1ULL << 3) | (1ULL << 4));                  /* MPX */
    if (!(l7b & (1u << 16)))
        mask &= ~((1ULL << 5) | (1ULL << 6) | (1ULL << 7));    /* AVX-512 */
    if (!(l7c & (1u << 3)))
        mask &= ~(1ULL << 9);                                  /* PKRU */
    d0->eax &= (uint32_t)mask;
    d0->edx &= (uint32_t)(mask >> 32);
    /* ECX: bytes needed for every offered component (legacy area + header = 576). */
    uint64_t offered = d0->eax | ((uint64_t)d0->edx << 32);
    uint32_t size = 576;
    for (unsigned c = 2; c < 64; c++) {
        struct kvm_cpuid_entry2 *s = (offered >> c) & 1 ? find(e, nent, 0xd, c) : NULL;
        if (s && s->ebx + s->eax > size)
            size = s->ebx + s->eax;
    }
    d0->ecx = size;
}

void cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned nent, unsigned index, unsigned count)
{
    filter_xsave(e, nent);
    for (unsigned i = 0; i < nent; i++) {
        struct kvm_cpuid_entry2 *x = &e[i];
        switch (x->function) {
        case 1:
            x->ecx |= CPUID_1_ECX_HYPERVISOR;
            /* EBX: [31:24] initial APIC id, [23:16] logical processors, [15:8] CLFLUSH size/8. */
            x->ebx = (index << 24) | ((count > 1 ? count : 1) << 16) | (8u << 8) | (x->ebx & 0xff);
            if (count > 1)
                x->edx |= CPUID_1_EDX_HTT;
            else
                x->edx &= ~CPUID_1_EDX_HTT;
            break;
        case 6:    /* thermal and power management: nothing to manage */
        case 0xa:  /* architectural PMU: not offered (slow under nesting, not needed) */
            x->eax = x->ebx = x->ecx = x->edx = 0;
            break;
        case 0xb:
        case 0x1f:
            /* Extended topology: one thread per core, `count` cores in one package. */
            x->edx = index;
            if (x->index == 0) {
                x->eax = 0;
                x->ebx = 1;
                x->ecx = (1u << 8) | 0;    /* level type SMT */
            } else if (x->index == 1) {
                unsigned shift = 0;
                while ((1u << shift) < count)
                    shift++;
                x->eax = shift;
                x->ebx = count;
                x->ecx = (2u << 8) | 1;    /* level type core */
            } else {
                x->eax = x->ebx = 0;
                x->ecx = x->index & 0xff;  /* invalid level */
            }
            break;
        case 0x8000001e:
            /* AMD extended APIC id / core id: KVM passes the host CPU's own, which
             * differs with the CPU the monitor happened to run on (and would make
             * two monitors of one snapshot disagree).  One core per vCPU, node 0. */
            x->eax = index;
            x->ebx = index & 0xff;
            x->ecx = 0;
            break;
        default:
            break;
        }
    }
}
