#!/usr/bin/env bash
# Tests of the nexus CLI (make test-cli).  Three groups:
#   args    — command-line errors and help, no daemons needed;
#   fake    — the node lifecycle, the S3 helpers and the API plumbing against the real
#             local S3 server and tests/cli/fake_nexusd.py (a stand-in speaking nexusd's
#             HTTP API), so the CLI is tested even while nexusd is not built;
#   real    — deploy/invoke/logs/status/down against the real build/bin/nexusd with the
#             guest runtime and root filesystem; skipped, with the reason, when those are
#             not built.
# Everything runs in a private NEXUS_HOME on free ports chosen at start, so a node
# started by `make demo` (9070/9071) is left alone.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-build}
NEXUS=${NEXUS:-$ROOT/$BUILD/bin/nexus}
source tests/cli/lib.sh
FAKE=$ROOT/tests/cli/fake_nexusd.py
# Ports chosen by the kernel (free now), so parallel test runs by others do not collide.
read -r P1 P2 P3 P4 < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
export NEXUS_PORT=$P1 NEXUS_S3_PORT=$P2
unset NEXUS_URL AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 NEXUS_NEXUSD NEXUS_ROOT
export NEXUS_UP_TIMEOUT=30

new_home() { export NEXUS_HOME=$WORK/home-$1; rm -rf "$NEXUS_HOME"; }
# Stops whatever a test left running in its NEXUS_HOME (by the pids it recorded).
cleanup_home() {
  [ -n "${NEXUS_HOME:-}" ] && [ -d "$NEXUS_HOME" ] && "$NEXUS" down --grace 2 >/dev/null 2>&1
  return 0
}
have_s3() { [ -d scripts/s3/node_modules/@20minutes/s3rver ] && command -v node >/dev/null; }
need_s3() { have_s3 || skip "the local S3 server is not installed (scripts/s3/node_modules): run make deps"; }
need_ports() {
  for p in "$@"; do port_free "$p" || { skip "port $p on 127.0.0.1 is busy"; return 77; }; done
}

