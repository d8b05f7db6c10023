#!/usr/bin/env bash
# make test-rig: the real minimal guest (guest/kernel, guest/init, guest/image) under KVM.
#
#   tests/rig/test-rig.sh BUILD_DIR
#
# 1. host, no KVM: nexus-init's command-line parsing and status values (nexus-init --test).
# 2. tier 2, nested rig: when rig/detect-kvm says pvm or none, ONE rig/run-l1 boot runs
#    tests/rig/guest-checks.sh in L1 against build/bin/nexus-vmm and QEMU -M microvm.
# 3. tier 3, hardware KVM: when rig/detect-kvm says hardware, the same checks run here.
# Writes $NEXUS_TEST_RESULTS/test-rig.counts; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/counts.sh
build=${1:-build}
results=${NEXUS_TEST_RESULTS:-$PWD/$build/test-results}
mkdir -p "$results"
passed=0 failed=0 skipped=0 skips=() retries=()
pass() { passed=$((passed + 1)); echo "  PASS $1${2:+ — $2}"; }
fail() { failed=$((failed + 1)); echo "  FAIL $1${2:+ — $2}"; }
skip() { skipped=$((skipped + 1)); skips+=("$1: $2"); echo "  SKIP $1 — $2"; }
finish() {
  write_counts "$results/test-rig.counts"
  echo "test-rig: passed=$passed failed=$failed skipped=$skipped"
  [ "$failed" -eq 0 ]; exit
}

init=$build/guest/nexus-init kernel=$build/guest/bzImage image=$build/guest/rootfs.ext4
vmm=$build/bin/nexus-vmm qemu=$(command -v qemu-system-x86_64 || true)
httpget=$build/tests/rig/http-get

# --- 1. nexus-init on the host (fast, no VM) -------------------------------------------
echo "test-rig: [host] nexus-init command line and exit status values"
init_case() {  # init_case NAME WANT CMDLINE [ARGS...]
  local name=$1 want=$2; shift 2
  "$init" --test "$@" >/dev/null 2>&1; local got=$?
  if [ $got -eq "$want" ]; then pass "init:$name" "status $got"; else fail "init:$name" "status $got, expected $want"; fi
}
if [ -x "$init" ]; then
  init_case dashdash-argv 0 'console=ttyS0' /bin/true
  init_case exit-status 7 'nexus.cmd="/bin/sh -c exit%207"'
  init_case status-over-55 56 'nexus.cmd="/bin/sh -c exit%20200"'
  init_case killed-by-signal 57 'nexus.cmd="/bin/sh -c kill%20-SEGV%20$$"'
  init_case missing-command 58 'nexus.cmd=/nonexistent/cmd'
  init_case no-command 59 'console=ttyS0'
  init_case unknown-option 60 'nexus.bogus=1' /bin/true
  init_case bad-escape 60 'nexus.cmd=/bin/true%zz'
  init_case cmd-beats-argv 3 'nexus.cmd="/bin/sh -c exit%203"' /bin/true
  init_case after-dashes-ignored 0 'a -- nexus.cmd=/bin/false' /bin/true
  out=$("$init" --test 'nexus.quiet=1 nexus.cwd=/tmp nexus.env=NX%3Da%20b nexus.cmd="/bin/sh -c echo%20$NX@$PWD"' 2>&1)
  if [ "$out" = "a b@/tmp" ]; then pass "init:env-cwd-decoding" "got '$out'"; else fail "init:env-cwd-decoding" "got '$out'"; fi
else
  fail "init:built" "$init missing (make guest-init)"
fi

# --- which tier -------------------------------------------------------------------------
tier=$(rig/detect-kvm)
why=$(rig/detect-kvm -v 2>&1 >/dev/null | sed 's/^detect-kvm: //')
echo "test-rig: rig/detect-kvm says '$tier' ($why)"
if [ "$tier" = hardware ]; then
  echo "test-rig: TIER 3 runs (hardware KVM here); tier 2 (nested rig) is not needed"
  skip "tier-2-rig" "not run: this machine has hardware KVM, so the guest checks ran directly (tier 3)"
else
  echo "test-rig: TIER 2 runs (nested rig: L1 = QEMU/TCG with emulated SVM)"
  skip "tier-3-hardware-kvm" "not run: rig/detect-kvm says '$tier' ($why); needs /dev/kvm with real VMX/SVM"
fi

for f in "$kernel" "$image" "$httpget"; do
  [ -e "$f" ] || { fail "guest-artifacts" "$f missing (make guest-kernel guest-image)"; finish; }
done

vmms=()
if [ -x "$vmm" ]; then vmms+=(nexus)
else
  echo "test-rig: !!! $vmm does not exist: the nexus-vmm guest checks are SKIPPED !!!"
  for c in boot-to-init rootfs-virtio-blk python-marker poweroff-exit-0 exit-status-42 missing-command-58 smp-2-vcpus virtio-net-http; do
    skip "nexus:$c" "$vmm not built (vmm/ not ready)"
  done
