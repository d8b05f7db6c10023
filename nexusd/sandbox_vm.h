/* SPDX-License-Identifier: MIT */
/*
 * Internals of the `vm` sandbox driver, shared by sandbox_vm.c (starting and
 * stopping nexus-vmm), sandbox_vm_ctl.c (its control socket: what the monitor
 * can do, hand-over of the region, JSON commands) and snapshot_vm.c
 * (per-function snapshots: key, take, restore bookkeeping, metrics).
 * Not an interface for the rest of nexusd: that is sandbox.h.
 */
#ifndef NEXUSD_SANDBOX_VM_H
#define NEXUSD_SANDBOX_VM_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "sandbox.h"

struct nx_sandbox {
	pid_t pid;
	int pidfd;
	int ctl;                   /* nexusd's end of the monitor's control socket, or -1 */
	bool reaped;
	int wstatus;
	uint64_t start_ns;
	char dir[PATH_MAX];        /* per-instance scratch: images when not shared, monitor stderr */
	char function[80];
	/* Snapshots (snapshot_vm.c). */
	char key[80];              /* "<function>-<hash>", "" = no snapshots for this instance */
	bool restored;             /* started from the snapshot */
	bool want_snapshot;        /* fresh boot that should take the snapshot after READY */
	bool ws_used;              /* restored with the key's working-set file (--ws) */
	uint64_t region_gen;       /* the region's generation when we handed it over */
	int region_fd;             /* dup of the region memfd (quiescence check), or -1 */
	pthread_t snap_thread;     /* taking the snapshot (fresh boot) or recording the working set (restore) */
	bool snap_running;
	volatile bool snap_cancel;
	void (*snap_done)(void *);
	void *snap_arg;
	int log_fd;                /* dup of the function's log (restore's monitor stderr goes there at the end) */
};

/* ------------------------------------------------ sandbox_vm_ctl.c */

/* What this nexus-vmm binary offers (from its --help text), looked up once. */
struct vmm_caps {
	bool control_fd;           /* --control-fd N */
	bool nexus_control;        /* --nexus control + {"cmd":"nexus-attach"} with SCM_RIGHTS */
	bool restore;              /* --restore DIR, pause/resume/snapshot */
};
void vmm_caps_get(const char *vmm, struct vmm_caps *out);

/* Send {"cmd":"nexus-attach"} with the three fds riding on its first byte
 * and wait for the reply.  0; -EPIPE when the monitor closed the socket
 * (it exited: reap it); -ETIMEDOUT; -EPROTO with the monitor's error in err. */
int vmm_nexus_attach(int ctl, const int fds[3], int timeout_ms, char *err, size_t errlen);
/* One command line (a JSON object, without the newline), one reply line into
 * reply (NUL-terminated).  0 when the reply says "ok": true; else as above. */
int vmm_command(int ctl, const char *cmd_json, int timeout_ms, char *reply, size_t cap);

/* ------------------------------------------------ snapshot_vm.c */

/* Per-function snapshot key for spec (empty when snapshots are off for it or
 * the monitor cannot restore), and the shared disk images that go with it. */
void vm_snap_key(const struct nx_sandbox_spec *spec, const char *vmm, const char *kernel, const char *image,
                 const struct vmm_caps *caps, char *key, size_t cap);
/* <state-dir>/snapshots/<key>[suffix] */
void vm_snap_path(const char *key, const char *suffix, char *out, size_t cap);
/* Does a complete snapshot exist for key?  On true, *gen gets the generation
 * of the region it was taken with. */
bool vm_snap_present(const char *key, uint64_t *gen);
/* Once per nexusd, before any snapshot work: remove what a crash left half-written. */
void vm_snap_cleanup_tmp(void);
/* Refuse the snapshot: log why (one line), delete it, count a fallback. */
void vm_snap_refuse(const char *key, const char *why);
/* Memory integrity policy (README-vm.md, "Memory integrity"): a snapshot this
 * nexusd wrote, or one whose memory it has had verified once, is trusted; the
 * first restore of any other (found on disk after a restart) asks nexus-vmm to
 * verify the memory file's checksum first. */
bool vm_snap_trusted(const char *key);
void vm_snap_trust(const char *key, bool on);
/* Claim the right to take key's snapshot (one instance at a time). */
bool vm_snap_claim(const char *key);
void vm_snap_unclaim(const char *key);
/* after_ready for the vm driver (starts the snapshot thread). */
int vm_snap_after_ready(struct nx_sandbox *sb, void (*done)(void *), void *arg);
/* Working set (REAP-style, README-vm.md "Working set"): on unless
 * NEXUS_VM_SNAPSHOT_WS=off.  vm_snap_ws_path: <snapshot dir>/ws, the file to
 * pass as --ws when it exists.  vm_snap_ws_record: a restored instance without
 * one records it (at most one per key at a time): a thread waits for the
 * first INVOKE_DONE on the region, then has the monitor ws-save it. */
bool vm_snap_ws_on(void);
void vm_snap_ws_path(const char *key, char *out, size_t cap);
void vm_snap_ws_record(struct nx_sandbox *sb, int region_fd);
/* Wait for the snapshot or working-set thread (destroy). */
void vm_snap_join(struct nx_sandbox *sb);
/* Counters. */
enum vm_snap_counter { VMS_RESTORES, VMS_FALLBACKS, VMS_TAKES, VMS_TAKE_FAILS, VMS_FRESH_BOOTS, VMS_MEM_VERIFIED,
                       VMS_WS_SAVES, VMS_WS_SAVE_FAILS, VMS_WS_RESTORES, VMS__N };
void vm_snap_count(enum vm_snap_counter c);
/* Prometheus lines for /metrics. */
void nx_vm_snapshot_metrics(FILE *f);
/* The function was deleted: remove its snapshots and their disk images (a VM
 * still running on them keeps its open files). */
void nx_vm_snapshot_forget(const char *function);

#endif