# ------------------------------------------------------------------ args
t_no_args()          { expect_rc 2 "$NEXUS" && expect_in "$ERR" "usage: nexus COMMAND"; }
t_help()             { expect_rc 0 "$NEXUS" --help && for c in up down status deploy invoke logs delete s3; do expect_in "$OUT" "  $c " || return 1; done; }
t_unknown_command()  { expect_rc 2 "$NEXUS" frobnicate && expect_in "$ERR" "unknown command 'frobnicate'"; }
t_command_help()     {
  for c in up down status deploy invoke logs delete s3; do
    expect_rc 0 "$NEXUS" "$c" --help && expect_in "$OUT" "usage: nexus $c" || return 1
  done
  expect_rc 0 "$NEXUS" help deploy && expect_in "$OUT" "--buckets"
}
t_deploy_arg_errors() {
  mkdir -p "$WORK/fn" && echo 'def handler(e, c): return e' > "$WORK/fn/app.py"
  expect_rc 2 "$NEXUS" deploy && expect_in "$ERR" "which directory" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/nope" && expect_in "$ERR" "is not a directory" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --memory 5 && expect_in "$ERR" "--memory 5" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --timeout 0 && expect_in "$ERR" "--timeout 0" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --mode fast && expect_in "$ERR" "use nexus or baseline" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --sandbox jail && expect_in "$ERR" "use process or vm" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --handler app && expect_in "$ERR" "module.function" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --env NOEQUALS && expect_in "$ERR" "NAME=VALUE" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --buckets ok-bucket,Bad_Bucket && expect_in "$ERR" "'Bad_Bucket' is not a valid bucket" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" --name 'bad name' && expect_in "$ERR" "not a valid function name" &&
  expect_rc 2 "$NEXUS" deploy "$WORK/fn" "$WORK/fn" && expect_in "$ERR" "one directory at a time"
}
t_invoke_arg_errors() {
  expect_rc 2 "$NEXUS" invoke && expect_in "$ERR" "which function" &&
  expect_rc 2 "$NEXUS" invoke a b && expect_in "$ERR" "exactly one function" &&
  expect_rc 2 "$NEXUS" invoke hello --payload '{"a":' && expect_in "$ERR" "not valid JSON" &&
  expect_rc 2 "$NEXUS" invoke hello --payload @"$WORK/missing.json" && expect_in "$ERR" "cannot read the payload file" &&
  expect_rc 2 "$NEXUS" invoke 'x/y' && expect_in "$ERR" "not a valid function name" &&
  expect_rc 2 "$NEXUS" logs && expect_in "$ERR" "which function" &&
  expect_rc 2 "$NEXUS" logs hello --tail -3 && expect_in "$ERR" "--tail" &&
  expect_rc 2 "$NEXUS" status extra && expect_in "$ERR" "unexpected argument" &&
  expect_rc 2 "$NEXUS" up --port 99999 && expect_in "$ERR" "not a port number" &&
  expect_rc 2 "$NEXUS" s3 && expect_rc 2 "$NEXUS" s3 cp a b && expect_in "$ERR" "unknown command 'cp'" &&
  expect_rc 2 "$NEXUS" s3 put only-one-arg && expect_in "$ERR" "wrong number of arguments" &&
  expect_rc 2 "$NEXUS" s3 get bucket-without-key && expect_in "$ERR" "BUCKET/KEY"
}
t_not_running_messages() {
  new_home notrunning
  need_ports $P1 $P2 || return 77
  for cmd in "status" "status --json" "invoke hello" "logs hello" "delete hello"; do
    # shellcheck disable=SC2086
    expect_rc 1 "$NEXUS" $cmd && expect_in "$ERR" "nexusd is not running at http://127.0.0.1:$P1" &&
      expect_in "$ERR" 'run `nexus up`' || return 1
  done
  expect_rc 1 "$NEXUS" deploy "$WORK/fn" && expect_in "$ERR" 'run `nexus up`' &&
  expect_rc 1 "$NEXUS" s3 ls && expect_in "$ERR" "cannot reach the S3 endpoint http://127.0.0.1:$P2" &&
  expect_rc 0 "$NEXUS" down && expect_in "$OUT" "nothing to stop"
}
t_up_without_nexusd() {
  new_home nonexusd
  NEXUS_NEXUSD=$WORK/no-such-nexusd expect_rc 1 "$NEXUS" up && expect_in "$ERR" "nexusd is not built" &&
    expect_in "$ERR" 'run `make`' && [ ! -e "$NEXUS_HOME/s3.pid" ]
}

# ------------------------------------------------------------------ fake nexusd + real local S3
up_fake() { NEXUS_NEXUSD=$FAKE "$NEXUS" up "$@" > "$OUT" 2> "$ERR"; RC=$?; }

