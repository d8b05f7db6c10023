/* vCPUs: one thread each, running KVM_RUN and dispatching exits to the buses. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H
#include <linux/kvm.h>
#include <pthread.h>
#include <stdint.h>

struct vmm;
struct boot_entry;

struct vcpu {
    struct vmm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    uint64_t exits;
};

/* Create the vCPU, set CPUID, MSRs, FPU and LAPIC LINT0/1. */
int vcpu_create(struct vmm *vm, struct vcpu *v, unsigned index, struct kvm_cpuid2 *supported);
/* The boot CPU's registers: 64-bit mode at the kernel entry, rsi = zero page.
 * Application processors wait for INIT/SIPI in the in-kernel LAPIC. */
int vcpu_setup_boot_regs(struct vcpu *v, uint64_t entry);
int vcpu_start(struct vcpu *v, pthread_barrier_t *go);
/* Kick a vCPU out of KVM_RUN (after vmm_request_exit). */
void vcpu_kick(struct vcpu *v);
void vcpu_install_kick_handler(void);

#endif
