/* Test doubles for main.c's functions (see stubs.c). */
#ifndef VMM_TEST_STUBS_H
#define VMM_TEST_STUBS_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

extern int stub_exit_code;
extern char stub_exit_reason[160];
extern int stub_irq_level[32];
extern int stub_irq_raises[32];
void stub_reset(void);

#endif
