/* test=blk, test=blkhostile and test=net: a minimal polling virtio-mmio (v2)
 * driver for virtio-blk and virtio-net running in ring 3, finding its devices the
 * way Linux does (the virtio_mmio.device= entries the monitor put on the command
 * line). */
#include "guest.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_AVAIL_LO 0x090
#define R_AVAIL_HI 0x094
#define R_USED_LO 0x0a0
#define R_USED_HI 0x0a4
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_RO (1ULL << 5)
#define F_FLUSH (1ULL << 9)
#define F_VERSION_1 (1ULL << 32)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8

#define QN 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct ring_mem {
    struct desc desc[QN];                       /* 16-aligned */
    struct { uint16_t flags, idx, ring[QN], used_event; } avail;
    uint8_t pad[4096 - 16 * QN - 22];
    struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t avail_event; } used;
};
static struct ring_mem rings __attribute__((aligned(4096)));
static struct { uint32_t type, reserved; uint64_t sector; } req_hdr __attribute__((aligned(16)));
static uint8_t req_status;
static uint8_t buf[8192] __attribute__((aligned(4096)));

struct vdev { uint64_t base; uint16_t avail_idx, used_seen; uint64_t features; };

static uint32_t rd(struct vdev *d, uint32_t r) { return mmio_read32(d->base + r); }
static void wr(struct vdev *d, uint32_t r, uint32_t v) { mmio_write32(d->base + r, v); }

static unsigned find_devices(uint64_t *bases, unsigned max)
{
    unsigned n = 0;
    for (const char *q = g_cmdline; n < max && (q = strstr_(q, "virtio_mmio.device=")); q++) {
        const char *at = strstr_(q, "@0x");
        uint64_t v = 0;
        for (const char *p = at + 3;; p++) {
            char c = *p;
            if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
            else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
            else break;
        }
        bases[n++] = v;
    }
    return n;
}

static uint64_t dev_features(struct vdev *d)
{
    wr(d, R_DEV_FEATURES_SEL, 0);
    uint64_t f = rd(d, R_DEV_FEATURES);
    wr(d, R_DEV_FEATURES_SEL, 1);
    return f | ((uint64_t)rd(d, R_DEV_FEATURES) << 32);
}

static void set_queue(struct vdev *d, uint64_t desc, uint64_t avail, uint64_t used)
{
    wr(d, R_QUEUE_SEL, 0);
    wr(d, R_QUEUE_NUM, QN);
    wr(d, R_DESC_LO, (uint32_t)desc); wr(d, R_DESC_HI, (uint32_t)(desc >> 32));
    wr(d, R_AVAIL_LO, (uint32_t)avail); wr(d, R_AVAIL_HI, (uint32_t)(avail >> 32));
    wr(d, R_USED_LO, (uint32_t)used); wr(d, R_USED_HI, (uint32_t)(used >> 32));
    wr(d, R_QUEUE_READY, 1);
}

/* Full init with `want` features; returns false if the device refused them. */
static bool dev_init(struct vdev *d, uint64_t want)
{
    wr(d, R_STATUS, 0);
    CHECK(rd(d, R_STATUS) == 0, "status not 0 after reset");
    wr(d, R_STATUS, S_ACK);
    wr(d, R_STATUS, S_ACK | S_DRIVER);
    d->features = dev_features(d);
    uint64_t f = d->features & want;
    wr(d, R_DRV_FEATURES_SEL, 0); wr(d, R_DRV_FEATURES, (uint32_t)f);
    wr(d, R_DRV_FEATURES_SEL, 1); wr(d, R_DRV_FEATURES, (uint32_t)(f >> 32));
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    if (!(rd(d, R_STATUS) & S_FEATURES_OK))
        return false;
    CHECK(rd(d, R_QUEUE_NUM_MAX) >= QN, "queue too small");
    memset(&rings, 0, sizeof(rings));
    d->avail_idx = d->used_seen = 0;
    set_queue(d, (uint64_t)rings.desc, (uint64_t)&rings.avail, (uint64_t)&rings.used);
    CHECK(rd(d, R_QUEUE_READY) == 1, "queue not ready");
    wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    return true;
}

static void post(struct vdev *d, uint16_t head)
{
    rings.avail.ring[d->avail_idx % QN] = head;
    barrier();
    rings.avail.idx = ++d->avail_idx;
    barrier();
    wr(d, R_QUEUE_NOTIFY, 0);
}

