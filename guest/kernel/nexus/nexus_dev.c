// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/nexus: the guest side of the Nexus device (include/nexus/nexus_dev.h).
 *
 * A virtio driver for a virtio-mmio device with no virtqueues: its shared-memory
 * region 0 is the channel region (nexusd's memfd, mapped by nexus-vmm as its own
 * memory slot), its config-space doorbell is a KVM ioeventfd into nexusd, and
 * its interrupt line is raised by nexusd through a KVM irqfd.  The driver only
 * maps, rings and waits: the channel protocol (rings, arenas, notification
 * suppression) lives in userspace (libnexus), as for the `process` sandbox.
 *
 * Interrupts: virtio-mmio's own handler owns the line and acknowledges it; it
 * finds no virtqueue work and returns IRQ_NONE, so this driver registers a
 * second handler on the same (shared) line that counts the interrupt and wakes
 * readers.  One device per VM; /dev/nexus is its misc device.
 *
 * Built into the guest kernel by guest/kernel/build.sh (CONFIG_NEXUS_GUEST_DEV).
 */
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/poll.h>
#include <linux/uaccess.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>

#include "nexus_dev.h"

/* Offset of the generation field in struct nx_region_hdr (include/nexus/channel.h). */
#define NX_HDR_GENERATION_OFF 16

struct nexus_dev {
	struct virtio_device *vdev;
	struct miscdevice misc;
	phys_addr_t base;
	u64 size;
	void *hdr;                 /* the region's first page, write-back mapped */
	int irq;
	atomic64_t interrupts;     /* total since probe */
	atomic64_t pending;        /* since the last read() */
	wait_queue_head_t wq;
	u64 generation;            /* last generation acknowledged (NEXUS_IOC_INFO) */
};

static struct nexus_dev *the_dev;   /* one per VM */

static u64 nexus_generation(struct nexus_dev *nd)
{
	return READ_ONCE(*(u64 *)((u8 *)nd->hdr + NX_HDR_GENERATION_OFF));
}

static irqreturn_t nexus_irq(int irq, void *opaque)
{
	struct nexus_dev *nd = opaque;

	atomic64_inc(&nd->interrupts);
	atomic64_inc(&nd->pending);
	wake_up_interruptible(&nd->wq);
	return IRQ_HANDLED;
}

static void nexus_kick(struct nexus_dev *nd)
{
	/* A 4-byte write: KVM matches it against the ioeventfd and signals nexusd
	 * without leaving the kernel of the host. */
	virtio_cwrite32(nd->vdev, NEXUS_CFG_DOORBELL, 1);
}

static int nexus_open(struct inode *inode, struct file *f)
{
	if (!the_dev)
		return -ENODEV;
	f->private_data = the_dev;
	return 0;
}

static bool nexus_stale(struct nexus_dev *nd)
{
	return nexus_generation(nd) != READ_ONCE(nd->generation);
}

static ssize_t nexus_read(struct file *f, char __user *buf, size_t len, loff_t *ppos)
{
	struct nexus_dev *nd = f->private_data;
	s64 n;
	int r;

	if (len < sizeof(u64))
		return -EINVAL;
	for (;;) {
		if (nexus_stale(nd))
			return -ESTALE;
		n = atomic64_xchg(&nd->pending, 0);
		if (n > 0)
			break;
		if (f->f_flags & O_NONBLOCK)
			return -EAGAIN;
		r = wait_event_interruptible(nd->wq, atomic64_read(&nd->pending) > 0 || nexus_stale(nd));
		if (r)
			return r;
	}
	if (put_user((u64)n, (u64 __user *)buf))
		return -EFAULT;
	return sizeof(u64);
}

static ssize_t nexus_write(struct file *f, const char __user *buf, size_t len, loff_t *ppos)
{
	struct nexus_dev *nd = f->private_data;

	if (len < sizeof(u64))
		return -EINVAL;
	nexus_kick(nd);
	return sizeof(u64);
}

static __poll_t nexus_poll(struct file *f, poll_table *wait)
{
	struct nexus_dev *nd = f->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;

	poll_wait(f, &nd->wq, wait);
	if (atomic64_read(&nd->pending) > 0)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (nexus_stale(nd))
		mask |= EPOLLPRI;
	return mask;
}

static long nexus_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct nexus_dev *nd = f->private_data;
	struct nexus_dev_info info;

	switch (cmd) {
	case NEXUS_IOC_KICK:
		nexus_kick(nd);
		return 0;
	case NEXUS_IOC_INFO:
		memset(&info, 0, sizeof(info));
		info.region_size = nd->size;
		info.region_gpa = nd->base;
		info.generation = nexus_generation(nd);
		info.interrupts = atomic64_read(&nd->interrupts);
		WRITE_ONCE(nd->generation, info.generation);   /* acknowledged */
		if (copy_to_user((void __user *)arg, &info, sizeof(info)))
			return -EFAULT;
		return 0;
	default:
		return -ENOTTY;
	}
}

