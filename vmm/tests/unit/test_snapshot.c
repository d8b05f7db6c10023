/* Snapshot format and device state, without KVM: records, the vmstate checks of
 * snapshot_load() (magic, version, size, checksum, record table, memory size),
 * the memory file's checksum (--verify-memory / NEXUS_VMM_VERIFY_MEMORY), and
 * the save/restore pairs of the 8250 and the virtio-mmio transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "snapshot.h"
#include "stubs.h"
#include "virtio_blk.h"
#include "virtio_mmio.h"

#define MEM (16ULL << 20)

static char dir[64];

/* A vmstate as snapshot_write() makes it: header, records, checksum. */
static struct snap_out make_vmstate_sum(uint32_t version, const struct snap_memsum *sum)
{
    struct snap_out o = { 0 };
    struct snap_header h;
    memset(&h, 0, sizeof(h));
    o.cap = 4096;
    o.data = calloc(1, o.cap);
    o.len = sizeof(h);
    uint64_t a = 0x1122334455667788ULL;
    snap_put(&o, "alpha", 0, &a, sizeof(a));
    snap_put(&o, "beta", 3, "xyz", 3);
    if (sum)
        snap_put(&o, "memsum", 0, sum, sizeof(*sum));
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = version;
    h.header_size = sizeof(h);
    h.file_size = o.len;
    h.mem_size = MEM;
    h.nr_vcpus = 1;
    snprintf(h.devices, sizeof(h.devices), "serial");
    memcpy(o.data, &h, sizeof(h));
    h.checksum = snap_checksum(o.data, o.len);
    memcpy(o.data, &h, sizeof(h));
    return o;
}

static struct snap_out make_vmstate(uint32_t version)
{
    return make_vmstate_sum(version, NULL);
}

static void write_file(const char *name, const void *p, size_t n, off_t size)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    if (n)
        assert_int_equal(write(fd, p, n), (ssize_t)n);
    if (size >= 0)
        assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static int load(char *err, size_t n)
{
    struct snap_in in;
    int mfd;
    int r = snapshot_load(dir, &in, &mfd, err, n);
    if (r == 0) {
        close(mfd);
        snapshot_free(&in);
    }
    return r;
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/vmm-snap-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_file("memory", NULL, 0, (off_t)MEM);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char p[128];
    snprintf(p, sizeof(p), "%s/vmstate", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/memory", dir);
    unlink(p);
    rmdir(dir);
    return 0;
}

static void test_records_and_load(void **st)
{
    (void)st;
    struct snap_out o = make_vmstate(SNAP_VERSION);
    write_file("vmstate", o.data, o.len, -1);
    struct snap_in in;
    int mfd;
    char err[256];
    assert_int_equal(snapshot_load(dir, &in, &mfd, err, sizeof(err)), 0);
    const uint64_t *a = snap_get(&in, "alpha", 0, 8);
    assert_non_null(a);
    assert_true(*a == 0x1122334455667788ULL);
    uint32_t len;
    const char *b = snap_get_var(&in, "beta", 3, &len);
    assert_non_null(b);
    assert_int_equal(len, 3);
    assert_memory_equal(b, "xyz", 3);
    assert_null(snap_get(&in, "alpha", 1, 8));    /* other index */
    assert_null(snap_get(&in, "alpha", 0, 4));    /* wrong size */
    assert_null(snap_get(&in, "gamma", 0, 8));
    assert_int_equal(in.hdr.mem_size, MEM);
    close(mfd);
    snapshot_free(&in);
    free(o.data);
}

static void test_refusals(void **st)
{
    (void)st;
    char err[256];
    struct snap_out o = make_vmstate(SNAP_VERSION);
    /* one flipped byte anywhere */
    for (size_t at = 0; at < o.len; at += 37) {
        if (at >= offsetof(struct snap_header, checksum) && at < offsetof(struct snap_header, checksum) + 8)
            continue;
        o.data[at] ^= 1;
        write_file("vmstate", o.data, o.len, -1);
        assert_int_equal(load(err, sizeof(err)), -1);
        o.data[at] ^= 1;
    }
    write_file("vmstate", o.data, o.len - 8, -1);   /* cut short */
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));
    write_file("vmstate", o.data, 100, -1);         /* shorter than a header */
    assert_int_equal(load(err, sizeof(err)), -1);
    free(o.data);

    o = make_vmstate(SNAP_VERSION + 1);
    write_file("vmstate", o.data, o.len, -1);
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "format version 2"));
    free(o.data);

    o = make_vmstate(SNAP_VERSION);
    write_file("vmstate", o.data, o.len, -1);
    write_file("memory", NULL, 0, (off_t)(MEM / 2));
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated"));
    write_file("memory", NULL, 0, (off_t)MEM);
    assert_int_equal(load(err, sizeof(err)), 0);
    free(o.data);
}

