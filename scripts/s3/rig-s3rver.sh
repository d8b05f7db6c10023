# Sourced (POSIX sh, busybox too): start the local S3 server where there is no `nexus up`,
# e.g. inside L1 of rig/run-l1 (tests/vm/in-l1-s3.sh, bench/vm/in-l1-s3get.sh).
#
#   s3rver_start TOOLS DATADIR ADDRESS PORT LOG
# TOOLS: the nexus-s3tools disk (tests/vm/make-s3tools.sh: node, its libraries, s3rver; found by
# its label when empty, mounted read-only at /tmp/s3tools) or a scripts/s3 directory (node then
# from PATH).  Starts s3rver in the background exactly as `nexus up` does (same flags, credentials
# S3RVER/S3RVER, us-east-1) and sets S3RVER_PID.  Returns 1, saying why in S3RVER_WHY, when
# there is no node or no s3rver.  It does not wait: the caller checks with its own client.
s3rver_start() {
  _t=$1
  [ -n "$_t" ] || _t=$(findfs LABEL=nexus-s3tools 2>/dev/null || true)
  if [ -b "$_t" ]; then
    mkdir -p /tmp/s3tools
    grep -q ' /tmp/s3tools ' /proc/mounts ||
      mount -o ro "$_t" /tmp/s3tools || { S3RVER_WHY="cannot mount $_t"; return 1; }
    _t=/tmp/s3tools
  fi
  _node=$_t/bin/node _js=$_t/s3/s3rver.js
  [ -x "$_node" ] || _node=$(command -v node || echo /nonexistent)
  [ -f "$_js" ] || _js=$_t/s3rver.js
  if [ -z "$_t" ] || [ ! -x "$_node" ] || [ ! -f "$_js" ]; then
    S3RVER_WHY="no node + s3rver (the nexus-s3tools disk of tests/vm/make-s3tools.sh, or scripts/s3 with node on PATH)"
    return 1
  fi
  mkdir -p "$2"
  LD_LIBRARY_PATH=$_t/lib "$_node" --openssl-legacy-provider "$_js" --directory "$2" \
    --address "$3" --port "$4" --silent >"$5" 2>&1 &
  S3RVER_PID=$!
}
