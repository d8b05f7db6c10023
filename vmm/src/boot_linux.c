/* Linux x86-64 boot protocol (Documentation/arch/x86/boot.rst): kernel and initrd
 * loading, zero page, e820, command line, boot page tables and GDT. */
#include "boot_linux.h"
#include "errmsg.h"

#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define HDRS_MAGIC    0x53726448u   /* "HdrS" */
#define BZ_HDR_OFFSET 0x1f1

/* Flat segments: 64-bit code (L=1), data, and a TSS descriptor KVM wants loaded
 * in TR (the values Firecracker and kvmtool use). */
#define GDT_ENTRY(flags, base, limit)                                          \
    ((((uint64_t)(base) & 0xff000000ULL) << 32) | (((uint64_t)(flags) & 0xf0ffULL) << 40) | \
     (((uint64_t)(limit) & 0x000f0000ULL) << 32) | (((uint64_t)(base) & 0x00ffffffULL) << 16) | \
     ((uint64_t)(limit) & 0x0000ffffULL))
const uint64_t boot_gdt[4] = {
    0,
    GDT_ENTRY(0xa09b, 0, 0xfffff),  /* code: P, DPL0, exec/read, L, G */
    GDT_ENTRY(0xc093, 0, 0xfffff),  /* data: P, DPL0, read/write, D/B, G */
    GDT_ENTRY(0x808b, 0, 0xfffff),  /* TSS, busy */
};


int e820_build(const struct guest_mem *gm, struct boot_e820_entry *out, int max)
{
    struct boot_e820_entry e[4];
    int n = 0;
    e[n++] = (struct boot_e820_entry){ 0, LAYOUT_EBDA, E820_RAM };
    e[n++] = (struct boot_e820_entry){ LAYOUT_EBDA, LAYOUT_EBDA_END - LAYOUT_EBDA, E820_RESERVED };
    if (gm->low_size > LAYOUT_HIMEM)
        e[n++] = (struct boot_e820_entry){ LAYOUT_HIMEM, gm->low_size - LAYOUT_HIMEM, E820_RAM };
    if (gm->high_size)
        e[n++] = (struct boot_e820_entry){ GM_HIGH_START, gm->high_size, E820_RAM };
    if (n > max)
        return -1;
    memcpy(out, e, sizeof(e[0]) * (size_t)n);
    return n;
}

static bool is_elf(const struct boot_image *k)
{
    return k->size >= sizeof(Elf64_Ehdr) && memcmp(k->data, ELFMAG, SELFMAG) == 0;
}

static bool is_bzimage(const struct boot_image *k)
{
    uint32_t magic;
    if (k->size < 0x1000)
        return false;
    memcpy(&magic, k->data + 0x202, 4);
    return magic == HDRS_MAGIC;
}

static int load_elf(struct guest_mem *gm, const struct boot_image *k, struct boot_entry *be,
                    char *err, size_t errlen)
{
    Elf64_Ehdr eh;
    memcpy(&eh, k->data, sizeof(eh));
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return vmm_errf(err, errlen, "kernel: not a little-endian x86-64 ELF");
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
        eh.e_phoff > k->size || (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > k->size - eh.e_phoff)
        return vmm_errf(err, errlen, "kernel: bad ELF program header table");
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, k->data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || ph.p_offset > k->size || ph.p_filesz > k->size - ph.p_offset)
            return vmm_errf(err, errlen, "kernel: ELF segment %u outside the file", i);
        if (ph.p_paddr < LAYOUT_HIMEM)
            return vmm_errf(err, errlen, "kernel: ELF segment %u at 0x%llx is below 1 MiB", i,
                        (unsigned long long)ph.p_paddr);
        uint8_t *dst = gm_ptr(gm, ph.p_paddr, ph.p_memsz);
        if (!dst)
            return vmm_errf(err, errlen, "kernel: ELF segment %u [0x%llx, +0x%llx) is outside guest RAM",
                        i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz);
        memcpy(dst, k->data + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
        if (ph.p_paddr < lo)
            lo = ph.p_paddr;
        if (ph.p_paddr + ph.p_memsz > hi)
            hi = ph.p_paddr + ph.p_memsz;
    }
    if (hi == 0)
        return vmm_errf(err, errlen, "kernel: ELF has no loadable segment");
    if (eh.e_entry < lo || eh.e_entry >= hi)
        return vmm_errf(err, errlen, "kernel: ELF entry 0x%llx outside its segments",
                    (unsigned long long)eh.e_entry);
    be->format = KERNEL_ELF;
    be->entry = eh.e_entry;   /* vmlinux: physical address of startup_64 */
    be->kernel_start = lo;
    be->kernel_end = hi;
    return 0;
}

