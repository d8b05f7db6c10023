/* Unit tests: virtqueue validation against crafted rings, the virtio-mmio state
 * machine (feature negotiation, NEEDS_RESET), and virtio-blk requests served
 * against a temporary file. */
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stubs.h"
#include "virtio_blk.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define MEM (16ULL << 20)
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL
#define DATA 0x20000ULL
#define QN 8

static struct guest_mem gm;

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

static struct desc *D(void) { return (struct desc *)(gm.host + DESC); }
static uint16_t *avail(void) { return (uint16_t *)(gm.host + AVAIL); }
static uint16_t *used_idx(void) { return (uint16_t *)(gm.host + USED + 2); }
static uint32_t *used_elem(unsigned i) { return (uint32_t *)(gm.host + USED + 4 + 8 * i); }

static void post(uint16_t slot_idx, uint16_t head)
{
    avail()[2 + (slot_idx % QN)] = head;
    avail()[1] = (uint16_t)(slot_idx + 1);
}

static int setup(void **s)
{
    (void)s;
    stub_reset();
    if (guest_mem_init(&gm, MEM) < 0)
        return -1;
    return 0;
}
static int teardown(void **s) { (void)s; guest_mem_free(&gm); return 0; }

static struct virtqueue ready_vq(void)
{
    struct virtqueue vq;
    vq_reset(&vq);
    vq.num = QN;
    vq.desc_gpa = DESC;
    vq.avail_gpa = AVAIL;
    vq.used_gpa = USED;
    memset(gm.host + DESC, 0, 0x3000);
    assert_int_equal(vq_validate(&vq, &gm), 0);
    vq.ready = true;
    return vq;
}

static void test_vq_validate(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    vq.num = 6;                               /* not a power of two */
    assert_int_equal(vq_validate(&vq, &gm), -1);
    vq.num = 512;                             /* above the maximum */
    assert_int_equal(vq_validate(&vq, &gm), -1);
    vq.num = QN;
    vq.desc_gpa = DESC + 8;                   /* misaligned descriptor table */
    assert_int_equal(vq_validate(&vq, &gm), -1);
    vq.desc_gpa = MEM - 64;                   /* runs off the end of RAM */
    assert_int_equal(vq_validate(&vq, &gm), -1);
    vq.desc_gpa = DESC;
    vq.used_gpa = 0xd0000000ULL;              /* in the MMIO hole */
    assert_int_equal(vq_validate(&vq, &gm), -1);
}

static void test_vq_chain_ok(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    D()[3] = (struct desc){ DATA, 16, 1, 5 };
    D()[5] = (struct desc){ DATA + 512, 512, 1 | 2, 0 };
    D()[0] = (struct desc){ DATA + 4096, 1, 2, 0 };
    D()[5].next = 0;
    post(0, 3);
    struct vq_chain c;
    const char *why = NULL;
    assert_int_equal(vq_pop(&vq, &gm, &c, &why), 1);
    assert_int_equal(c.head, 3);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.n_readable, 1);
    assert_int_equal(c.readable_len, 16);
    assert_int_equal(c.writable_len, 513);
    assert_ptr_equal(c.buf[1].host, gm.host + DATA + 512);
    assert_int_equal(vq_pop(&vq, &gm, &c, &why), 0);   /* ring empty now */
    assert_int_equal(vq_push(&vq, &gm, 3, 77), 0);
    assert_int_equal(*used_idx(), 1);
    assert_int_equal(used_elem(0)[0], 3);
    assert_int_equal(used_elem(0)[1], 77);
}

static void expect_broken(struct virtqueue *vq, const char *what)
{
    struct vq_chain c;
    const char *why = NULL;
    assert_int_equal(vq_pop(vq, &gm, &c, &why), -1);
    assert_non_null(why);
    assert_non_null(strstr(why, what));
    assert_true(vq->broken);
    assert_int_equal(vq_pop(vq, &gm, &c, &why), 0);   /* a broken queue stays silent */
}

static void test_vq_loop(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    D()[0] = (struct desc){ DATA, 16, 1, 1 };
    D()[1] = (struct desc){ DATA, 16, 1, 0 };
    post(0, 0);
    expect_broken(&vq, "longer than the queue");
}

static void test_vq_out_of_ram(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    D()[0] = (struct desc){ MEM - 8, 16, 0, 0 };   /* straddles the end of RAM */
    post(0, 0);
    expect_broken(&vq, "outside guest RAM");
    vq = ready_vq();
    D()[0] = (struct desc){ UINT64_MAX - 4, 16, 0, 0 };   /* wraps */
    post(0, 0);
    expect_broken(&vq, "outside guest RAM");
}

