/* Snapshots: the vmstate format (see snapshot.h), writing DIR/vmstate and a sparse
 * DIR/memory, loading and verifying them, the VM-wide KVM state (irqchip, PIT,
 * clock), and the working-set file. */
#include "snapshot.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <nmmintrin.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vcpu.h"
#include "vcpu_state.h"
#include "vmm.h"

#define PAGE 4096ULL
#define VMSTATE_MAX (16u << 20)
#define REC_NAME 16

struct rec_hdr {
    char name[REC_NAME];
    uint32_t index;
    uint32_t len;
};

static uint64_t cpuid_hash;
void snapshot_set_cpuid_hash(uint64_t h) { cpuid_hash = h; }
uint64_t snapshot_cpuid_hash(void) { return cpuid_hash; }


/* FNV-1a, 64-bit: catches flipped and shifted bytes; not a defence against a
 * forger (the snapshot directory is the host's own, like the kernel image). */
uint64_t snap_checksum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- the memory file's checksum (CRC32C over the non-zero pages) ---- */

static bool verify_memory;
void snapshot_set_verify_memory(bool on) { verify_memory = on; }

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    for (; n; n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}

/* Bit by bit, for a CPU without SSE4.2 (none that runs KVM today). */
static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return crc;
}

static uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    static int hw = -1;
    if (hw < 0)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    return hw ? crc32c_hw(crc, p, n) : crc32c_sw(crc, p, n);
}

void snap_memsum_page(struct snap_memsum *s, uint64_t index, const void *page)
{
    s->algo = SNAP_MEMSUM_CRC32C_PAGES;
    s->crc = crc32c(s->crc, &index, sizeof(index));
    s->crc = crc32c(s->crc, page, PAGE);
    s->pages++;
}

static bool all_zero(const uint8_t *p);

int snap_memsum_file(int fd, uint64_t size, struct snap_memsum *out)
{
    memset(out, 0, sizeof(*out));
    out->algo = SNAP_MEMSUM_CRC32C_PAGES;
    const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return -ENOMEM;
    int r = 0;
    uint64_t off = 0;
    while (off < size && r == 0) {
        off_t data = lseek(fd, (off_t)off, SEEK_DATA);
        if (data < 0) {
            r = errno == ENXIO ? 0 : -errno;   /* ENXIO: only a hole is left */
            break;
        }
        off_t hole = lseek(fd, data, SEEK_HOLE);
        uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
        for (uint64_t p = (uint64_t)data & ~(PAGE - 1); p < end && r == 0;) {
            size_t want = end - p < chunk ? (size_t)((end - p + PAGE - 1) & ~(PAGE - 1)) : chunk;
            if (p + want > size)
                want = (size_t)(size - p);
            ssize_t got = pread(fd, buf, want, (off_t)p);
            if (got < 0 && errno == EINTR)
                continue;
            if (got != (ssize_t)want) {
                r = got < 0 ? -errno : -EIO;
                break;
            }
            for (size_t i = 0; i < want; i += PAGE)
                if (!all_zero(buf + i))
                    snap_memsum_page(out, (p + i) / PAGE, buf + i);
            p += want;
        }
        off = (end + PAGE - 1) & ~(PAGE - 1);   /* > data: the next extent starts on a later page */
    }
    free(buf);
    return r;
}

void snap_put(struct snap_out *o, const char *name, uint32_t index, const void *p, uint32_t len)
{
    size_t need = sizeof(struct rec_hdr) + ((len + 7u) & ~7u);
    if (o->oom)
        return;
    if (o->len + need > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 65536;
        while (cap < o->len + need)
            cap *= 2;
        uint8_t *d = realloc(o->data, cap);
        if (!d) {
            o->oom = true;
            return;
        }
        o->data = d;
        o->cap = cap;
    }
    struct rec_hdr h = { .index = index, .len = len };
    snprintf(h.name, sizeof(h.name), "%s", name);
    memcpy(o->data + o->len, &h, sizeof(h));
    memcpy(o->data + o->len + sizeof(h), p, len);
    memset(o->data + o->len + sizeof(h) + len, 0, need - sizeof(h) - len);
    o->len += need;
}

const void *snap_get_var(const struct snap_in *in, const char *name, uint32_t index, uint32_t *len)
{
    /* snapshot_load() checked that the records tile rec[0..rec_len) exactly. */
    for (size_t off = 0; off < in->rec_len;) {
        struct rec_hdr h;
        memcpy(&h, in->rec + off, sizeof(h));
        if (h.index == index && !strncmp(h.name, name, REC_NAME)) {
            *len = h.len;
            return in->rec + off + sizeof(h);
        }
        off += sizeof(h) + ((h.len + 7u) & ~7u);
    }
    return NULL;
}

