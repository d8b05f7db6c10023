/* Tiny-guest tests for snapshots and the Nexus device.
 *
 * count: counts in memory forever and prints "tick N" every 2^shift increments;
 *   the tier-1 runner snapshots it mid-run and checks that restored clones go
 *   on with N+1, N+2, ... (the counter, registers and serial state survived)
 *   and that two clones running at once each count undisturbed (MAP_PRIVATE).
 * nexus: finds the Nexus device, checks its shared-memory region's length and
 *   the marker the host wrote into it, writes an answer and rings the doorbell. */
#include "guest.h"

#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_SHM_SEL   0x0ac
#define VIRTIO_MMIO_SHM_LEN   0x0b0
#define VIRTIO_MMIO_SHM_BASE  0x0b8
#define VIRTIO_MMIO_CONFIG    0x100
#define NEXUS_DEVICE_ID       0x4e58

static volatile uint64_t counter;

int test_count(void)
{
    uint64_t shift = cmdline_u64("shift", 20);
    uint64_t mask = (1ULL << shift) - 1;
    for (;;) {
        uint64_t c = ++counter;
        if ((c & mask) == 0)
            printk("tick %lu\n", c >> shift);
    }
}

static uint64_t rd64(uint64_t base, uint32_t reg)
{
    return mmio_read32(base + reg) | ((uint64_t)mmio_read32(base + reg + 4) << 32);
}

static uint64_t find_nexus(void)
{
    uint64_t dev = 0;
    for (const char *q = g_cmdline; (q = strstr_(q, "virtio_mmio.device=")); q++) {
        const char *at = strstr_(q, "@0x");
        uint64_t v = 0;
        for (const char *p = at + 3;; p++) {
            char c = *p;
            if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
            else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
            else break;
        }
        if (mmio_read32(v + VIRTIO_MMIO_DEVICE_ID) == NEXUS_DEVICE_ID)
            dev = v;
    }
    CHECK(dev, "no Nexus device on the command line");
    return dev;
}

/* nexuscount: like count, and each tick also shows the word at +64 of the Nexus
 * region, whose address the guest reads once (as the driver does at probe): after
 * a restore with a fresh region the same address must show the new region. */
int test_nexus_count(void)
{
    uint64_t dev = find_nexus();
    mmio_write32(dev + VIRTIO_MMIO_SHM_SEL, 0);
    volatile uint64_t *r = (volatile uint64_t *)rd64(dev, VIRTIO_MMIO_SHM_BASE);
    uint64_t shift = cmdline_u64("shift", 20);
    uint64_t mask = (1ULL << shift) - 1;
    for (;;) {
        uint64_t c = ++counter;
        if ((c & mask) == 0)
            printk("tick %lu region %lx\n", c >> shift, r[8]);
    }
}

int test_nexus(void)
{
    uint64_t dev = find_nexus();
    mmio_write32(dev + VIRTIO_MMIO_SHM_SEL, 0);
    uint64_t len = rd64(dev, VIRTIO_MMIO_SHM_LEN), base = rd64(dev, VIRTIO_MMIO_SHM_BASE);
    CHECK(len == cmdline_u64("expect_len", 0), "region length %lx", len);
    CHECK(base >= (4ULL << 30) && base + len <= (5ULL << 30), "region base %lx outside the mapped 4-5 GiB", base);
    volatile uint64_t *r = (volatile uint64_t *)base;
    CHECK(r[8] == 0x4e4558555352474eULL, "host marker not in the region: %lx", r[8]);
    r[16] = 0x600dcafe600dcafeULL;
    barrier();
    mmio_write32(dev + VIRTIO_MMIO_CONFIG, 1);   /* doorbell: KVM signals the host's eventfd */
    printk("nexus: region %lx bytes at %lx\n", len, base);
    return 0;
}
