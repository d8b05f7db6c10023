/* The Nexus device (include/nexus/nexus_dev.h): the instance's channel region,
 * handed over by nexusd, as a virtio-mmio device whose shared-memory region 0 is
 * that memfd mapped into guest-physical space as its own KVM memory slot, outside
 * RAM.  Its doorbell (config space +0) is a KVM ioeventfd on nexusd's kick-host
 * eventfd and its interrupt a KVM irqfd on nexusd's kick-guest eventfd: after
 * setup the monitor is in neither path. */
#ifndef VMM_DEV_NEXUS_H
#define VMM_DEV_NEXUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio_mmio.h"

struct vmm;

struct nexus_dev {
    struct virtio_mmio transport;
    int region_fd, kick_host_fd, kick_guest_fd;
    void *region;                 /* the monitor's own mapping (given to KVM only) */
    uint64_t size, gpa;
    uint64_t snap_size;           /* restored: the region must have this size (0: any) */
    bool attached;
};

extern const struct virtio_dev_ops nexus_dev_ops;

/* Validate the three fds and map the region.  0 or -1 with a message in err. */
int nexus_dev_open(struct nexus_dev *nd, const int fds[3], char *err, size_t errlen);
/* Where the region goes in guest-physical space: the first 1 GiB boundary at or
 * above 4 GiB that is past all RAM. */
uint64_t nexus_dev_gpa(const struct guest_mem *gm);
/* After the transport is registered (its base and IRQ known): place the region
 * (nexus_dev_gpa), memory slot,
 * ioeventfd, irqfd.  0 or -1 with a message in err. */
int nexus_dev_attach(struct nexus_dev *nd, int vm_fd, const struct guest_mem *gm, unsigned slot,
                     char *err, size_t errlen);

void nexus_dev_save(void *dev, struct snap_out *o, uint32_t index);
int nexus_dev_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n);

#endif
