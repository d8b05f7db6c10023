/* Error messages for the caller's buffer (setup paths report one line each). */
#ifndef VMM_ERRMSG_H
#define VMM_ERRMSG_H

#include <stddef.h>

/* Formats into err (n bytes) and returns -1, so a check reads
 * `return vmm_errf(err, n, "...", ...);`. */
int vmm_errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
