/* The monitor's syscall allow-list, loaded (for all threads) after setup. */
#ifndef VMM_SECCOMP_FILTER_H
#define VMM_SECCOMP_FILTER_H
#include "config.h"

/* Returns 0 or -errno. */
int seccomp_filter_install(enum seccomp_mode mode);

#endif
