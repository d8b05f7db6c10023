/* SPDX-License-Identifier: MIT */
/*
 * Baseline mode on the `vm` driver (sandbox_vm_net.c, docs/baseline.md "On the
 * vm driver"): a tap on the node namespace's bridge, the guest's address on the
 * kernel command line, the S3 relay in the guest's environment.
 */
#ifndef NEXUSD_SANDBOX_VM_NET_H
#define NEXUSD_SANDBOX_VM_NET_H

#include <stddef.h>
#include "sandbox.h"

#define VM_NET_MAX_ENV 64

/* What vm_start needs for one baseline instance. */
struct vm_net_info {
	int node_ns_fd;                  /* the monitor's child joins it (setns) before exec */
	char net_arg[64];                /* "nxt<slot>,mac=02:4e:58:00:HI:LO" for --net */
	char ip_arg[96];                 /* " ip=169.254.A.B::0.0.0.0:255.255.0.0::eth0:off" */
	const char *envp[VM_NET_MAX_ENV + 1];   /* spec->envp with the relay and listen address */
	char env_bufs[3][320];
};

/* Make the instance's network (owner: the driver's sandbox pointer, the key
 * for vm_net_stop): an address slot, a tap in the node namespace on the bridge,
 * the relay.  0 or -errno with err filled.  `info` stays valid until vm_net_stop. */
int  vm_net_start(const void *owner, const struct nx_sandbox_spec *spec, struct vm_net_info **info, char *err,
                  size_t errlen);
/* Delete the tap, free the slot (after the monitor is gone).  No-op for an owner without one. */
void vm_net_stop(const void *owner);

#endif
