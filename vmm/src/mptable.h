/* Intel MultiProcessor Specification 1.4 tables: tell the guest how many CPUs
 * there are (their LAPIC ids), where the IOAPIC is, and how the 24 ISA/IOAPIC
 * interrupt lines are wired.  Linux reads it with CONFIG_X86_MPPARSE when there is
 * no ACPI; see docs/vmm.md for why this and not ACPI. */
#ifndef VMM_MPTABLE_H
#define VMM_MPTABLE_H
#include <stdint.h>
#include "guest_mem.h"

#define MPTABLE_MAX_CPUS 64
#define MPTABLE_IRQS     24   /* IOAPIC pins, all declared as ISA bus interrupts */

/* Writes the floating pointer and config table at `addr` (which must leave 1 KiB).
 * Returns the bytes used, or -1. */
int mptable_write(struct guest_mem *gm, uint64_t addr, unsigned ncpus);

/* Byte sum, for the checksums (and for the tests that check them). */
uint8_t mptable_sum(const void *p, uint64_t len);

#endif
