/* Split-virtqueue device side with validation of everything the guest wrote. */
#include "virtqueue.h"

#include <string.h>

#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

struct vring_desc_le {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
_Static_assert(sizeof(struct vring_desc_le) == 16, "descriptor layout");

void vq_reset(struct virtqueue *vq)
{
    memset(vq, 0, sizeof(*vq));
}

static uint64_t desc_size(uint16_t n)  { return 16ULL * n; }
static uint64_t avail_size(uint16_t n) { return 6 + 2ULL * n; }   /* flags, idx, ring, used_event */
static uint64_t used_size(uint16_t n)  { return 6 + 8ULL * n; }   /* flags, idx, ring, avail_event */

int vq_validate(struct virtqueue *vq, const struct guest_mem *gm)
{
    uint16_t n = vq->num;
    if (n == 0 || n > VQ_NUM_MAX || (n & (n - 1)))
        return -1;
    if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
        return -1;
    if (!gm_ok(gm, vq->desc_gpa, desc_size(n)) || !gm_ok(gm, vq->avail_gpa, avail_size(n)) ||
        !gm_ok(gm, vq->used_gpa, used_size(n)))
        return -1;
    return 0;
}

static int broken(struct virtqueue *vq, const char **why, const char *reason)
{
    vq->broken = true;
    if (why)
        *why = reason;
    return -1;
}

int vq_pop(struct virtqueue *vq, const struct guest_mem *gm, struct vq_chain *c, const char **why)
{
    if (!vq->ready || vq->broken)
        return 0;
    uint16_t n = vq->num;
    /* The ring addresses were validated at QueueReady and cannot change while
     * ready, but re-deriving through gm_ptr costs little and keeps this local. */
    uint8_t *avail = gm_ptr(gm, vq->avail_gpa, avail_size(n));
    uint8_t *desc = gm_ptr(gm, vq->desc_gpa, desc_size(n));
    if (!avail || !desc)
        return broken(vq, why, "ring outside guest RAM");
    uint16_t avail_idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > n)
        return broken(vq, why, "avail index ran more than a queue ahead");
    uint16_t head = __atomic_load_n((uint16_t *)(avail + 4 + 2 * (vq->last_avail % n)), __ATOMIC_RELAXED);
    if (head >= n)
        return broken(vq, why, "avail ring names a descriptor past the table");

    c->head = head;
    c->n = 0;
    c->n_readable = 0;
    c->readable_len = c->writable_len = 0;
    uint16_t i = head;
    for (;;) {
        if (c->n >= n)
            return broken(vq, why, "descriptor chain longer than the queue (loop?)");
        struct vring_desc_le d;
        memcpy(&d, desc + 16ULL * i, sizeof(d));   /* one read of the descriptor */
        if (d.flags & VRING_DESC_F_INDIRECT)
            return broken(vq, why, "indirect descriptor (not negotiated)");
        bool w = d.flags & VRING_DESC_F_WRITE;
        if (!w && c->n_readable != c->n)
            return broken(vq, why, "readable descriptor after a writable one");
        uint8_t *host = gm_ptr(gm, d.addr, d.len);
        if (!host)
            return broken(vq, why, "descriptor buffer outside guest RAM");
        c->buf[c->n] = (struct vq_buf){ d.addr, d.len, w, host };
        c->n++;
        if (w)
            c->writable_len += d.len;
        else {
            c->n_readable++;
            c->readable_len += d.len;
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            break;
        if (d.next >= n)
            return broken(vq, why, "descriptor next index past the table");
        i = d.next;
    }
    vq->last_avail++;
    return 1;
}

int vq_push(struct virtqueue *vq, const struct guest_mem *gm, uint16_t head, uint32_t written)
{
    uint16_t n = vq->num;
    uint8_t *used = gm_ptr(gm, vq->used_gpa, used_size(n));
    if (!used || vq->broken)
        return -1;
    uint32_t elem[2] = { head, written };
    memcpy(used + 4 + 8ULL * (vq->used_idx % n), elem, sizeof(elem));
    vq->used_idx++;
    /* The element must be visible before the index that publishes it. */
    __atomic_store_n((uint16_t *)(used + 2), vq->used_idx, __ATOMIC_RELEASE);
    return 0;
}
