/* Setting the VM up, for a boot or a --restore (setup.c). */
#ifndef VMM_SETUP_H
#define VMM_SETUP_H
#include <stdbool.h>

struct vmm;
struct control;

/* Boot: 0, or -1 (setup error, exit 65; the reason is on stderr). */
int vmm_setup_boot(struct vmm *vm, struct control *ctl, int *serial_fd);
/* --restore: 0, -1 (setup error, 65) or -2 (snapshot refused, 72). */
int vmm_setup_restore(struct vmm *vm, struct control *ctl, int *serial_fd);
/* NEXUS_VMM_TIMING=1: "timing: NAME ms-since-start" on stderr. */
void vmm_phase(struct vmm *vm, const char *name);

bool vmm_serial_panic_seen(void);   /* the kernel's panic line went by on COM1 */
bool vmm_nexus_attached(void);      /* the Nexus device has its region (or there is none to wait for) */
void vmm_nexus_wake_guest(void);    /* one interrupt through the device's irqfd eventfd */

#endif