static void bz_header(const struct boot_image *k, struct setup_header *h)
{
    /* The setup header is a prefix of the file at 0x1f1; the file is >= 4 KiB. */
    memcpy(h, k->data + BZ_HDR_OFFSET, sizeof(*h));
}

static int load_bzimage(struct guest_mem *gm, const struct boot_image *k, struct boot_entry *be,
                        char *err, size_t errlen)
{
    struct setup_header h;
    bz_header(k, &h);
    if (h.version < 0x020c || !(h.xloadflags & XLF_KERNEL_64))
        return vmm_errf(err, errlen, "kernel: bzImage protocol %x.%02x has no 64-bit entry (need >= 2.12)",
                    h.version >> 8, h.version & 0xff);
    uint64_t setup_sects = h.setup_sects ? h.setup_sects : 4;
    uint64_t off = (setup_sects + 1) * 512;
    if (off >= k->size)
        return vmm_errf(err, errlen, "kernel: bzImage setup_sects points past the file");
    uint64_t len = k->size - off;
    /* The decompressor runs in place and needs init_size bytes from its load
     * address (it may move itself to pref_address / LOAD_PHYSICAL_ADDR). */
    uint64_t need = len > h.init_size ? len : h.init_size;
    uint8_t *dst = gm_ptr(gm, LAYOUT_HIMEM, need);
    if (!dst)
        return vmm_errf(err, errlen, "kernel: bzImage needs %llu KiB above 1 MiB; give the VM more memory",
                    (unsigned long long)(need >> 10));
    memcpy(dst, k->data + off, len);
    be->format = KERNEL_BZIMAGE;
    be->entry = LAYOUT_HIMEM + 0x200;   /* startup_64 is 512 bytes into the 32-bit image */
    be->kernel_start = LAYOUT_HIMEM;
    be->kernel_end = LAYOUT_HIMEM + need;
    if (h.pref_address > LAYOUT_HIMEM && h.pref_address + h.init_size > be->kernel_end)
        be->kernel_end = h.pref_address + h.init_size;
    return 0;
}

int boot_load_kernel(struct guest_mem *gm, const struct boot_image *k, struct boot_entry *be,
                     char *err, size_t errlen)
{
    memset(be, 0, sizeof(*be));
    if (is_elf(k))
        return load_elf(gm, k, be, err, errlen);
    if (is_bzimage(k))
        return load_bzimage(gm, k, be, err, errlen);
    return vmm_errf(err, errlen, "kernel: neither an ELF nor a bzImage");
}

int boot_load_initrd(struct guest_mem *gm, const struct boot_image *kernel,
                     const struct boot_image *initrd, struct boot_entry *be,
                     char *err, size_t errlen)
{
    uint64_t top = gm->low_size;
    if (be->format == KERNEL_BZIMAGE) {
        struct setup_header h;
        bz_header(kernel, &h);
        if (h.initrd_addr_max && (uint64_t)h.initrd_addr_max + 1 < top)
            top = (uint64_t)h.initrd_addr_max + 1;
    }
    if (initrd->size == 0 || initrd->size > top)
        return vmm_errf(err, errlen, "initrd: %zu bytes do not fit in guest RAM", initrd->size);
    uint64_t addr = (top - initrd->size) & ~0xfffULL;
    if (addr < be->kernel_end)
        return vmm_errf(err, errlen, "initrd: %zu bytes do not fit between the kernel and the top of RAM; "
                    "give the VM more memory", initrd->size);
    if (gm_write(gm, addr, initrd->data, initrd->size) < 0)
        return vmm_errf(err, errlen, "initrd: outside guest RAM");
    be->initrd_addr = addr;
    be->initrd_size = initrd->size;
    return 0;
}

