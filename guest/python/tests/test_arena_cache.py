"""The pymalloc arena cache (guest/python/arena_cache.c, nexusrt.runtime.keep_arenas).

Each case runs in a fresh python3: the cache replaces the process's arena
allocator for good, and the pytest process must keep CPython's own."""
import json
import os
import subprocess
import sys

from conftest import PYDIR, RUNTIME

LIB = os.path.join(RUNTIME, "lib", "libnexus-pyarena.so")

# Makes and drops ~40 MiB of small objects (many pymalloc arenas) `rounds`
# times, then prints the cache's counters as JSON.
CHURN = r"""
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[1])
from nexusrt import runtime
lib = runtime.keep_arenas(sys.argv[2])
if lib is None:
    print(json.dumps(None)); sys.exit(0)
for _ in range(int(sys.argv[3])):
    junk = [str(i) * 3 for i in range(400_000)]
    del junk
u = ctypes.c_ulong
h, m, r, c = u(), u(), u(), ctypes.c_size_t()
lib.nx_pyarena_stats(ctypes.byref(h), ctypes.byref(m), ctypes.byref(r), ctypes.byref(c))
again = lib.nx_pyarena_install(ctypes.c_size_t(1 << 20))
print(json.dumps({"hits": h.value, "misses": m.value, "released": r.value, "cached": c.value, "again": again}))
"""


def churn(env_extra, rounds=4):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NX_PY_ARENA", "AWS_LAMBDA_FUNCTION_MEMORY"))}
    env.update(env_extra)
    p = subprocess.run([sys.executable, "-c", CHURN, PYDIR, LIB, str(rounds)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1]), p.stderr


def test_freed_arenas_are_reused_within_the_budget():
    st, err = churn({"NX_PY_ARENA_CACHE_MB": "64"})
    assert st is not None, err
    # The first round maps its arenas; every later round finds them cached.
    assert st["hits"] > 3 * 20, st
    assert st["hits"] > 2 * st["misses"], st
    assert st["released"] == 0, st
    assert 0 < st["cached"] <= 64 << 20, st
    assert st["again"] == -114, "a second install must say EALREADY, not chain to itself"


def test_budget_bounds_what_is_kept():
    st, err = churn({"NX_PY_ARENA_CACHE_MB": "2"})
    assert st is not None, err
    assert st["cached"] <= 2 << 20, st
    assert st["released"] > 0, st   # beyond the budget arenas go back to the OS
    assert st["hits"] > 0, st


def test_zero_budget_installs_nothing():
    st, _ = churn({"NX_PY_ARENA_CACHE_MB": "0"}, rounds=1)
    assert st is None


def test_bad_budget_warns_and_runs_without_cache():
    st, err = churn({"NX_PY_ARENA_CACHE_MB": "lots"}, rounds=1)
    assert st is None
    assert "NX_PY_ARENA_CACHE_MB='lots' is not an integer" in err


def test_missing_library_warns_and_runs_without_cache():
    p = subprocess.run([sys.executable, "-c",
                        "import sys; sys.path.insert(0, sys.argv[1]); from nexusrt import runtime; "
                        "print(runtime.keep_arenas('/nonexistent/libnexus-pyarena.so'))", PYDIR],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "None", p.stderr
    assert "arena cache unavailable" in p.stderr


def test_default_budget_follows_function_memory():
    sys.path.insert(0, PYDIR)
    from nexusrt import runtime
    assert runtime.arena_cache_budget_mb({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}) == 32
    assert runtime.arena_cache_budget_mb({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}) == 8
    assert runtime.arena_cache_budget_mb({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "32"}) == 4
    assert runtime.arena_cache_budget_mb({}) == 8
    assert runtime.arena_cache_budget_mb({"NX_PY_ARENA_CACHE_MB": "3", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}) == 3
