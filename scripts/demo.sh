#!/usr/bin/env bash
# `make demo` (after `make deps` and `make all`): starts a Nexus node, or reuses the one
# already running, deploys the example functions in functions/, uploads their inputs,
# invokes each one, and prints what it returned and where its output went.  The node is
# left running; `build/bin/nexus down` stops it.  Rerunning is fine: a running node is
# reused and functions are redeployed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NEXUS=${NEXUS_CLI:-$ROOT/build/bin/nexus}   # NEXUS_CLI: another build of the CLI (the tests use it)
PY=/usr/bin/python3     # Debian's python: sees python3-pil

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -x "$NEXUS" ] || die "build/bin/nexus is not built: run \`make\` (or \`make demo\`, which builds first)"
for f in hello image-rotate wordcount pyaes; do
  [ -f "functions/$f/app.py" ] || die "functions/$f/app.py is missing: this checkout has no $f example"
done

# ---------------------------------------------------------------- the node
step "Starting the node (nexusd + local S3 server)"
if "$NEXUS" status >/dev/null 2>&1; then
  echo "A node is already running: reusing it."
  "$NEXUS" status | sed -n '2,5p'
else
  # Clean up after a node that half-died (e.g. nexusd gone, S3 server still up), then start.
  "$NEXUS" down >/dev/null 2>&1 || true
  "$NEXUS" up || die "could not start the node: see the messages above"
fi
"$NEXUS" s3 ls >/dev/null || die "the node's S3 endpoint does not answer: run \`build/bin/nexus down\`, then \`make demo\` again"