/* One request: header, optional data, status.  Returns the status byte. */
static int blk_req(struct vdev *d, uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes)
{
    req_hdr.type = type;
    req_hdr.reserved = 0;
    req_hdr.sector = sector;
    req_status = 0xee;
    unsigned n = 0;
    rings.desc[n] = (struct desc){ (uint64_t)&req_hdr, 16, 1, (uint16_t)(n + 1) }; n++;
    if (len) {
        rings.desc[n] = (struct desc){ (uint64_t)data, len, (uint16_t)(1 | (dev_writes ? 2 : 0)), (uint16_t)(n + 1) };
        n++;
    }
    rings.desc[n] = (struct desc){ (uint64_t)&req_status, 1, 2, 0 };
    post(d, 0);
    for (uint64_t spin = 0; *(volatile uint16_t *)&rings.used.idx == d->used_seen; spin++)
        CHECK(spin < 100000000ULL, "request timed out");
    barrier();
    CHECK(rings.used.ring[d->used_seen % QN].id == 0, "used id");
    d->used_seen++;
    wr(d, R_INT_ACK, rd(d, R_INT_STATUS));
    return req_status;
}

static uint8_t pattern(uint64_t off) { return (uint8_t)(off % 251 + off / 512); }

int test_blk(void)
{
    uint64_t bases[4];
    CHECK(find_devices(bases, 4) == 2, "expected 2 virtio devices on the command line");
    struct vdev rw = { .base = bases[0] }, ro = { .base = bases[1] };
    CHECK(rd(&rw, R_MAGIC) == 0x74726976, "magic %x", rd(&rw, R_MAGIC));
    CHECK(rd(&rw, R_VERSION) == 2, "version %u (want modern, 2)", rd(&rw, R_VERSION));
    CHECK(rd(&rw, R_DEVICE_ID) == 2, "device id %u", rd(&rw, R_DEVICE_ID));

    /* A legacy-only driver (no VERSION_1) is refused at FEATURES_OK. */
    CHECK(!dev_init(&rw, F_FLUSH), "device accepted features without VERSION_1");
    CHECK(dev_init(&rw, F_VERSION_1 | F_FLUSH), "device refused VERSION_1|FLUSH");
    CHECK(rw.features & F_FLUSH, "FLUSH not offered");
    CHECK(!(rw.features & F_RO), "rw disk offers RO");
    uint64_t cap = rd(&rw, R_CONFIG) | ((uint64_t)rd(&rw, R_CONFIG + 4) << 32);
    CHECK(cap == cmdline_u64("disk_sectors", 0), "capacity %lu sectors", cap);

    CHECK(blk_req(&rw, T_IN, 0, buf, 4096, true) == 0, "read sectors 0-7");
    for (uint64_t o = 0; o < 4096; o++)
        CHECK(buf[o] == pattern(o), "disk byte %lu is %u, want %u", o, buf[o], pattern(o));
    CHECK(blk_req(&rw, T_IN, 16, buf, 1024, true) == 0, "read sectors 16-17");
    for (uint64_t o = 0; o < 1024; o++)
        CHECK(buf[o] == pattern(16 * 512 + o), "disk byte %lu", 16 * 512 + o);

    memset(buf, 0, 32);
    CHECK(blk_req(&rw, T_GET_ID, 0, buf, 20, true) == 0, "GET_ID");
    CHECK(memcmp(buf, "nexus-vda", 10) == 0, "GET_ID says '%s'", (char *)buf);

    for (int i = 0; i < 1024; i++)
        buf[i] = (uint8_t)(0x5a ^ i);
    CHECK(blk_req(&rw, T_OUT, 100, buf, 1024, false) == 0, "write sectors 100-101");
    CHECK(blk_req(&rw, T_FLUSH, 0, NULL, 0, false) == 0, "flush");
    memset(buf, 0, 1024);
    CHECK(blk_req(&rw, T_IN, 100, buf, 1024, true) == 0, "read back");
    for (int i = 0; i < 1024; i++)
        CHECK(buf[i] == (uint8_t)(0x5a ^ i), "read back byte %d", i);

    CHECK(blk_req(&rw, T_IN, cap, buf, 512, true) == 1, "read past the end not IOERR");
    CHECK(blk_req(&rw, T_IN, cap - 1, buf, 1024, true) == 1, "read across the end not IOERR");
    CHECK(blk_req(&rw, 99, 0, NULL, 0, false) == 2, "unknown request type not UNSUPP");
    CHECK(blk_req(&rw, T_IN, 0, buf, 512, false) == 1, "IN into a device-readable buffer not IOERR");

    /* The read-only disk: RO offered, reads work, writes fail. */
    CHECK(dev_init(&ro, F_VERSION_1 | F_FLUSH | F_RO), "ro device init");
    CHECK(ro.features & F_RO, "ro disk does not offer RO");
    CHECK(blk_req(&ro, T_IN, 0, buf, 512, true) == 0, "ro read");
    CHECK(buf[7] == pattern(7), "ro disk content");
    buf[0] = 1;
    CHECK(blk_req(&ro, T_OUT, 1, buf, 512, false) == 1, "write to the ro disk not IOERR");
    printk("blk: capacity %lu sectors, read/write/flush/get-id ok, ro enforced\n", cap);
    return 0;
}

