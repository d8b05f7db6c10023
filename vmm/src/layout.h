/* Guest physical memory map the monitor sets up before the first instruction.
 * Everything below 1 MiB is the monitor's; the kernel is loaded at or above 1 MiB.
 *
 *   0x00500  GDT (4 entries)          0x00520  IDT (empty, limit 0)
 *   0x07000  boot_params (zero page)  0x08ff0  initial stack (grows down)
 *   0x09000  PML4  0x0a000 PDPT  0x0b000-0x0efff four PDs: identity map of 0-4 GiB, 2 MiB pages
 *   0x20000  kernel command line (LAYOUT_CMDLINE_MAX bytes)
 *   0x9fc00  MP floating pointer + MP config table (e820-reserved, in "EBDA")
 *   0x100000 kernel (bzImage protected-mode part, or where the ELF says)
 *   top of low RAM: initrd
 *   0xd0000000 virtio-mmio devices, one 4 KiB window each
 *   0xfec00000 IOAPIC, 0xfee00000 LAPIC (in-kernel irqchip)
 *   0xfffbc000 KVM identity-map page, 0xfffbd000 KVM TSS (3 pages; Intel VMX needs them)
 */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#define LAYOUT_GDT          0x500ULL
#define LAYOUT_IDT          0x520ULL
#define LAYOUT_ZERO_PAGE    0x7000ULL
#define LAYOUT_BOOT_STACK   0x8ff0ULL
#define LAYOUT_PML4         0x9000ULL
#define LAYOUT_PDPT         0xa000ULL
#define LAYOUT_PD           0xb000ULL
#define LAYOUT_CMDLINE      0x20000ULL
#define LAYOUT_CMDLINE_MAX  4096
#define LAYOUT_EBDA         0x9fc00ULL
#define LAYOUT_EBDA_END     0xa0000ULL
#define LAYOUT_HIMEM        0x100000ULL
#define LAYOUT_VIRTIO_BASE  0xd0000000ULL
#define LAYOUT_VIRTIO_SIZE  0x1000ULL
#define LAYOUT_IOAPIC       0xfec00000ULL
#define LAYOUT_LAPIC        0xfee00000ULL
#define LAYOUT_KVM_IDMAP    0xfffbc000ULL
#define LAYOUT_KVM_TSS      0xfffbd000ULL

#define LAYOUT_MIN_MEM      (8ULL << 20)

/* GDT selectors the boot path uses (Linux 64-bit boot protocol wants __BOOT_CS/__BOOT_DS
 * to be flat 64-bit code and flat data). */
#define BOOT_GDT_CODE 1
#define BOOT_GDT_DATA 2
#define BOOT_GDT_TSS  3

#endif
