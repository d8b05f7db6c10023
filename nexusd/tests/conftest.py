"""Writes $(NEXUS_TEST_RESULTS)/test-nexusd.counts for tests/run-all.sh."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def pytest_terminal_summary(terminalreporter):
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = stats.get("skipped", [])
    out = os.environ.get("NEXUS_TEST_RESULTS",
                         os.path.join(ROOT, os.environ.get("BUILD", "build"), "test-results"))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "test-nexusd.counts"), "w") as f:
        f.write(f"passed={passed} failed={failed} skipped={len(skipped)}\n")
        for rep in skipped:
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            f.write(f"skip: nexusd {rep.nodeid}: {reason}\n")
