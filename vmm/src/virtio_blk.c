/* virtio-blk: requests are served synchronously in the vCPU thread that kicked
 * the queue (like Solo5 hvt; a later issue can move them to an I/O thread with
 * an ioeventfd).  Request layout (virtio 1.x 5.2.6): a 16-byte header in the
 * first, device-readable buffer; data buffers; a status byte in the last,
 * device-writable buffer. */
#include "virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR 512ULL
#define BLK_SEG_MAX (VQ_NUM_MAX - 2)

int virtio_blk_open(struct virtio_blk *b, const char *path, bool ro, unsigned index)
{
    memset(b, 0, sizeof(*b));
    b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (b->fd < 0)
        return -errno;
    /* lseek, not fstat: a block device's st_size is 0. */
    off_t size = lseek(b->fd, 0, SEEK_END);
    if (size < 0) {
        int e = errno;
        close(b->fd);
        return -e;
    }
    b->ro = ro;
    b->capacity = (uint64_t)size / SECTOR;   /* a partial last sector is not exposed */
    snprintf(b->id, sizeof(b->id), "nexus-vd%c", 'a' + (index % 26));
    return 0;
}

static uint64_t blk_features(void *dev)
{
    struct virtio_blk *b = dev;
    return (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_FLUSH) |
           (b->ro ? (1ULL << VIRTIO_BLK_F_RO) : 0);
}

static void blk_config_read(void *dev, uint32_t off, void *data, unsigned len)
{
    struct virtio_blk *b = dev;
    struct virtio_blk_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.capacity = b->capacity;
    cfg.seg_max = BLK_SEG_MAX;
    memcpy(data, (uint8_t *)&cfg + off, len);
}

/* preadv/pwritev the whole iovec, looping over short transfers. */
static int rw_full(int fd, struct iovec *iov, int cnt, uint64_t off, bool write)
{
    while (cnt > 0) {
        ssize_t r = write ? pwritev(fd, iov, cnt, (off_t)off) : preadv(fd, iov, cnt, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            if (write)
                return -1;
            for (int i = 0; i < cnt; i++)   /* read past EOF: zeros */
                memset(iov[i].iov_base, 0, iov[i].iov_len);
            return 0;
        }
        off += (uint64_t)r;
        while (cnt > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* Serve one chain; returns the bytes written into the driver's buffers. */
static uint32_t blk_request(struct virtio_blk *b, struct vq_chain *c)
{
    if (c->n < 2 || c->n_readable < 1 || c->buf[0].len < sizeof(struct virtio_blk_outhdr) ||
        !c->buf[c->n - 1].writable || c->buf[c->n - 1].len < 1)
        return 0;   /* malformed: nowhere to put a status; return it empty */
    struct virtio_blk_outhdr hdr;
    memcpy(&hdr, c->buf[0].host, sizeof(hdr));   /* one read of the header */
    struct vq_buf *st = &c->buf[c->n - 1];
    uint8_t *status = st->host + st->len - 1;
    uint8_t s = VIRTIO_BLK_S_OK;
    uint32_t written = 0;

    /* Data buffers are buf[1 .. n-2]. */
    unsigned nd = c->n - 2;
    struct iovec iov[VQ_NUM_MAX];
    uint64_t total = 0;
    bool dir_ok = true;
    bool want_write = hdr.type == VIRTIO_BLK_T_OUT;
    for (unsigned i = 0; i < nd; i++) {
        struct vq_buf *d = &c->buf[1 + i];
        iov[i] = (struct iovec){ d->host, d->len };
        total += d->len;
        if (d->writable == want_write)   /* OUT reads guest buffers; IN writes them */
            dir_ok = false;
    }

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT:
        if (!dir_ok || (total % SECTOR) || hdr.sector > b->capacity ||
            total / SECTOR > b->capacity - hdr.sector) {
            s = VIRTIO_BLK_S_IOERR;
            break;
        }
        if (want_write && b->ro) {
            s = VIRTIO_BLK_S_IOERR;
            break;
        }
        if (rw_full(b->fd, iov, (int)nd, hdr.sector * SECTOR, want_write) < 0)
            s = VIRTIO_BLK_S_IOERR;
        else if (!want_write)
            written = (uint32_t)total;
        break;
    case VIRTIO_BLK_T_FLUSH:
        if (!b->ro && fdatasync(b->fd) < 0)
            s = VIRTIO_BLK_S_IOERR;
        break;
    case VIRTIO_BLK_T_GET_ID:
        if (nd != 1 || !c->buf[1].writable) {
            s = VIRTIO_BLK_S_IOERR;
            break;
        }
        {
            uint32_t n = c->buf[1].len < sizeof(b->id) ? c->buf[1].len : (uint32_t)sizeof(b->id);
            memcpy(c->buf[1].host, b->id, n);
            written = n;
        }
        break;
    default:
        s = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    if (s != VIRTIO_BLK_S_OK)
        b->errors++;
    b->reqs++;
    *status = s;
    return written + 1;
}

static void blk_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct virtio_blk *b = dev;
    struct virtqueue *vq = &t->vq[q];
    static __thread struct vq_chain chain;   /* 6 KiB: keep it off the vCPU stack */
    bool any = false;
    const char *why = NULL;
    int r;
    while ((r = vq_pop(vq, t->mem, &chain, &why)) == 1) {
        uint32_t w = blk_request(b, &chain);
        vq_push(vq, t->mem, chain.head, w);
        any = true;
    }
    if (r < 0)
        virtio_mmio_fail(t, why);
    if (any)
        virtio_mmio_signal_used(t);
}

const struct virtio_dev_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .device_id = 2 /* VIRTIO_ID_BLOCK */,
    .num_queues = 1,
    .features = blk_features,
    .config_size = sizeof(struct virtio_blk_config),
    .config_read = blk_config_read,
    .queue_notify = blk_notify,
};
