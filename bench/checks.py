"""What the host-side bench tests (bench/vm-ab/test_vm_ab.py, bench/vm-density/test_vm_density.py)
share: each check prints `ok` or `FAIL` and is counted; finish() writes
$NEXUS_TEST_RESULTS/<target>.counts (the format tests/run-all.sh sums) and exits non-zero on a failure."""
import os
import sys

_counts = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        _counts["passed"] += 1
        print(f"ok   {what}")
    else:
        _counts["failed"] += 1
        print(f"FAIL {what}")


def finish(target):
    here = os.path.dirname(os.path.abspath(__file__))
    res = os.environ.get("NEXUS_TEST_RESULTS", os.path.join(here, "..", "build", "test-results"))
    os.makedirs(res, exist_ok=True)
    passed, failed = _counts["passed"], _counts["failed"]
    with open(os.path.join(res, f"{target}.counts"), "w") as f:
        f.write(f"passed={passed} failed={failed} skipped=0\n")
    print(f"{target}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