t_fake_up_status_down() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home lifecycle
  up_fake
  [ "$RC" -eq 0 ] || { say "    up failed: $(cat "$ERR")"; cleanup_home; return 1; }
  expect_in "$OUT" "Nexus is up." && expect_in "$OUT" "http://127.0.0.1:$P1" && expect_in "$OUT" "nexus down" &&
  expect_in "$OUT" "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER" || { cleanup_home; return 1; }
  local np sp; np=$(cat "$NEXUS_HOME/nexusd.pid"); sp=$(cat "$NEXUS_HOME/s3.pid")
  pid_alive "$np" && pid_alive "$sp" || { say "    daemons not alive after up"; cleanup_home; return 1; }
  json_check "$NEXUS_HOME/config.json" 'j["ingress"]=="http://127.0.0.1:'"$P1"'" and j["s3"]["endpoint"]=="http://127.0.0.1:'"$P2"'"' &&
  [ "$(stat -c %a "$NEXUS_HOME/config.json")" = 600 ] &&
  expect_rc 0 "$NEXUS" status --json &&
  json_check "$OUT" 'j["ingress"]=="http://127.0.0.1:'"$P1"'" and j["s3"]=={"endpoint":"http://127.0.0.1:'"$P2"'","region":"us-east-1","access_key":"S3RVER","secret_key":"S3RVER","local":True} and j["functions"]==[] and j["instances"]==[] and j["pids"]["nexusd"]=='"$np"' and j["pids"]["s3"]=='"$sp" &&
  expect_rc 0 "$NEXUS" status && expect_in "$OUT" "Nexus is running." && expect_in "$OUT" "Functions (0)" &&
  up_fake && [ "$RC" -eq 1 ] && expect_in "$ERR" "already running" && expect_in "$ERR" '`nexus down`' &&
  expect_rc 0 "$NEXUS" down && expect_in "$OUT" "stopping nexusd (pid $np) ... stopped" &&
  expect_in "$OUT" "stopping the local S3 server (pid $sp) ... stopped" || { cleanup_home; return 1; }
  ! pid_alive "$np" && ! pid_alive "$sp" && [ ! -e "$NEXUS_HOME/nexusd.pid" ] && [ ! -e "$NEXUS_HOME/s3.pid" ] &&
  port_free $P1 && port_free $P2 &&
  expect_rc 1 "$NEXUS" status && expect_in "$ERR" "nexusd is not running"
}

t_fake_stale_pidfiles() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home stale
  mkdir -p "$NEXUS_HOME"
  # pid 1 is alive but is not nexusd: it must be treated as stale, never signalled.
  echo 1 > "$NEXUS_HOME/nexusd.pid"; echo 4194000 > "$NEXUS_HOME/s3.pid"
  up_fake
  local rc=$RC; cleanup_home
  [ "$rc" -eq 0 ] && expect_in "$OUT" "removed a stale pid file $NEXUS_HOME/nexusd.pid (pid 1 is gone)" &&
    expect_in "$OUT" "removed a stale pid file $NEXUS_HOME/s3.pid"
}

t_fake_restart_after_nexusd_died() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home restart
  up_fake; [ "$RC" -eq 0 ] || { say "    up failed: $(cat "$ERR")"; cleanup_home; return 1; }
  local np sp r=0; np=$(cat "$NEXUS_HOME/nexusd.pid"); sp=$(cat "$NEXUS_HOME/s3.pid")
  kill -9 "$np"
  for _ in $(seq 50); do pid_alive "$np" || break; sleep 0.1; done
  # nexusd is gone, its S3 server is not: `up` starts nexusd again against the same S3 server.
  { expect_rc 1 "$NEXUS" status && expect_in "$ERR" 'run `nexus up`' &&
    up_fake && [ "$RC" -eq 0 ] && expect_in "$OUT" "already running (pid $sp): reusing it" &&
    [ "$(cat "$NEXUS_HOME/s3.pid")" = "$sp" ] && [ "$(cat "$NEXUS_HOME/nexusd.pid")" != "$np" ] &&
    expect_rc 0 "$NEXUS" status --json && json_check "$OUT" 'j["pids"]["s3"]=='"$sp"' and j["s3"]["secret_key"]=="S3RVER"' &&
    expect_rc 0 "$NEXUS" down && expect_in "$OUT" "stopping the local S3 server (pid $sp) ... stopped"; } || r=1
  cleanup_home
  return $r
}

t_fake_nexusd_fails_to_start() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home failstart
  up_fake -- --fail-start
  [ "$RC" -eq 1 ] && expect_in "$ERR" "nexusd exited while starting (exit status 3)" &&
    expect_in "$ERR" "fake-nexusd: failing on purpose" && expect_in "$ERR" "could not start nexusd" || { cleanup_home; return 1; }
  # the S3 server it had started is stopped again, and no pid files remain
  [ ! -e "$NEXUS_HOME/s3.pid" ] && [ ! -e "$NEXUS_HOME/nexusd.pid" ] && port_free $P2 ||
    { say "    left behind: $(ls "$NEXUS_HOME"/*.pid 2>/dev/null) port $P2 free: $(port_free $P2 && echo yes || echo no)"
      say "    stdout: $(cat "$OUT")"; cleanup_home; return 1; }
}

