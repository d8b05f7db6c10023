/* test=bootparams: check the zero page, e820, command line, initrd and MP table
 * exactly as nexus-vmm wrote them.  Expectations come from the command line the
 * runner passed: expect_mem_mb=, expect_cpus=, expect_initrd=<bytes>, and the
 * marker word it appended. */
#include <asm/bootparam.h>

#include "guest.h"

static uint8_t sum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *b++);
    return s;
}

int test_bootparams(void)
{
    struct boot_params *bp = g_bp;
    struct setup_header *h = &bp->hdr;
    CHECK(h->boot_flag == 0xaa55, "boot_flag %x", h->boot_flag);
    CHECK(h->header == 0x53726448, "header magic %x", h->header);
    CHECK(h->type_of_loader == 0xff, "type_of_loader %x", h->type_of_loader);
    CHECK(h->cmd_line_ptr && h->cmd_line_ptr < 0x100000, "cmd_line_ptr %x", h->cmd_line_ptr);
    CHECK(strstr_(g_cmdline, "marker=hello-nexus") != NULL, "marker missing from '%s'", g_cmdline);
    CHECK(strlen(g_cmdline) < h->cmdline_size, "cmdline longer than cmdline_size %u", h->cmdline_size);

    /* e820: sorted, non-overlapping, RAM totals the configured size, low 1 MiB
     * hole where the MP table lives, and we ourselves are in RAM. */
    uint64_t expect_mem = cmdline_u64("expect_mem_mb", 0) << 20;
    CHECK(bp->e820_entries > 0 && bp->e820_entries <= 128, "e820_entries %u", bp->e820_entries);
    uint64_t ram = 0, prev_end = 0;
    bool self_in_ram = false, mp_in_ram = false;
    for (unsigned i = 0; i < bp->e820_entries; i++) {
        struct boot_e820_entry *e = &bp->e820_table[i];
        printk("e820: %lx-%lx type %u\n", e->addr, e->addr + e->size - 1, e->type);
        CHECK(e->size > 0, "empty e820 entry %u", i);
        CHECK(i == 0 || e->addr >= prev_end, "e820 entry %u overlaps or is unsorted", i);
        prev_end = e->addr + e->size;
        if (e->type == 1) {
            ram += e->size;
            if (e->addr <= 0x200000 && 0x200000 < e->addr + e->size)
                self_in_ram = true;
            if (e->addr <= 0x9fc00 && 0x9fc00 < e->addr + e->size)
                mp_in_ram = true;
        }
    }
    /* The 384 KiB legacy hole (0xa0000-0xfffff) and the 1 KiB EBDA are not RAM. */
    uint64_t hole = 0x100000 - 0x9fc00;
    CHECK(ram + hole == expect_mem, "e820 RAM %lu + hole %lu != expected %lu", ram, hole, expect_mem);
    CHECK(self_in_ram, "the kernel's own load address is not e820 RAM");
    CHECK(!mp_in_ram, "MP table area is e820 RAM");

    /* initrd: placed, page aligned, inside RAM, with the runner's content. */
    uint64_t expect_initrd = cmdline_u64("expect_initrd", 0);
    if (expect_initrd) {
        CHECK(h->ramdisk_size == expect_initrd, "ramdisk_size %u != %lu", h->ramdisk_size, expect_initrd);
        CHECK((h->ramdisk_image & 0xfff) == 0, "ramdisk_image %x not page aligned", h->ramdisk_image);
        CHECK(h->ramdisk_image + h->ramdisk_size <= expect_mem, "initrd beyond RAM");
        CHECK(h->ramdisk_image >= 0x300000, "initrd overlaps the kernel");
        CHECK(memcmp((void *)(uint64_t)h->ramdisk_image, "NEXUS-INITRD", 12) == 0, "initrd content");
        printk("initrd: %x bytes at %x\n", h->ramdisk_size, h->ramdisk_image);
    } else {
        CHECK(h->ramdisk_size == 0 && h->ramdisk_image == 0, "unexpected initrd");
    }

    /* MP table: floating pointer at the start of the EBDA, checksums, CPU count. */
    const uint8_t *mpf = (const uint8_t *)0x9fc00;
    CHECK(memcmp(mpf, "_MP_", 4) == 0, "no MP floating pointer at 0x9fc00");
    CHECK(sum(mpf, 16) == 0, "MP floating pointer checksum");
    uint32_t cfg;
    memcpy(&cfg, mpf + 4, 4);
    const uint8_t *mpc = (const uint8_t *)(uint64_t)cfg;
    CHECK(memcmp(mpc, "PCMP", 4) == 0, "no MP config table");
    uint16_t len, count;
    memcpy(&len, mpc + 4, 2);
    memcpy(&count, mpc + 34, 2);
    CHECK(sum(mpc, len) == 0, "MP config table checksum");
    unsigned cpus = 0, ioapics = 0;
    const uint8_t *p = mpc + 44;
    for (unsigned i = 0; i < count; i++) {
        CHECK(p < mpc + len, "MP entries overrun the table");
        if (*p == 0) { cpus++; p += 20; }
        else { if (*p == 2) ioapics++; p += 8; }
    }
    uint64_t expect_cpus = cmdline_u64("expect_cpus", 1);
    CHECK(cpus == expect_cpus, "MP table lists %u CPUs, expected %lu", cpus, expect_cpus);
    CHECK(ioapics == 1, "MP table lists %u IOAPICs", ioapics);

    /* virtio-mmio devices declared by the monitor, when the runner gave disks. */
    uint64_t expect_disks = cmdline_u64("expect_disks", 0);
    unsigned found = 0;
    for (const char *q = g_cmdline; (q = strstr_(q, "virtio_mmio.device=")); q++)
        found++;
    CHECK(found == expect_disks, "%u virtio_mmio.device= entries, expected %lu", found, expect_disks);
    printk("bootparams: %u e820 entries, %lu MiB RAM, %u CPUs in MP table, cmdline '%s'\n",
           bp->e820_entries, (ram + hole) >> 20, cpus, g_cmdline);
    return 0;
}