/* The guest is hostile: bad ring addresses, descriptor loops, buffers outside
 * RAM and runaway indices must put the device in NEEDS_RESET, never crash the
 * monitor, and a reset must bring it back. */
int test_blk_hostile(void)
{
    uint64_t bases[4];
    CHECK(find_devices(bases, 4) >= 1, "no virtio device");
    struct vdev d = { .base = bases[0] };

    /* a) rings outside RAM. */
    wr(&d, R_STATUS, 0);
    wr(&d, R_STATUS, S_ACK | S_DRIVER);
    (void)dev_features(&d);
    wr(&d, R_DRV_FEATURES_SEL, 1); wr(&d, R_DRV_FEATURES, 1);
    wr(&d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    set_queue(&d, 0xfff00000ULL, 0xfff10000ULL, 0xfff20000ULL);
    CHECK(rd(&d, R_QUEUE_READY) == 0, "queue with rings outside RAM became ready");
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for rings outside RAM");
    puts_("hostile: rings outside RAM refused\n");

    /* b) descriptor loop. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    rings.desc[0] = (struct desc){ (uint64_t)&req_hdr, 16, 1, 1 };
    rings.desc[1] = (struct desc){ (uint64_t)buf, 512, 1 | 2, 0 };
    post(&d, 0);
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for a descriptor loop");
    CHECK(rings.used.idx == 0, "device completed a looping chain");
    puts_("hostile: descriptor loop refused\n");

    /* c) buffer outside RAM. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    rings.desc[0] = (struct desc){ (uint64_t)&req_hdr, 16, 1, 1 };
    rings.desc[1] = (struct desc){ 0xe0000000ULL, 4096, 1 | 2, 2 };
    rings.desc[2] = (struct desc){ (uint64_t)&req_status, 1, 2, 0 };
    req_hdr.type = T_IN;
    post(&d, 0);
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for a buffer outside RAM");
    puts_("hostile: buffer outside RAM refused\n");

    /* d) buffer that wraps the address space / straddles the end of RAM. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    rings.desc[0] = (struct desc){ (uint64_t)&req_hdr, 16, 1, 1 };
    rings.desc[1] = (struct desc){ 0xfffffffffffff000ULL, 0x2000, 1 | 2, 2 };
    rings.desc[2] = (struct desc){ (uint64_t)&req_status, 1, 2, 0 };
    post(&d, 0);
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for a wrapping buffer");

    /* e) avail index far ahead of the ring. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    rings.avail.idx = 100;
    barrier();
    wr(&d, R_QUEUE_NOTIFY, 0);
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for a runaway avail index");
    puts_("hostile: runaway avail index refused\n");

    /* f) head index past the table. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    post(&d, 200);
    CHECK(rd(&d, R_STATUS) & S_NEEDS_RESET, "no NEEDS_RESET for a head past the table");

    /* After a reset the device works again. */
    CHECK(dev_init(&d, F_VERSION_1), "re-init after reset");
    CHECK(blk_req(&d, T_IN, 0, buf, 512, true) == 0, "read after recovery");
    CHECK(buf[3] == pattern(3), "content after recovery");
    puts_("hostile: device recovers after reset\n");
    return 0;
}

/* ---- test=net: one frame out through the TX queue, one frame in through RX ---- */

static struct ring_mem rx_rings __attribute__((aligned(4096)));
static uint8_t tx_frame[128] __attribute__((aligned(64)));
static uint8_t rx_buf[2048] __attribute__((aligned(64)));

static void set_queue_n(struct vdev *d, unsigned q, struct ring_mem *r)
{
    wr(d, R_QUEUE_SEL, q);
    CHECK(rd(d, R_QUEUE_NUM_MAX) >= QN, "queue %u too small", q);
    wr(d, R_QUEUE_NUM, QN);
    wr(d, R_DESC_LO, (uint32_t)(uint64_t)r->desc); wr(d, R_DESC_HI, 0);
    wr(d, R_AVAIL_LO, (uint32_t)(uint64_t)&r->avail); wr(d, R_AVAIL_HI, 0);
    wr(d, R_USED_LO, (uint32_t)(uint64_t)&r->used); wr(d, R_USED_HI, 0);
    wr(d, R_QUEUE_READY, 1);
    CHECK(rd(d, R_QUEUE_READY) == 1, "queue %u not ready", q);
}

int test_net(void)
{
    uint64_t bases[4];
    CHECK(find_devices(bases, 4) == 1, "expected one virtio device");
    struct vdev d = { .base = bases[0] };
    CHECK(rd(&d, R_DEVICE_ID) == 1, "device id %u, want 1 (net)", rd(&d, R_DEVICE_ID));
    wr(&d, R_STATUS, 0);
    wr(&d, R_STATUS, S_ACK | S_DRIVER);
    d.features = dev_features(&d);
    CHECK(d.features & (1ULL << 5), "MAC feature not offered");
    CHECK(!(d.features & ((1ULL << 0) | (1ULL << 15))), "offloads/mergeable offered");
    uint64_t f = F_VERSION_1 | (1ULL << 5);
    wr(&d, R_DRV_FEATURES_SEL, 0); wr(&d, R_DRV_FEATURES, (uint32_t)f);
    wr(&d, R_DRV_FEATURES_SEL, 1); wr(&d, R_DRV_FEATURES, (uint32_t)(f >> 32));
    wr(&d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    CHECK(rd(&d, R_STATUS) & S_FEATURES_OK, "features refused");
    uint8_t mac[6];
    for (int i = 0; i < 6; i++)
        mac[i] = *(volatile uint8_t *)(d.base + R_CONFIG + (uint64_t)i);
    CHECK(mac[0] == 0x06 && mac[5] == 0x02, "MAC %x:..:%x", mac[0], mac[5]);
    memset(&rings, 0, sizeof(rings));
    memset(&rx_rings, 0, sizeof(rx_rings));
    set_queue_n(&d, 0, &rx_rings);
    set_queue_n(&d, 1, &rings);
    /* One receive buffer, then DRIVER_OK. */
    rx_rings.desc[0] = (struct desc){ (uint64_t)rx_buf, sizeof(rx_buf), 2, 0 };
    rx_rings.avail.ring[0] = 0;
    barrier();
    rx_rings.avail.idx = 1;
    wr(&d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
    wr(&d, R_QUEUE_NOTIFY, 0);

    /* virtio_net_hdr_v1 (12 zero bytes) + broadcast frame, ethertype 0x88b5. */
    memset(tx_frame, 0, sizeof(tx_frame));
    uint8_t *eth = tx_frame + 12;
    memset(eth, 0xff, 6);
    memcpy(eth + 6, mac, 6);
    eth[12] = 0x88; eth[13] = 0xb5;
    memcpy(eth + 14, "NEXUS-PING", 10);
    rings.desc[0] = (struct desc){ (uint64_t)tx_frame, 12 + 60, 0, 0 };
    rings.avail.ring[0] = 0;
    barrier();
    rings.avail.idx = 1;
    wr(&d, R_QUEUE_NOTIFY, 1);
    for (uint64_t spin = 0; *(volatile uint16_t *)&rings.used.idx == 0; spin++)
        CHECK(spin < 100000000ULL, "TX not completed");
    puts_("net: frame sent\n");
    /* The host may send frames of its own (IPv6 neighbour discovery when the tap
     * comes up): skip anything that is not our ethertype, reposting the buffer. */
    uint32_t len = 0;
    for (uint16_t got = 0; got < 32; got++) {
        for (uint64_t spin = 0; *(volatile uint16_t *)&rx_rings.used.idx == got; spin++) {
            CHECK(spin < 4000000000ULL, "no frame received");
            cpu_relax();
        }
        barrier();
        len = rx_rings.used.ring[got % QN].len;
        CHECK(len >= 12 + 14 && len <= sizeof(rx_buf), "RX length %u", len);
        uint16_t nbuf;
        memcpy(&nbuf, rx_buf + 10, 2);
        CHECK(nbuf == 1, "num_buffers %u", nbuf);
        if (rx_buf[12 + 12] == 0x88 && rx_buf[12 + 13] == 0xb5)
            break;
        printk("net: skipping a frame of ethertype %x\n", (rx_buf[24] << 8) | rx_buf[25]);
        rx_rings.avail.ring[(got + 1) % QN] = 0;
        barrier();
        rx_rings.avail.idx = (uint16_t)(got + 2);
        wr(&d, R_QUEUE_NOTIFY, 0);
        len = 0;
    }
    CHECK(len, "only foreign frames received");
    CHECK(memcmp(rx_buf + 12, mac, 6) == 0, "frame not addressed to us");
    CHECK(memcmp(rx_buf + 12 + 14, "NEXUS-PONG", 10) == 0, "payload");
    printk("net: received %u bytes from the tap\n", len);
    return 0;
}