t_fake_down_sigkill_after_grace() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home sigkill
  up_fake -- --ignore-sigterm
  [ "$RC" -eq 0 ] || { say "    up failed: $(cat "$ERR")"; cleanup_home; return 1; }
  local np; np=$(cat "$NEXUS_HOME/nexusd.pid")
  expect_rc 0 "$NEXUS" down --grace 1 && expect_in "$OUT" "stopped with SIGKILL (it ignored SIGTERM for 1 s)" &&
    ! pid_alive "$np"
}

t_fake_port_in_use() {
  need_s3 || return 77; need_ports $P1 $P2 $P3 || return 77
  new_home portbusy
  /usr/bin/python3 -m http.server --bind 127.0.0.1 $P3 >/dev/null 2>&1 & local hp=$!
  for _ in $(seq 50); do port_free $P3 || break; sleep 0.1; done
  NEXUS_PORT=$P3 up_fake
  kill "$hp"; wait "$hp" 2>/dev/null
  [ "$RC" -eq 1 ] && expect_in "$ERR" "something already answers on http://127.0.0.1:$P3" &&
    expect_in "$ERR" "--port N" && port_free $P2
}

t_fake_s3_helpers() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home s3
  up_fake; [ "$RC" -eq 0 ] || { say "    up failed: $(cat "$ERR")"; cleanup_home; return 1; }
  head -c 300000 /dev/urandom > "$WORK/blob.bin"; echo "the quick brown fox" > "$WORK/t.txt"
  local r=0
  { expect_rc 0 "$NEXUS" s3 mb cli-test && expect_in "$OUT" "created s3://cli-test" &&
    expect_rc 0 "$NEXUS" s3 mb cli-test && expect_in "$OUT" "exists: s3://cli-test" &&
    expect_rc 0 "$NEXUS" s3 put "cli-test/dir/a b+c.txt" "$WORK/t.txt" && expect_in "$OUT" "(20 bytes)" &&
    expect_rc 0 "$NEXUS" s3 put cli-test/blob.bin "$WORK/blob.bin" &&
    expect_rc 0 "$NEXUS" s3 get "s3://cli-test/dir/a b+c.txt" && expect_in "$OUT" "the quick brown fox" &&
    expect_rc 0 "$NEXUS" s3 get cli-test/blob.bin "$WORK/blob.out" && cmp -s "$WORK/blob.bin" "$WORK/blob.out" &&
    expect_rc 0 "$NEXUS" s3 head "cli-test/dir/a b+c.txt" && expect_in "$OUT" "20 bytes  text/plain" &&
    expect_rc 0 "$NEXUS" s3 ls && expect_in "$OUT" "s3://cli-test" &&
    expect_rc 0 "$NEXUS" s3 ls cli-test/dir/ && expect_in "$OUT" "s3://cli-test/dir/a b+c.txt" && expect_not_in "$OUT" "blob.bin" &&
    expect_rc 1 "$NEXUS" s3 get cli-test/missing && expect_in "$ERR" "NoSuchKey" &&
    expect_rc 1 "$NEXUS" s3 put cli-test/x "$WORK/no-such-file" && expect_in "$ERR" "cannot read $WORK/no-such-file" &&
    expect_rc 1 "$NEXUS" s3 put no-such-bucket/x "$WORK/t.txt" && expect_in "$ERR" "NoSuchBucket" &&
    expect_rc 1 "$NEXUS" s3 ls no-such-bucket && expect_in "$ERR" "NoSuchBucket" &&
    expect_rc 0 "$NEXUS" s3 rm cli-test/blob.bin && expect_rc 1 "$NEXUS" s3 head cli-test/blob.bin; } || r=1
  # more than one page (s3rver pages at 1000 keys): the continuation token must round-trip
  if [ $r -eq 0 ]; then
    # the keys go in through boto3 (one process, fast); the listing under test is ours
    /usr/bin/python3 - <<'PY' || r=1
