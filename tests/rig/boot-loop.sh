#!/usr/bin/env bash
# tests/rig/boot-loop.sh — boot the real guest N times back to back in one nested rig and count how
# each boot ended: the tool for rare failures (a guest crash under emulated SVM, an L1 stall) that
# one `make test-rig` is too short to show.  Not part of `make test`.
#
#   tests/rig/boot-loop.sh [N [VCPUS]]        (defaults 40 and 2; BUILD=build)
#
# Each boot: nexus-vmm, VCPUS vCPUs, 256 MiB, the real kernel and image, `quiet`, the guest runs
# python3 printing os.cpu_count() and powers off.  Prints "BOOT i status S" per boot, the console
# tail of every boot that did not exit 0, and "BOOTS n=N bad=B" at the end; exits 1 if any was bad.
# An L1 stall ends the rig with rig/run-l1's exit 126 and its stall dump (rig/README.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-40} vcpus=${2:-2} build=${BUILD:-build}
for f in "$build/bin/nexus-vmm" "$build/guest/bzImage" "$build/guest/rootfs.ext4"; do
  [ -e "$f" ] || { echo "boot-loop: $f missing (make nexus-vmm guest-kernel guest-image)" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/boot-loop.XXXXXX")
trap 'rm -rf "$work"' EXIT
cmd=$(/usr/bin/python3 -c 'import urllib.parse as u; print(" ".join(u.quote(a, safe="/") for a in
      ["/usr/bin/python3", "-c", "import os; print(\"cpus=%d\" % os.cpu_count())"]))')
cat >"$work/in-l1.sh" <<EOF
#!/bin/sh
cat /dev/vda >/tmp/rootfs.ext4
i=0 bad=0
while [ \$i -lt $n ]; do
  i=\$((i + 1))
  timeout 90 /rig/nexus-vmm --kernel /rig/bzImage --mem 256 --vcpus $vcpus --disk /tmp/rootfs.ext4,ro \\
    --serial stdout --cmdline 'console=ttyS0 quiet root=/dev/vda ro rootfstype=ext4 init=/sbin/nexus-init panic=-1 reboot=k nexus.cmd="$cmd"' \\
    </dev/null >/tmp/boot.log 2>&1
  rc=\$?
  echo "BOOT \$i status \$rc"
  if [ \$rc -ne 0 ]; then
    bad=\$((bad + 1)); echo "---- boot \$i console"; tr -d '\r' </tmp/boot.log | tail -n 40; echo "----"
  fi
done
echo "BOOTS n=$n bad=\$bad"
[ \$bad -eq 0 ]
EOF
rig/run-l1 --timeout $((120 + n * 60)) --mem 2048 --file "$work/in-l1.sh" --file "$build/guest/bzImage" \
  --file "$build/bin/nexus-vmm" --disk "$build/guest/rootfs.ext4,ro" -- sh /rig/in-l1.sh