/* A memory image: a few non-zero pages, the rest zero.  The sum as
 * snapshot_write() computes it (non-zero pages in order); the file written
 * sparse, with one zero page written out explicitly (same sum). */
static void test_memory_checksum(void **st)
{
    (void)st;
    char err[256], path[128];
    uint8_t *mem = calloc(1, MEM);
    assert_non_null(mem);
    static const uint64_t pages[] = { 0, 1, 7, 300, 301, 4095 };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        memset(mem + pages[i] * 4096 + 100 + i, (int)(0x11 * (i + 1)), 64);
    struct snap_memsum sum = { 0 };
    for (uint64_t p = 0; p < MEM / 4096; p++) {
        static const uint8_t zero[4096];
        if (memcmp(mem + p * 4096, zero, 4096))
            snap_memsum_page(&sum, p, mem + p * 4096);
    }
    assert_int_equal(sum.pages, 6);
    snprintf(path, sizeof(path), "%s/memory", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)MEM), 0);
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        assert_int_equal(pwrite(fd, mem + pages[i] * 4096, 4096, (off_t)(pages[i] * 4096)), 4096);
    assert_int_equal(pwrite(fd, mem + 2000 * 4096, 4096, 2000 * 4096), 4096);   /* written zeros */
    close(fd);
    struct snap_out o = make_vmstate_sum(SNAP_VERSION, &sum);
    write_file("vmstate", o.data, o.len, -1);

    snapshot_set_verify_memory(true);
    assert_int_equal(load(err, sizeof(err)), 0);
    fd = open(path, O_RDONLY);
    struct snap_memsum again;
    assert_int_equal(snap_memsum_file(fd, MEM, &again), 0);
    close(fd);
    assert_int_equal(again.crc, sum.crc);
    assert_int_equal(again.pages, sum.pages);

    /* One flipped byte in a data page: refused, naming the memory file. */
    fd = open(path, O_WRONLY);
    uint8_t b = mem[300 * 4096 + 200] ^ 0x40;
    assert_int_equal(pwrite(fd, &b, 1, 300 * 4096 + 200), 1);
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "memory checksum mismatch"));
    assert_non_null(strstr(err, path));
    /* Put back: accepted.  A data page zeroed, or a byte written into a hole: refused. */
    assert_int_equal(pwrite(fd, mem + 300 * 4096, 4096, 300 * 4096), 4096);
    assert_int_equal(load(err, sizeof(err)), 0);
    static const uint8_t zero[4096];
    assert_int_equal(pwrite(fd, zero, 4096, 7 * 4096), 4096);
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "memory checksum mismatch"));
    assert_int_equal(pwrite(fd, mem + 7 * 4096, 4096, 7 * 4096), 4096);
    assert_int_equal(pwrite(fd, "x", 1, 3000 * 4096 + 5), 1);
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "memory checksum mismatch"));
    close(fd);

    /* Not verifying (the default): only the size is checked. */
    snapshot_set_verify_memory(false);
    assert_int_equal(load(err, sizeof(err)), 0);
    /* The environment turns it on too. */
    setenv("NEXUS_VMM_VERIFY_MEMORY", "1", 1);
    assert_int_equal(load(err, sizeof(err)), -1);
    unsetenv("NEXUS_VMM_VERIFY_MEMORY");
    free(o.data);

    /* A vmstate without the record (an older snapshot) cannot be verified. */
    o = make_vmstate(SNAP_VERSION);
    write_file("vmstate", o.data, o.len, -1);
    snapshot_set_verify_memory(true);
    assert_int_equal(load(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no memory checksum"));
    snapshot_set_verify_memory(false);
    free(o.data);
    free(mem);
}

static void test_serial_state(void **st)
{
    (void)st;
    struct serial a, b;
    serial_setup(&a, -1, NULL, NULL);
    serial_setup(&b, -1, NULL, NULL);
    uint8_t v = 0x83;
    serial_ops.write(&a, 3, &v, 1);      /* LCR with DLAB */
    v = 0x0c;
    serial_ops.write(&a, 0, &v, 1);      /* divisor low */
    v = 0x03;
    serial_ops.write(&a, 3, &v, 1);
    v = 0x5a;
    serial_ops.write(&a, 7, &v, 1);      /* scratch */
    v = 0x02;
    serial_ops.write(&a, 1, &v, 1);      /* THRI on */
    struct snap_out o = { 0 };
    serial_save(&a, &o, 0);
    struct snap_in in = { .rec = o.data, .rec_len = o.len };
    char err[64];
    assert_int_equal(serial_restore(&b, &in, 0, err, sizeof(err)), 0);
    assert_int_equal(b.lcr, 0x03);
    assert_int_equal(b.dll, 0x0c);
    assert_int_equal(b.scr, 0x5a);
    assert_int_equal(b.ier, 0x02);
    assert_int_equal(b.thr_irq_pending, a.thr_irq_pending);
    assert_int_equal(serial_restore(&b, &in, 1, err, sizeof(err)), -1);   /* no such record */
    free(o.data);
}

static void test_virtio_state(void **st)
{
    (void)st;
    struct guest_mem gm;
    assert_int_equal(guest_mem_init(&gm, MEM), 0);
    struct virtio_blk blk = { .capacity = 8 };
    struct virtio_mmio a, b;
    virtio_mmio_init(&a, &virtio_blk_ops, &blk, &gm, 0xd0000000, 5, NULL, NULL);
    virtio_mmio_init(&b, &virtio_blk_ops, &blk, &gm, 0xd0000000, 5, NULL, NULL);
    a.status = 0xf;
    a.driver_features = 1ULL << 32;
    a.interrupt_status = 1;
    a.vq[0] = (struct virtqueue){ .num = 128, .ready = true, .desc_gpa = 0x10000, .avail_gpa = 0x11000,
                                  .used_gpa = 0x12000, .last_avail = 77, .used_idx = 76 };
    struct snap_out o = { 0 };
    virtio_mmio_save(&a, &o, 4);
    struct snap_in in = { .rec = o.data, .rec_len = o.len };
    char err[128];
    assert_int_equal(virtio_mmio_restore(&b, &in, 4, err, sizeof(err)), 0);
    assert_int_equal(b.status, 0xf);
    assert_true(b.driver_features == 1ULL << 32);
    assert_int_equal(b.interrupt_status, 1);
    assert_true(b.vq[0].ready);
    assert_int_equal(b.vq[0].num, 128);
    assert_int_equal(b.vq[0].last_avail, 77);
    assert_int_equal(b.vq[0].used_idx, 76);
    assert_true(b.vq[0].used_gpa == 0x12000);
    free(o.data);

    /* A ready queue whose rings are outside RAM is refused, not trusted. */
    a.vq[0].used_gpa = MEM - 8;
    memset(&o, 0, sizeof(o));
    virtio_mmio_save(&a, &o, 4);
    in = (struct snap_in){ .rec = o.data, .rec_len = o.len };
    assert_int_equal(virtio_mmio_restore(&b, &in, 4, err, sizeof(err)), -1);
    assert_false(b.vq[0].ready);
    free(o.data);
    guest_mem_free(&gm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_records_and_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_checksum, setup, teardown),
        cmocka_unit_test(test_serial_state),
        cmocka_unit_test(test_virtio_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