static void test_vq_bad_indices(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    post(0, QN);                               /* head past the table */
    expect_broken(&vq, "past the table");
    vq = ready_vq();
    D()[0] = (struct desc){ DATA, 16, 1, 200 };   /* next past the table */
    post(0, 0);
    expect_broken(&vq, "next index");
    vq = ready_vq();
    avail()[1] = QN + 1;                       /* more pending than the queue holds */
    expect_broken(&vq, "ahead");
}

static void test_vq_order_and_indirect(void **s)
{
    (void)s;
    struct virtqueue vq = ready_vq();
    D()[0] = (struct desc){ DATA, 16, 1 | 2, 1 };   /* writable ... */
    D()[1] = (struct desc){ DATA, 16, 0, 0 };       /* ... then readable */
    post(0, 0);
    expect_broken(&vq, "after a writable");
    vq = ready_vq();
    D()[0] = (struct desc){ DATA, 16, 4, 0 };
    post(0, 0);
    expect_broken(&vq, "indirect");
}

/* ---- virtio-mmio + virtio-blk ---- */

static struct virtio_blk blk;
static char disk_path[64];

static void irq_cb(void *ctx, unsigned irq, int level)
{
    (void)ctx;
    if (irq < 32) {
        if (level && !stub_irq_level[irq])
            stub_irq_raises[irq]++;
        stub_irq_level[irq] = level;
    }
}

static uint32_t rd(uint64_t off)
{
    uint32_t v = 0;
    virtio_mmio_ops.read(&blk.transport, off, &v, 4);
    return v;
}
static void wr(uint64_t off, uint32_t v) { virtio_mmio_ops.write(&blk.transport, off, &v, 4); }

static void open_blk(bool ro)
{
    strcpy(disk_path, "/tmp/vmm-unit-disk.XXXXXX");
    int fd = mkstemp(disk_path);
    uint8_t buf[64 * 512];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7);
    assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
    close(fd);
    assert_int_equal(virtio_blk_open(&blk, disk_path, ro, 0), 0);
    virtio_mmio_init(&blk.transport, &virtio_blk_ops, &blk, &gm, 0xd0000000ULL, 5, irq_cb, NULL);
}

static void close_blk(void)
{
    close(blk.fd);
    unlink(disk_path);
}

static bool negotiate(uint64_t features)
{
    wr(VIRTIO_MMIO_STATUS, 0);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK;
}

static void bring_up(void)
{
    assert_true(negotiate((1ULL << 32) | (1ULL << VIRTIO_BLK_F_FLUSH)));
    memset(gm.host + DESC, 0, 0x3000);
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, QN);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 1);
    wr(VIRTIO_MMIO_STATUS, 0xf);
}