import os, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + os.environ["NEXUS_S3_PORT"], region_name="us-east-1",
                  aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER")
for i in range(1005):
    s3.put_object(Bucket="cli-test", Key=f"many/k{i:04d}", Body=b"")
PY
    expect_rc 0 "$NEXUS" s3 ls cli-test/many/ && [ "$(grep -c 's3://cli-test/many/k' "$OUT")" -eq 1005 ] ||
      { say "    paginated listing returned $(grep -c 's3://cli-test/many/k' "$OUT") of 1005 keys"; r=1; }
  fi
  cleanup_home
  return $r
}

t_fake_deploy_invoke_logs() {
  need_s3 || return 77; need_ports $P1 $P2 || return 77
  new_home deploy
  up_fake; [ "$RC" -eq 0 ] || { say "    up failed: $(cat "$ERR")"; cleanup_home; return 1; }
  local fn=$WORK/myfunc r=0
  mkdir -p "$fn/__pycache__" "$fn/lib"
  echo 'def handler(e, c): return e' > "$fn/app.py"; echo 'x = 1' > "$fn/lib/util.py"
  touch "$fn/__pycache__/app.cpython-311.pyc" "$fn/.secret"
  local reqs=$NEXUS_HOME/state/requests.jsonl
  { expect_rc 0 "$NEXUS" deploy "$fn" --memory 256 --timeout 10 --buckets dep-in,dep-out --env A=1 --env B=x=y \
        --mode baseline --max-instances 4 --sandbox process &&
    expect_in "$OUT" "deployed myfunc: handler app.handler, 256 MB, 10 s, mode baseline" &&
    expect_in "$OUT" "created bucket s3://dep-in" &&
    json_check "$reqs" 'j["FunctionName"]=="myfunc" and j["Handler"]=="app.handler" and j["MemorySize"]==256 and j["Timeout"]==10 and j["Environment"]["Variables"]=={"A":"1","B":"x=y"} and j["Tags"]=={"nexus:mode":"baseline","nexus:sandbox":"process","nexus:buckets":"dep-in,dep-out","nexus:max-instances":"4"}' &&
    expect_rc 0 "$NEXUS" status --json && json_check "$OUT" 'sorted(j["functions"][0]["CodeFiles"])==["app.py","lib/util.py"]' &&
    expect_rc 0 "$NEXUS" s3 ls && expect_in "$OUT" "s3://dep-out" &&
    # redeploy with defaults: replaces the function and its settings
    expect_rc 0 "$NEXUS" deploy "$fn" --name other --handler lib.nothere.main && expect_in "$ERR" "lib/nothere.py" && expect_in "$ERR" "Runtime.ImportModuleError" &&
    expect_rc 0 "$NEXUS" deploy "$fn" && expect_in "$OUT" "replaced the existing myfunc" &&
    tail -n 1 "$reqs" > "$WORK/last.json" &&
    json_check "$WORK/last.json" 'j["MemorySize"]==128 and j["Timeout"]==3 and j["Tags"]=={"nexus:mode":"nexus"}' &&
    expect_rc 0 "$NEXUS" invoke myfunc --payload '{"n": 42}' && json_check "$OUT" 'j=={"echo":{"n":42},"function":"myfunc"}' &&
    echo '{"from": "file"}' > "$WORK/ev.json" &&
    expect_rc 0 "$NEXUS" invoke myfunc --payload @"$WORK/ev.json" && expect_in "$OUT" '"from": "file"' &&
    expect_rc 0 "$NEXUS" invoke myfunc && expect_in "$OUT" '"echo": {}' &&
    expect_rc 1 "$NEXUS" invoke myfunc --payload '{"fail": true}' && [ ! -s "$OUT" ] &&
    expect_in "$ERR" '"errorType": "ValueError"' && expect_in "$ERR" 'nexus logs myfunc' &&
    expect_rc 1 "$NEXUS" invoke ghost && expect_in "$ERR" "HTTP 404 ResourceNotFoundException: Function not found: ghost" &&
    expect_rc 1 "$NEXUS" invoke myfunc --payload '{"sleep": 3}' --cli-timeout 1 &&
    expect_in "$ERR" "did not answer POST /2015-03-31/functions/myfunc/invocations within 1 s" &&
    expect_rc 0 "$NEXUS" logs myfunc && [ "$(grep -c '^START RequestId' "$OUT")" -eq 4 ] &&
    expect_rc 0 "$NEXUS" logs myfunc --tail 1 && [ "$(wc -l < "$OUT")" -eq 1 ] && expect_in "$OUT" "END RequestId" &&
    expect_rc 1 "$NEXUS" logs ghost && expect_in "$ERR" "ResourceNotFoundException" &&
    expect_rc 0 "$NEXUS" delete other && expect_rc 1 "$NEXUS" delete other && expect_in "$ERR" "HTTP 404"; } || r=1
  cleanup_home
  return $r
}

