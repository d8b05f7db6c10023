/* Guest RAM backed by a memfd; bounds-checked guest-physical access. */
#include "guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Records a mapping of SIZE bytes of FD at P: RAM below the 32-bit MMIO hole,
 * the rest above 4 GiB (the same split for a fresh boot and a restore). */
static void guest_mem_adopt(struct guest_mem *gm, int fd, void *p, uint64_t size)
{
    gm->fd = fd;
    gm->host = p;
    gm->size = size;
    gm->low_size = size < GM_MMIO_HOLE_START ? size : GM_MMIO_HOLE_START;
    gm->high_size = size - gm->low_size;
}

int guest_mem_init(struct guest_mem *gm, uint64_t size)
{
    memset(gm, 0, sizeof(*gm));
    gm->fd = -1;
    if (size == 0 || (size & 0xfff))
        return -EINVAL;
    int fd = memfd_create("nexus-guest-ram", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* MAP_SHARED so that KVM, a snapshot writer and clones all see the same
     * pages; MAP_NORESERVE because the guest touches only what it uses. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    guest_mem_adopt(gm, fd, p, size);
    return 0;
}

int guest_mem_map_snapshot(struct guest_mem *gm, int fd, uint64_t size)
{
    memset(gm, 0, sizeof(*gm));
    gm->fd = -1;
    if (size == 0 || (size & 0xfff))
        return -EINVAL;
    /* MAP_PRIVATE: clones of one snapshot share its page cache and each gets
     * its own copy of a page only when it writes to it; the file never changes. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    guest_mem_adopt(gm, fd, p, size);
    return 0;
}

void guest_mem_free(struct guest_mem *gm)
{
    if (gm->host)
        munmap(gm->host, gm->size);
    if (gm->fd >= 0)
        close(gm->fd);
    gm->host = NULL;
    gm->fd = -1;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
    if (!gm->host)
        return NULL;
    /* Written so that no sum can wrap: compare against the range end minus len. */
    if (gpa < gm->low_size) {
        if (len > gm->low_size - gpa)
            return NULL;
        return gm->host + gpa;
    }
    if (gpa >= GM_HIGH_START && gm->high_size) {
        uint64_t off = gpa - GM_HIGH_START;
        if (off >= gm->high_size || len > gm->high_size - off)
            return NULL;
        return gm->host + gm->low_size + off;
    }
    return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);
    if (!p)
        return -1;
    memcpy(dst, p, len);
    return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);
    if (!p)
        return -1;
    memcpy(p, src, len);
    return 0;
}
