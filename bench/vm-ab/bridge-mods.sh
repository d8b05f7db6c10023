# Sourced by bench/vm-ab/run.sh and bench/vm-density/run.sh (bash).
# bridge_mods WHO: L1's kernel may have the bridge as a module that an older rig does not
# load (baseline mode needs it: its microVMs' taps hang off a bridge).  Brings llc/stp/bridge.ko
# of L1's own kernel package (apt-get download, cached in $NEXUS_CACHE/vm-ab-mods) and sets the
# array `mods` to the rig/run-l1 arguments that put them at /rig/mods/ (empty if L1 has them).
bridge_mods() {
  local who=$1 cache=${NEXUS_CACHE:-/var/cache/nexus} kdir pkg md m
  mods=()
  kdir=$(ls -d "$cache"/rig-l1/linux-image-*/ 2>/dev/null | tail -n 1 || true)
  [ -n "$kdir" ] && [ ! -f "$kdir/modules/bridge.ko" ] || return 0
  pkg=$(basename "$kdir"); pkg=${pkg%%_*}
  md=$cache/vm-ab-mods/$pkg
  if [ ! -f "$md/bridge.ko" ]; then
    mkdir -p "$md/x"
    (cd "$md" && apt-get download -q "$pkg" >/dev/null 2>&1 && dpkg-deb -x "$pkg"_*.deb x &&
      for m in llc stp bridge; do cp "$(find x -name "$m.ko" | head -n 1)" .; done; rm -rf x "$pkg"_*.deb) ||
      echo "$who: could not get the bridge module of $pkg (baseline will not run)" >&2
  fi
  for m in llc stp bridge; do [ -f "$md/$m.ko" ] && mods+=(--file "$md/$m.ko:/rig/mods/$m.ko"); done
  return 0
}
