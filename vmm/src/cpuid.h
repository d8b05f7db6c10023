/* CPUID for the guest: KVM_GET_SUPPORTED_CPUID (only what KVM and the host can
 * back) filtered per vCPU: APIC ids and topology, the hypervisor bit, no PMU and
 * no thermal/power leaves.  The hypervisor leaves 0x40000000.. are KVM's own
 * ("KVMKVMKVM"), which is what the guest kernel's KVM_GUEST support looks for
 * (kvm-clock, PV EOI, PV TLB flush). */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H
#include <linux/kvm.h>

/* Adjust entries in place for vCPU `index` of `count`. */
void cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned nent, unsigned index, unsigned count);

#endif
