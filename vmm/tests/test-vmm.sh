#!/usr/bin/env bash
# make test-vmm: nexus-vmm's tests.
#   1. host-side unit tests (cmocka; no KVM needed)
#   2. command-line checks of the monitor binary (no KVM needed)
#   3. tier 1: the tiny test guests booted by nexus-vmm under KVM -- directly when
#      rig/detect-kvm says `hardware`, otherwise inside the nested rig (rig/run-l1).
#      Without either, every tier-1 case is counted as SKIPPED, loudly, with the reason.
# Writes $NEXUS_TEST_RESULTS/test-vmm.counts (passed/failed/skipped + skip reasons).
set -u
build=${1:?usage: test-vmm.sh BUILD UNIT_BINS...}
shift
cd "$(dirname "$0")/../.."
. tests/counts.sh
results=${NEXUS_TEST_RESULTS:-build/test-results}
mkdir -p "$results"
counts=$results/test-vmm.counts
passed=0 failed=0 skipped=0 skips=() retries=()
log=$(mktemp -d /tmp/test-vmm.XXXXXX)
TIER1_CASES=22   # keep in sync with cases[] in tier1/run-tier1.c

pass() { passed=$((passed+1)); echo "test-vmm: ok   $*"; }
fail() { failed=$((failed+1)); echo "test-vmm: FAIL $*"; }

echo "test-vmm: --- unit tests (host, cmocka) ---"
for t in "$@"; do
  out=$log/$(basename "$t").out
  "$t" >"$out" 2>&1; rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  sk=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1); sk=${sk:-0}
  passed=$((passed+p)); failed=$((failed+f))
  if [ "$sk" -gt 0 ]; then
    skipped=$((skipped+sk))
    skips+=("$(basename "$t"): $sk unit test(s) skipped: $(grep '^\[  SKIPPED \] [a-z_]*$' "$out" | sort -u | sed 's/^\[  SKIPPED \] //' | tr '\n' ' ')(e.g. the seccomp filter test under the sanitizer runtime)")
    echo "test-vmm: !!!!!!!! $(basename "$t"): $sk SKIPPED"
  fi
  echo "test-vmm: $(basename "$t"): $p passed, $f failed"
  [ "$f" -gt 0 ] && cat "$out"
done

echo "test-vmm: --- command line (host) ---"
vmm=$build/bin/nexus-vmm
"$vmm" --help >/dev/null 2>&1; [ $? -eq 0 ] && pass "--help exits 0" || fail "--help"
"$vmm" --kernel x --mem 1 >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && pass "--mem 1 is a usage error (64)" || fail "--mem 1 gave $rc, want 64"
"$vmm" >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && pass "missing --kernel is a usage error (64)" || fail "no --kernel gave $rc"
"$vmm" --kernel x --disk a,bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && pass "bad --disk option is a usage error (64)" || fail "--disk a,bogus gave $rc"
echo '{"kernel": 5}' >"$log/bad.json"
"$vmm" --config "$log/bad.json" >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && pass "bad JSON config is a usage error (64)" || fail "bad config gave $rc"
"$vmm" --kernel /nonexistent/kernel >/dev/null 2>&1; rc=$?
[ $rc -eq 65 ] && pass "unusable kernel/KVM is a setup error (65)" || fail "missing kernel gave $rc, want 65"
# A snapshot is checked before /dev/kvm is even opened: these run without KVM.
"$vmm" --restore /nonexistent/snapshot >/dev/null 2>"$log/r1.err"; rc=$?
[ $rc -eq 72 ] && grep -q 'restore /nonexistent/snapshot: .*vmstate' "$log/r1.err" \
  && pass "--restore of a missing snapshot is refused (72, one line)" || fail "--restore missing gave $rc: $(cat "$log/r1.err")"
mkdir -p "$log/junk" && head -c 4096 /dev/urandom >"$log/junk/vmstate" && : >"$log/junk/memory"
"$vmm" --restore "$log/junk" >/dev/null 2>"$log/r2.err"; rc=$?
[ $rc -eq 72 ] && grep -q 'bad magic' "$log/r2.err" \
  && pass "--restore of a garbage vmstate is refused (72, bad magic)" || fail "--restore junk gave $rc: $(cat "$log/r2.err")"
"$vmm" --restore "$log/junk" --kernel x >/dev/null 2>&1; rc=$?
[ $rc -eq 64 ] && pass "--restore with --kernel is a usage error (64)" || fail "--restore --kernel gave $rc"