t_external_s3_endpoint() {
  need_ports $P1 || return 77
  new_home external
  # An external endpoint: no local S3 server is started, and no secret is written down.
  AWS_ENDPOINT_URL_S3=http://127.0.0.1:$P4 AWS_ACCESS_KEY_ID=AKEXAMPLE AWS_SECRET_ACCESS_KEY=topsecret \
    AWS_REGION=eu-west-3 NEXUS_NEXUSD=$FAKE "$NEXUS" up > "$OUT" 2> "$ERR"; RC=$?
  local r=0
  { [ "$RC" -eq 0 ] && expect_in "$OUT" "from AWS_ENDPOINT_URL_S3; no local S3 server" && [ ! -e "$NEXUS_HOME/s3.pid" ] &&
    expect_not_in "$NEXUS_HOME/config.json" "topsecret" &&
    expect_rc 0 "$NEXUS" status --json &&
    json_check "$OUT" 'j["s3"]=={"endpoint":"http://127.0.0.1:'"$P4"'","region":"eu-west-3","access_key":"AKEXAMPLE","secret_key":None,"local":False} and j["pids"]["s3"] is None' &&
    grep -q -- "--s3-endpoint" /proc/"$(cat "$NEXUS_HOME/nexusd.pid")"/cmdline &&
    tr '\0' ' ' < /proc/"$(cat "$NEXUS_HOME/nexusd.pid")"/cmdline | grep -qF -- "--s3-endpoint http://127.0.0.1:$P4 --s3-region eu-west-3" &&
    ! tr '\0' ' ' < /proc/"$(cat "$NEXUS_HOME/nexusd.pid")"/cmdline | grep -q topsecret; } || r=1
  cleanup_home
  return $r
}

# ------------------------------------------------------------------ real nexusd
need_real() {
  local nd=$ROOT/$BUILD/bin/nexusd
  [ -x "$nd" ] || { skip "$BUILD/bin/nexusd is not built yet: the real deploy/invoke/logs/down tests need it"; return 77; }
  [ -d "$ROOT/build/runtime/python" ] || { skip "build/runtime/python (the guest runtime) is not built yet"; return 77; }
  [ -d "$ROOT/build/rootfs/usr/bin" ] || { skip "build/rootfs is not built yet (make rootfs)"; return 77; }
  need_s3 || return 77
  need_ports $P1 $P2 || return 77
}

