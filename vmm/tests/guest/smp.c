/* test=smp: start the application processors the way Linux does (INIT, SIPI,
 * SIPI through the in-kernel LAPIC, into a real-mode trampoline below 1 MiB) and
 * check that expect_cpus-1 of them, with distinct APIC ids, check in. */
#include "guest.h"

#define AP_TRAMPOLINE 0x10000ULL      /* SIPI vector 0x10 */
#define LAPIC 0xfee00000ULL
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

extern uint64_t gdt[7];
extern char ap_tramp_start[], ap_tramp_end[], ap_tramp_gdtr[], ap_tramp_cr3[];

static volatile uint32_t ap_count;
static volatile uint64_t ap_ids;   /* bit n: APIC id n checked in */

void ap_main(void)
{
    uint32_t a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    __atomic_fetch_or(&ap_ids, 1ULL << ((b >> 24) & 63), __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
}

/* Ring 0, before dropping to ring 3: place the trampoline and tell it our GDT and CR3. */
void smp_prepare(void)
{
    uint8_t *t = (uint8_t *)AP_TRAMPOLINE;
    memcpy(t, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
    uint16_t limit = sizeof(uint64_t) * 7 - 1;
    uint32_t base = (uint32_t)(uint64_t)gdt;
    memcpy(t + (ap_tramp_gdtr - ap_tramp_start), &limit, 2);
    memcpy(t + (ap_tramp_gdtr - ap_tramp_start) + 2, &base, 4);
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint32_t cr3_32 = (uint32_t)cr3;
    memcpy(t + (ap_tramp_cr3 - ap_tramp_start), &cr3_32, 4);
}

static void delay(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        cpu_relax();
}

static void icr(uint32_t lo)
{
    mmio_write32(LAPIC + LAPIC_ICR_HI, 0);
    mmio_write32(LAPIC + LAPIC_ICR_LO, lo);
    for (int i = 0; i < 100000 && (mmio_read32(LAPIC + LAPIC_ICR_LO) & (1u << 12)); i++)
        cpu_relax();   /* delivery status */
}

int test_smp(void)
{
    uint64_t want = cmdline_u64("expect_cpus", 1);
    CHECK(want >= 2 && want <= 32, "expect_cpus=%lu makes no SMP test", want);
    mmio_write32(LAPIC + LAPIC_SVR, 0x1ff);   /* software-enable the LAPIC */
    icr(0x000c4500);                          /* INIT, all excluding self */
    delay(100000);
    icr(0x000c4600 | (uint32_t)(AP_TRAMPOLINE >> 12));   /* SIPI */
    delay(10000);
    icr(0x000c4600 | (uint32_t)(AP_TRAMPOLINE >> 12));   /* second SIPI, as the MP spec says */
    for (uint64_t spin = 0; ap_count < want - 1; spin++) {
        CHECK(spin < 2000000000ULL, "only %u of %lu APs started", ap_count, want - 1);
        cpu_relax();
    }
    delay(100000);   /* would catch an AP that starts twice */
    CHECK(ap_count == want - 1, "%u APs checked in, expected %lu", ap_count, want - 1);
    uint64_t expect_ids = ((1ULL << want) - 1) & ~1ULL;
    CHECK(ap_ids == expect_ids, "AP APIC ids %lx, expected %lx", ap_ids, expect_ids);
    printk("smp: %u application processors running, APIC ids %lx\n", ap_count, ap_ids);
    return 0;
}