echo "test-vmm: --- tier 1: tiny guests under KVM ---"
guest=$build/vmm-guest/testguest.elf
runner=$build/bin/vmm-tier1
kvm=none
[ -x rig/detect-kvm ] && kvm=$(rig/detect-kvm 2>/dev/null || echo none)
tier1_out=$log/tier1.out
tier1_rc=
stalled=()
if [ "$kvm" = hardware ]; then
  echo "test-vmm: tier 1 runs directly: /dev/kvm has hardware virtualization"
  "$runner" "$vmm" "$guest" "$log/tier1-work" 2>&1 | tee "$tier1_out"; tier1_rc=${PIPESTATUS[0]}
elif [ -x rig/run-l1 ]; then
  echo "test-vmm: tier 1 runs in the nested rig (local KVM: $kvm)"
  # Not through a pipe: a process the rig leaves behind could hold the pipe open.
  run_rig() {  # CASE... -> output appended to $tier1_out, exit status in tier1_rc
    rig/run-l1 --timeout 240 --file "$vmm:/rig/nexus-vmm" --file "$guest:/rig/testguest.elf" \
       --file "$runner:/rig/vmm-tier1" -- /rig/vmm-tier1 /rig/nexus-vmm /rig/testguest.elf /vmm-tier1-work "$@" \
       >>"$tier1_out" 2>&1 &
    local rig_pid=$!
    tail -n +1 -f --pid=$rig_pid "$tier1_out"
    wait $rig_pid; tier1_rc=$?
  }
  : >"$tier1_out"
  run_rig
  [ "$tier1_rc" -eq 126 ] && tier1_rc=124   # run-l1 stopped a stalled L1 early: the same as a timeout here
  if [ "$tier1_rc" -eq 124 ]; then
    # The whole rig timed out: seen intermittently when emulated L1 itself stalls (its KVM
    # under TCG on an oversubscribed host).  Rerun, once, only the cases that never
    # reported, in a fresh rig; both runs' results count, and this is said loudly.
    all=$(grep -o '{ "[a-z0-9-]*", t_' vmm/tests/tier1/run-tier1.c | sed 's/{ "\(.*\)", t_/\1/')
    todo=()
    for c in $all; do grep -Eq "^tier1: (ok|FAIL) +$c( |$)" "$tier1_out" || todo+=("$c"); done
    echo "test-vmm: !!!!!!!! RETRY: the rig timed out with ${#todo[@]} tier-1 cases unreported (${todo[*]}); rerunning them once in a fresh rig"
    retries+=("test-vmm: L1 stalled; ${#todo[@]} unreported tier-1 cases ran again in a fresh rig")
    [ ${#todo[@]} -gt 0 ] && run_rig "${todo[@]}"
    [ "$tier1_rc" -eq 126 ] && tier1_rc=124
    if [ "$tier1_rc" -eq 124 ]; then
      # Stalled twice: what still did not report did not run.  Counted as skipped, with the
      # reason, never as passed; a case that reported FAIL still fails.
      for c in $all; do grep -Eq "^tier1: (ok|FAIL) +$c( |$)" "$tier1_out" || stalled+=("$c"); done
      tier1_rc=0
    fi
  fi
else
  reason="tier 1 ($TIER1_CASES cases): no hardware /dev/kvm here (detect-kvm: $kvm) and no rig/run-l1 to run them in"
fi
if [ -n "$tier1_rc" ]; then
  p=$(grep -c '^tier1: ok ' "$tier1_out"); f=$(grep -c '^tier1: FAIL ' "$tier1_out")
  passed=$((passed+p)); failed=$((failed+f))
  if [ "$tier1_rc" -eq 125 ] || { [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; }; then
    reason="tier 1 ($TIER1_CASES cases): the rig could not run them (exit $tier1_rc): $(grep -m1 '^rig:' "$tier1_out" || true)"
  elif [ "$tier1_rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    failed=$((failed+1)); echo "test-vmm: FAIL tier-1 runner exited $tier1_rc without reporting a failed case"
  else
    missing=$((TIER1_CASES - p - f - ${#stalled[@]}))
    [ "$missing" -gt 0 ] && { failed=$((failed+missing)); echo "test-vmm: FAIL $missing tier-1 cases never reported"; }
  fi
fi
if [ ${#stalled[@]} -gt 0 ]; then
  r="tier 1: the nested rig stalled twice (emulated L1 stopped making progress, an intermittent problem of TCG + nested SVM on a loaded host, under investigation); these cases did not run: ${stalled[*]}"
  echo "test-vmm: !!!!!!!! SKIPPED ${#stalled[@]}: $r"
  skipped=$((skipped+${#stalled[@]})); skips+=("$r")
fi
if [ -n "${reason:-}" ]; then
  echo "test-vmm: !!!!!!!! SKIPPED: $reason"
  skipped=$((skipped+TIER1_CASES)); skips+=("$reason")
fi

write_counts "$counts"
echo "test-vmm: $passed passed, $failed failed, $skipped skipped"
rm -rf "$log"
[ "$failed" -eq 0 ]
