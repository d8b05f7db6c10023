/* The few functions the monitor's devices call from main.c, for the unit tests:
 * they record what happened instead of touching KVM. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stubs.h"
#include "vmm.h"

int stub_exit_code = -1;
char stub_exit_reason[160];
int stub_irq_level[32];
int stub_irq_raises[32];

void vmm_request_exit(struct vmm *vm, int code, const char *fmt, ...)
{
    (void)vm;
    if (stub_exit_code >= 0)
        return;
    stub_exit_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(stub_exit_reason, sizeof(stub_exit_reason), fmt, ap);
    va_end(ap);
}

bool vmm_is_exiting(struct vmm *vm)
{
    (void)vm;
    return stub_exit_code >= 0;
}

void vmm_irq_line(struct vmm *vm, unsigned gsi, int level)
{
    (void)vm;
    if (gsi < 32) {
        if (level && !stub_irq_level[gsi])
            stub_irq_raises[gsi]++;
        stub_irq_level[gsi] = level;
    }
}

void vmm_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double vmm_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

void stub_reset(void)
{
    stub_exit_code = -1;
    stub_exit_reason[0] = 0;
    memset(stub_irq_level, 0, sizeof(stub_irq_level));
    memset(stub_irq_raises, 0, sizeof(stub_irq_raises));
}

int vmm_nexus_attach(struct vmm *vm, int fds[3], char *err, size_t n)
{
    (void)vm; (void)fds;
    snprintf(err, n, "nexus-attach: not in the unit tests");
    return -1;
}
