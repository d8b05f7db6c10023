/* The monitor's central state: one struct vmm per process (= per microVM). */
#ifndef VMM_VMM_H
#define VMM_VMM_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "guest_mem.h"
#include "io_bus.h"

struct vcpu;
struct snap_dev;
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

    /* Pause (control `pause`): vCPU threads park outside KVM_RUN (vcpu.c). */
    pthread_mutex_t run_lock;
    pthread_cond_t run_cond;
    bool pause_req;
    unsigned parked, stopped;     /* vCPU threads parked / returned */

    /* Snapshots (snapshot.c): the devices' save/restore table, filled by setup. */
    struct snap_dev *snap_devs;
    unsigned nr_snap_devs;
    bool started;                 /* vCPU threads released */
    bool restored;                /* started with --restore: RAM is a MAP_PRIVATE file */
    int pagemap_fd;               /* /proc/self/pagemap, opened before seccomp (ws-save) */

    struct timespec t_start;      /* process start (main() entry) */
    double setup_wall_ms, setup_cpu_ms;  /* start -> first KVM_RUN */
    bool verbose;
};

/* Ask the monitor to stop the VM and exit with `code`; idempotent (first wins).
 * Safe from any thread. */
void vmm_request_exit(struct vmm *vm, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool vmm_is_exiting(struct vmm *vm);

/* Park every vCPU outside KVM_RUN (0), or -1 if the VM is ending.  Main thread. */
int vmm_pause(struct vmm *vm);
void vmm_resume(struct vmm *vm);
bool vmm_paused(struct vmm *vm);

/* nexus-attach (control.c): validate the region memfd and the two eventfds and
 * plug them into the Nexus device.  0 (fds kept) or -1 with err (fds untouched). */
int vmm_nexus_attach(struct vmm *vm, int fds[3], char *err, size_t n);

/* Set an interrupt line (GSI) of the in-kernel irqchip. */
void vmm_irq_line(struct vmm *vm, unsigned gsi, int level);

void vmm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define vmm_debug(vm, ...) do { if ((vm)->verbose) vmm_log(__VA_ARGS__); } while (0)

double vmm_now_ms(void);

/* CLOCK_REALTIME now + ms: the absolute deadline pthread_timedjoin_np and
 * pthread_cond_timedwait (default clock) take. */
static inline struct timespec vmm_realtime_after_ms(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

#endif
