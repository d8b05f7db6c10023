#!/bin/sh
# The S3 part of `make test-vm` (tests/vm/README.md): the example functions end to end in
# microVMs through nexusd and the local S3 server, in L1 of rig/run-l1 (busybox sh) or
# directly on a hardware-KVM host.  POSIX sh.
#
#   in-l1-s3.sh DIR ROOTFS [S3TOOLS]
# DIR holds nexus-vmm, vmlinux, nexusd, nexus, runtime/, s3cases/ (made on the host by
# `examples_vm.py plan`), s3copy/ and rig-s3rver.sh (scripts/s3/).  S3TOOLS: the nexus-s3tools disk (make-s3tools.sh; found by
# its label when not given) or a scripts/s3 directory (node then from PATH).
#
# Runs s3rver (signature-checking) on 127.0.0.1, nexusd with the `vm` driver pointing at it, and
# for every example: input put into S3 (`nexus s3 put`), `nexus deploy --sandbox vm`, one
# invocation, the output object read back (`nexus s3 get`).  It prints what came back as
#   S3INVOKE NAME EXIT BASE64(stdout)     S3OBJ BUCKET/KEY BASE64(body)
# and the host (examples_vm.py check) runs tests/integration/test_examples.py's own assertions on
# it.  The 1 MiB and 10 MiB copies (s3copy: get_object + put_object through the shim) are checked
# here and print "RESULT pass|fail|skip NAME detail".
set -u
D=$1 ROOT=$2 TOOLS=${3:-}
BUCKET=nexus-vmtest PORT=9081 API=9082
result() { echo "RESULT $1 $2 $3"; }
show() { echo "---- $1 ----"; tail -n "${2:-40}" "$1" | tr -d '\r' | sed 's/^/  | /'; echo "----"; }
b64() { base64 <"$1" | tr -d '\n'; }

# --- the S3 server --------------------------------------------------------------------------
rm -rf /tmp/s3data /tmp/nxs; mkdir -p /tmp/nxs/home /tmp/nxs/rootfs
t0=$(date +%s)
. "$D/rig-s3rver.sh"   # scripts/s3/rig-s3rver.sh
if [ ! -d "$D/s3cases" ] || ! s3rver_start "$TOOLS" /tmp/s3data 127.0.0.1 $PORT /tmp/s3rver.log; then
  result skip s3:all "${S3RVER_WHY:-no s3cases in L1}: the examples in microVMs were not run"
  exit 0
fi
s3pid=$S3RVER_PID
# The CLI's local-S3 defaults (credentials S3RVER/S3RVER, us-east-1) on our port.
export NEXUS_HOME=/tmp/nxs/home NEXUS_PORT=$API NEXUS_S3_PORT=$PORT
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
i=0; while [ $i -lt 120 ] && ! "$D/nexus" s3 mb $BUCKET >/dev/null 2>&1; do sleep 1; i=$((i + 1)); done
if ! "$D/nexus" s3 ls $BUCKET >/dev/null 2>&1; then
  result fail s3:server "s3rver did not answer in 120 s"; show /tmp/s3rver.log 20; kill $s3pid; exit 0
fi
echo "INFO s3rver up in L1 after $(( $(date +%s) - t0 ))s"

# --- nexusd, vm driver, S3 = that server ------------------------------------------------------
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 \
NEXUS_VMM=$D/nexus-vmm NEXUS_GUEST_KERNEL=$D/vmlinux NEXUS_GUEST_IMAGE=$ROOT \
  "$D/nexusd" --listen 127.0.0.1:$API --state-dir /tmp/nxs/state --runtime-dir "$D/runtime" \
  --rootfs /tmp/nxs/rootfs >/tmp/nexusd-s3.log 2>&1 &
nxd=$!
i=0; while [ $i -lt 60 ] && ! grep -qs 'ready on' /tmp/nexusd-s3.log; do sleep 1; i=$((i + 1)); done
grep -a 'sandbox driver vm' /tmp/nexusd-s3.log | sed 's/^/INFO /'

