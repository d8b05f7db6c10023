/* Tiny test guest: freestanding helpers. */
#ifndef GUEST_H
#define GUEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_PORT 0x501

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause"); }

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
const char *strstr_(const char *h, const char *n);

void puts_(const char *s);
void put_hex(uint64_t v);
void put_dec(uint64_t v);
void printk(const char *fmt, ...);   /* %s %d %u %x %lx %lu only */
__attribute__((noreturn)) void guest_exit(uint8_t code);
/* Report a failed check and exit with 1. */
#define CHECK(cond, ...) do { if (!(cond)) { printk("FAIL %s:%d: ", __FILE__, __LINE__); printk(__VA_ARGS__); puts_("\n"); guest_exit(1); } } while (0)

/* cmdline "key=value" lookup: copies the value (up to n-1 bytes); false if absent. */
bool cmdline_get(const char *key, char *val, size_t n);
uint64_t cmdline_u64(const char *key, uint64_t dflt);
extern const char *g_cmdline;
extern struct boot_params *g_bp;

int test_bootparams(void);
int test_blk(void);
int test_blk_hostile(void);
int test_smp(void);
int test_net(void);
int test_count(void);
int test_nexus(void);
int test_nexus_count(void);
void smp_prepare(void);

#endif
