/* Unit tests: guest memory bounds, kernel loading (ELF and bzImage), boot_params,
 * e820, initrd placement, boot page tables and GDT, MP table. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "boot_linux.h"
#include "layout.h"
#include "mptable.h"
#include "stubs.h"

static struct guest_mem gm;

static int setup(void **s) { (void)s; return guest_mem_init(&gm, 64ULL << 20); }
static int teardown(void **s) { (void)s; guest_mem_free(&gm); return 0; }

static void test_gm_bounds(void **s)
{
    (void)s;
    uint64_t end = 64ULL << 20;
    assert_non_null(gm_ptr(&gm, 0, end));
    assert_non_null(gm_ptr(&gm, end - 1, 1));
    assert_null(gm_ptr(&gm, end - 1, 2));
    assert_null(gm_ptr(&gm, end, 0));
    assert_null(gm_ptr(&gm, UINT64_MAX, 1));
    assert_null(gm_ptr(&gm, 16, UINT64_MAX));          /* len that would wrap gpa+len */
    assert_null(gm_ptr(&gm, 0xfffffffffffff000ULL, 0x2000));
    assert_null(gm_ptr(&gm, GM_HIGH_START, 1));        /* no high RAM with 64 MiB */
    assert_int_equal(gm_write(&gm, end - 4, "abcd", 4), 0);
    assert_int_equal(gm_write(&gm, end - 3, "abcd", 4), -1);
}

static void test_gm_split_above_hole(void **s)
{
    (void)s;
    struct guest_mem big;
    /* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB (MAP_NORESERVE: nothing touched). */
    assert_int_equal(guest_mem_init(&big, 4ULL << 30), 0);
    assert_int_equal(big.low_size, GM_MMIO_HOLE_START);
    assert_int_equal(big.high_size, 1ULL << 30);
    assert_non_null(gm_ptr(&big, GM_MMIO_HOLE_START - 8, 8));
    assert_null(gm_ptr(&big, GM_MMIO_HOLE_START - 8, 16));     /* into the hole */
    assert_null(gm_ptr(&big, 0xd0000000ULL, 4));               /* virtio MMIO */
    assert_ptr_equal(gm_ptr(&big, GM_HIGH_START, 8), big.host + GM_MMIO_HOLE_START);
    assert_non_null(gm_ptr(&big, GM_HIGH_START + (1ULL << 30) - 8, 8));
    assert_null(gm_ptr(&big, GM_HIGH_START + (1ULL << 30) - 8, 9));
    struct boot_e820_entry e[8];
    int n = e820_build(&big, e, 8);
    assert_int_equal(n, 4);
    assert_int_equal(e[3].addr, GM_HIGH_START);
    assert_int_equal(e[3].size, 1ULL << 30);
    assert_int_equal(e[3].type, 1);
    guest_mem_free(&big);
}

static void test_e820_small(void **s)
{
    (void)s;
    struct boot_e820_entry e[8];
    int n = e820_build(&gm, e, 8);
    assert_int_equal(n, 3);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, LAYOUT_EBDA);
    assert_int_equal(e[0].type, 1);
    assert_int_equal(e[1].addr, LAYOUT_EBDA);
    assert_int_equal(e[1].type, 2);
    assert_int_equal(e[2].addr, LAYOUT_HIMEM);
    assert_int_equal(e[2].size, (64ULL << 20) - LAYOUT_HIMEM);
    assert_int_equal(e820_build(&gm, e, 2), -1);
}

