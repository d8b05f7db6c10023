/* vCPU state for snapshots (vcpu_state.c). */
#ifndef VMM_VCPU_STATE_H
#define VMM_VCPU_STATE_H
#include <stddef.h>

struct vmm;
struct vcpu;
struct snap_out;
struct snap_in;

/* At setup (before seccomp): which MSRs to save, the XSAVE area size. */
int vcpu_state_init(struct vmm *vm);
/* The vCPU must be parked.  0 or -errno. */
int vcpu_save_state(struct vcpu *v, struct snap_out *o);
/* Before the vCPU first runs.  0, or -1 with a one-line reason in err. */
int vcpu_restore_state(struct vcpu *v, const struct snap_in *in, char *err, size_t n);

#endif
