/* Freestanding helpers for the test guest: memory, strings, serial output, exit. */
#include <stdarg.h>

#include "guest.h"

#define COM1 0x3f8

void *memset(void *d, int c, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }
int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
const char *strstr_(const char *h, const char *n)
{
    size_t ln = strlen(n);
    for (; *h; h++)
        if (memcmp(h, n, ln) == 0)
            return h;
    return NULL;
}

static void putc_(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        cpu_relax();
    outb(COM1, (uint8_t)c);
}

void puts_(const char *s) { while (*s) putc_(*s++); }

void put_hex(uint64_t v)
{
    char b[19] = "0x";
    int i = 17;
    b[18] = 0;
    do { b[i--] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v && i >= 2);
    puts_("0x");
    puts_(b + i + 1);
}

void put_dec(uint64_t v)
{
    char b[21];
    int i = 20;
    b[20] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts_(b + i);
}

void printk(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') { putc_(*fmt); continue; }
        fmt++;
        bool l = false;
        if (*fmt == 'l') { l = true; fmt++; }
        switch (*fmt) {
        case 's': puts_(va_arg(ap, const char *)); break;
        case 'd': { int64_t v = l ? va_arg(ap, int64_t) : va_arg(ap, int); if (v < 0) { putc_('-'); v = -v; } put_dec((uint64_t)v); break; }
        case 'u': put_dec(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned)); break;
        case 'x': put_hex(l ? va_arg(ap, uint64_t) : va_arg(ap, unsigned)); break;
        case '%': putc_('%'); break;
        default: putc_('?'); break;
        }
    }
    va_end(ap);
}

void guest_exit(uint8_t code)
{
    outb(EXIT_PORT, code);
    for (;;)
        cpu_relax();   /* the monitor stops us; ring 3 cannot hlt */
}

bool cmdline_get(const char *key, char *val, size_t n)
{
    size_t kl = strlen(key);
    const char *p = g_cmdline;
    while (p && *p) {
        while (*p == ' ')
            p++;
        if (memcmp(p, key, kl) == 0 && p[kl] == '=') {
            p += kl + 1;
            size_t i = 0;
            while (*p && *p != ' ' && i + 1 < n)
                val[i++] = *p++;
            val[i] = 0;
            return true;
        }
        while (*p && *p != ' ')
            p++;
    }
    return false;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
    char v[32];
    if (!cmdline_get(key, v, sizeof(v)))
        return dflt;
    uint64_t x = 0;
    for (const char *p = v; *p >= '0' && *p <= '9'; p++)
        x = x * 10 + (uint64_t)(*p - '0');
    return x;
}
