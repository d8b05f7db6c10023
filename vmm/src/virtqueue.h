/* Split virtqueues (virtio 1.x, section 2.7) as the device side sees them.
 * The rings live in guest memory, which the guest can change at any time, so:
 * every index and descriptor is read once into monitor memory and validated
 * there; chains are bounded by the queue size; every buffer must lie inside
 * guest RAM; readable buffers must come before writable ones; indirect
 * descriptors are refused (the feature is not offered). */
#ifndef VMM_VIRTQUEUE_H
#define VMM_VIRTQUEUE_H
#include <stdbool.h>
#include <stdint.h>

#include "guest_mem.h"

#define VQ_NUM_MAX 256

struct virtqueue {
    uint16_t num;                 /* size the driver chose (power of two <= VQ_NUM_MAX) */
    bool     ready;
    bool     broken;              /* the driver violated the protocol: stop using it */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    uint16_t last_avail;          /* next avail ring slot the device will read */
    uint16_t used_idx;            /* device's copy of used->idx */
};

struct vq_buf {
    uint64_t gpa;
    uint32_t len;
    bool     writable;
    uint8_t *host;                /* gm_ptr(gpa, len), already checked */
};

struct vq_chain {
    uint16_t head;
    unsigned n;                   /* buffers */
    unsigned n_readable;          /* the first n_readable are device-readable */
    uint64_t readable_len, writable_len;
    struct vq_buf buf[VQ_NUM_MAX];
};

/* Reset to the state after device reset. */
void vq_reset(struct virtqueue *vq);
/* Check the rings' sizes and alignment and that they lie in RAM; called when the
 * driver sets QueueReady.  Returns 0 or -1. */
int vq_validate(struct virtqueue *vq, const struct guest_mem *gm);
/* Take the next available chain: 1 = got one, 0 = ring empty, -1 = the driver
 * broke the protocol (the queue is then marked broken and never used again). */
int vq_pop(struct virtqueue *vq, const struct guest_mem *gm, struct vq_chain *c, const char **why);
/* Return a chain to the driver with `written` bytes written into its buffers. */
int vq_push(struct virtqueue *vq, const struct guest_mem *gm, uint16_t head, uint32_t written);

#endif