const void *snap_get(const struct snap_in *in, const char *name, uint32_t index, uint32_t len)
{
    uint32_t l;
    const void *p = snap_get_var(in, name, index, &l);
    return p && l == len ? p : NULL;
}

int vmm_add_snap_dev(struct vmm *vm, const char *ident, void *dev,
                     void (*save)(void *, struct snap_out *, uint32_t),
                     int (*restore)(void *, const struct snap_in *, uint32_t, char *, size_t))
{
    struct snap_dev *d = realloc(vm->snap_devs, (vm->nr_snap_devs + 1) * sizeof(*d));
    if (!d)
        return -1;
    vm->snap_devs = d;
    d += vm->nr_snap_devs++;
    snprintf(d->ident, sizeof(d->ident), "%s", ident);
    d->dev = dev;
    d->save = save;
    d->restore = restore;
    return 0;
}

void vmm_devlist(const struct vmm *vm, char *out, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    for (unsigned i = 0; i < vm->nr_snap_devs && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "," : "", vm->snap_devs[i].ident);
}

/* ---- writing ---- */

static bool all_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* Write the non-zero pages of RAM [off, end) at the same offsets. */
static int write_range(const struct guest_mem *gm, int fd, uint64_t off, uint64_t end, uint64_t *bytes,
                       struct snap_memsum *sum)
{
    while (off < end) {
        while (off < end && all_zero(gm->host + off))
            off += PAGE;
        uint64_t run = off;
        while (run < end && !all_zero(gm->host + run))
            run += PAGE;
        for (uint64_t p = off; p < run;) {
            ssize_t w = pwrite(fd, gm->host + p, run - p, (off_t)p);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -errno;
            p += (uint64_t)w;
        }
        for (uint64_t p = off; p < run; p += PAGE)
            snap_memsum_page(sum, p / PAGE, gm->host + p);
        *bytes += run - off;
        off = run;
    }
    return 0;
}

/* Sparse RAM file: the memfd's holes (pages the guest never touched) are found
 * with SEEK_DATA/SEEK_HOLE and stay holes, and all-zero pages are skipped too.
 * A restored VM's RAM is a private file mapping: then every page is checked. */
