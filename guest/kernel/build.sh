#!/usr/bin/env bash
# Builds the Nexus guest kernel: Debian's linux-source-6.1 + tinyconfig + our fragment.
#
#   guest/kernel/build.sh OUTDIR        (normally via `make guest-kernel`)
#
# The result is cached in $NEXUS_CACHE/kernel-<hash>, the hash covering the fragment,
# the source package version and RECIPE below, so an unchanged fragment never rebuilds.
# OUTDIR/bzImage, OUTDIR/vmlinux and OUTDIR/kernel.config become symlinks into the cache.
#
# The whole script is one function called on the last line, so bash has read all of it
# before running anything: editing this file during a (long) build cannot derail it.
set -euo pipefail
main() {
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
cache=${NEXUS_CACHE:-/var/cache/nexus}
fragment=$here/nexus-guest.config
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
# Bump when the way the kernel is built changes (not for fragment edits: those are hashed).
RECIPE=1

say() { echo "guest-kernel: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ -f "$tarball" ] || die "$tarball not found: apt-get install linux-source-6.1"
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
[ -n "$srcver" ] || srcver="file-$(stat -c %s-%Y "$tarball")"
# The Nexus device driver (guest/kernel/nexus/, its ABI header) is built in: part of the key.
nexus_drv=$here/nexus
nexus_abi=$here/../../include/nexus/nexus_dev.h
key=$( { echo "recipe=$RECIPE"; echo "source=$srcver"; cat "$fragment"; cat "$nexus_drv"/* "$nexus_abi"; } | sha256sum | cut -c1-16)
dir=$cache/kernel-$key
mkdir -p "$cache" "$out"

link_outputs() {
  ln -sfn "$dir/bzImage" "$out/bzImage"
  ln -sfn "$dir/vmlinux" "$out/vmlinux"
  ln -sfn "$dir/kernel.config" "$out/kernel.config"
}

if [ -f "$dir/done" ]; then
  say "cached: $dir (source $srcver)"
  link_outputs; exit 0
fi

# One build at a time per cache entry (make -j from several shells, CI + a developer).
exec 9>"$cache/kernel-$key.lock"
flock 9
if [ -f "$dir/done" ]; then link_outputs; exit 0; fi

# 1. Unpacked source, shared by every fragment of the same source version.
src=$cache/linux-source-$srcver
if [ ! -f "$src/Makefile" ]; then
  say "unpacking $tarball (source $srcver, ~1 min) ..."
  tmp=$(mktemp -d "$cache/.src.XXXXXX")
  tar -C "$tmp" -xJf "$tarball"
  rm -rf "$src"; mv "$tmp"/linux-source-6.1 "$src"; rmdir "$tmp"
fi

# 1b. The Nexus device driver joins the shared source tree as drivers/nexus
#     (idempotent; only configs with CONFIG_NEXUS_GUEST_DEV=y build it).
mkdir -p "$src/drivers/nexus"
cp "$nexus_drv"/Kconfig "$nexus_drv"/Makefile "$nexus_drv"/*.c "$nexus_abi" "$src/drivers/nexus/"
grep -q 'drivers/nexus/Kconfig' "$src/drivers/Kconfig" || \
  sed -i '$ s|^endmenu$|source "drivers/nexus/Kconfig"\n\nendmenu|' "$src/drivers/Kconfig"
grep -q 'CONFIG_NEXUS_GUEST_DEV' "$src/drivers/Makefile" || \
  echo 'obj-$(CONFIG_NEXUS_GUEST_DEV) += nexus/' >>"$src/drivers/Makefile"

# 2. Configure out of tree: tinyconfig, merge the fragment, resolve dependencies.
rm -rf "$dir"; mkdir -p "$dir/obj"
start=$(date +%s)
say "configuring in $dir (tinyconfig + $(basename "$fragment"))"
log=$dir/build.log
make -s -C "$src" O="$dir/obj" tinyconfig >"$log" 2>&1 || { tail -20 "$log"; die "tinyconfig failed"; }
"$src"/scripts/kconfig/merge_config.sh -m -O "$dir/obj" "$dir/obj/.config" "$fragment" >>"$log" 2>&1 \
  || { tail -20 "$log"; die "merge_config failed"; }
make -s -C "$src" O="$dir/obj" olddefconfig >>"$log" 2>&1 || { tail -20 "$log"; die "olddefconfig failed"; }

# Every line of the fragment must have survived dependency resolution.
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) want=$line; sym=${line%%=*} ;;
    "# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; want="# $sym is not set" ;;
    *) continue ;;
  esac
  have=$(grep -E "^($sym=|# $sym is not set)" "$dir/obj/.config" || echo "# $sym is not set")
  if [ "$have" != "$want" ]; then say "fragment says '$want' but the config has '$have'"; bad=1; fi
done <"$fragment"
[ $bad -eq 0 ] || die "config fragment not satisfied (missing dependency or misspelt symbol)"

# 3. Build, with a progress line every 15 s (a full build is ~1100-1400 steps).
jobs=${JOBS:-$(nproc)}
say "building bzImage + vmlinux with -j$jobs (~10-12 min on 2 idle cores, much longer on a busy machine; log: $log)"
make -C "$src" O="$dir/obj" -j"$jobs" bzImage >>"$log" 2>&1 &
mk=$!
while kill -0 $mk 2>/dev/null; do
  sleep 15
  kill -0 $mk 2>/dev/null || break
  n=$(grep -cE '^\s+(CC|AS|LD|AR)\s' "$log" || true)
  say "  ... $((  $(date +%s) - start ))s, $n compile/link steps done"
done
wait $mk || { tail -30 "$log"; die "kernel build failed (log: $log)"; }

cp "$dir/obj/arch/x86/boot/bzImage" "$dir/bzImage"
cp "$dir/obj/vmlinux" "$dir/vmlinux"
cp "$dir/obj/.config" "$dir/kernel.config"
secs=$(( $(date +%s) - start ))
{ echo "source=$srcver"; echo "build_seconds=$secs"; echo "jobs=$jobs";
  echo "bzImage_bytes=$(stat -c %s "$dir/bzImage")"; echo "vmlinux_bytes=$(stat -c %s "$dir/vmlinux")"; } >"$dir/build-info"
# Drop the object tree: the outputs are all we need, and it is ~200 MB.
rm -rf "$dir/obj"
touch "$dir/done"
say "built in ${secs}s: bzImage $(stat -c %s "$dir/bzImage") bytes -> $dir"
link_outputs
}
main "$@"; exit