t_real_deploy_invoke_logs_down() {
  need_real || return 77
  new_home real
  expect_rc 0 "$NEXUS" up || { cleanup_home; return 1; }
  local fn=$WORK/realfn r=0
  mkdir -p "$fn"
  cat > "$fn/app.py" <<'PY'
import os
def handler(event, context):
    print("cli-test handler saw", event)
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"n": event.get("n", 0) * 2, "fn": context.function_name, "env": os.environ.get("GREETING")}
PY
  { expect_rc 0 "$NEXUS" deploy "$fn" --name clitest --env GREETING=hi &&
    expect_rc 0 "$NEXUS" invoke clitest --payload '{"n": 21}' &&
    json_check "$OUT" 'j=={"n":42,"fn":"clitest","env":"hi"}' &&
    expect_rc 1 "$NEXUS" invoke clitest --payload '{"fail": true}' &&
    expect_in "$ERR" '"errorType": "ValueError"' && expect_in "$ERR" "asked to fail" &&
    expect_rc 1 "$NEXUS" invoke ghost && expect_in "$ERR" "ResourceNotFoundException" &&
    expect_rc 0 "$NEXUS" logs clitest && expect_in "$OUT" "cli-test handler saw {'n': 21}" && expect_in "$OUT" "START RequestId" &&
    expect_rc 0 "$NEXUS" status --json &&
    json_check "$OUT" 'j["ingress"]=="http://127.0.0.1:'"$P1"'" and j["s3"]["access_key"]=="S3RVER" and isinstance(j["functions"],list) and len(j["functions"])==1 and isinstance(j["instances"],list)' &&
    expect_rc 0 "$NEXUS" delete clitest; } || r=1
  local np; np=$(cat "$NEXUS_HOME/nexusd.pid" 2>/dev/null)
  expect_rc 0 "$NEXUS" down && expect_in "$OUT" "stopping nexusd" && ! pid_alive "$np" || r=1
  [ $r -ne 0 ] && { say "    nexusd log:"; tail -n 30 "$NEXUS_HOME/logs/nexusd.log" | sed 's/^/      /' >&2; }
  cleanup_home
  return $r
}

t_real_demo_script() {
  need_real || return 77
  new_home demo
  # scripts/demo.sh as `make demo` runs it, on this test's private home and ports: it must
  # start the node, show every example's result and output, and on a rerun reuse the node.
  local r=0
  { NEXUS_CLI=$NEXUS expect_rc 0 scripts/demo.sh && expect_in "$OUT" "Nexus is up." &&
    expect_in "$OUT" "output: s3://nexus-demo/image-rotate/output.png (" &&
    expect_in "$OUT" "output: s3://nexus-demo/wordcount/counts.json (" &&
    expect_in "$OUT" "output: s3://nexus-demo/pyaes/input.bin.aes (16384 bytes" &&
    expect_in "$OUT" '"greeting": "Hello, Nexus!"' && expect_in "$OUT" "build/bin/nexus down" &&
    expect_not_in "$OUT" "FAILED" &&
    expect_rc 0 "$NEXUS" s3 get nexus-demo/image-rotate/output.png "$WORK/rotated.png" &&
    /usr/bin/python3 -c 'import sys; from PIL import Image; sys.exit(Image.open(sys.argv[1]).size != (108, 192))' "$WORK/rotated.png" &&
    NEXUS_CLI=$NEXUS expect_rc 0 scripts/demo.sh && expect_in "$OUT" "A node is already running: reusing it." &&
    expect_not_in "$OUT" "FAILED"; } || r=1
  cleanup_home
  return $r
}

[ -x "$NEXUS" ] || { say "test-cli: $NEXUS is not built"; passed=0 failed=1 skipped=0; write_counts; exit 1; }
ALL_TESTS="no_args help unknown_command command_help deploy_arg_errors invoke_arg_errors
         not_running_messages up_without_nexusd
         fake_up_status_down fake_stale_pidfiles fake_restart_after_nexusd_died fake_nexusd_fails_to_start fake_down_sigkill_after_grace
         fake_port_in_use fake_s3_helpers fake_deploy_invoke_logs external_s3_endpoint
         real_deploy_invoke_logs_down real_demo_script"
# `tests/cli/run.sh NAME...` runs only those tests (while debugging one).
for t in ${*:-$ALL_TESTS}; do
  run_test "$t"
done
write_counts
rm -rf "$WORK"
[ "$failed" -eq 0 ]
