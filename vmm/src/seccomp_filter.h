/* The monitor's syscall allow-list, loaded (for all threads) after setup.  The
 * rules are in vmm/gen/seccomp_gen.c, compiled to BPF at build time. */
#ifndef VMM_SECCOMP_FILTER_H
#define VMM_SECCOMP_FILTER_H
#include <linux/filter.h>

#include "config.h"

/* Generated (build/vmm-gen/seccomp_bpf.c): default action TRAP, and LOG. */
extern const struct sock_filter vmm_seccomp_trap[], vmm_seccomp_log[];
extern const unsigned short vmm_seccomp_trap_len, vmm_seccomp_log_len;

/* Returns 0 or -errno. */
int seccomp_filter_install(enum seccomp_mode mode);

#endif
