#!/usr/bin/python3
"""The host side of tests/vm/in-l1-s3.sh: the example functions in microVMs, checked with
tests/integration/test_examples.py's own assertions (nothing duplicated here).

  examples_vm.py plan DIR      writes DIR/cases, DIR/fn/<name>/ (code), DIR/in/<name>/ (input), DIR/ev/<name>.json
  examples_vm.py check LOG     reads the S3INVOKE/S3OBJ lines in-l1-s3.sh printed and runs every
                               test in test_examples.py against them; prints RESULT lines

`check` runs each test function with stand-ins for its fixtures: `deploy` returns the name the
function had in L1, `invoke` (and `node.cli("invoke")`) return what the invocation in the microVM
returned — after checking that the event the test sends is the very event L1 sent — and `s3` is
the objects read back from the S3 server in L1.  The buckets and keys are test_examples's
(event.json, INPUTS), with the bucket set to in-l1-s3.sh's.
"""
import base64
import inspect
import io
import json
import os
import shutil
import sys
import traceback
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import test_examples as tx  # noqa: E402  (conftest.py comes along: FUNCTIONS, ROOT, BUILD)

BUCKET = "nexus-vmtest"  # in-l1-s3.sh's
BUILD = os.environ.get("BUILD", "build")
# test name -> the example it deploys; its code is functions/<name> (c-linecount: the built one).
TESTS = {"test_hello": "hello", "test_image_rotate": "image-rotate", "test_wordcount": "wordcount",
         "test_pyaes": "pyaes", "test_c_linecount_via_cli": "c-linecount"}


def event(name):
    if name == "hello":  # test_hello's own payload
        src = inspect.getsource(tx.test_hello)
        assert '{"name": "Nexus"}' in src, "test_hello changed its payload: update examples_vm.py"
        return {"name": "Nexus"}
    return tx.event_for(name, BUCKET)


def plan(d):
    missing = [t for t in TESTS if not hasattr(tx, t)] + \
              [t for t in dir(tx) if t.startswith("test_") and t not in TESTS]
    if missing:
        sys.exit(f"examples_vm.py: test_examples.py and TESTS disagree about {missing}")
    os.makedirs(os.path.join(d, "ev"), exist_ok=True)
    with open(os.path.join(d, "cases"), "w") as cases:
        for name in TESTS.values():
            src = os.path.join(ROOT, BUILD, "functions", name) if name == "c-linecount" else tx.fn_dir(name)
            dst = os.path.join(d, "fn", name)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            ev = event(name)
            json.dump(ev, open(os.path.join(d, "ev", name + ".json"), "w"))
            ifile = tx.INPUTS.get(name)
            if ifile:
                os.makedirs(os.path.join(d, "in", name))
                shutil.copy(os.path.join(tx.fn_dir(name), ifile), os.path.join(d, "in", name))
            cases.write(f"{name} {ev['key'] if ifile else '-'} {ifile or '-'} {ev.get('output_key') or '-'}\n")


class FakeS3:
    """What in-l1-s3.sh read back from the S3 server in L1, as a boto3 client would return it."""
    def __init__(self, objects):
        self.objects = objects

    def put_object(self, Bucket, Key, Body, **_):  # stage_input: L1 put the same file
        self.objects.setdefault((Bucket, Key), Body)

    def get_object(self, Bucket, Key):
        if (Bucket, Key) not in self.objects:
            raise AssertionError(f"s3://{Bucket}/{Key} was not in the S3 server in L1")
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


def check(log):
    invoked, objects = {}, {}
    for line in open(log, errors="replace"):
        f = line.rstrip("\r\n").split(" ")
        if f[0] == "S3INVOKE" and len(f) >= 3:
            invoked[f[1]] = (f[2], base64.b64decode(f[3]) if len(f) > 3 else b"")
        elif f[0] == "S3OBJ" and len(f) >= 2:
            b, k = f[1].split("/", 1)
            objects[(b, k)] = base64.b64decode(f[2]) if len(f) > 2 else b""
    if any(line.startswith("RESULT skip s3:all") for line in open(log, errors="replace")):
        return  # in-l1-s3.sh said why (no node/s3rver in L1): skipped, not failed
    for test, name in TESTS.items():
        if name not in invoked:
            print(f"RESULT fail example:{name} no invocation came back from L1 (see the log above)")
            continue
        rc, stdout = invoked[name]

        def fake_invoke(lam, fname, payload=None, name=name, rc=rc, stdout=stdout):
            assert payload == event(name), f"the test's event {payload} is not the one L1 sent"
            assert rc == "0", f"nexus invoke in L1 exited {rc}: {stdout[:300]!r}"
            return json.loads(stdout), None, None

        def cli(*args, name=name, **_):
            if args[0] == "invoke":
                fake_invoke(None, name, json.loads(args[args.index("--payload") + 1]))
                return types.SimpleNamespace(stdout=invoked[name][1].decode())
            return types.SimpleNamespace(stdout="")

        tx.invoke = fake_invoke
        fixtures = {"s3": FakeS3(objects), "lam": None, "bucket": BUCKET,
                    "deploy": lambda *a, name=name, **k: name, "node": types.SimpleNamespace(cli=cli)}
        fn = getattr(tx, test)
        try:
            fn(**{p: fixtures[p] for p in inspect.signature(fn).parameters})
            print(f"RESULT pass example:{name} {test} passed on what the microVM wrote to S3 in L1"
                  f" ({stdout[:100].decode(errors='replace').strip()})")
        except Exception as e:  # AssertionError or a broken output
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"RESULT fail example:{name} {test}: {type(e).__name__} at {os.path.basename(where.filename)}:"
                  f"{where.lineno} `{where.line}`: {str(e)[:300]}".replace("\n", " "))


if __name__ == "__main__":
    {"plan": plan, "check": check}[sys.argv[1]](sys.argv[2])