/* A minimal ELF64 with one PT_LOAD of `payload` at paddr, memsz = filesz + bss. */
static uint8_t *make_elf(uint64_t paddr, uint64_t entry, const char *payload, uint64_t bss, size_t *len)
{
    size_t pl = strlen(payload);
    *len = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + pl;
    uint8_t *f = calloc(1, *len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_machine = EM_X86_64;
    eh->e_entry = entry;
    eh->e_phoff = sizeof(*eh);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 1;
    Elf64_Phdr *ph = (Elf64_Phdr *)(f + sizeof(*eh));
    ph->p_type = PT_LOAD;
    ph->p_offset = sizeof(*eh) + sizeof(*ph);
    ph->p_paddr = ph->p_vaddr = paddr;
    ph->p_filesz = pl;
    ph->p_memsz = pl + bss;
    memcpy(f + ph->p_offset, payload, pl);
    return f;
}

static void test_elf_load_and_params(void **s)
{
    (void)s;
    size_t len;
    uint8_t *f = make_elf(0x200000, 0x200004, "KERNEL-PAYLOAD", 4096, &len);
    memset(gm.host + 0x200000, 0xaa, 0x2000);   /* bss must come out zeroed */
    struct boot_image k = { f, len };
    struct boot_entry be;
    char err[256];
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), 0);
    assert_int_equal(be.format, KERNEL_ELF);
    assert_int_equal(be.entry, 0x200004);
    assert_memory_equal(gm.host + 0x200000, "KERNEL-PAYLOAD", 14);
    assert_int_equal(gm.host[0x200000 + 14 + 100], 0);
    assert_int_equal(be.kernel_end, 0x200000 + 14 + 4096);

    struct boot_image rd = { (const uint8_t *)"INITRD-BYTES", 12 };
    assert_int_equal(boot_load_initrd(&gm, &k, &rd, &be, err, sizeof(err)), 0);
    assert_int_equal(be.initrd_addr & 0xfff, 0);
    assert_true(be.initrd_addr + 12 <= 64ULL << 20);
    assert_true(be.initrd_addr >= be.kernel_end);
    assert_memory_equal(gm.host + be.initrd_addr, "INITRD-BYTES", 12);

    assert_int_equal(boot_write_params(&gm, &k, &be, "console=ttyS0 hello", err, sizeof(err)), 0);
    struct boot_params *bp = (void *)(gm.host + LAYOUT_ZERO_PAGE);
    assert_int_equal(bp->hdr.boot_flag, 0xaa55);
    assert_int_equal(bp->hdr.header, 0x53726448);
    assert_int_equal(bp->hdr.type_of_loader, 0xff);
    assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
    assert_string_equal((char *)gm.host + LAYOUT_CMDLINE, "console=ttyS0 hello");
    assert_int_equal(bp->hdr.ramdisk_image, be.initrd_addr);
    assert_int_equal(bp->hdr.ramdisk_size, 12);
    assert_int_equal(bp->e820_entries, 3);
    assert_int_equal(bp->e820_table[2].addr, LAYOUT_HIMEM);
    free(f);
}

static void test_elf_rejects(void **s)
{
    (void)s;
    size_t len;
    struct boot_entry be;
    char err[256];
    uint8_t *f = make_elf(0x1000, 0x1000, "X", 0, &len);          /* below 1 MiB */
    struct boot_image k = { f, len };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    free(f);
    f = make_elf(63ULL << 20, 63ULL << 20, "X", 2ULL << 20, &len);  /* bss runs past RAM */
    k = (struct boot_image){ f, len };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "outside guest RAM"));
    free(f);
    f = make_elf(0x200000, 0x900000, "X", 0, &len);                 /* entry outside */
    k = (struct boot_image){ f, len };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    free(f);
    f = make_elf(0x200000, 0x200000, "X", 0, &len);
    ((Elf64_Phdr *)(f + sizeof(Elf64_Ehdr)))->p_filesz = 1 << 20;   /* file too short */
    k = (struct boot_image){ f, len };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    ((Elf64_Ehdr *)f)->e_phnum = 60000;
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    free(f);
    static const uint8_t junk[64] = "not a kernel";
    k = (struct boot_image){ junk, sizeof(junk) };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
}

/* A fake bzImage: setup header at 0x1f1, protected-mode part after the setup sectors. */
static uint8_t *make_bzimage(uint16_t version, uint16_t xloadflags, size_t *len)
{
    *len = 5 * 512 + 8192;
    uint8_t *f = calloc(1, *len);
    struct setup_header h;
    memset(&h, 0, sizeof(h));
    h.setup_sects = 4;
    h.boot_flag = 0xaa55;
    h.header = 0x53726448;
    h.version = version;
    h.xloadflags = xloadflags;
    h.cmdline_size = 255;
    h.initrd_addr_max = 0x37ffffff;
    h.init_size = 0x400000;
    h.kernel_alignment = 0x200000;
    memcpy(f + 0x1f1, &h, sizeof(h));
    memcpy(f + 5 * 512, "PROTECTED-MODE", 14);
    return f;
}

static void test_bzimage(void **s)
{
    (void)s;
    size_t len;
    uint8_t *f = make_bzimage(0x020f, XLF_KERNEL_64, &len);
    struct boot_image k = { f, len };
    struct boot_entry be;
    char err[256];
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), 0);
    assert_int_equal(be.format, KERNEL_BZIMAGE);
    assert_int_equal(be.entry, LAYOUT_HIMEM + 0x200);
    assert_memory_equal(gm.host + LAYOUT_HIMEM, "PROTECTED-MODE", 14);
    assert_true(be.kernel_end >= LAYOUT_HIMEM + 0x400000);
    assert_int_equal(boot_write_params(&gm, &k, &be, "short", err, sizeof(err)), 0);
    struct boot_params *bp = (void *)(gm.host + LAYOUT_ZERO_PAGE);
    assert_int_equal(bp->hdr.version, 0x020f);
    assert_int_equal(bp->hdr.type_of_loader, 0xff);
    assert_true(bp->hdr.loadflags & LOADED_HIGH);
    assert_true(bp->hdr.loadflags & CAN_USE_HEAP);
    /* The kernel's cmdline_size (255 here) bounds the command line. */
    char longline[300];
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = 0;
    assert_int_equal(boot_write_params(&gm, &k, &be, longline, err, sizeof(err)), -1);
    free(f);
    f = make_bzimage(0x020a, 0, &len);   /* too old: no 64-bit entry */
    k = (struct boot_image){ f, len };
    assert_int_equal(boot_load_kernel(&gm, &k, &be, err, sizeof(err)), -1);
    free(f);
}