# ---------------------------------------------------------------- inputs
bucket_of() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["bucket"])' "$1"; }
BUCKET=$(bucket_of functions/image-rotate/event.json) || die "cannot read functions/image-rotate/event.json"
WORK=$(mktemp -d /tmp/nexus-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

step "Uploading sample inputs to s3://$BUCKET"
"$NEXUS" s3 mb "$BUCKET" || die "cannot create the bucket $BUCKET"
# A small picture, drawn with Pillow so it is obvious when it comes back rotated.
if ! "$PY" - "$WORK/photo.png" <<'PY'
import sys
from PIL import Image, ImageDraw
w, h = 192, 108
img = Image.new("RGB", (w, h))
px = img.load()
for y in range(h):
    for x in range(w):
        px[x, y] = (40 + x * 200 // w, 60 + y * 150 // h, 170)
d = ImageDraw.Draw(img)
d.rectangle([8, 8, 60, 40], fill=(250, 210, 60))
d.ellipse([w - 50, h - 50, w - 10, h - 10], fill=(240, 80, 80))
d.text((70, 45), "Nexus demo", fill=(255, 255, 255))
img.save(sys.argv[1], format="PNG", optimize=True)
PY
then
  echo "(Pillow is not available to /usr/bin/python3: using the checked-in functions/image-rotate/input.png)"
  cp functions/image-rotate/input.png "$WORK/photo.png"
fi
# A binary input for pyaes: every byte value, 64 times over (16 KiB).
"$PY" -c 'import sys; open(sys.argv[1], "wb").write(bytes(range(256)) * 64)' "$WORK/input.bin"
"$NEXUS" s3 put "$BUCKET/image-rotate/input.png" "$WORK/photo.png" &&
"$NEXUS" s3 put "$BUCKET/wordcount/input.txt" functions/wordcount/input.txt &&
"$NEXUS" s3 put "$BUCKET/pyaes/input.bin" "$WORK/input.bin" || die "uploading the inputs failed: see above"

# ---------------------------------------------------------------- deploy
step "Deploying the example functions"
"$NEXUS" deploy functions/hello &&
"$NEXUS" deploy functions/image-rotate --buckets "$BUCKET" --memory 256 --timeout 30 &&
"$NEXUS" deploy functions/wordcount --buckets "$BUCKET" --timeout 30 &&
"$NEXUS" deploy functions/pyaes --buckets "$BUCKET" --timeout 60 || die "deploying failed: see above"

# ---------------------------------------------------------------- invoke
failures=()
# invoke NAME PAYLOAD-JSON [OUTPUT-KEY]: runs it, shows the result and where the output went.
invoke() {
  local name=$1 payload=$2 out_key=${3:-}
  printf '\n--- %s\n    event:  %s\n' "$name" "$payload"
  local t0 t1 result
  t0=$(date +%s%N)
  if result=$("$NEXUS" invoke "$name" --payload "$payload" 2> "$WORK/err"); then
    t1=$(date +%s%N)
    printf '    result: %s\n' "$result"
    printf '    took:   %d ms (as the client saw it; a fresh deploy means a cold start)\n' $(( (t1 - t0) / 1000000 ))
    if [ -n "$out_key" ]; then
      local where
      where=$("$NEXUS" s3 head "$BUCKET/$out_key" 2>&1) || { failures+=("$name (no output at s3://$BUCKET/$out_key)"); where="MISSING: $where"; }
      printf '    output: %s\n' "$(echo "$where" | sed -E 's/  ([0-9]+) bytes  (.*)/ (\1 bytes, \2)/')"
    fi
  else
    printf '    FAILED:\n'; sed 's/^/      /' "$WORK/err"
    failures+=("$name")
  fi
}

step "Invoking them"
invoke hello "$(cat functions/hello/event.json)"
invoke image-rotate "{\"bucket\": \"$BUCKET\", \"key\": \"image-rotate/input.png\", \"output_key\": \"image-rotate/output.png\"}" \
  image-rotate/output.png
invoke wordcount "{\"bucket\": \"$BUCKET\", \"key\": \"wordcount/input.txt\", \"output_key\": \"wordcount/counts.json\", \"top\": 5}" \
  wordcount/counts.json
invoke pyaes "{\"bucket\": \"$BUCKET\", \"key\": \"pyaes/input.bin\", \"output_key\": \"pyaes/input.bin.aes\"}" \
  pyaes/input.bin.aes

# CTR mode is symmetric: decrypting the output with the function's key must give the input back.
if [[ ! " ${failures[*]-} " =~ " pyaes" ]] && "$PY" -c 'import pyaes' 2>/dev/null &&
   "$NEXUS" s3 get "$BUCKET/pyaes/input.bin.aes" "$WORK/out.aes" >/dev/null; then
  if "$PY" - "$WORK/out.aes" "$WORK/input.bin" <<'PY'
import hashlib, sys, pyaes
key = hashlib.sha256(b"nexus pyaes example key").digest()
ct, pt = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if pyaes.AESModeOfOperationCTR(key, counter=pyaes.Counter(0)).decrypt(ct) == pt else 1)
PY
  then echo "    check:  decrypting s3://$BUCKET/pyaes/input.bin.aes gives the input back"
  else echo "    check:  decrypting the output did NOT give the input back"; failures+=("pyaes (round trip)"); fi
fi

# ---------------------------------------------------------------- summary
step "Done"
"$NEXUS" s3 ls "$BUCKET" | sed 's/^/  /'
ingress=$("$NEXUS" status --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["ingress"])')
cat <<EOT

The node is still running at $ingress.
  build/bin/nexus status                 functions, instances, S3 credentials
  build/bin/nexus logs wordcount         a function's output
  build/bin/nexus invoke hello --payload '{"name": "you"}'
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \
    aws lambda list-functions --endpoint-url $ingress      (the Lambda API: any key will do)
  build/bin/nexus down                   stops the node
EOT
if [ ${#failures[@]} -gt 0 ]; then
  printf '\ndemo: %d invocation(s) failed: %s\n' "${#failures[@]}" "${failures[*]}" >&2
  echo "demo: see \`build/bin/nexus logs NAME\` and ~/.nexus/logs/nexusd.log (or \$NEXUS_HOME/logs)" >&2
  exit 1
fi
