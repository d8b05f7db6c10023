/* virtio-mmio transport, version 2 ("modern", virtio 1.x section 4.2).  A device
 * (virtio_blk.c, virtio_net.c, later the Nexus device) supplies a virtio_dev_ops
 * table; the transport owns the register file, feature negotiation, the status
 * state machine, the virtqueue registers and the interrupt line. */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_mem.h"
#include "io_bus.h"
#include "virtqueue.h"

#define VIRTIO_MMIO_MAX_QUEUES 4
#define VIRTIO_F_VERSION_1_BIT 32

struct virtio_mmio;

struct virtio_dev_ops {
    const char *name;
    uint32_t device_id;
    unsigned num_queues;
    /* Device-specific features; the transport adds VIRTIO_F_VERSION_1. */
    uint64_t (*features)(void *dev);
    /* Config space access at `off` (already checked against config_size). */
    uint32_t config_size;
    void (*config_read)(void *dev, uint32_t off, void *data, unsigned len);
    /* The driver kicked queue q (called with the transport lock held). */
    void (*queue_notify)(void *dev, struct virtio_mmio *t, unsigned q);
    /* DRIVER_OK set (optional), and device reset (optional). */
    void (*driver_ok)(void *dev, struct virtio_mmio *t);
    void (*reset)(void *dev, struct virtio_mmio *t);
    /* Shared-memory region `id` (virtio 1.2 SHMSel/SHMLen/SHMBase; optional):
     * 0 with its guest-physical base and length, or -1 for "no such region". */
    int (*shm_region)(void *dev, uint32_t id, uint64_t *base, uint64_t *len);
};

struct virtio_mmio {
    pthread_mutex_t lock;
    const struct virtio_dev_ops *ops;
    void *dev;
    const struct guest_mem *mem;
    uint64_t base;
    unsigned irq;
    void (*set_irq)(void *ctx, unsigned irq, int level);
    void *irq_ctx;

    uint32_t status;
    uint32_t dev_features_sel, drv_features_sel, queue_sel, shm_sel;
    uint64_t driver_features;
    uint32_t config_generation;
    uint32_t interrupt_status;    /* bit 0: used buffer, bit 1: config change */
    struct virtqueue vq[VIRTIO_MMIO_MAX_QUEUES];
    const char *last_error;       /* why the device last went NEEDS_RESET */
};

extern const struct io_ops virtio_mmio_ops;

void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                      const struct guest_mem *mem, uint64_t base, unsigned irq,
                      void (*set_irq)(void *, unsigned, int), void *irq_ctx);
/* Called by devices (lock held): a used buffer was returned on some queue. */
void virtio_mmio_signal_used(struct virtio_mmio *t);
/* Called by devices (lock held): the driver broke the protocol. */
void virtio_mmio_fail(struct virtio_mmio *t, const char *why);
bool virtio_mmio_driver_ok(const struct virtio_mmio *t);
uint64_t virtio_mmio_device_features(const struct virtio_mmio *t);

/* Snapshot save/restore of the transport (snapshot.h's snap_dev interface). */
struct snap_out;
struct snap_in;
void virtio_mmio_save(void *dev, struct snap_out *o, uint32_t index);
int virtio_mmio_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n);

#endif
