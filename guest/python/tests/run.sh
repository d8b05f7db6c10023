#!/usr/bin/env bash
# test-guest: the guest runtime's own tests.
#   1. the libnexus C test (against the C fake host), incl. the C null round trip
#   2. against nexusd's real channel server (guest-realhost): null round trips
#      from C and Python, the runtime serving S3-using, failing and no-op handlers
#   3. pytest: the boto3 shim, the runtime (bootstrap.py in a child process),
#      the examples, and the Python null round trip
# Writes $NEXUS_TEST_RESULTS/test-guest.counts (passed/failed/skipped + skip reasons).
set -u
cd "$(dirname "$0")/../../.."
c_test=${1:?usage: run.sh path/to/test-libnexus path/to/guest-realhost path/to/guest-nopbench}
realhost=${2:?}
nopbench=${3:?}
runtime=${BUILD:-build}/runtime
results=${NEXUS_TEST_RESULTS:-build/test-results}
mkdir -p "$results"
counts="$results/test-guest.counts"
rm -f "$counts" "$results/guest-bench.txt"

echo "--- libnexus C test ($c_test)"
c_out=$(mktemp)
"$c_test" | tee "$c_out"
c_rc=${PIPESTATUS[0]}
read -r c_pass c_fail < <(sed -n 's/^passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$c_out" | tail -1)
if [ -z "${c_pass:-}" ]; then c_pass=0; c_fail=1; echo "!! the C test printed no summary (exit $c_rc)"; fi
grep '^bench:' "$c_out" >> "$results/guest-bench.txt"
rm -f "$c_out"

echo "--- against nexusd's real channel server (nexusd/chan.c + loop.c, in-memory S3)"
rh_pass=0; rh_fail=0; rh_reasons=()
check() {   # check NAME CMD...: one test; its "bench:" lines go to guest-bench.txt
  local name=$1; shift
  local out; out=$(mktemp)
  if timeout 300 "$@" > "$out" 2>&1; then
    rh_pass=$((rh_pass+1)); echo "ok   $name"
  else
    rh_fail=$((rh_fail+1)); echo "FAIL $name"; sed 's/^/    /' "$out" | tail -20
  fi
  grep '^bench:' "$out" | tee -a "$results/guest-bench.txt" | sed 's/^/    /'
  rm -f "$out"
}
check "C null round trips" "$realhost" -- "$nopbench" 20000
check "Python null round trips" "$realhost" -- /usr/bin/python3 guest/python/tests/nopbench.py "$runtime" 10000
check "runtime: S3 through the shim from 4 threads, 100 invocations" env NEXUS_TASK_ROOT=guest/python/tests/apps/s3roundtrip \
  "$realhost" --invoke 100 --event '{"threads": 4}' --buckets test-bucket --expect all-good --label "S3 put+get+range+head+copy+list+delete of 100 KB, then 16 put+get+delete from 4 threads" -- /usr/bin/python3 -u "$runtime/python/bootstrap.py"
check "runtime: handler error" env NEXUS_TASK_ROOT=guest/python/tests/apps/raises \
  "$realhost" --invoke 3 --expect-error --expect '"errorType": "RuntimeError"' -- /usr/bin/python3 -u "$runtime/python/bootstrap.py"
check "runtime: warm no-op invocations" env NEXUS_TASK_ROOT=guest/python/tests/apps/noop \
  "$realhost" --invoke 3000 --expect null --label "no-op handler" -- /usr/bin/python3 -u "$runtime/python/bootstrap.py"

c_fn=${BUILD:-build}/functions/c-linecount/bootstrap
check "C function (nx_serve): c-linecount, 50 invocations" env LD_LIBRARY_PATH="$runtime/lib" \
  "$realhost" --invoke 50 --buckets nexus-demo --event "$(cat functions/c-linecount/event.json)" \
  --expect '"lines":3,"words":6,"bytes":28' --label "C function c-linecount: put + get + put" -- "$c_fn"
check "C function (nx_serve): storage error becomes HandlerError" env LD_LIBRARY_PATH="$runtime/lib" \
  "$realhost" --invoke 2 --buckets nexus-demo --event '{"bucket": "nexus-demo", "key": "missing"}' \
  --expect-error --expect NoSuchKey -- "$c_fn"

check "C runtime: nx_serve's clock rule after a snapshot restore (test-serve-clock)" "${BUILD:-build}/bin/test-serve-clock"

echo "--- pytest guest/python/tests"
junit="$results/test-guest.junit.xml"
/usr/bin/python3 -m pytest -q -rs -p no:cacheprovider --junitxml="$junit" guest/python/tests
py_rc=$?

/usr/bin/python3 - "$junit" "$((c_pass+rh_pass))" "$((c_fail+rh_fail))" "$c_rc" "$py_rc" > "$counts" <<'PY'
import sys, xml.etree.ElementTree as ET
junit, c_pass, c_fail, c_rc, py_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
passed, failed, skipped, reasons = c_pass, c_fail, 0, []
try:
    root = ET.parse(junit).getroot()
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
            reasons.append(f"skip: {name}: {case.find('skipped').get('message', 'no reason given')}")
        else:
            passed += 1
except (OSError, ET.ParseError) as e:
    failed += 1
    reasons.append(f"# pytest wrote no usable report: {e}")
if py_rc not in (0, 1, 5) or (py_rc == 1 and failed == c_fail):
    failed += 1  # pytest itself broke (collection error, crash)
if c_rc != 0 and c_fail == 0:
    failed += 1
print(f"passed={passed} failed={failed} skipped={skipped}")
for r in reasons:
    print(r)
PY
cat "$counts" | head -1
echo "--- null round trip measurements"
cat "$results/guest-bench.txt" 2>/dev/null
read -r line < "$counts"
eval "$line"
[ "$failed" -eq 0 ]
