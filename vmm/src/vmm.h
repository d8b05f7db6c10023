/* The monitor's central state: one struct vmm per process (= per microVM). */
#ifndef VMM_VMM_H
#define VMM_VMM_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "guest_mem.h"
#include "io_bus.h"

struct vcpu;
struct vmm {
    struct vmm_config cfg;
    int kvm_fd, vm_fd;
    int run_size;                 /* size of each vCPU's kvm_run mapping */
    struct guest_mem mem;
    struct io_bus pio, mmio;
    struct vcpu *vcpus;
    unsigned nr_vcpus;
    unsigned next_virtio_irq;     /* allocator for virtio-mmio IRQ lines */
    unsigned nr_virtio;

    /* How the VM ends: the first vmm_request_exit() wins. */
    int exit_efd;                 /* eventfd the main loop waits on */
    int exit_code;
    bool exiting;
    char exit_reason[160];
    bool guest_panicked;          /* pvpanic write or the kernel's panic line seen */

    struct timespec t_start;      /* process start (main() entry) */
    double setup_wall_ms, setup_cpu_ms;  /* start -> first KVM_RUN */
    bool verbose;
};

/* Ask the monitor to stop the VM and exit with `code`; idempotent (first wins).
 * Safe from any thread. */
void vmm_request_exit(struct vmm *vm, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool vmm_is_exiting(struct vmm *vm);

/* Set an interrupt line (GSI) of the in-kernel irqchip. */
void vmm_irq_line(struct vmm *vm, unsigned gsi, int level);

void vmm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define vmm_debug(vm, ...) do { if ((vm)->verbose) vmm_log(__VA_ARGS__); } while (0)

double vmm_now_ms(void);

#endif
