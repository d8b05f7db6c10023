/* virtio-mmio v2 register file and state machine. */
#include "virtio_mmio.h"

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>

#include "snapshot.h"

#define VIRTIO_MMIO_MAGIC  0x74726976   /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x5358454e   /* "NEXS" */

void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_dev_ops *ops, void *dev,
                      const struct guest_mem *mem, uint64_t base, unsigned irq,
                      void (*set_irq)(void *, unsigned, int), void *irq_ctx)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->ops = ops;
    t->dev = dev;
    t->mem = mem;
    t->base = base;
    t->irq = irq;
    t->set_irq = set_irq;
    t->irq_ctx = irq_ctx;
}

uint64_t virtio_mmio_device_features(const struct virtio_mmio *t)
{
    return t->ops->features(t->dev) | (1ULL << VIRTIO_F_VERSION_1_BIT);
}

bool virtio_mmio_driver_ok(const struct virtio_mmio *t)
{
    return (t->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(t->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* The line follows InterruptStatus: high while any bit is set (level semantics;
 * the IOAPIC pin is edge-configured, so each rise is one interrupt, and the
 * driver reads the status and acks before processing, which closes the race). */
static void update_irq(struct virtio_mmio *t)
{
    if (t->set_irq)
        t->set_irq(t->irq_ctx, t->irq, t->interrupt_status != 0);
}

void virtio_mmio_signal_used(struct virtio_mmio *t)
{
    t->interrupt_status |= VIRTIO_MMIO_INT_VRING;
    update_irq(t);
}

void virtio_mmio_fail(struct virtio_mmio *t, const char *why)
{
    t->last_error = why;
    if (!(t->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        t->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        if (t->status & VIRTIO_CONFIG_S_DRIVER_OK) {
            t->interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
            update_irq(t);
        }
    }
}

static void device_reset(struct virtio_mmio *t)
{
    if (t->ops->reset)
        t->ops->reset(t->dev, t);
    t->status = 0;
    t->dev_features_sel = t->drv_features_sel = t->queue_sel = t->shm_sel = 0;
    t->driver_features = 0;
    t->interrupt_status = 0;
    t->last_error = NULL;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
        vq_reset(&t->vq[i]);
    update_irq(t);
}

static struct virtqueue *cur_vq(struct virtio_mmio *t)
{
    return t->queue_sel < t->ops->num_queues ? &t->vq[t->queue_sel] : NULL;
}

static void set_status(struct virtio_mmio *t, uint32_t v)
{
    if (v == 0) {
        device_reset(t);
        return;
    }
    uint32_t old = t->status;
    /* FEATURES_OK is accepted only for a subset of what we offer that includes
     * VERSION_1 (this is a modern-only device); otherwise the bit stays clear
     * and the driver, reading it back, gives up (virtio 1.x 3.1.1). */
    if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
        uint64_t offered = virtio_mmio_device_features(t);
        if ((t->driver_features & ~offered) || !(t->driver_features & (1ULL << VIRTIO_F_VERSION_1_BIT)))
            v &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
    }
    /* The driver cannot clear bits (other than by reset), nor set NEEDS_RESET. */
    t->status = old | (v & ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((t->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
        if (!(t->status & VIRTIO_CONFIG_S_FEATURES_OK))
            virtio_mmio_fail(t, "DRIVER_OK without FEATURES_OK");
        else if (t->ops->driver_ok)
            t->ops->driver_ok(t->dev, t);
    }
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
    struct virtqueue *vq = cur_vq(t);
    uint64_t f;
    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return 2;
    case VIRTIO_MMIO_DEVICE_ID: return t->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        f = virtio_mmio_device_features(t);
        return t->dev_features_sel == 0 ? (uint32_t)f : t->dev_features_sel == 1 ? (uint32_t)(f >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return vq ? VQ_NUM_MAX : 0;
    case VIRTIO_MMIO_QUEUE_READY: return vq ? vq->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return t->interrupt_status;
    case VIRTIO_MMIO_STATUS: return t->status;
    case VIRTIO_MMIO_CONFIG_GENERATION: return t->config_generation;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: return vq ? (uint32_t)vq->desc_gpa : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: return vq ? (uint32_t)(vq->desc_gpa >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW: return vq ? (uint32_t)vq->avail_gpa : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: return vq ? (uint32_t)(vq->avail_gpa >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_USED_LOW: return vq ? (uint32_t)vq->used_gpa : 0;
    case VIRTIO_MMIO_QUEUE_USED_HIGH: return vq ? (uint32_t)(vq->used_gpa >> 32) : 0;
    case VIRTIO_MMIO_SHM_LEN_LOW: case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW: case VIRTIO_MMIO_SHM_BASE_HIGH: {
        uint64_t base, len;
        if (!t->ops->shm_region || t->ops->shm_region(t->dev, t->shm_sel, &base, &len) < 0)
            return 0xffffffff;   /* length ~0: no such region (virtio 1.2 4.2.2) */
        uint64_t v = (off == VIRTIO_MMIO_SHM_LEN_LOW || off == VIRTIO_MMIO_SHM_LEN_HIGH) ? len : base;
        return (off & 4) ? (uint32_t)(v >> 32) : (uint32_t)v;
    }
    default: return 0;
    }
}

static void set_addr(uint64_t *a, uint32_t v, bool high)
{
    *a = high ? ((*a & 0xffffffffULL) | ((uint64_t)v << 32)) : ((*a & ~0xffffffffULL) | v);
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
    struct virtqueue *vq = cur_vq(t);
    /* Queue layout registers may only change while the queue is not ready. */
    bool vq_writable = vq && !vq->ready;
    bool features_open = !(t->status & VIRTIO_CONFIG_S_FEATURES_OK);
    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: t->dev_features_sel = v; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (features_open && t->drv_features_sel < 2) {
            unsigned sh = 32 * t->drv_features_sel;
            t->driver_features = (t->driver_features & ~(0xffffffffULL << sh)) | ((uint64_t)v << sh);
        }
        break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: t->drv_features_sel = v; break;
    case VIRTIO_MMIO_QUEUE_SEL: t->queue_sel = v; break;
    case VIRTIO_MMIO_SHM_SEL: t->shm_sel = v; break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (vq_writable)
            vq->num = v <= VQ_NUM_MAX ? (uint16_t)v : 0;
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (!vq)
            break;
        if (v == 1 && !vq->ready) {
            if (vq_validate(vq, t->mem) < 0) {
                virtio_mmio_fail(t, "queue size or ring addresses invalid");
                break;
            }
            vq->ready = true;
        } else if (v == 0) {
            vq->ready = false;
        }
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        if (v < t->ops->num_queues && virtio_mmio_driver_ok(t) && t->vq[v].ready && !t->vq[v].broken)
            t->ops->queue_notify(t->dev, t, v);
        break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        t->interrupt_status &= ~v;
        update_irq(t);
        break;
    case VIRTIO_MMIO_STATUS: set_status(t, v); break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: if (vq_writable) set_addr(&vq->desc_gpa, v, false); break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: if (vq_writable) set_addr(&vq->desc_gpa, v, true); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW: if (vq_writable) set_addr(&vq->avail_gpa, v, false); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: if (vq_writable) set_addr(&vq->avail_gpa, v, true); break;
    case VIRTIO_MMIO_QUEUE_USED_LOW: if (vq_writable) set_addr(&vq->used_gpa, v, false); break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH: if (vq_writable) set_addr(&vq->used_gpa, v, true); break;
    default: break;   /* read-only or unknown: ignored */
    }
}

static void mmio_read(void *dev, uint64_t off, void *data, unsigned len)
{
    struct virtio_mmio *t = dev;
    memset(data, 0, len);   /* anything we do not answer reads as zero */
    pthread_mutex_lock(&t->lock);
    if (off >= VIRTIO_MMIO_CONFIG) {
        uint64_t c = off - VIRTIO_MMIO_CONFIG;
        if (c < t->ops->config_size && len <= t->ops->config_size - c && t->ops->config_read)
            t->ops->config_read(t->dev, (uint32_t)c, data, len);
    } else if (len == 4 && !(off & 3)) {
        uint32_t v = reg_read(t, off);
        memcpy(data, &v, 4);
    }
    pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct virtio_mmio *t = dev;
    pthread_mutex_lock(&t->lock);
    /* Config space is read-only for our devices; registers are 32-bit only. */
    if (off < VIRTIO_MMIO_CONFIG && len == 4 && !(off & 3)) {
        uint32_t v;
        memcpy(&v, data, 4);
        reg_write(t, off, v);
    }
    pthread_mutex_unlock(&t->lock);
}

const struct io_ops virtio_mmio_ops = { mmio_read, mmio_write };

/* ---- snapshot: the transport's registers and every queue's ring state ---- */

struct vmmio_vq_state {
    uint64_t desc, avail, used;
    uint16_t num, last_avail, used_idx;
    uint8_t ready, broken;
};
struct vmmio_state {
    uint32_t status, dev_features_sel, drv_features_sel, queue_sel, shm_sel;
    uint32_t config_generation, interrupt_status, reserved;
    uint64_t driver_features;
    struct vmmio_vq_state vq[VIRTIO_MMIO_MAX_QUEUES];
};

void virtio_mmio_save(void *dev, struct snap_out *o, uint32_t index)
{
    struct virtio_mmio *t = dev;
    struct vmmio_state s;
    memset(&s, 0, sizeof(s));
    pthread_mutex_lock(&t->lock);
    s.status = t->status;
    s.dev_features_sel = t->dev_features_sel;
    s.drv_features_sel = t->drv_features_sel;
    s.queue_sel = t->queue_sel;
    s.shm_sel = t->shm_sel;
    s.config_generation = t->config_generation;
    s.interrupt_status = t->interrupt_status;
    s.driver_features = t->driver_features;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
        const struct virtqueue *q = &t->vq[i];
        s.vq[i] = (struct vmmio_vq_state){ q->desc_gpa, q->avail_gpa, q->used_gpa, q->num,
                                          q->last_avail, q->used_idx, q->ready, q->broken };
    }
    pthread_mutex_unlock(&t->lock);
    snap_put(o, "virtio-mmio", index, &s, sizeof(s));
}

/* The file is checked, but a ready queue is validated again as if the driver
 * had just set QueueReady: rings of the wrong size or outside RAM refuse it. */
int virtio_mmio_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n)
{
    struct virtio_mmio *t = dev;
    const struct vmmio_state *s = snap_get(in, "virtio-mmio", index, sizeof(*s));
    if (!s) {
        snprintf(err, n, "transport record missing");
        return -1;
    }
    pthread_mutex_lock(&t->lock);
    t->status = s->status;
    t->dev_features_sel = s->dev_features_sel;
    t->drv_features_sel = s->drv_features_sel;
    t->queue_sel = s->queue_sel;
    t->shm_sel = s->shm_sel;
    t->config_generation = s->config_generation;
    t->interrupt_status = s->interrupt_status & (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
    t->driver_features = s->driver_features;
    int r = 0;
    for (unsigned i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
        const struct vmmio_vq_state *q = &s->vq[i];
        struct virtqueue *vq = &t->vq[i];
        vq_reset(vq);
        vq->desc_gpa = q->desc;
        vq->avail_gpa = q->avail;
        vq->used_gpa = q->used;
        vq->num = q->num;
        vq->last_avail = q->last_avail;
        vq->used_idx = q->used_idx;
        vq->broken = q->broken;
        if (q->ready && (i >= t->ops->num_queues || vq_validate(vq, t->mem) < 0)) {
            snprintf(err, n, "queue %u: size or ring addresses invalid", i);
            r = -1;
        }
        vq->ready = q->ready && r == 0;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}
