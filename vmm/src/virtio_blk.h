/* virtio-blk over a host file (device id 2). */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H
#include <stdbool.h>
#include <stdint.h>

#include "virtio_mmio.h"

struct virtio_blk {
    int fd;
    bool ro;
    uint64_t capacity;            /* in 512-byte sectors */
    char id[20];                  /* VIRTIO_BLK_T_GET_ID answer */
    struct virtio_mmio transport;
    uint64_t reqs, errors;
};

extern const struct virtio_dev_ops virtio_blk_ops;
/* Open `path` (O_RDONLY when ro).  Returns 0 or -errno. */
int virtio_blk_open(struct virtio_blk *b, const char *path, bool ro, unsigned index);

#endif
