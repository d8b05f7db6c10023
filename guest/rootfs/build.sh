#!/usr/bin/env bash
# Builds the Nexus guest root filesystem with mmdebstrap (normally via `make rootfs`).
#
#   guest/rootfs/build.sh LINK        LINK (e.g. build/rootfs) becomes a symlink to the tree
#
# The tree is cached in $NEXUS_CACHE/rootfs-<key> (default /var/cache/nexus, outside the
# clone); <key> hashes recipe.conf and customize.sh, so an unchanged recipe is an instant
# cache hit and any edit builds a new tree next to the old one.  The build goes into a
# temporary directory that is renamed into place only on success, so an interrupted build
# never leaves a half tree behind under the final name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
link=${1:?usage: build.sh LINK}
cache=${NEXUS_CACHE:-/var/cache/nexus}

say() { echo "rootfs: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# shellcheck source=recipe.conf
. "$here/recipe.conf"
key=$(cat "$here/recipe.conf" "$here/customize.sh" | sha256sum | cut -c1-16)
dir=$cache/rootfs-$key
export NEXUS_ROOTFS_KEY=$key

link_tree() {
  mkdir -p "$(dirname "$link")"
  if [ -d "$link" ] && [ ! -L "$link" ]; then
    die "$link is a real directory, not the symlink this script maintains: move it away and re-run"
  fi
  ln -sfn "$dir" "$link"
  say "$link -> $dir"
}

# A finished tree always has the marker customize.sh writes last-but-one; the rename
# below is the real commit point, so the marker is only a sanity check.
if [ -f "$dir/etc/nexus-rootfs" ]; then
  say "cached: $dir (recipe $key)"
  link_tree; exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed: run scripts/install-deps.sh (or apt-get install mmdebstrap)"
[ "$(id -u)" -eq 0 ] || die "building the root filesystem needs root (mmdebstrap root mode, files owned by root): run 'sudo make rootfs'"
mkdir -p "$cache" || die "cannot create the cache directory $cache: set NEXUS_CACHE to a writable place"

# One build per recipe at a time (two shells, CI and a developer).
exec 9>"$cache/rootfs-$key.lock"
flock 9
if [ -f "$dir/etc/nexus-rootfs" ]; then link_tree; exit 0; fi

tmp=$(mktemp -d "$cache/.rootfs-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"   # mktemp makes it 0700; this directory becomes the sandbox's /

IFS='|' read -r -a sources <<<"$SOURCES"
IFS='|' read -r -a excludes <<<"$DPKG_EXCLUDES"
IFS='|' read -r -a includes <<<"$DPKG_INCLUDES"
args=(--variant="$VARIANT" --architectures="$ARCH" --include="${PACKAGES// /,}"
      --aptopt="APT::Install-Recommends \"$INSTALL_RECOMMENDS\"")
for p in "${excludes[@]}"; do args+=(--dpkgopt="path-exclude=$p"); done
for p in "${includes[@]}"; do args+=(--dpkgopt="path-include=$p"); done
args+=(--customize-hook="sh '$here/customize.sh' \"\$1\"")

say "building the guest root filesystem: Debian $SUITE $VARIANT + $PACKAGES"
say "into $dir (recipe $key); this downloads ~60 MB and takes 1-5 minutes (mmdebstrap shows its progress) ..."
start=$(date +%s)
# stdin from /dev/null: mmdebstrap would otherwise read extra sources from a non-tty stdin.
if ! mmdebstrap "${args[@]}" "$SUITE" "$tmp" "${sources[@]}" </dev/null; then
  die "mmdebstrap failed (see its output above).  Common causes: no access to deb.debian.org
       (check the network / apt proxy), a full disk under $cache (df -h $cache), or a package
       name in guest/rootfs/recipe.conf that does not exist in $SUITE.  Fix it and re-run 'make rootfs'."
fi
[ -x "$tmp/usr/bin/python3" ] || die "the new tree has no /usr/bin/python3: recipe.conf is broken"

# Commit: rename is atomic within $cache; a concurrent builder is excluded by the lock.
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
say "built in $(( $(date +%s) - start )) s, $(du -sh "$dir" | cut -f1)"
link_tree
