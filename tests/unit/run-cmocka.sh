#!/usr/bin/env bash
# Runs cmocka test programs and writes $NEXUS_TEST_RESULTS/<target>.counts.
# usage: run-cmocka.sh TARGET PROG...
# A program that dies without printing cmocka's summary counts as one failure.
set -u
target=$1; shift
results=${NEXUS_TEST_RESULTS:-build/test-results}
mkdir -p "$results"
passed=0 failed=0 skipped=0 skips=()
for prog in "$@"; do
  out=$("$prog" 2>&1); rc=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
  if [ -z "$p" ] && [ -z "$f" ]; then
    echo "!! $prog exited $rc without a cmocka summary: counted as a failure"
    failed=$((failed+1)); continue
  fi
  passed=$((passed+${p:-0})); failed=$((failed+${f:-0})); skipped=$((skipped+${s:-0}))
  if [ "$rc" -ne 0 ] && [ -z "$f" ]; then failed=$((failed+1)); fi
  while IFS= read -r line; do skips+=("$line"); done < <(printf '%s\n' "$out" | sed -n 's/^SKIP-REASON: /skip: /p')
done
{ echo "passed=$passed failed=$failed skipped=$skipped"; for s in "${skips[@]+"${skips[@]}"}"; do echo "$s"; done; } > "$results/$target.counts"
echo "$target: passed=$passed failed=$failed skipped=$skipped"
[ "$failed" -eq 0 ]
