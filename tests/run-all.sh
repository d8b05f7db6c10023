#!/usr/bin/env bash
# Runs each test target named on the command line (make targets registered by the
# parts' build.mk files), keeps going after a failure, and prints one summary.
#
# Contract for a test target: it prints its own progress, exits non-zero on failure,
# and writes build/test-results/<target>.counts holding one line
#   passed=N failed=N skipped=N
# plus any number of "skip: <reason>" and "retried: <what>" lines.  A target that exits without writing
# its counts file is counted as one failure: silence is never success.
set -u
cd "$(dirname "$0")/.."
results=${BUILD:-build}/test-results
rm -rf "$results"; mkdir -p "$results"
export NEXUS_TEST_RESULTS="$PWD/$results"
tp=0; tf=0; ts=0; broken=()
for t in "$@"; do
  echo "=================== $t ==================="
  start=$(date +%s)
  make --no-print-directory "$t"; rc=$?
  f="$results/$t.counts"
  if [ ! -f "$f" ]; then
    echo "!! $t wrote no results (exit $rc): counted as a failure"
    tf=$((tf+1)); broken+=("$t"); continue
  fi
  read -r line < "$f"
  eval "$line"   # sets passed failed skipped
  tp=$((tp+passed)); tf=$((tf+failed)); ts=$((ts+skipped))
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then tf=$((tf+1)); broken+=("$t"); fi
  [ "$failed" -gt 0 ] && broken+=("$t")
  echo "-- $t: passed=$passed failed=$failed skipped=$skipped ($(( $(date +%s)-start ))s)"
done
echo "=================== summary ==================="
if [ "$ts" -gt 0 ]; then
  echo "SKIPPED tests and why:"
  grep -h '^skip:' "$results"/*.counts | sed 's/^/  /'
fi
# "retried: <what>" lines: a failure seen only in the nested rig (L1 stalling, a guest crash
# there) that a target ran again; the second run's result is what was counted.
if grep -qh '^retried:' "$results"/*.counts 2>/dev/null; then
  echo "RETRIED after a failure of the nested rig (the retry's result counted):"
  grep -h '^retried:' "$results"/*.counts | sed 's/^retried: /  /'
fi
[ ${#broken[@]} -gt 0 ] && echo "failing targets: ${broken[*]}"
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ]
