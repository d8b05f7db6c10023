#!/usr/bin/env bash
# Makes the guest's read-only root filesystem image: the rootfs directory (guest/rootfs,
# `make rootfs`) as ext4, with nexus-init installed at /sbin/nexus-init.
#
#   guest/image/build.sh ROOTFS_DIR NEXUS_INIT OUT_IMAGE     (normally `make guest-image`)
#
# No root needed (mkfs.ext4 -d copies the tree with its owners and modes; debugfs adds the
# init without touching ROOTFS_DIR, which the process driver shares).  Cached in
# $NEXUS_CACHE/guest-image-<hash>/rootfs.ext4, the hash covering a listing of the tree
# (path, type, mode, owner, size, mtime, link target), the init binary and RECIPE.
set -euo pipefail
rootfs=${1:?usage: build.sh ROOTFS_DIR NEXUS_INIT OUT_IMAGE}
init=${2:?}
out=${3:?}
cache=${NEXUS_CACHE:-/var/cache/nexus}
RECIPE=1
say() { echo "guest-image: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ -d "$rootfs/" ] || die "$rootfs is not a directory (run 'make rootfs', or set GUEST_ROOTFS=DIR)"
[ -x "$rootfs/usr/bin/python3" ] || say "warning: $rootfs has no /usr/bin/python3"
[ -f "$init" ] || die "$init not found (make guest-init)"
for d in proc sys dev tmp; do [ -d "$rootfs/$d" ] || die "$rootfs/$d missing: nexus-init mounts there"; done
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || die "mkfs.ext4/debugfs missing (apt-get install e2fsprogs)"

real=$(cd "$rootfs/" && pwd -P)
key=$( { echo "recipe=$RECIPE"; sha256sum <"$init";
         (cd "$real" && find . -printf '%P %y %m %U:%G %s %T@ %l\n' | LC_ALL=C sort) | sha256sum; } \
       | sha256sum | cut -c1-16)
dir=$cache/guest-image-$key
img=$dir/rootfs.ext4
mkdir -p "$(dirname "$out")"
if [ ! -f "$dir/done" ]; then
  mkdir -p "$cache"
  exec 9>"$cache/guest-image-$key.lock"; flock 9
fi
if [ ! -f "$dir/done" ]; then
  t0=$(date +%s.%N)
  rm -rf "$dir"; mkdir -p "$dir"
  # Size: the tree's disk usage + 15% + 16 MiB for ext4's own metadata; no journal
  # (the image is mounted read-only), no reserved blocks.
  kib=$(du -sk --apparent-size "$real" | cut -f1)
  files=$(find "$real" | wc -l)
  size_mib=$(( (kib * 115 / 100) / 1024 + 16 + files * 4 / 1024 ))
  say "making ${size_mib} MiB ext4 image of $real ($((kib / 1024)) MiB, $files files) ..."
  mkfs.ext4 -q -F -L nexus-root -b 4096 -m 0 -O ^has_journal,^resize_inode -N $((files + 4096)) \
    -E root_owner=0:0 -d "$real" "$img.tmp" "${size_mib}M" >/dev/null || die "mkfs.ext4 failed"
  # /sbin is usr/sbin on a merged-/usr tree: write the init at its real place.
  sbin=/sbin; [ -L "$real/sbin" ] && sbin=/usr/sbin
  debugfs -w -f - "$img.tmp" >"$dir/debugfs.log" 2>&1 <<DBG || die "debugfs failed (see $dir/debugfs.log)"
rm $sbin/nexus-init
write $init $sbin/nexus-init
sif $sbin/nexus-init mode 0100755
sif $sbin/nexus-init uid 0
sif $sbin/nexus-init gid 0
DBG
  debugfs -R "stat $sbin/nexus-init" "$img.tmp" 2>/dev/null | grep -q 'Mode:  0755' \
    || die "nexus-init did not land in the image (see $dir/debugfs.log)"
  e2fsck -fn "$img.tmp" >"$dir/fsck.log" 2>&1 || die "e2fsck found problems (see $dir/fsck.log)"
  chmod 0444 "$img.tmp"; mv "$img.tmp" "$img"
  printf 'rootfs=%s\ninit=%s\nsize_mib=%s\nseconds=%.1f\n' "$real" "$init" "$size_mib" \
    "$(echo "$(date +%s.%N) - $t0" | bc)" >"$dir/info"
  touch "$dir/done"
  say "built $img in $(sed -n 's/seconds=//p' "$dir/info") s"
else
  say "cached: $img"
fi
ln -sfn "$img" "$out"
