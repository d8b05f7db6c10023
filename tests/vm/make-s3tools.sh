#!/usr/bin/env bash
# The S3 tools disk for the microVM S3 cases (tests/vm/in-l1-s3.sh) and bench/vm:
# node (98 MB, too big for the rig's initramfs) with its shared libraries, and scripts/s3
# (the launcher + node_modules of @20minutes/s3rver).  An ext4 image labelled nexus-s3tools:
#   /bin/node  /lib/*.so*  /s3/s3rver.js  /s3/node_modules/...
# In L1: mount it, then  LD_LIBRARY_PATH=$M/lib $M/bin/node $M/s3/s3rver.js ...
#   tests/vm/make-s3tools.sh OUT.ext4
# Without node or scripts/s3/node_modules (make deps) it says so and makes nothing: the S3
# cases are then skipped, loudly, by tests/vm/test-vm.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$1
node=$(command -v node || true)
if [ -z "$node" ] || [ ! -d scripts/s3/node_modules/@20minutes/s3rver ]; then
  echo "make-s3tools: no node or no scripts/s3/node_modules (make deps): $out not made" >&2
  rm -f "$out"; exit 0
fi
tree=$(mktemp -d); trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/bin" "$tree/lib" "$tree/s3"
cp -L "$node" "$tree/bin/node"
ldd "$node" | grep -oE '/[^ ]+\.so[^ ]*' | while read -r lib; do cp -L "$lib" "$tree/lib/"; done
cp -a scripts/s3/s3rver.js scripts/s3/package.json scripts/s3/node_modules "$tree/s3/"
mb=$(( $(du -sm "$tree" | cut -f1) * 5 / 4 + 16 ))
rm -f "$out"
mkfs.ext4 -q -F -L nexus-s3tools -O ^has_journal -m 0 -d "$tree" "$out" "${mb}M"
echo "make-s3tools: $out (${mb} MB: node $("$node" --version), s3rver)"
