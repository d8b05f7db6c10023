#!/usr/bin/env bash
# RIG_QEMU wrapper used by test-vm.sh: runs qemu-system-x86_64 with `no_timer_check` added to
# L1's kernel command line.  On this oversubscribed 2-core machine, L1 (TCG) often panics
# with "IO-APIC + timer doesn't work" because its timer-IRQ check times out; the option skips
# that check (as for any guest on a loaded host).  To be folded into rig/run-l1 by its owner.
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = -append ] && [ $# -gt 1 ]; then args+=(-append "$2 no_timer_check"); shift 2; continue; fi
  args+=("$1"); shift
done
exec qemu-system-x86_64 "${args[@]}"