static int nexus_mmap(struct file *f, struct vm_area_struct *vma)
{
	struct nexus_dev *nd = f->private_data;
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;     /* a private copy would not be the channel */
	if (off >= nd->size || len > nd->size - off)
		return -EINVAL;
	vma->vm_flags |= VM_IO | VM_DONTEXPAND | VM_DONTDUMP;
	/* Default (write-back) protection: this is ordinary host memory behind a
	 * KVM memory slot, not a register window. */
	return remap_pfn_range(vma, vma->vm_start, (nd->base + off) >> PAGE_SHIFT, len, vma->vm_page_prot);
}

static const struct file_operations nexus_fops = {
	.owner = THIS_MODULE,
	.open = nexus_open,
	.read = nexus_read,
	.write = nexus_write,
	.poll = nexus_poll,
	.unlocked_ioctl = nexus_ioctl,
	.mmap = nexus_mmap,
	.llseek = noop_llseek,
};

static int nexus_probe(struct virtio_device *vdev)
{
	struct virtio_shm_region shm;
	struct platform_device *pdev;
	struct nexus_dev *nd;
	int r;

	if (the_dev)
		return -EBUSY;
	if (!virtio_get_shm_region(vdev, &shm, NEXUS_SHM_ID)) {
		dev_err(&vdev->dev, "no shared-memory region %u\n", NEXUS_SHM_ID);
		return -ENODEV;
	}
	if (shm.len < PAGE_SIZE || !PAGE_ALIGNED(shm.len) || !PAGE_ALIGNED(shm.addr) ||
	    shm.addr + shm.len < shm.addr) {
		dev_err(&vdev->dev, "bad region %#llx+%#llx\n", shm.addr, shm.len);
		return -EINVAL;
	}
	/* The interrupt line is the transport's platform device's. */
	if (!vdev->dev.parent || vdev->dev.parent->bus != &platform_bus_type)
		return -ENODEV;
	pdev = to_platform_device(vdev->dev.parent);

	nd = devm_kzalloc(&vdev->dev, sizeof(*nd), GFP_KERNEL);
	if (!nd)
		return -ENOMEM;
	nd->vdev = vdev;
	nd->base = shm.addr;
	nd->size = shm.len;
	atomic64_set(&nd->interrupts, 0);
	atomic64_set(&nd->pending, 0);
	init_waitqueue_head(&nd->wq);
	nd->hdr = memremap(shm.addr, PAGE_SIZE, MEMREMAP_WB);
	if (!nd->hdr)
		return -ENOMEM;
	nd->generation = nexus_generation(nd);
	nd->irq = platform_get_irq(pdev, 0);
	if (nd->irq < 0) {
		r = nd->irq;
		goto err_unmap;
	}
	r = request_irq(nd->irq, nexus_irq, IRQF_SHARED, "nexus", nd);
	if (r)
		goto err_unmap;
	vdev->priv = nd;
	virtio_device_ready(vdev);

	nd->misc.minor = MISC_DYNAMIC_MINOR;
	nd->misc.name = "nexus";
	nd->misc.fops = &nexus_fops;
	nd->misc.mode = 0666;
	the_dev = nd;
	r = misc_register(&nd->misc);
	if (r) {
		the_dev = NULL;
		goto err_irq;
	}
	dev_info(&vdev->dev, "nexus: region %#llx+%#llx, irq %d, generation %llu\n",
		 (u64)nd->base, nd->size, nd->irq, nd->generation);
	return 0;

err_irq:
	virtio_reset_device(vdev);
	free_irq(nd->irq, nd);
err_unmap:
	memunmap(nd->hdr);
	return r;
}

static void nexus_remove(struct virtio_device *vdev)
{
	struct nexus_dev *nd = vdev->priv;

	misc_deregister(&nd->misc);
	the_dev = NULL;
	virtio_reset_device(vdev);
	free_irq(nd->irq, nd);
	memunmap(nd->hdr);
}

static const struct virtio_device_id nexus_id_table[] = {
	{ NEXUS_VIRTIO_DEVICE_ID, VIRTIO_DEV_ANY_ID },
	{ 0 },
};

static struct virtio_driver nexus_driver = {
	.driver.name = "nexus",
	.driver.owner = THIS_MODULE,
	.id_table = nexus_id_table,
	.probe = nexus_probe,
	.remove = nexus_remove,
};

module_virtio_driver(nexus_driver);
MODULE_DESCRIPTION("Nexus channel device (/dev/nexus)");
MODULE_LICENSE("GPL");
