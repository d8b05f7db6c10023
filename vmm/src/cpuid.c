/* Per-vCPU CPUID filtering (see cpuid.h). */
#include "cpuid.h"

#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT        (1u << 28)

void cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned nent, unsigned index, unsigned count)
{
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
        default:
            break;
        }
    }
}
