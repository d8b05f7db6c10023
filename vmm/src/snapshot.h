/* Snapshots: the vmstate file format, and saving/restoring a whole VM.
 *
 * DIR/vmstate = a header (magic, format version, file size, checksum over the
 * whole file, and the identity a restore must match: memory size, vCPU count,
 * a hash of this host's KVM CPUID, the device list) followed by records
 * {name, index, length, bytes}.  Each subsystem writes and reads its own records:
 * vCPUs in vcpu_state.c, the irqchip/PIT/clock in snapshot.c, each device next to
 * the device (serial_save in dev_serial.c, virtio_mmio_save in virtio_mmio.c, ...)
 * through the snap_dev table that setup fills.  DIR/memory = guest RAM, sparse.
 * docs/vmm.md ("Snapshots") describes the format and what is saved. */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;

#define SNAP_MAGIC   "NXVMSNAP"
#define SNAP_VERSION 1
#define SNAP_DEVLIST_MAX 256

struct snap_header {
    char     magic[8];
    uint32_t version;
    uint32_t header_size;       /* sizeof(struct snap_header) */
    uint64_t file_size;         /* the whole vmstate file */
    uint64_t checksum;          /* snap_checksum() of the file with this field zero */
    uint64_t mem_size;          /* guest RAM bytes = DIR/memory's size */
    uint32_t nr_vcpus;
    uint32_t reserved;
    uint64_t cpuid_hash;        /* hash of KVM_GET_SUPPORTED_CPUID on the saving host */
    char     devices[SNAP_DEVLIST_MAX];   /* "serial,virtio-blk:rw:2048,..." NUL-terminated */
};

/* A record stream being written (grows in memory, then written in one go). */
struct snap_out {
    uint8_t *data;
    size_t len, cap;
    bool oom;
};
void snap_put(struct snap_out *o, const char *name, uint32_t index, const void *p, uint32_t len);

/* A loaded and verified vmstate. */
struct snap_in {
    struct snap_header hdr;
    const uint8_t *rec;         /* records after the header */
    size_t rec_len;
    uint8_t *file;              /* the whole file (owned) */
};
/* The record name/index if it is present with exactly `len` bytes, else NULL. */
const void *snap_get(const struct snap_in *in, const char *name, uint32_t index, uint32_t len);
/* Same, any length: *len gets it. */
const void *snap_get_var(const struct snap_in *in, const char *name, uint32_t index, uint32_t *len);

/* One device's state: setup registers one per device, in creation order. */
struct snap_dev {
    char ident[48];             /* part of the device list: kind and what must match */
    void *dev;
    void (*save)(void *dev, struct snap_out *o, uint32_t index);
    /* 0, or -1 with a one-line reason in err (refuses the snapshot). */
    int (*restore)(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n);
};
int vmm_add_snap_dev(struct vmm *vm, const char *ident, void *dev,
                     void (*save)(void *, struct snap_out *, uint32_t),
                     int (*restore)(void *, const struct snap_in *, uint32_t, char *, size_t));
void vmm_devlist(const struct vmm *vm, char *out, size_t n);

uint64_t snap_checksum(const void *p, size_t n);

/* The memory file's checksum, stored in vmstate as the record "memsum" (so the
 * vmstate checksum covers it): CRC32C (Castagnoli; the SSE4.2 instruction where
 * the CPU has it) over (page index as 8 bytes, page) of every non-zero 4 KiB
 * page in ascending order.  Zero pages contribute nothing, whether they are
 * holes or written zeros, so the sum depends on the contents only, not on how
 * sparse the file is.  Catches damage (flipped bytes, lost or zeroed pages,
 * shifted data), not a forger, like the vmstate checksum. */
#define SNAP_MEMSUM_CRC32C_PAGES 1
struct snap_memsum {
    uint32_t algo;              /* SNAP_MEMSUM_CRC32C_PAGES */
    uint32_t crc;
    uint64_t pages;             /* non-zero pages summed */
};
void snap_memsum_page(struct snap_memsum *s, uint64_t index, const void *page);
/* Sum a memory file of `size` bytes (its data extents, read with pread).
 * 0 or -errno. */
int snap_memsum_file(int fd, uint64_t size, struct snap_memsum *out);
/* Verify DIR/memory against "memsum" in snapshot_load() (reads the whole file,
 * so it defeats lazy loading: for a snapshot the caller did not write itself).
 * On with snapshot_set_verify_memory(true) or NEXUS_VMM_VERIFY_MEMORY=1 in the
 * environment (docs/vmm.md, "Memory integrity"). */
void snapshot_set_verify_memory(bool on);

/* Host CPUID identity (computed at setup, before seccomp). */
void snapshot_set_cpuid_hash(uint64_t h);
uint64_t snapshot_cpuid_hash(void);

/* Control `snapshot` (VM paused): write DIR/vmstate and DIR/memory.  0 or -1
 * with err; *ms and *mem_bytes get the wall time and the bytes of RAM written. */
int snapshot_write(struct vmm *vm, const char *dir, double *ms, uint64_t *mem_bytes,
                   char *err, size_t n);

/* --restore: read and verify DIR/vmstate (magic, version, size, checksum) and
 * DIR/memory's size (and its contents when verifying memory is on).  0, or -1
 * with a one-line reason (exit 72). */
int snapshot_load(const char *dir, struct snap_in *in, int *mem_fd, char *err, size_t n);
/* Check the header's identity against this VM (set up from it). */
int snapshot_check_identity(const struct vmm *vm, const struct snap_in *in, char *err, size_t n);
/* Put the irqchip, PIT, clock, vCPUs and devices back.  0 or -1 with err. */
int snapshot_restore_state(struct vmm *vm, const struct snap_in *in, char *err, size_t n);
void snapshot_free(struct snap_in *in);

/* Working set: ws-save writes the RAM pages present in this process's private
 * mapping (pagemap) as "start_page count\n" lines; ws-load pre-faults them. */
int ws_save(struct vmm *vm, const char *path, uint64_t *pages, char *err, size_t n);
int ws_load(struct vmm *vm, const char *path, uint64_t *pages, char *err, size_t n);

#endif
