/* Guest physical memory: one memfd, mapped once into the monitor, handed to KVM
 * as one or two memory slots (RAM below the 32-bit MMIO hole, and the rest above
 * 4 GiB).  A memfd so that a later snapshot/clone can map the same pages.
 *
 * Every guest physical address the monitor uses goes through gm_ptr(), which
 * returns a host pointer only when [gpa, gpa+len) lies entirely inside one RAM
 * range (cf. Solo5 hvt's HVT_CHECKED_GPA_P). */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MMIO_HOLE_START 0xc0000000ULL   /* RAM stops here below 4 GiB */
#define GM_HIGH_START      0x100000000ULL  /* and continues here */

struct guest_mem {
    int      fd;         /* memfd backing all guest RAM (restored: the snapshot's memory file) */
    uint8_t *host;       /* host mapping of the whole memfd */
    uint64_t size;       /* total RAM bytes */
    uint64_t low_size;   /* RAM at [0, low_size) */
    uint64_t high_size;  /* RAM at [4 GiB, 4 GiB + high_size), host offset low_size */
};

int  guest_mem_init(struct guest_mem *gm, uint64_t size);
/* --restore: map a snapshot's memory file (fd kept) MAP_PRIVATE as guest RAM. */
int  guest_mem_map_snapshot(struct guest_mem *gm, int fd, uint64_t size);
void guest_mem_free(struct guest_mem *gm);

/* Host pointer for [gpa, gpa+len) or NULL if any byte is outside RAM or the
 * range crosses from one RAM range into the hole.  len may be 0. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
static inline bool gm_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{ return gm_ptr(gm, gpa, len) != NULL; }

/* Copy in/out with the same check; return 0 or -1. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

#endif
