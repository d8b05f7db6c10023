/* The Nexus device without KVM: fd validation, region placement, and the
 * virtio-mmio identity + shared-memory registers the guest driver reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev_nexus.h"
#include "nexus/channel.h"
#include "nexus/nexus_dev.h"

static int memfd_of(uint64_t size)
{
    int fd = memfd_create("region", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
    uint32_t v = 0;
    virtio_mmio_ops.read(t, off, &v, 4);
    return v;
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
    virtio_mmio_ops.write(t, off, &v, 4);
}

static void test_open_validates(void **state)
{
    (void)state;
    struct nexus_dev nd = { 0 };
    char err[256];
    int efd1 = eventfd(0, EFD_CLOEXEC), efd2 = eventfd(0, EFD_CLOEXEC);
    int small = memfd_of(1 << 20), odd = memfd_of(NX_REGION_MIN + 100), good = memfd_of(NX_REGION_MIN);
    int fds[3] = { small, efd1, efd2 };
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), -1);      /* too small */
    fds[0] = odd;
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), -1);      /* not a page multiple */
    fds[0] = good; fds[1] = good;
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), -1);      /* kick fd not an eventfd */
    assert_non_null(strstr(err, "eventfd"));
    fds[1] = efd1;
    /* A plain file of the right size is not a memfd. */
    FILE *tf = tmpfile();
    assert_int_equal(ftruncate(fileno(tf), NX_REGION_MIN), 0);
    fds[0] = fileno(tf);
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "memfd"));
    fclose(tf);
    /* A restored device takes only a region of the snapshotted size. */
    fds[0] = good;
    nd.snap_size = 2 * NX_REGION_MIN;
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), -1);
    nd.snap_size = NX_REGION_MIN;
    assert_int_equal(nexus_dev_open(&nd, fds, err, sizeof(err)), 0);
    assert_int_equal(nd.size, NX_REGION_MIN);
    /* The monitor's mapping is the same memory as nexusd's. */
    uint8_t *peer = mmap(NULL, NX_REGION_MIN, PROT_READ | PROT_WRITE, MAP_SHARED, good, 0);
    assert_true(peer != MAP_FAILED);
    peer[4096] = 0x5a;
    assert_int_equal(((uint8_t *)nd.region)[4096], 0x5a);
    munmap(peer, NX_REGION_MIN);
    munmap(nd.region, nd.size);
    close(small), close(odd), close(good), close(efd1), close(efd2);
}

static void test_placement(void **state)
{
    (void)state;
    struct guest_mem gm = { .size = 256 << 20, .low_size = 256 << 20, .high_size = 0 };
    assert_int_equal(nexus_dev_gpa(&gm), 1ULL << 32);                      /* above the hole */
    gm.high_size = (5ULL << 30) + 4096;                                  /* RAM up to 9 GiB + 4 KiB */
    assert_int_equal(nexus_dev_gpa(&gm), 10ULL << 30);                     /* next GiB, past RAM */
}

static void test_registers(void **state)
{
    (void)state;
    struct nexus_dev nd;
    memset(&nd, 0, sizeof(nd));
    nd.size = 64ULL << 20;
    nd.gpa = 0x123400000ULL;
    struct virtio_mmio *t = &nd.transport;
    virtio_mmio_init(t, &nexus_dev_ops, &nd, NULL, 0xd0001000ULL, 6, NULL, NULL);
    assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_ID), NEXUS_VIRTIO_DEVICE_ID);
    assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);                /* no queues */
    wr(t, VIRTIO_MMIO_SHM_SEL, NEXUS_SHM_ID);
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_LOW), (uint32_t)(64 << 20));
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_HIGH), 0);
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_BASE_LOW), 0x23400000u);
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_BASE_HIGH), 1);
    wr(t, VIRTIO_MMIO_SHM_SEL, 1);                                         /* no region 1 */
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffu);
    assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffu);
    /* A doorbell write that KVM did not take (wrong size) is dropped harmlessly. */
    uint8_t b = 1;
    virtio_mmio_ops.write(t, VIRTIO_MMIO_CONFIG + NEXUS_CFG_DOORBELL, &b, 1);
    assert_int_equal(rd(t, VIRTIO_MMIO_CONFIG + NEXUS_CFG_DOORBELL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_validates),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_registers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
