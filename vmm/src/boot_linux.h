/* The Linux x86-64 boot protocol: load a kernel (ELF vmlinux or bzImage) and an
 * optional initrd into guest memory, and write boot_params (the zero page), the
 * e820 map, the command line, the identity page tables and the GDT.  Pure
 * functions over struct guest_mem, so the host-side unit tests exercise them
 * without KVM.  The CPU state to enter with is in struct boot_entry. */
#ifndef VMM_BOOT_LINUX_H
#define VMM_BOOT_LINUX_H
#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>

#include "guest_mem.h"

enum kernel_format { KERNEL_ELF = 1, KERNEL_BZIMAGE = 2 };

struct boot_image {
    const uint8_t *data;   /* whole file, read into memory */
    size_t         size;
};

struct boot_entry {
    enum kernel_format format;
    uint64_t entry;        /* guest-physical 64-bit entry point */
    uint64_t kernel_start; /* loaded range, for placing the initrd above it */
    uint64_t kernel_end;
    uint64_t initrd_addr, initrd_size;
};

/* Fill out[] with the e820 map for `mem` bytes of RAM; returns the entry count. */
int e820_build(const struct guest_mem *gm, struct boot_e820_entry *out, int max);

/* Load the kernel; on error returns -1 and writes a reason into err. */
int boot_load_kernel(struct guest_mem *gm, const struct boot_image *k,
                     struct boot_entry *be, char *err, size_t errlen);
/* Place the initrd at the top of low RAM (below the kernel's initrd_addr_max). */
int boot_load_initrd(struct guest_mem *gm, const struct boot_image *kernel,
                     const struct boot_image *initrd, struct boot_entry *be,
                     char *err, size_t errlen);
/* Write the zero page, e820 and command line. */
int boot_write_params(struct guest_mem *gm, const struct boot_image *kernel,
                      const struct boot_entry *be, const char *cmdline,
                      char *err, size_t errlen);
/* Write the GDT, an empty IDT and identity page tables for 0-4 GiB. */
int boot_write_cpu_tables(struct guest_mem *gm);

/* Add a kernel parameter (" name=value", with its leading space) to cmdline, before
 * any " -- " (what follows it is init's argv).  Returns 0, or -1 if size is too small. */
int boot_cmdline_add_param(char *cmdline, size_t size, const char *param);

/* The GDT entries written at LAYOUT_GDT, for building KVM segment registers. */
extern const uint64_t boot_gdt[4];

#endif
