/* SPDX-License-Identifier: MIT */
/*
 * Baseline mode's invocation path (docs/baseline.md): nexusd forwards each
 * invocation over HTTP to the server the guest runtime runs on its veth
 * address, on one kept-alive TCP connection per instance created inside the
 * node network namespace, and hands the answer back through the same
 * callbacks the channel uses (nx_chan_ops.invoke_done / .violation), so the
 * instance manager treats both modes alike.  Loop thread only.
 */
#ifndef NEXUSD_BASELINE_FORWARD_H
#define NEXUSD_BASELINE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"

struct nx_loop;

/* Deliver invocation inv_id (event JSON + context JSON) to baseline instance
 * instance_id.  The result arrives later as ops->invoke_done(owner, inv_id,
 * NX_S_OK | NX_S_HANDLER_ERROR, payload, len), or ops->violation(owner, why)
 * when the guest answers something that is not a well-formed result.  If the
 * guest's server does not answer yet (still starting) the connection is
 * retried until the instance is stopped (the invocation timeout).
 * Returns 0, -EBUSY (one is in flight), -ENOENT (no such baseline sandbox),
 * -EPROTONOSUPPORT (its guest is not the Python runtime: a libnexus C function
 * serves no HTTP), -ENOMEM. */
int nxd_baseline_invoke(struct nx_loop *l, uint64_t instance_id, const struct nx_chan_ops *ops, void *owner,
                        uint64_t inv_id, const void *event, size_t event_len, const char *context_json);

/* The instance's sandbox is gone: drop its connection (called by the driver). */
void nxd_baseline_forget(uint64_t instance_id);

#endif