static int write_memory(struct vmm *vm, int fd, uint64_t *bytes, struct snap_memsum *sum)
{
    const struct guest_mem *gm = &vm->mem;
    memset(sum, 0, sizeof(*sum));
    sum->algo = SNAP_MEMSUM_CRC32C_PAGES;
    if (ftruncate(fd, (off_t)gm->size) < 0)
        return -errno;
    if (vm->restored)
        return write_range(gm, fd, 0, gm->size, bytes, sum);
    off_t off = 0;
    while ((uint64_t)off < gm->size) {
        off_t data = lseek(gm->fd, off, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno;
        off_t hole = lseek(gm->fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = (off_t)gm->size;
        int r = write_range(gm, fd, (uint64_t)data & ~(PAGE - 1), (uint64_t)hole, bytes, sum);
        if (r < 0)
            return r;
        off = hole;
    }
    return 0;
}

static int save_vm_state(struct vmm *vm, struct snap_out *o, char *err, size_t n)
{
    struct kvm_clock_data clock = { 0 };
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
        return vmm_errf(err, n, "KVM_GET_CLOCK: %s", strerror(errno));
    snap_put(o, "clock", 0, &clock, sizeof(clock));
    struct kvm_pit_state2 pit;
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return vmm_errf(err, n, "KVM_GET_PIT2: %s", strerror(errno));
    snap_put(o, "pit2", 0, &pit, sizeof(pit));
    for (uint32_t c = 0; c < 3; c++) {   /* PIC master, PIC slave, IOAPIC */
        struct kvm_irqchip chip = { .chip_id = c };
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
            return vmm_errf(err, n, "KVM_GET_IRQCHIP %u: %s", c, strerror(errno));
        snap_put(o, "irqchip", c, &chip, sizeof(chip));
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        int r = vcpu_save_state(&vm->vcpus[i], o);
        if (r < 0)
            return vmm_errf(err, n, "vcpu%u state: %s", i, strerror(-r));
    }
    for (unsigned i = 0; i < vm->nr_snap_devs; i++)
        vm->snap_devs[i].save(vm->snap_devs[i].dev, o, i);
    return 0;
}

static int create_in(const char *dir, const char *name, char *err, size_t n)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return vmm_errf(err, n, "snapshot directory path too long");
    /* O_CREAT|O_EXCL|O_WRONLY is the only open the seccomp filter allows after setup. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmm_errf(err, n, "%s: %s%s", path, strerror(errno),
                    errno == EEXIST ? " (snapshots go into a new, empty directory)" : "");
    return fd;
}

int snapshot_write(struct vmm *vm, const char *dir, double *ms, uint64_t *mem_bytes, char *err, size_t n)
{
    double t0 = vmm_now_ms();
    if (!vmm_paused(vm))
        return vmm_errf(err, n, "the VM is not paused (send pause first)");
    if (vm->cfg.net_tap)
        return vmm_errf(err, n, "snapshots of a VM with --net are not supported");
    if (dir[0] != '/')
        return vmm_errf(err, n, "dir must be an absolute path");

    struct snap_out o = { 0 };
    struct snap_header h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_size = sizeof(h);
    h.mem_size = vm->mem.size;
    h.nr_vcpus = vm->nr_vcpus;
    h.cpuid_hash = cpuid_hash;
    vmm_devlist(vm, h.devices, sizeof(h.devices));
    o.cap = 65536;
    o.data = malloc(o.cap);   /* the header goes first, written last */
    if (!o.data)
        return vmm_errf(err, n, "out of memory");
    o.len = sizeof(h);
    int r = save_vm_state(vm, &o, err, n);
    if (r < 0) {
        free(o.data);
        return -1;
    }

    /* memory first: its checksum goes into vmstate, which is written last. */
    int fd = create_in(dir, "memory", err, n);
    if (fd < 0) {
        free(o.data);
        return -1;
    }
    struct snap_memsum sum;
    *mem_bytes = 0;
    r = write_memory(vm, fd, mem_bytes, &sum);
    /* Durable before nexusd renames the directory into place (it fsyncs the
     * directories): a host crash never leaves a published, partial snapshot. */
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    if (r < 0) {
        free(o.data);
        return vmm_errf(err, n, "writing memory: %s", strerror(-r));
    }
    snap_put(&o, "memsum", 0, &sum, sizeof(sum));
    if (o.oom) {
        free(o.data);
        return vmm_errf(err, n, "out of memory");
    }
    h.file_size = o.len;
    memcpy(o.data, &h, sizeof(h));
    h.checksum = snap_checksum(o.data, o.len);
    memcpy(o.data, &h, sizeof(h));

    fd = create_in(dir, "vmstate", err, n);
    if (fd < 0) {
        free(o.data);
        return -1;
    }
    for (size_t off = 0; off < o.len && r == 0;) {
        ssize_t w = write(fd, o.data + off, o.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = vmm_errf(err, n, "writing vmstate: %s", strerror(errno));
        else
            off += (size_t)w;
    }
    if (r == 0 && fsync(fd) < 0)
        r = vmm_errf(err, n, "fsync vmstate: %s", strerror(errno));
    close(fd);
    free(o.data);
    if (r < 0)
        return -1;
    *ms = vmm_now_ms() - t0;
    return 0;
}

/* ---- loading ---- */

void snapshot_free(struct snap_in *in)
{
    free(in->file);
    memset(in, 0, sizeof(*in));
}

/* Format the reason (its arguments may point into *in), then free *in. */
static int load_fail(struct snap_in *in, char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int load_fail(struct snap_in *in, char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    snapshot_free(in);
    return -1;
}

int snapshot_load(const char *dir, struct snap_in *in, int *mem_fd, char *err, size_t n)
{
    memset(in, 0, sizeof(*in));
    *mem_fd = -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/vmstate", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vmm_errf(err, n, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct snap_header) ||
        st.st_size > VMSTATE_MAX) {
        close(fd);
        return vmm_errf(err, n, "%s: not a regular file of a plausible size (truncated?)", path);
    }
    size_t len = (size_t)st.st_size;
    in->file = malloc(len);
    ssize_t got = in->file ? pread(fd, in->file, len, 0) : -1;
    close(fd);
    if (got != (ssize_t)len) {
        snapshot_free(in);
        return vmm_errf(err, n, "%s: cannot read it", path);
    }
    struct snap_header *h = &in->hdr;
    memcpy(h, in->file, sizeof(*h));
    if (memcmp(h->magic, SNAP_MAGIC, 8))
        return load_fail(in, err, n, "%s: not a nexus-vmm snapshot (bad magic)", path);
    if (h->version != SNAP_VERSION)
        return load_fail(in, err, n, "%s: snapshot format version %u, this monitor reads version %u",
                                       path, h->version, SNAP_VERSION);
    if (h->header_size != sizeof(*h) || h->file_size != len)
        return load_fail(in, err, n, "%s: %zu bytes, the header says %llu (truncated or extended)",
                                       path, len, (unsigned long long)h->file_size);
    uint64_t want = h->checksum;
    struct snap_header z = *h;
    z.checksum = 0;
    memcpy(in->file, &z, sizeof(z));
    uint64_t sum = snap_checksum(in->file, len);
    memcpy(in->file, h, sizeof(*h));
    if (sum != want)
        return load_fail(in, err, n, "%s: checksum mismatch (corrupt)", path);
    if (!memchr(h->devices, 0, sizeof(h->devices)) || h->nr_vcpus < 1 || h->nr_vcpus > VMM_MAX_VCPUS ||
        h->mem_size < (8ULL << 20) || h->mem_size > (1ULL << 40) || (h->mem_size & (PAGE - 1)))
        return load_fail(in, err, n, "%s: implausible header values", path);
    in->rec = in->file + sizeof(*h);
    in->rec_len = len - sizeof(*h);
    for (size_t off = 0; off < in->rec_len;) {   /* the records must tile the rest exactly */
        struct rec_hdr r;
        if (in->rec_len - off < sizeof(r))
            return load_fail(in, err, n, "%s: record table is cut short", path);
        memcpy(&r, in->rec + off, sizeof(r));
        uint64_t sz = sizeof(r) + (((uint64_t)r.len + 7u) & ~7ULL);
        if (sz > in->rec_len - off)
            return load_fail(in, err, n, "%s: a record runs past the end", path);
        off += sz;
    }

    snprintf(path, sizeof(path), "%s/memory", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return load_fail(in, err, n, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != h->mem_size) {
        close(fd);
        return load_fail(in, err, n, "%s: %lld bytes, expected %llu (truncated?)", path,
                                       (long long)st.st_size, (unsigned long long)h->mem_size);
    }
    const char *env = getenv("NEXUS_VMM_VERIFY_MEMORY");
    if (verify_memory || (env && !strcmp(env, "1"))) {
        const struct snap_memsum *want_sum = snap_get(in, "memsum", 0, sizeof(*want_sum));
        struct snap_memsum got;
        if (!want_sum || want_sum->algo != SNAP_MEMSUM_CRC32C_PAGES) {
            close(fd);
            return load_fail(in, err, n, "%s: vmstate has no memory checksum this monitor knows "
                                          "(older snapshot): cannot verify it", path);
        }
        int r = snap_memsum_file(fd, h->mem_size, &got);
        if (r < 0) {
            close(fd);
            return load_fail(in, err, n, "%s: reading it to verify: %s", path, strerror(-r));
        }
        if (got.crc != want_sum->crc || got.pages != want_sum->pages) {
            close(fd);
            return load_fail(in, err, n, "%s: memory checksum mismatch (corrupt): crc32c %08x over %llu pages, "
                                          "vmstate says %08x over %llu", path, got.crc,
                             (unsigned long long)got.pages, want_sum->crc, (unsigned long long)want_sum->pages);
        }
        vmm_log("restore: %s verified (%llu non-zero pages)", path, (unsigned long long)got.pages);
    }
    *mem_fd = fd;
    return 0;
}

int snapshot_check_identity(const struct vmm *vm, const struct snap_in *in, char *err, size_t n)
{
    const struct snap_header *h = &in->hdr;
    if (h->cpuid_hash != cpuid_hash)
        return vmm_errf(err, n, "snapshot was taken on a host with other CPU features (CPUID differs)");
    char devs[SNAP_DEVLIST_MAX];
    vmm_devlist(vm, devs, sizeof(devs));
    if (strcmp(devs, h->devices))
        return vmm_errf(err, n, "devices differ: snapshot has [%s], this VM has [%s] (give the same --disk/--nexus)",
                    h->devices, devs);
    return 0;
}

/* Guest time: KVM_SET_CLOCK with the saved kvmclock value and no flags, so the
 * guest's clock goes on from the instant of the snapshot (no jump over the time
 * the snapshot sat on disk: no timer storm, no soft-lockup warnings); the
 * guest's wall time therefore lags by that much until it is set again.  (The
 * alternative, KVM_CLOCK_REALTIME, advances it by the real time elapsed.) */
int snapshot_restore_state(struct vmm *vm, const struct snap_in *in, char *err, size_t n)
{
    const struct kvm_clock_data *clock = snap_get(in, "clock", 0, sizeof(*clock));
    const struct kvm_pit_state2 *pit = snap_get(in, "pit2", 0, sizeof(*pit));
    if (!clock || !pit)
        return vmm_errf(err, n, "clock or PIT record missing");
    struct kvm_clock_data c = { .clock = clock->clock, .flags = 0 };
    if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
        return vmm_errf(err, n, "KVM_SET_CLOCK: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_SET_PIT2, pit) < 0)
        return vmm_errf(err, n, "KVM_SET_PIT2: %s", strerror(errno));
    for (uint32_t i = 0; i < 3; i++) {
        const struct kvm_irqchip *chip = snap_get(in, "irqchip", i, sizeof(*chip));
        if (!chip || chip->chip_id != i)
            return vmm_errf(err, n, "irqchip %u record missing", i);
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, chip) < 0)
            return vmm_errf(err, n, "KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
    }
    for (unsigned i = 0; i < vm->nr_vcpus; i++)
        if (vcpu_restore_state(&vm->vcpus[i], in, err, n) < 0)
            return -1;
    for (unsigned i = 0; i < vm->nr_snap_devs; i++) {
        struct snap_dev *d = &vm->snap_devs[i];
        char e[200];
        if (d->restore(d->dev, in, i, e, sizeof(e)) < 0)
            return vmm_errf(err, n, "device %s: %s", d->ident, e);
    }
    return 0;
}

/* ---- working set ---- */

int ws_save(struct vmm *vm, const char *path, uint64_t *pages, char *err, size_t n)
{
    if (!vm->restored || vm->pagemap_fd < 0)
        return vmm_errf(err, n, "ws-save works on a restored VM only");
    if (path[0] != '/')
        return vmm_errf(err, n, "file must be an absolute path");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmm_errf(err, n, "%s: %s", path, strerror(errno));
    /* pagemap: one 64-bit entry per virtual page; bit 63 present, bit 62 swapped. */
    uint64_t npages = vm->mem.size / PAGE, base = (uint64_t)(uintptr_t)vm->mem.host / PAGE;
    uint64_t ent[512], run_start = 0, run_len = 0;
    int r = 0;
    *pages = 0;
    for (uint64_t p = 0; p <= npages && r == 0; p++) {
        if (p < npages && p % 512 == 0) {
            uint64_t cnt = npages - p < 512 ? npages - p : 512;
            if (pread(vm->pagemap_fd, ent, cnt * 8, (off_t)((base + p) * 8)) != (ssize_t)(cnt * 8)) {
                r = vmm_errf(err, n, "reading pagemap: %s", strerror(errno));
                break;
            }
        }
        if (p < npages && ((ent[p % 512] >> 62) & 3)) {
            if (!run_len++)
                run_start = p;
            (*pages)++;
        } else if (run_len) {
            char line[64];
            int l = snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)run_start,
                             (unsigned long long)run_len);
            if (write(fd, line, (size_t)l) != l)
                r = vmm_errf(err, n, "writing %s: %s", path, strerror(errno));
            run_len = 0;
        }
    }
    close(fd);
    return r;
}

int ws_load(struct vmm *vm, const char *path, uint64_t *pages, char *err, size_t n)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return vmm_errf(err, n, "--ws %s: %s", path, strerror(errno));
    unsigned long long start, cnt;
    uint64_t npages = vm->mem.size / PAGE;
    int r = 0;
    bool populate = true;
    *pages = 0;
    while (r == 0 && fscanf(f, "%llu %llu", &start, &cnt) == 2) {
        if (start >= npages || cnt == 0 || cnt > npages - start) {
            r = vmm_errf(err, n, "--ws %s: range %llu+%llu outside guest RAM", path, start, cnt);
            break;
        }
        uint8_t *p = vm->mem.host + start * PAGE;
        /* MADV_POPULATE_READ (Linux 5.14) maps the page-cache pages read-only in
         * one call; older kernels: touch each page. */
        if (populate && madvise(p, cnt * PAGE, 22 /* MADV_POPULATE_READ */) < 0) {
            if (errno != EINVAL)
                vmm_log("--ws: MADV_POPULATE_READ: %s, touching pages instead", strerror(errno));
            populate = false;
        }
        if (!populate)
            for (uint64_t i = 0; i < cnt; i++)
                (void)*(volatile uint8_t *)(p + i * PAGE);
        *pages += cnt;
    }
    if (r == 0 && !feof(f))
        r = vmm_errf(err, n, "--ws %s: not a list of 'start_page count' lines", path);
    fclose(f);
    return r;
}
