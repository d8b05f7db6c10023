/* MP spec 1.4 table writer (one bus, one IOAPIC, identity IRQ wiring). */
#include "mptable.h"

#include <string.h>

#include "layout.h"

#define MPC_APIC_VERSION   0x14
#define MPC_IOAPIC_VERSION 0x11
#define CPU_ENABLED 1
#define CPU_BSP     2

struct __attribute__((packed)) mpf_intel {
    char     signature[4];   /* "_MP_" */
    uint32_t physptr;
    uint8_t  length;         /* in 16-byte units */
    uint8_t  specification;
    uint8_t  checksum;
    uint8_t  feature1, feature2, feature3, feature4, feature5;
};
struct __attribute__((packed)) mpc_table {
    char     signature[4];   /* "PCMP" */
    uint16_t length;
    uint8_t  spec;
    uint8_t  checksum;
    char     oem[8];
    char     productid[12];
    uint32_t oemptr;
    uint16_t oemsize;
    uint16_t oemcount;       /* number of entries */
    uint32_t lapic;
    uint16_t ext_length;
    uint8_t  ext_checksum;
    uint8_t  reserved;
};
struct __attribute__((packed)) mpc_cpu {
    uint8_t type, apicid, apicver, cpuflag;
    uint32_t cpufeature, featureflag;
    uint32_t reserved[2];
};
struct __attribute__((packed)) mpc_bus { uint8_t type, busid; char bustype[6]; };
struct __attribute__((packed)) mpc_ioapic { uint8_t type, apicid, apicver, flags; uint32_t apicaddr; };
struct __attribute__((packed)) mpc_intsrc {
    uint8_t type, irqtype; uint16_t irqflag; uint8_t srcbus, srcbusirq, dstapic, dstirq;
};
_Static_assert(sizeof(struct mpf_intel) == 16, "mpf");
_Static_assert(sizeof(struct mpc_table) == 44, "mpc");
_Static_assert(sizeof(struct mpc_cpu) == 20, "cpu");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "intsrc");

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

uint8_t mptable_sum(const void *p, uint64_t len)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    for (uint64_t i = 0; i < len; i++)
        s = (uint8_t)(s + b[i]);
    return s;
}

int mptable_write(struct guest_mem *gm, uint64_t addr, unsigned ncpus)
{
    if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
        return -1;
    uint64_t size = sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
                    ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
                    sizeof(struct mpc_ioapic) + (MPTABLE_IRQS + 2) * sizeof(struct mpc_intsrc);
    uint8_t *base = gm_ptr(gm, addr, size);
    if (!base)
        return -1;
    memset(base, 0, size);

    struct mpf_intel *mpf = (void *)base;
    struct mpc_table *mpc = (void *)(mpf + 1);
    uint8_t *p = (uint8_t *)(mpc + 1);
    uint16_t count = 0;
    uint8_t ioapic_id = (uint8_t)ncpus;   /* APIC ids 0..ncpus-1 are the CPUs */

    for (unsigned i = 0; i < ncpus; i++) {
        struct mpc_cpu c = {
            .type = MP_PROCESSOR, .apicid = (uint8_t)i, .apicver = MPC_APIC_VERSION,
            .cpuflag = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
            .cpufeature = 0x600,                 /* family 6 */
            .featureflag = (1u << 9) | (1u << 0), /* APIC, FPU */
        };
        memcpy(p, &c, sizeof(c));
        p += sizeof(c);
        count++;
    }
    struct mpc_bus bus = { .type = MP_BUS, .busid = 0, .bustype = { 'I', 'S', 'A', ' ', ' ', ' ' } };
    memcpy(p, &bus, sizeof(bus));
    p += sizeof(bus);
    count++;
    struct mpc_ioapic io = { .type = MP_IOAPIC, .apicid = ioapic_id, .apicver = MPC_IOAPIC_VERSION,
                             .flags = 1, .apicaddr = (uint32_t)LAYOUT_IOAPIC };
    memcpy(p, &io, sizeof(io));
    p += sizeof(io);
    count++;
    /* ISA IRQ n -> IOAPIC pin n, edge/active-high (irqflag 0 = bus default). KVM's
     * default GSI routing wires GSI n to PIC line n and IOAPIC pin n the same way. */
    for (uint8_t irq = 0; irq < MPTABLE_IRQS; irq++) {
        struct mpc_intsrc s = { .type = MP_INTSRC, .irqtype = MP_INT, .srcbus = 0,
                                .srcbusirq = irq, .dstapic = ioapic_id, .dstirq = irq };
        memcpy(p, &s, sizeof(s));
        p += sizeof(s);
        count++;
    }
    /* LINT0 = ExtINT (the 8259 PIC), LINT1 = NMI, on every local APIC. */
    struct mpc_intsrc l0 = { .type = MP_LINTSRC, .irqtype = MP_EXTINT, .dstapic = 0xff, .dstirq = 0 };
    struct mpc_intsrc l1 = { .type = MP_LINTSRC, .irqtype = MP_NMI, .dstapic = 0xff, .dstirq = 1 };
    memcpy(p, &l0, sizeof(l0));
    p += sizeof(l0);
    memcpy(p, &l1, sizeof(l1));
    p += sizeof(l1);
    count += 2;

    memcpy(mpc->signature, "PCMP", 4);
    mpc->length = (uint16_t)(p - (uint8_t *)mpc);
    mpc->spec = 4;
    memcpy(mpc->oem, "NEXUS   ", 8);
    memcpy(mpc->productid, "NEXUS-VMM   ", 12);
    mpc->oemcount = count;
    mpc->lapic = (uint32_t)LAYOUT_LAPIC;
    mpc->checksum = (uint8_t)(0 - mptable_sum(mpc, mpc->length));

    memcpy(mpf->signature, "_MP_", 4);
    mpf->physptr = (uint32_t)(addr + sizeof(*mpf));
    mpf->length = 1;
    mpf->specification = 4;
    mpf->checksum = (uint8_t)(0 - mptable_sum(mpf, sizeof(*mpf)));
    return (int)(p - base);
}
