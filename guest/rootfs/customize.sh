#!/bin/sh
# mmdebstrap --customize-hook: runs on the host after the packages are installed,
# with the new root as $1.  Makes the tree fit to be mounted read-only as / (the
# process sandbox) or turned into a read-only ext4 image (the microVM driver).
# Part of the recipe: editing this file changes the cache key.
set -eu
root=$1

# Mount points the sandboxes mount over (see nexusd/README-sandbox.md).
mkdir -p "$root/var/task" "$root/opt/nexus" "$root/tmp" "$root/proc" "$root/dev" "$root/sys"
chmod 1777 "$root/tmp"

# Shrink: documentation, manual pages, info, translations and locales are never
# read by a function.  Copyright files stay (license notices).
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" \
       "$root/usr/share/linda" "$root/usr/share/locale"
mkdir -p "$root/usr/share/man" "$root/usr/share/locale"

# Package manager caches and logs: the tree is immutable once built.
rm -rf "$root/var/cache/apt/"* "$root/var/lib/apt/lists/"* "$root/var/cache/debconf/"*-old \
       "$root/var/log/"*.log "$root/var/log/apt/"* "$root/var/cache/ldconfig/aux-cache"
mkdir -p "$root/var/lib/apt/lists/partial" "$root/var/cache/apt/archives/partial"

# Host-independent network files: mmdebstrap copies the build host's resolv.conf
# and hostname in.  Sandboxes in nexus mode have no network; baseline mode talks to
# local endpoints (an IP, or "localhost" via /etc/hosts).
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
echo nexus-sandbox > "$root/etc/hostname"
: > "$root/etc/resolv.conf"
rm -f "$root/var/log/btmp" "$root/var/log/wtmp" "$root/var/log/lastlog" "$root/var/log/faillog"

# Something to tell which recipe a tree came from, from inside a sandbox.
echo "nexus guest rootfs, recipe ${NEXUS_ROOTFS_KEY:-unknown}" > "$root/etc/nexus-rootfs"
