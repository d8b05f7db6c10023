# Helpers for the CLI tests (sourced by run.sh).  Each test is a shell function
# t_NAME run in a subshell; it returns 0 (pass), 1 (fail) or 77 (skip, after
# calling `skip REASON`).  Output of the command under test lands in $OUT/$ERR.

: "${NEXUS:?set NEXUS to the nexus binary}"
WORK=$(mktemp -d /tmp/nexus-cli-test.XXXXXX)
OUT=$WORK/stdout
ERR=$WORK/stderr
SKIPS=$WORK/skips
: > "$SKIPS"
passed=0 failed=0 skipped=0

say() { printf '%s\n' "$*" >&2; }
# skip REASON: marks the current test as skipped with a reason that ends up in the counts file.
skip() { printf '%s\n' "$*" > "$WORK/skip.reason"; return 77; }

# run CMD...: runs it with stdout/stderr captured; sets RC.
run() { "$@" > "$OUT" 2> "$ERR"; RC=$?; return 0; }

# expect_rc N CMD...: runs CMD and fails the test unless it exits with N.
expect_rc() {
  local want=$1; shift
  run "$@"
  if [ "$RC" -ne "$want" ]; then
    say "    FAILED: '$*' exited $RC, expected $want"
    say "    stdout: $(head -c 2000 "$OUT")"
    say "    stderr: $(head -c 2000 "$ERR")"
    return 1
  fi
}

# expect_in FILE TEXT: fails unless FILE contains TEXT (fixed string).
expect_in() {
  if ! grep -qF -- "$2" "$1"; then
    say "    FAILED: $(basename "$1") lacks '$2'; it holds:"
    head -c 2000 "$1" | sed 's/^/      /' >&2
    return 1
  fi
}

expect_not_in() {
  if grep -qF -- "$2" "$1"; then
    say "    FAILED: $(basename "$1") unexpectedly holds '$2'"
    return 1
  fi
}

# json_check FILE PYTHON-EXPR: evaluates EXPR with `j` = the parsed JSON of FILE.
json_check() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || { say "    FAILED: JSON check '$2' on $(head -c 1000 "$1")"; return 1; }
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# port_free PORT: true if nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive PID: true if PID is a live, non-zombie process.
pid_alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! awk '{ exit !($3=="Z") }' "/proc/$1/stat" 2>/dev/null; }

run_test() {
  local name=$1
  rm -f "$WORK/skip.reason"
  say "--- $name"
  ( set +e; "t_$name" ); local rc=$?
  case $rc in
    0) passed=$((passed+1)); say "    ok" ;;
    77) skipped=$((skipped+1)); local why; why=$(cat "$WORK/skip.reason" 2>/dev/null || echo "no reason given")
        say "    SKIPPED: $why"; echo "skip: test-cli $name: $why" >> "$SKIPS" ;;
    *) failed=$((failed+1)); say "    FAILED ($name)" ;;
  esac
}

write_counts() {
  local dir=${NEXUS_TEST_RESULTS:-build/test-results}
  mkdir -p "$dir"
  { echo "passed=$passed failed=$failed skipped=$skipped"; cat "$SKIPS"; } > "$dir/test-cli.counts"
  say "test-cli: passed=$passed failed=$failed skipped=$skipped"
  if [ "$skipped" -gt 0 ]; then say "SKIPPED:"; sed 's/^/  /' "$SKIPS" >&2; fi
}
