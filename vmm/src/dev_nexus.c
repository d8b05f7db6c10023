/* The Nexus device: see dev_nexus.h and include/nexus/nexus_dev.h. */
#include "dev_nexus.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nexus/channel.h"
#include "nexus/nexus_dev.h"
#include "snapshot.h"

static uint64_t nexus_features(void *dev)
{
    (void)dev;
    return 0;
}

/* Config space: the doorbell reads as zero (it is write-only; KVM swallows the
 * writes that match the ioeventfd, the transport drops any other). */
static void nexus_config_read(void *dev, uint32_t off, void *data, unsigned len)
{
    (void)dev; (void)off;
    memset(data, 0, len);
}

static void nexus_queue_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    (void)dev; (void)t; (void)q;   /* no queues */
}

static int nexus_shm_region(void *dev, uint32_t id, uint64_t *base, uint64_t *len)
{
    struct nexus_dev *nd = dev;
    if (id != NEXUS_SHM_ID)
        return -1;
    *base = nd->gpa;
    *len = nd->size;
    return 0;
}

const struct virtio_dev_ops nexus_dev_ops = {
    .name = "nexus",
    .device_id = NEXUS_VIRTIO_DEVICE_ID,
    .num_queues = 0,
    .features = nexus_features,
    .config_size = NEXUS_CFG_SIZE,
    .config_read = nexus_config_read,
    .queue_notify = nexus_queue_notify,
    .shm_region = nexus_shm_region,
};

static int fail(char *err, size_t n, const char *what, int e)
{
    snprintf(err, n, "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "");
    return -1;
}

/* What /proc/self/fd/N links to: "anon_inode:[eventfd]", "/memfd:NAME (deleted)", ... */
static int fd_target_is(int fd, const char *prefix)
{
    char link[64], target[128];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return 0;
    target[n] = 0;
    return strncmp(target, prefix, strlen(prefix)) == 0;
}

static int is_eventfd(int fd)
{
    return fd_target_is(fd, "anon_inode:[eventfd]");
}

int nexus_dev_open(struct nexus_dev *nd, const int fds[3], char *err, size_t errlen)
{
    /* Not a memset: with --nexus control the transport is already registered. */
    nd->region = NULL;
    nd->size = 0;
    nd->region_fd = fds[0];
    nd->kick_host_fd = fds[1];
    nd->kick_guest_fd = fds[2];
    struct stat st;
    if (fstat(nd->region_fd, &st) < 0)
        return fail(err, errlen, "--nexus: region fd", errno);
    /* A memfd, not a file someone else can open by name (tmpfs files answer
     * F_GET_SEALS too, so the link name is what tells). */
    if (!S_ISREG(st.st_mode) || !fd_target_is(nd->region_fd, "/memfd:"))
        return fail(err, errlen, "--nexus: the region fd is not a memfd", 0);
    if (st.st_size < (off_t)NX_REGION_MIN || st.st_size > (off_t)NX_REGION_MAX || (st.st_size & 4095))
        return fail(err, errlen, "--nexus: region size not a page multiple within NX_REGION_MIN..MAX", 0);
    if (!is_eventfd(nd->kick_host_fd) || !is_eventfd(nd->kick_guest_fd))
        return fail(err, errlen, "--nexus: the kick fds must be eventfds", 0);
    if (nd->snap_size && (uint64_t)st.st_size != nd->snap_size)
        return fail(err, errlen, "--nexus: the region's size differs from the snapshotted one", 0);
    nd->size = (uint64_t)st.st_size;
    /* MAP_SHARED: the guest must see nexusd's writes and nexusd the guest's. */
    nd->region = mmap(NULL, nd->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, nd->region_fd, 0);
    if (nd->region == MAP_FAILED) {
        nd->region = NULL;
        return fail(err, errlen, "--nexus: mmap region", errno);
    }
    return 0;
}

uint64_t nexus_dev_gpa(const struct guest_mem *gm)
{
    uint64_t end = GM_HIGH_START + gm->high_size;
    const uint64_t gib = 1ULL << 30;
    return (end + gib - 1) & ~(gib - 1);
}

int nexus_dev_attach(struct nexus_dev *nd, int vm_fd, const struct guest_mem *gm, unsigned slot,
                     char *err, size_t errlen)
{
    nd->gpa = nexus_dev_gpa(gm);
    struct kvm_userspace_memory_region mr = {
        .slot = slot, .guest_phys_addr = nd->gpa, .memory_size = nd->size,
        .userspace_addr = (uint64_t)(uintptr_t)nd->region,
    };
    if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
        return fail(err, errlen, "nexus: KVM_SET_USER_MEMORY_REGION", errno);
    /* Doorbell: a 4-byte write to config +0 signals kick_host in KVM itself. */
    struct kvm_ioeventfd io = {
        .addr = nd->transport.base + VIRTIO_MMIO_CONFIG + NEXUS_CFG_DOORBELL,
        .len = 4, .fd = nd->kick_host_fd, .flags = 0,
    };
    if (ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0)
        return fail(err, errlen, "nexus: KVM_IOEVENTFD", errno);
    /* Interrupt: nexusd writing kick_guest pulses the device's line. */
    struct kvm_irqfd irq = { .fd = (uint32_t)nd->kick_guest_fd, .gsi = nd->transport.irq };
    if (ioctl(vm_fd, KVM_IRQFD, &irq) < 0)
        return fail(err, errlen, "nexus: KVM_IRQFD", errno);
    return 0;
}

/* ---- snapshot: the transport, and the region's size and place (never its
 * contents: a restored VM always gets a fresh region from nexusd) ---- */

struct nexus_state { uint64_t size, gpa; };

void nexus_dev_save(void *dev, struct snap_out *o, uint32_t index)
{
    struct nexus_dev *nd = dev;
    virtio_mmio_save(&nd->transport, o, index);
    struct nexus_state s = { nd->size, nd->gpa };
    snap_put(o, "nexus", index, &s, sizeof(s));
}

int nexus_dev_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n)
{
    struct nexus_dev *nd = dev;
    const struct nexus_state *s = snap_get(in, "nexus", index, sizeof(*s));
    if (!s || s->size < NX_REGION_MIN || s->size > NX_REGION_MAX || (s->size & 4095)) {
        snprintf(err, n, "region record missing or implausible");
        return -1;
    }
    nd->snap_size = s->size;
    return virtio_mmio_restore(&nd->transport, in, index, err, n);
}
