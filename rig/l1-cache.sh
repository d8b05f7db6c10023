# Sourced by rig/run-l1: makes the L1 kernel, its modules and the base initramfs
# available under $NEXUS_CACHE/rig-l1/<package>_<version>/, downloading the Debian
# packages the first time.  Sets L1_VMLINUZ, L1_BASE_CPIO and L1_PACKAGE.
#
# Cache layout (all keyed by what went into them):
#   rig-l1/<kernel pkg>_<version>/vmlinuz, modules/*.ko, modules/load-order
#   rig-l1/<kernel pkg>_<version>/base-<hash>.cpio   hash = busybox version + l1-init + RECIPE + modules

# Modules L1 needs, dependencies are added automatically (modinfo -F depends).
# kvm-amd: the point of the rig; virtio_blk/virtio_pci: --disk; virtio_console: the
# stdout/stderr/status channels; tun/veth: tap and veth
# devices for the guests' networks inside test-made network namespaces; bridge: nexusd's
# node bridge for baseline-mode guests (veth or tap on nxbr0).
L1_MODULES="irqbypass kvm kvm-amd virtio_pci virtio_blk virtio_console tun veth bridge"
L1_RECIPE=3

l1_log() { echo "rig: $*" >&2; }

# Newest Debian 6.1 cloud kernel that apt knows of (the one the metapackage points at).
l1_pick_package() {
  if [ -n "${RIG_L1_PACKAGE:-}" ]; then echo "$RIG_L1_PACKAGE"; return; fi
  apt-cache depends linux-image-cloud-amd64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-cloud-amd64\)$/\1/p' | head -n 1
}