static void test_cpu_tables(void **s)
{
    (void)s;
    assert_int_equal(boot_write_cpu_tables(&gm), 0);
    uint64_t *pml4 = (void *)(gm.host + LAYOUT_PML4), *pdpt = (void *)(gm.host + LAYOUT_PDPT);
    uint64_t *pd = (void *)(gm.host + LAYOUT_PD);
    assert_int_equal(pml4[0], LAYOUT_PDPT | 3);
    assert_int_equal(pml4[1], 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pdpt[i], (LAYOUT_PD + 4096 * i) | 3);
    assert_int_equal(pdpt[4], 0);
    assert_int_equal(pd[0], 0x83);
    assert_int_equal(pd[1], (1 << 21) | 0x83);
    assert_int_equal(pd[2047], (2047ULL << 21) | 0x83);   /* maps up to 4 GiB */
    uint64_t gdt[4];
    memcpy(gdt, gm.host + LAYOUT_GDT, sizeof(gdt));
    assert_int_equal(gdt[0], 0);
    assert_int_equal(gdt[1], 0x00af9b000000ffffULL);   /* 64-bit code, L=1 */
    assert_int_equal(gdt[2], 0x00cf93000000ffffULL);
}

static void test_mptable(void **s)
{
    (void)s;
    int n = mptable_write(&gm, LAYOUT_EBDA, 4);
    assert_true(n > 0 && LAYOUT_EBDA + (uint64_t)n <= LAYOUT_EBDA_END);
    uint8_t *mpf = gm.host + LAYOUT_EBDA;
    assert_memory_equal(mpf, "_MP_", 4);
    assert_int_equal(mptable_sum(mpf, 16), 0);
    uint32_t phys;
    memcpy(&phys, mpf + 4, 4);
    uint8_t *mpc = gm.host + phys;
    assert_memory_equal(mpc, "PCMP", 4);
    uint16_t len, count;
    memcpy(&len, mpc + 4, 2);
    memcpy(&count, mpc + 34, 2);
    assert_int_equal(mptable_sum(mpc, len), 0);
    /* 4 CPUs, 1 bus, 1 IOAPIC, 24 IRQs, 2 local interrupts */
    assert_int_equal(count, 4 + 1 + 1 + 24 + 2);
    assert_int_equal(mpc[44], 0);          /* first entry: processor */
    assert_int_equal(mpc[44 + 3], 3);      /* enabled | BSP */
    assert_int_equal(mpc[44 + 20 + 3], 1); /* second CPU: enabled, not BSP */
    assert_int_equal(mptable_write(&gm, LAYOUT_EBDA, 0), -1);
    assert_int_equal(mptable_write(&gm, (64ULL << 20) - 16, 2), -1);   /* does not fit */
}

static void test_cmdline_param(void **s)
{
    (void)s;
    char c[128];
    strcpy(c, "console=ttyS0");
    assert_int_equal(boot_cmdline_add_param(c, sizeof(c), " a=1"), 0);
    assert_string_equal(c, "console=ttyS0 a=1");
    strcpy(c, "root=/dev/vda init=/sbin/init -- /bin/python3 -c x");
    assert_int_equal(boot_cmdline_add_param(c, sizeof(c), " v=2"), 0);
    assert_string_equal(c, "root=/dev/vda init=/sbin/init v=2 -- /bin/python3 -c x");
    strcpy(c, "-- arg");
    assert_int_equal(boot_cmdline_add_param(c, sizeof(c), " v=2"), 0);
    assert_string_equal(c, "v=2 -- arg");
    strcpy(c, "quiet --");
    assert_int_equal(boot_cmdline_add_param(c, sizeof(c), " v=2"), 0);
    assert_string_equal(c, "quiet v=2 --");
    char small[12] = "0123456789";
    assert_int_equal(boot_cmdline_add_param(small, sizeof(small), " v=2"), -1);
    assert_string_equal(small, "0123456789");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gm_bounds),
        cmocka_unit_test(test_gm_split_above_hole),
        cmocka_unit_test(test_e820_small),
        cmocka_unit_test(test_elf_load_and_params),
        cmocka_unit_test(test_elf_rejects),
        cmocka_unit_test(test_bzimage),
        cmocka_unit_test(test_cpu_tables),
        cmocka_unit_test(test_mptable),
        cmocka_unit_test(test_cmdline_param),
    };
    return cmocka_run_group_tests_name("vmm-boot", tests, setup, teardown);
}
