#!/usr/bin/env bash
# test-bench: the A/B harness runs end to end (`nexus bench --smoke`: a handful
# of invocations, one input size, two density steps) and writes every output.
# It asserts that the pipeline works, never anything about timing.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
results=${NEXUS_TEST_RESULTS:-$PWD/$BUILD/test-results}
mkdir -p "$results"
counts="$results/test-bench.counts"
passed=0; failed=0; skipped=0; reasons=()
check() {   # check NAME CMD...
  if "${@:2}"; then echo "  ok   $1"; passed=$((passed+1)); else echo "  FAIL $1"; failed=$((failed+1)); fi
}
if [ "$(id -u)" != 0 ]; then
  echo "test-bench: SKIPPED: nexusd's process sandbox needs root"
  printf 'passed=0 failed=0 skipped=1\nskip: test-bench: needs root (process sandbox)\n' > "$counts"
  exit 0
fi
out=$(mktemp -d /tmp/nexus-test-bench.XXXXXX)
echo "test-bench: $BUILD/bin/nexus bench --smoke --no-spine --out $out/r --json $out/r.json"
start=$(date +%s)
"$BUILD/bin/nexus" bench --smoke --no-spine --out "$out/r" --json "$out/r.json"
rc=$?
echo "test-bench: harness exited $rc after $(( $(date +%s) - start )) s"
check "harness exits 0" test "$rc" -eq 0
check "page written" test -s "$out/r.md"
check "page has the goals table" grep -q '^| warm p50 (nexus/baseline)' "$out/r.md"
for f in hello image-rotate wordcount pyaes; do
  check "csv has warm rows for $f" grep -q "^$f,[^,]*,warm_p50_ms,ms,[0-9.]" "$out/r/results.csv"
done
check "page names the storage server (nexus-s3peer by default)" grep -q '^- storage server: `nexus-s3peer`' "$out/r.md"
check "page gives the load average during the run" grep -q '^- load average (1 min) during the run' "$out/r.md"
check "csv has a density row" grep -q '^hello,trace,density_instances' "$out/r/results.csv"
check "--json has nexus, baseline and ratio" /usr/bin/python3 -c "
import json, sys
d = json.load(open('$out/r.json'))
rows = [r for r in d['results'] if r['metric'] == 'warm_p50_ms']
assert len(rows) == 4 and all(r['nexus'] > 0 and r['baseline'] > 0 and r['ratio'] > 0 for r in rows), rows
assert any(r['floor'] for r in rows), 'no floor'
# The floor (host driver) is measured in the same run for every pair; the core floor too (smoke sizes).
assert all(r['floor'] > 0 and r['nexus_over_floor'] > 0 for r in rows), rows
assert all(r['core_floor'] > 0 for r in rows), rows
assert all(r['samples'].count('/') == 2 for r in rows), rows   # nexus/baseline/floor invocations
"
for png in cdf-hello cpu memory density; do
  check "plot $png.png is a PNG" bash -c "head -c 8 '$out/r/$png.png' | od -An -c | grep -q 'P   N   G'"
done
# The cold-start breakdown (bench/coldstart_breakdown.py --smoke, ~10 s): one cold start per mode from a
# zygote, every phase found in nexusd's log and in the guest's timestamps. Timing never checked.
echo "test-bench: /usr/bin/python3 bench/coldstart_breakdown.py --smoke --json $out/csbd.json"
/usr/bin/python3 bench/coldstart_breakdown.py --smoke --json "$out/csbd.json" > "$out/csbd.md"
rc=$?
check "coldstart_breakdown --smoke exits 0" test "$rc" -eq 0
check "coldstart_breakdown prints the phase table" grep -q '^| \*\*first byte\*\* | [0-9]' "$out/csbd.md"
check "coldstart_breakdown: every phase of both modes measured" /usr/bin/python3 -c "
import json
d = json.load(open('$out/csbd.json'))['sizes']['1 KiB']
need = {'nexus': {'restore', 'fork', 'prefetch', 'pf_overlap', 'handler', 'get', 'first_byte', 'total'},
        'baseline': {'restore', 'network', 'fork', 'handler', 'get', 'first_byte', 'total'}}
for mode, keys in need.items():
    (raw,) = d[mode]['raw']
    assert keys <= set(raw), (mode, sorted(keys - set(raw)))
    assert 0 < raw['handler'] <= raw['first_byte'] <= raw['total'], (mode, raw)
    assert 0 < raw['restore'] < raw['handler'], (mode, raw)   # READY comes before the handler runs
assert d['ratio_first_byte'] > 0
"
printf 'passed=%d failed=%d skipped=%d\n' "$passed" "$failed" "$skipped" > "$counts"
[ "$failed" -eq 0 ] && rm -rf "$out"
echo "test-bench: passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