# deploy_invoke NAME DIR PAYLOAD-FILE: deploy in a microVM, invoke once; /tmp/s3inv.out|err.
deploy_invoke() {
  "$D/nexus" deploy "$2" --name "$1" --sandbox vm --buckets $BUCKET --timeout 300 --memory 256 >/tmp/s3dep.log 2>&1 ||
    { echo "INFO deploy $1 failed"; show /tmp/s3dep.log 10; return 1; }
  "$D/nexus" invoke "$1" --payload "@$3" >/tmp/s3inv.out 2>/tmp/s3inv.err
}

# --- the examples (cases file: NAME INPUT-KEY INPUT-FILE OUTPUT-KEY, "-" = none) -------------
while read -r name ikey ifile okey; do
  t0=$(date +%s)
  fn=$D/s3cases/fn/$name
  if [ "$ikey" != - ] && ! "$D/nexus" s3 put "$BUCKET/$ikey" "$D/s3cases/in/$name/$ifile" >/dev/null; then
    echo "S3INVOKE $name put-failed"; continue
  fi
  deploy_invoke "$name" "$fn" "$D/s3cases/ev/$name.json"; rc=$?
  echo "S3INVOKE $name $rc $(b64 /tmp/s3inv.out)"
  echo "INFO $name: invoke exit $rc after $(( $(date +%s) - t0 ))s (deploy + cold start in a microVM + run)"
  [ $rc -eq 0 ] || { show /tmp/s3inv.err 10; show "/tmp/nxs/state/logs/$name.log" 30; }
  if [ "$okey" != - ] && "$D/nexus" s3 get "$BUCKET/$okey" /tmp/s3obj >/dev/null 2>&1; then
    echo "S3OBJ $BUCKET/$okey $(b64 /tmp/s3obj)"
  fi
  "$D/nexus" delete "$name" >/dev/null 2>&1   # its microVM goes away: one at a time in L1's RAM
done <"$D/s3cases/cases"

# --- 1 MiB and 10 MiB through the shim's get_object and put_object ----------------------------
# One deployment: the 10 MiB copy runs on the microVM the 1 MiB one booted (one cold start less).
"$D/nexus" deploy "$D/s3copy" --name s3copy --sandbox vm --buckets $BUCKET --timeout 300 --memory 256 >/tmp/s3dep.log 2>&1 ||
  { echo "INFO deploy s3copy failed"; show /tmp/s3dep.log 10; }
for mb in 1 10; do
  t0=$(date +%s)
  head -c $((mb * 1048576)) /dev/urandom >/tmp/big.in
  want=$(sha256sum </tmp/big.in | cut -d' ' -f1)
  "$D/nexus" s3 put "$BUCKET/big/$mb.in" /tmp/big.in >/dev/null
  echo "{\"bucket\": \"$BUCKET\", \"key\": \"big/$mb.in\", \"output_key\": \"big/$mb.out\"}" >/tmp/big.json
  "$D/nexus" invoke s3copy --payload @/tmp/big.json >/tmp/s3inv.out 2>/tmp/s3inv.err; rc=$?
  got=$(sed -n 's/.*"sha256": *"\([0-9a-f]*\)".*/\1/p' /tmp/s3inv.out)
  size=$(sed -n 's/.*"bytes": *\([0-9]*\).*/\1/p' /tmp/s3inv.out)
  rm -f /tmp/big.out
  "$D/nexus" s3 get "$BUCKET/big/$mb.out" /tmp/big.out >/dev/null 2>&1
  back=$(sha256sum </tmp/big.out 2>/dev/null | cut -d' ' -f1)
  if [ $rc -eq 0 ] && [ "$got" = "$want" ] && [ "$back" = "$want" ] && [ "$size" = $((mb * 1048576)) ]; then
    result pass "s3:copy-${mb}MiB" "get_object+put_object of $size bytes in a microVM, SHA-256 $want matches the input and the copy in S3 ($(( $(date +%s) - t0 ))s)"
  else
    result fail "s3:copy-${mb}MiB" "invoke exit $rc; input $want, function read ${got:-?} ($size bytes), copy in S3 ${back:-missing}"
    show /tmp/s3inv.err 10; show /tmp/nxs/state/logs/s3copy.log 30
  fi
  rm -f /tmp/big.in /tmp/big.out
done
"$D/nexus" delete s3copy >/dev/null 2>&1
kill $nxd $s3pid 2>/dev/null; wait $nxd $s3pid 2>/dev/null
exit 0
