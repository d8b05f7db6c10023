/* Tiny test guest for nexus-vmm, booted through the monitor's Linux boot path.
 * Ring 0 sets up its own GDT/TSS/IDT and page tables (user-accessible identity
 * map of 0-4 GiB) and drops to ring 3 with IOPL=3, where the test named by
 * `test=` on the command line runs (ring-0 code is very slow under PVM).
 * Result: a line on the serial console and a code on the exit port. */
#include <asm/bootparam.h>

#include "guest.h"

const char *g_cmdline;
struct boot_params *g_bp;

uint64_t gdt[7] __attribute__((aligned(16)));
static uint8_t tss[104] __attribute__((aligned(16)));
static uint64_t idt[64] __attribute__((aligned(16)));
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[5][512] __attribute__((aligned(4096)));
static uint8_t exc_stack[8192] __attribute__((aligned(16)));
static uint8_t user_stack[65536] __attribute__((aligned(16)));
static char test_name[32];

extern void enter_user(uint64_t rip, uint64_t rsp);
extern char exc_stubs[];

struct __attribute__((packed)) dtr { uint16_t limit; uint64_t base; };

static void setup_cpu(void)
{
    gdt[0] = 0;
    gdt[1] = 0x00af9a000000ffffULL;   /* 0x08 kernel code 64 */
    gdt[2] = 0x00cf92000000ffffULL;   /* 0x10 kernel data */
    gdt[3] = 0x00cff2000000ffffULL;   /* 0x18 user data (DPL 3) */
    gdt[4] = 0x00affa000000ffffULL;   /* 0x20 user code 64 (DPL 3) */
    uint64_t t = (uint64_t)tss;
    uint64_t rsp0 = (uint64_t)(exc_stack + sizeof(exc_stack));
    memcpy(tss + 4, &rsp0, 8);
    uint16_t iopb = sizeof(tss);
    memcpy(tss + 102, &iopb, 2);
    gdt[5] = (sizeof(tss) - 1) | ((t & 0xffffff) << 16) | (0x89ULL << 40) | (((t >> 24) & 0xff) << 56);
    gdt[6] = t >> 32;
    for (int v = 0; v < 32; v++) {
        uint64_t h = (uint64_t)exc_stubs + 16 * (uint64_t)v;
        idt[2 * v] = (h & 0xffff) | (0x08ULL << 16) | (0x8eULL << 40) | (((h >> 16) & 0xffff) << 48);
        idt[2 * v + 1] = h >> 32;
    }
    struct dtr g = { sizeof(gdt) - 1, (uint64_t)gdt }, i = { sizeof(idt) - 1, (uint64_t)idt };
    __asm__ volatile("lgdt %0" :: "m"(g));
    __asm__ volatile("lidt %0" :: "m"(i));
    __asm__ volatile("pushq $0x08; lea 1f(%%rip), %%rax; pushq %%rax; lretq; 1:"
                     "mov $0x10, %%eax; mov %%ax, %%ds; mov %%ax, %%es; mov %%ax, %%ss" ::: "rax", "memory");
    __asm__ volatile("ltr %w0" :: "r"(0x28));

    /* Identity map 0-5 GiB, 2 MiB pages, user-accessible (P|RW|US|PS); 4-5 GiB
     * is where the Nexus device's region goes. */
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 512; j++)
            pd[i][j] = (((uint64_t)i << 30) + ((uint64_t)j << 21)) | 0x87;
        pdpt[i] = (uint64_t)pd[i] | 0x7;
    }
    pml4[0] = (uint64_t)pdpt | 0x7;
    __asm__ volatile("mov %0, %%cr3" :: "r"(pml4) : "memory");
}

static int test_serial(void)
{
    puts_("serial: line one\n");
    printk("serial: dec %u hex %x\n", 12345u, 0xbeefu);
    for (int i = 0; i < 3; i++)
        printk("serial: ring 3 line %d\n", i);
    return 0;
}

static void user_main(void)
{
    int r = 1;
    if (!memcmp(test_name, "bootparams", 11))
        r = test_bootparams();
    else if (!memcmp(test_name, "serial", 7))
        r = test_serial();
    else if (!memcmp(test_name, "exit", 5))
        guest_exit((uint8_t)cmdline_u64("code", 0));
    else if (!memcmp(test_name, "blk", 4))
        r = test_blk();
    else if (!memcmp(test_name, "blkhostile", 11))
        r = test_blk_hostile();
    else if (!memcmp(test_name, "net", 4))
        r = test_net();
    else if (!memcmp(test_name, "count", 6))
        r = test_count();
    else if (!memcmp(test_name, "nexus", 6))
        r = test_nexus();
    else if (!memcmp(test_name, "nexuscount", 11))
        r = test_nexus_count();
    else if (!memcmp(test_name, "smp", 4))
        r = test_smp();
    else if (!memcmp(test_name, "reset", 6))
        outb(0x64, 0xfe);
    else if (!memcmp(test_name, "pvpanic", 8))
        outb(0x505, 1);
    else if (!memcmp(test_name, "panicline", 10)) {
        puts_("Kernel panic - not syncing: test guest says so\n");
        outb(0x64, 0xfe);
    } else if (!memcmp(test_name, "exception", 10))
        __asm__ volatile("ud2");   /* -> #UD (6) in ring 0 -> exit 38 */
    else
        printk("unknown test '%s'\n", test_name);
    if (r == 0)
        printk("PASS %s\n", test_name);
    guest_exit((uint8_t)r);
}

void guest_main0(struct boot_params *bp)
{
    g_bp = bp;
    g_cmdline = (const char *)(uint64_t)bp->hdr.cmd_line_ptr;
    if (!cmdline_get("test", test_name, sizeof(test_name)))
        memcpy(test_name, "none", 5);
    puts_("testguest: booted, test=");
    puts_(test_name);
    puts_("\n");
    if (!memcmp(test_name, "triplefault", 12)) {
        /* No IDT at all: the #UD cannot be delivered -> #DF -> shutdown. */
        struct dtr z = { 0, 0 };
        __asm__ volatile("lidt %0; ud2" :: "m"(z));
    }
    if (!memcmp(test_name, "hang", 5)) {
        puts_("testguest: halting with interrupts off\n");
        for (;;)
            __asm__ volatile("cli; hlt");
    }
    setup_cpu();
    if (!memcmp(test_name, "smp", 4))
        smp_prepare();   /* copies the AP trampoline below 1 MiB (needs ring 0 CR3) */
    enter_user((uint64_t)user_main, (uint64_t)(user_stack + sizeof(user_stack) - 8));
}