l1_pkg_version() { apt-cache show "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1; }

# apt-get download into DIR with a visible line before/after (it is silent when not a tty).
l1_download() {  # l1_download DIR PACKAGE
  local t0=$SECONDS size
  size=$(apt-cache show "$2" 2>/dev/null | sed -n 's/^Size: //p' | head -n 1)
  l1_log "downloading $2 ($(( ${size:-0} / 1048576 )) MiB, first run only) ..."
  (cd "$1" && apt-get download -q "$2" 2>&1 | grep -vE 'unsandboxed|^Get:|^Fetched' >&2)
  ls "$1"/"$2"_*.deb >/dev/null 2>&1 || { l1_log "apt-get download $2 failed (try: apt-get update)"; return 1; }
  l1_log "  downloaded in $(( SECONDS - t0 ))s"
}

# Modules in load order: dependencies first (depth-first over modinfo's depends field).
l1_module_order() {  # l1_module_order MODDIR NAME...
  local dir=$1; shift
  local -A seen=()
  local order=()
  visit() {
    local m=${1//-/_} f deps d
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    f=$(find "$dir" -name "$m.ko" -o -name "${m//_/-}.ko" | head -n 1)
    [ -n "$f" ] || { l1_log "module $1 not found in the L1 kernel package"; return 1; }
    deps=$(modinfo -F depends "$f")
    for d in ${deps//,/ }; do visit "$d" || return 1; done
    order+=("$(basename "$f" .ko)")
  }
  for n in "$@"; do visit "$n" || return 1; done
  printf '%s\n' "${order[@]}"
}

l1_prepare() {
  local cache=${NEXUS_CACHE:-/var/cache/nexus}/rig-l1 pkg ver dir tmp
  mkdir -p "$cache" || return 1
  pkg=$(l1_pick_package)
  if [ -z "$pkg" ]; then
    # No apt lists (offline, or before apt-get update): use the newest cached kernel.
    dir=$(ls -d "$cache"/linux-image-*/ 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || { l1_log "apt knows no linux-image-cloud-amd64 and nothing is cached: run apt-get update"; return 1; }
    dir=${dir%/}
  else
    ver=$(l1_pkg_version "$pkg")
    dir=$cache/${pkg}_${ver}
  fi
  L1_PACKAGE=$(basename "$dir")

  exec 8>"$cache/.lock"; flock 8
  # "done" holds the module list it was made for: a changed L1_MODULES unpacks again
  # (unless offline: then the cached modules are what there is).
  if [ ! -f "$dir/done" ] || { [ -n "$pkg" ] && [ "$(cat "$dir/done")" != "$L1_MODULES" ]; }; then
    command -v modinfo >/dev/null || { l1_log "modinfo not found (apt-get install kmod)"; return 1; }
    tmp=$(mktemp -d "$cache/.tmp.XXXXXX") || return 1
    l1_download "$tmp" "$pkg" || { rm -rf "$tmp"; return 1; }
    l1_log "unpacking $pkg ..."
    dpkg-deb -x "$tmp/${pkg}"_*.deb "$tmp/x" || { rm -rf "$tmp"; return 1; }
    mkdir -p "$tmp/out/modules"
    cp "$tmp"/x/boot/vmlinuz-* "$tmp/out/vmlinuz" || { rm -rf "$tmp"; return 1; }
    cp "$tmp"/x/boot/config-* "$tmp/out/config" 2>/dev/null
    l1_module_order "$tmp/x/lib/modules" $L1_MODULES >"$tmp/out/modules/load-order" || { rm -rf "$tmp"; return 1; }
    local m f
    while read -r m; do
      f=$(find "$tmp/x/lib/modules" -name "$m.ko*" | head -n 1)
      case "$f" in
        *.ko) cp "$f" "$tmp/out/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$tmp/out/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$tmp/out/modules/$m.ko" ;;
        *) l1_log "module $m: unexpected file '$f'"; rm -rf "$tmp"; return 1 ;;
      esac
    done <"$tmp/out/modules/load-order"
    rm -rf "$dir"; mv "$tmp/out" "$dir"; rm -rf "$tmp"
    echo "$L1_MODULES" >"$dir/done"
    l1_log "L1 kernel cached in $dir"
  fi
  L1_VMLINUZ=$dir/vmlinuz

  # Base initramfs: busybox-static + modules + /init.  Rebuilt when any input changes.
  local bbver key
  bbver=$(apt-cache show busybox-static 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
  [ -n "$bbver" ] || bbver=$(ls "$dir"/busybox-*.bin 2>/dev/null | sort -V | tail -n 1 | sed 's/.*busybox-\(.*\)\.bin/\1/')
  [ -n "$bbver" ] || { l1_log "cannot find a busybox-static version (run apt-get update)"; return 1; }
  key=$( { echo "$L1_RECIPE $bbver $(cat "$dir/done")"; cat "$here/l1-init"; } | sha256sum | cut -c1-12)
  L1_BASE_CPIO=$dir/base-$key.cpio
  if [ ! -f "$L1_BASE_CPIO" ]; then
    local bb=$dir/busybox-$bbver.bin
    if [ ! -x "$bb" ]; then
      tmp=$(mktemp -d "$cache/.tmp.XXXXXX") || return 1
      l1_download "$tmp" busybox-static || { rm -rf "$tmp"; return 1; }
      dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x" && cp "$tmp/x/bin/busybox" "$bb.tmp" && mv "$bb.tmp" "$bb"
      rm -rf "$tmp"
      [ -x "$bb" ] || return 1
    fi
    tmp=$(mktemp -d "$cache/.tmp.XXXXXX") || return 1
    local r=$tmp/root a
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib/modules,proc,sys,dev,tmp,run,rig,root,etc,mnt}
    cp "$bb" "$r/bin/busybox"
    for a in $("$bb" --list-full); do [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"; done
    cp "$dir"/modules/* "$r/lib/modules/"
    cp "$here/l1-init" "$r/init"; chmod 755 "$r/init"
    echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
    echo "root:x:0:" >"$r/etc/group"
    # The kernel opens /dev/console for init's stdio before devtmpfs is mounted.
    mknod -m 600 "$r/dev/console" c 5 1 2>/dev/null || true
    (cd "$r" && find . -mindepth 1 | cpio --quiet -o -H newc -R 0:0 >"$tmp/base.cpio") || { rm -rf "$tmp"; return 1; }
    mv "$tmp/base.cpio" "$L1_BASE_CPIO"; rm -rf "$tmp"
  fi
  flock -u 8
  return 0
}