fi
if [ -n "$qemu" ]; then vmms+=(qemu)
else skip "qemu-microvm" "qemu-system-x86_64 not installed: kernel/image not checked under QEMU microvm"; fi
[ ${#vmms[@]} -gt 0 ] || finish

# The guest commands, percent-encoded word by word for nexus.cmd (guest/init/README.md).
work=$(mktemp -d "${TMPDIR:-/tmp}/test-rig.XXXXXX")
trap 'rm -rf "$work"' EXIT
enc() { /usr/bin/python3 -c 'import sys, urllib.parse as u; print(" ".join(u.quote(a, safe="/") for a in sys.argv[1:]))' "$@"; }
http_server='import http.server as h
class H(h.BaseHTTPRequestHandler):
    def do_GET(s):
        b = b"nexus-rig-http-ok"
        s.send_response(200); s.send_header("Content-Length", str(len(b))); s.end_headers(); s.wfile.write(b)
srv = h.HTTPServer(("", 8080), H)
print("http server ready", flush=True)
srv.handle_request()'
{
  echo "CMD_MARKER='$(enc /usr/bin/python3 -c 'import sys; print("nexus-rig-marker"); sys.stdout.write(open("/proc/mounts").read())')'"
  echo "CMD_EXIT42='$(enc /bin/sh -c 'exit 42')'"
  echo "CMD_CPUS='$(enc /usr/bin/python3 -c 'import os; print("cpus=%d" % os.cpu_count())')'"
  echo "CMD_HTTP='$(enc /usr/bin/python3 -c "$http_server")'"
} >"$work/checks.env"
cp tests/rig/guest-checks.sh "$work/"

log=$work/checks.log
start=$(date +%s)
if [ "$tier" = hardware ]; then
  GC_DIR=$work GC_KERNEL=$kernel GC_DISK=$image GC_VMMS="${vmms[*]}" GC_NEXUS_VMM=$vmm GC_QEMU=$qemu \
    GC_IP=ip GC_HTTP_GET=$httpget GC_VMM_TIER1=$build/bin/vmm-tier1 sh "$work/guest-checks.sh" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
else
  files=(--file "$work/guest-checks.sh" --file "$work/checks.env" --file "$kernel"
         --file "$(command -v ip)":/rig/bin/ip --file "$httpget")
  [[ " ${vmms[*]} " == *" nexus "* ]] && files+=(--file "$vmm" --file "$build/bin/vmm-tier1")
  if [[ " ${vmms[*]} " == *" qemu "* ]]; then
    files+=(--file "$qemu")
    for fw in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin; do
      [ -e /usr/share/qemu/$fw ] && files+=(--file /usr/share/qemu/$fw:/usr/share/qemu/)
    done
  fi
  # L1 sometimes stalls under TCG (issue 3): run-l1 then exits 126 early, and the whole boot is
  # tried once more in a fresh rig; only the second attempt's results count.
  for attempt in 1 2; do
    rig/run-l1 --timeout "${TEST_RIG_TIMEOUT:-900}" --mem 3072 "${files[@]}" --disk "$image,ro" -- \
      env GC_DIR=/rig GC_KERNEL=/rig/bzImage GC_DISK=/dev/vda GC_DISK_COPY=1 GC_RETRY_CRASH=1 GC_VMMS="${vmms[*]}" \
          GC_NEXUS_VMM=/rig/nexus-vmm GC_VMM_TIER1=/rig/vmm-tier1 GC_QEMU=/rig/qemu-system-x86_64 GC_IP=/rig/bin/ip GC_HTTP_GET=/rig/http-get \
          sh /rig/guest-checks.sh 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 126 ] && [ "$attempt" = 1 ] || break
    echo "test-rig: !!!!!!!! L1 stalled (rig exit 126): running every check again in a fresh rig"
    retries+=("test-rig: L1 stalled (rig exit 126); every guest check ran again in a fresh rig")
  done
  case $rc in
    124) fail "rig" "rig/run-l1 timed out" ;;
    125) fail "rig" "rig/run-l1 failed (see its message above)" ;;
    126) fail "rig" "L1 stalled twice (rig/run-l1 stopped it: soft lockup or no heartbeat; issue 3)" ;;
  esac
fi
echo "test-rig: guest checks took $(( $(date +%s) - start ))s (exit $rc)"

# Guest boots that crashed in the nested rig and were booted once more (guest-checks.sh boot()).
while read -r _ what; do
  echo "test-rig: !!!!!!!! RETRIED $what"
  retries+=("test-rig: $what")
done < <(grep -a "^RETRY " "$log" | tr -d '\r')

# Count the CHECK lines; every monitor must have reported all of its checks.
for mon in "${vmms[@]}"; do
  n=0
  while read -r _ name verdict detail; do
    n=$((n + 1))
    case $verdict in
      PASS) pass "$name" "$detail" ;;
      SKIP) skip "$name" "$detail" ;;
      *) fail "$name" "$detail" ;;
    esac
  done < <(grep -a "^CHECK $mon:" "$log" | tr -d '\r')
  [ $n -ge 8 ] || fail "$mon:all-checks-ran" "only $n of 8 checks reported"
done
finish