static void test_mmio_identity_and_features(void **s)
{
    (void)s;
    open_blk(true);
    assert_int_equal(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    assert_int_equal(rd(VIRTIO_MMIO_VERSION), 2);
    assert_int_equal(rd(VIRTIO_MMIO_DEVICE_ID), 2);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint32_t lo = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint32_t hi = rd(VIRTIO_MMIO_DEVICE_FEATURES);
    assert_true(hi & 1);                                 /* VERSION_1 */
    assert_true(lo & (1u << VIRTIO_BLK_F_RO));
    assert_true(lo & (1u << VIRTIO_BLK_F_FLUSH));
    assert_false(lo & (1u << 28));                       /* no indirect descriptors */
    assert_false(negotiate(1ULL << VIRTIO_BLK_F_FLUSH)); /* legacy driver refused */
    assert_false(negotiate((1ULL << 32) | (1ULL << 28)));/* feature not offered */
    assert_true(negotiate((1ULL << 32) | (1ULL << VIRTIO_BLK_F_RO)));
    /* Config: capacity in 512-byte sectors, read at any width. */
    uint64_t cap = 0;
    virtio_mmio_ops.read(&blk.transport, VIRTIO_MMIO_CONFIG, &cap, 8);
    assert_int_equal(cap, 64);
    uint8_t b = 0xff;
    virtio_mmio_ops.read(&blk.transport, VIRTIO_MMIO_CONFIG + 200, &b, 1);   /* past config */
    assert_int_equal(b, 0);
    /* Reset clears everything. */
    wr(VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(VIRTIO_MMIO_STATUS), 0);
    close_blk();
}

/* Build a request chain: header at DATA, data at DATA+0x1000, status at DATA+0x3000. */
static uint8_t do_req(uint16_t slot, uint32_t type, uint64_t sector, uint32_t len, bool dev_writes)
{
    struct virtio_blk_outhdr h = { .type = type, .sector = sector };
    memcpy(gm.host + DATA, &h, sizeof(h));
    gm.host[DATA + 0x3000] = 0xee;
    D()[0] = (struct desc){ DATA, 16, 1, 1 };
    D()[1] = (struct desc){ DATA + 0x1000, len, (uint16_t)(1 | (dev_writes ? 2 : 0)), 2 };
    D()[2] = (struct desc){ DATA + 0x3000, 1, 2, 0 };
    if (!len)
        D()[0].next = 2;
    post(slot, 0);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    return gm.host[DATA + 0x3000];
}

static void test_blk_rw(void **s)
{
    (void)s;
    open_blk(false);
    bring_up();
    assert_int_equal(do_req(0, VIRTIO_BLK_T_IN, 2, 1024, true), VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(gm.host[DATA + 0x1000 + i], (uint8_t)((1024 + i) * 7));
    assert_int_equal(*used_idx(), 1);
    assert_int_equal(used_elem(0)[1], 1025);            /* data + status byte */
    assert_int_equal(stub_irq_level[5], 1);
    assert_int_equal(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 1);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, 1);
    assert_int_equal(stub_irq_level[5], 0);

    memset(gm.host + DATA + 0x1000, 0xab, 512);
    assert_int_equal(do_req(1, VIRTIO_BLK_T_OUT, 10, 512, false), VIRTIO_BLK_S_OK);
    assert_int_equal(do_req(2, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
    int fd = open(disk_path, O_RDONLY);
    uint8_t b[512];
    assert_int_equal(pread(fd, b, 512, 10 * 512), 512);
    close(fd);
    for (int i = 0; i < 512; i++)
        assert_int_equal(b[i], 0xab);

    assert_int_equal(do_req(3, VIRTIO_BLK_T_IN, 64, 512, true), VIRTIO_BLK_S_IOERR);    /* past end */
    assert_int_equal(do_req(4, VIRTIO_BLK_T_IN, 63, 1024, true), VIRTIO_BLK_S_IOERR);   /* across end */
    assert_int_equal(do_req(5, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true), VIRTIO_BLK_S_IOERR);
    assert_int_equal(do_req(6, VIRTIO_BLK_T_IN, 0, 100, true), VIRTIO_BLK_S_IOERR);    /* not sectors */
    assert_int_equal(do_req(7, VIRTIO_BLK_T_OUT, 0, 512, true), VIRTIO_BLK_S_IOERR);   /* wrong direction */
    assert_int_equal(do_req(8, 77, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
    assert_int_equal(do_req(9, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
    assert_memory_equal(gm.host + DATA + 0x1000, "nexus-vda", 10);
    assert_int_equal(blk.reqs, 10);
    assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    close_blk();
}

static void test_blk_ro_and_hostile(void **s)
{
    (void)s;
    open_blk(true);
    bring_up();
    memset(gm.host + DATA + 0x1000, 0xcd, 512);
    assert_int_equal(do_req(0, VIRTIO_BLK_T_OUT, 0, 512, false), VIRTIO_BLK_S_IOERR);
    int fd = open(disk_path, O_RDONLY);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 0), 1);
    close(fd);
    assert_int_equal(b, 0);                             /* unchanged */
    /* A descriptor loop puts the device in NEEDS_RESET and raises a config interrupt. */
    D()[0] = (struct desc){ DATA, 16, 1, 0 };
    post(1, 0);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_true(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & 2);
    assert_int_equal(*used_idx(), 1);                   /* nothing more completed */
    /* Queue registers are frozen while ready; a notify on a bad queue is ignored. */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 3);
    bring_up();                                         /* reset recovers */
    assert_false(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_int_equal(do_req(0, VIRTIO_BLK_T_IN, 1, 512, true), VIRTIO_BLK_S_OK);
    close_blk();
}

static void test_mmio_queue_outside_ram(void **s)
{
    (void)s;
    open_blk(false);
    assert_true(negotiate(1ULL << 32));
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, QN);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);                 /* 4 GiB: not RAM */
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    assert_true(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    wr(VIRTIO_MMIO_QUEUE_SEL, 7);                       /* nonexistent queue */
    assert_int_equal(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    close_blk();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vq_validate),
        cmocka_unit_test(test_vq_chain_ok),
        cmocka_unit_test(test_vq_loop),
        cmocka_unit_test(test_vq_out_of_ram),
        cmocka_unit_test(test_vq_bad_indices),
        cmocka_unit_test(test_vq_order_and_indirect),
        cmocka_unit_test_setup(test_mmio_identity_and_features, NULL),
        cmocka_unit_test(test_blk_rw),
        cmocka_unit_test(test_blk_ro_and_hostile),
        cmocka_unit_test(test_mmio_queue_outside_ram),
    };
    return cmocka_run_group_tests_name("vmm-virtio", tests, setup, teardown);
}
