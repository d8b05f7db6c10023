/* SPDX-License-Identifier: MIT */
/*
 * The Nexus device: the guest's view of its channel region inside a microVM.
 * Shared by nexus-vmm (vmm/src/dev_nexus.c), the guest kernel driver
 * (guest/kernel/nexus/nexus_dev.c, /dev/nexus) and libnexus's /dev/nexus
 * transport (guest/libnexus/transport_devnexus.c).  Uses only <linux/types.h>
 * and <linux/ioctl.h> so that it builds in the kernel and in userspace.
 *
 * Device: virtio-mmio (version 2), device ID NEXUS_VIRTIO_DEVICE_ID, no
 * virtqueues, no device features.  Its virtio 1.2 shared-memory region
 * NEXUS_SHM_ID (SHMSel/SHMLen/SHMBase) is the channel region (the memfd nexusd
 * created), mapped as its own KVM memory slot outside guest RAM.
 *   config space +0  doorbell (le32, write-only): any 4-byte write is a KVM
 *                    ioeventfd signalling nexusd's kick-host eventfd (no exit to
 *                    the monitor's userspace)
 *   interrupt        the device's virtio-mmio IRQ line, raised by nexusd through
 *                    a KVM irqfd on its kick-guest eventfd
 *
 * /dev/nexus (the driver):
 *   mmap(0, len <= region_size)   the region, shared, write-back cached
 *   write(8 bytes, any value)     ring the doorbell (as writing an eventfd)
 *   ioctl(NEXUS_IOC_KICK)         the same
 *   read(8 bytes)                 wait for interrupts: returns how many arrived
 *                                 since the last read (>= 1) and resets the
 *                                 count, like an eventfd; EAGAIN if O_NONBLOCK
 *                                 and none; ESTALE once if the region's
 *                                 generation changed (re-attach, then
 *                                 NEXUS_IOC_INFO acknowledges the new one)
 *   poll                          POLLIN: interrupts pending; POLLPRI: the
 *                                 region's generation changed
 *   ioctl(NEXUS_IOC_INFO)         struct nexus_dev_info
 */
#ifndef NEXUS_DEV_H
#define NEXUS_DEV_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Outside the range the virtio spec assigns (0..~50): ours, "NX". */
#define NEXUS_VIRTIO_DEVICE_ID   0x4e58u
#define NEXUS_SHM_ID             0u
#define NEXUS_CFG_DOORBELL       0u     /* offset in the device config space */
#define NEXUS_CFG_SIZE           8u

struct nexus_dev_info {
	__u64 region_size;     /* bytes of the shared-memory region */
	__u64 region_gpa;      /* its guest-physical base */
	__u64 generation;      /* the region header's generation, now */
	__u64 interrupts;      /* interrupts since the driver started */
};

#define NEXUS_IOC_INFO   _IOR('N', 1, struct nexus_dev_info)
#define NEXUS_IOC_KICK   _IO('N', 2)

#endif
