#!/usr/bin/env bash
# Installs what the build and the tests need, only where it is missing.
# Debian packages come from every part's apt-packages.txt (one name per line, # comments);
# the local S3 server comes from npm, pinned by scripts/s3/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(cat apt-packages.txt */apt-packages.txt */*/apt-packages.txt 2>/dev/null \
                    | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "deps: need root to apt-get install; run: sudo $0" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || { echo "deps: apt-get update failed: check the Debian mirror in /etc/apt/sources.list" >&2; exit 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: all ${#pkgs[@]} Debian packages present"
fi
# Node.js for the local S3 server: any node >= 18 with npm will do (some machines ship
# NodeSource's nodejs, whose bundled npm conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "deps: installing Node.js and npm from Debian (for the local S3 server)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends nodejs npm
fi
if [ -f scripts/s3/package-lock.json ] && [ ! -d scripts/s3/node_modules ]; then
  echo "deps: installing the local S3 server from npm (pinned in scripts/s3/package-lock.json)"
  (cd scripts/s3 && npm ci --no-audit --no-fund --loglevel=error)
fi
