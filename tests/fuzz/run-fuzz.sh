#!/usr/bin/env bash
# Builds and runs each fuzz target for $FUZZ_SECS seconds from its seed corpus
# (tests/fuzz/corpus/<name>, read-only) plus a scratch corpus under $FUZZ_DIR,
# then writes $NEXUS_TEST_RESULTS/test-fuzz.counts.  One target = one test.
set -u
results=${NEXUS_TEST_RESULTS:-build/test-results}
mkdir -p "$results"
out="$results/test-fuzz.counts"
passed=0 failed=0 skipped=0 skips=()
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
  echo "!! SKIPPING fuzz targets: ${FUZZ_CC:-clang} not installed (apt-get install clang)"
  printf 'passed=0 failed=0 skipped=%d\nskip: test-fuzz: clang not installed\n' "$#" > "$out"
  exit 0
fi
for t in "$@"; do
  if ! $MAKE --no-print-directory "$FUZZ_DIR/$t"; then
    echo "!! $t: build failed"; failed=$((failed+1)); continue
  fi
  scratch="$FUZZ_DIR/corpus-$t"; mkdir -p "$scratch"
  echo "-- $t: fuzzing for ${FUZZ_SECS}s (seeds: tests/fuzz/corpus/$t)"
  # Fuzz without LeakSanitizer (it rescans the heap whenever an input grows a
  # persistent table, dividing throughput by ~7), then replay every input
  # once with leak detection on.
  if "$FUZZ_DIR/$t" -max_total_time="$FUZZ_SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -detect_leaks=0 -artifact_prefix="$FUZZ_DIR/crash-$t-" "$scratch" "tests/fuzz/corpus/$t" \
       > "$FUZZ_DIR/$t.log" 2>&1 &&
     "$FUZZ_DIR/$t" -runs=0 -detect_leaks=1 -artifact_prefix="$FUZZ_DIR/crash-$t-" \
       "$scratch" "tests/fuzz/corpus/$t" >> "$FUZZ_DIR/$t.log" 2>&1; then
    grep -E '^stat::number_of_executed_units' "$FUZZ_DIR/$t.log" | head -1 | sed "s/^/   $t: /"
    echo "   $t: $(ls "$scratch" | wc -l) corpus inputs replayed with leak detection"
    passed=$((passed+1))
  else
    echo "!! $t found a bug; log: $FUZZ_DIR/$t.log, reproducer: $FUZZ_DIR/crash-$t-*"
    grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$FUZZ_DIR/$t.log" | head -20
    failed=$((failed+1))
  fi
done
{ echo "passed=$passed failed=$failed skipped=$skipped"; for s in "${skips[@]+"${skips[@]}"}"; do echo "$s"; done; } > "$out"
echo "test-fuzz: passed=$passed failed=$failed skipped=$skipped"
[ "$failed" -eq 0 ]