int boot_write_params(struct guest_mem *gm, const struct boot_image *kernel,
                      const struct boot_entry *be, const char *cmdline,
                      char *err, size_t errlen)
{
    struct boot_params *bp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*bp));
    if (!bp)
        return vmm_errf(err, errlen, "guest RAM too small for the zero page");
    memset(bp, 0, sizeof(*bp));
    struct setup_header *h = &bp->hdr;
    size_t cmdline_max = LAYOUT_CMDLINE_MAX - 1;
    if (be->format == KERNEL_BZIMAGE) {
        bz_header(kernel, h);
        if (h->cmdline_size && h->cmdline_size < cmdline_max)
            cmdline_max = h->cmdline_size;
        h->loadflags |= LOADED_HIGH | CAN_USE_HEAP;
        h->heap_end_ptr = 0xfe00;
    } else {
        /* vmlinux has no setup header: write the fields the kernel reads. */
        h->boot_flag = 0xaa55;
        h->header = HDRS_MAGIC;
        h->version = 0x020f;
        h->kernel_alignment = 0x1000000;
        h->cmdline_size = LAYOUT_CMDLINE_MAX - 1;
    }
    h->type_of_loader = 0xff;   /* "undefined" boot loader */
    size_t n = strlen(cmdline);
    if (n > cmdline_max)
        return vmm_errf(err, errlen, "command line is %zu bytes; this kernel takes at most %zu", n, cmdline_max);
    if (gm_write(gm, LAYOUT_CMDLINE, cmdline, n + 1) < 0)
        return vmm_errf(err, errlen, "guest RAM too small for the command line");
    h->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
    if (be->initrd_size) {
        h->ramdisk_image = (uint32_t)be->initrd_addr;
        h->ramdisk_size = (uint32_t)be->initrd_size;
        bp->ext_ramdisk_image = (uint32_t)(be->initrd_addr >> 32);
        bp->ext_ramdisk_size = (uint32_t)(be->initrd_size >> 32);
    }
    int ne = e820_build(gm, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
    if (ne < 0)
        return vmm_errf(err, errlen, "e820 table overflow");
    bp->e820_entries = (uint8_t)ne;
    return 0;
}

int boot_write_cpu_tables(struct guest_mem *gm)
{
    if (gm_write(gm, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt)) < 0)
        return -1;
    uint64_t idt0 = 0;
    if (gm_write(gm, LAYOUT_IDT, &idt0, sizeof(idt0)) < 0)
        return -1;
    /* Identity map of the first 4 GiB with 2 MiB pages (P|RW|PS): enough for the
     * kernel's startup_64 until it builds its own tables. */
    uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096);
    uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, 4096);
    uint64_t *pd = gm_ptr(gm, LAYOUT_PD, 4 * 4096);
    if (!pml4 || !pdpt || !pd)
        return -1;
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = LAYOUT_PDPT | 0x3;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (LAYOUT_PD + i * 4096) | 0x3;
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;
    return 0;
}

/* Insert a kernel parameter (with its leading space) before " -- ": what follows
 * "--" is init's argv, not the kernel's. */
int boot_cmdline_add_param(char *cmdline, size_t size, const char *param)
{
    size_t n = strlen(cmdline), pl = strlen(param);
    if (n + pl + 1 > size)
        return -1;
    char *dashes = NULL;
    if (strncmp(cmdline, "-- ", 3) == 0 || strcmp(cmdline, "--") == 0)
        dashes = cmdline;
    else if ((dashes = strstr(cmdline, " -- ")) == NULL && n >= 3 && strcmp(cmdline + n - 3, " --") == 0)
        dashes = cmdline + n - 3;
    if (!dashes) {
        memcpy(cmdline + n, param, pl + 1);
        return 0;
    }
    if (dashes == cmdline) {
        /* "-- args": parameters go first, without the leading space. */
        memmove(cmdline + pl, cmdline, n + 1);
        memcpy(cmdline, param + 1, pl - 1);
        cmdline[pl - 1] = ' ';
        return 0;
    }
    memmove(dashes + pl, dashes, (size_t)(cmdline + n - dashes) + 1);
    memcpy(dashes, param, pl);
    return 0;
}
