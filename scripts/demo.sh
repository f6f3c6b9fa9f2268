#!/usr/bin/env bash
# The README's demo: on a fresh machine, installs what it needs, starts a real
# S3 server (versitygw) with an Object-Locked bucket, generates real H.264
# footage with ffmpeg, docks two cameras into the running evidenced daemon,
# waits until every recording is verified in the store, then prints `find`,
# one recording's `custody` (DOCKED … VERIFIED), `verify --remote` and the
# object's lock as the store reports it.
#
# It ends with a "try it yourself" block: the binary, the config, and how to
# bring the demo's S3 server back with its data and credentials.
#
# usage: scripts/demo.sh [--keep]
#   --keep  leave the S3 server and the daemon running at the end (the
#           block says how to stop them); by default both are stopped.
#
# DEMO_DIR (default /tmp/evidenced-demo) holds everything; it is recreated.
# LARGE_MB (default 512) sizes the large in-vehicle recording.
# S3_PORT (default 7070) is the S3 server's port on 127.0.0.1.
set -euo pipefail
KEEP=0
for arg in "$@"; do
  case $arg in
  --keep) KEEP=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo.sh: unknown argument $arg (usage: scripts/demo.sh [--keep])" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO_DIR=${DEMO_DIR:-/tmp/evidenced-demo}
LARGE_MB=${LARGE_MB:-512}
S3_PORT=${S3_PORT:-7070}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "setup (Debian packages, Go modules, S3 server)"
scripts/setup.sh

say "build"
mkdir -p .build/bin
go build -o .build/bin/evidenced ./cmd/evidenced
EV=$ROOT/.build/bin/evidenced

rm -rf "$DEMO_DIR"; mkdir -p "$DEMO_DIR"/{media,staging,state}
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)

cleanup() {
  [ -n "${DAEMON_PID:-}" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  S3_DIR=$DEMO_DIR/s3 S3_PORT=$S3_PORT scripts/s3-server.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "start the S3 server on 127.0.0.1:$S3_PORT"
S3_DIR=$DEMO_DIR/s3 S3_PORT=$S3_PORT scripts/s3-server.sh start
eval "$(S3_PORT=$S3_PORT scripts/s3-server.sh env)"

cat > "$DEMO_DIR/evidenced.yaml" <<YAML
host_id: demo-dock-01
state_dir: $DEMO_DIR/state
sources:
  watch: [$DEMO_DIR/media]
  settle: 1s
object_store:
  endpoint: http://127.0.0.1:$S3_PORT
  bucket: evidence-demo
  region: us-east-1
  path_style: true
  multipart_threshold: 64MiB
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
    - {name: incident, days: 2555, mode: COMPLIANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-CA123456}
shutdown_timeout: 30s
vault_reserve: 64MiB
YAML
CFG=$DEMO_DIR/evidenced.yaml

say "create the bucket (versioning + Object Lock)"
$EV store-init --config "$CFG"

say "check the host (evidenced doctor: one line per check, the fix for each that fails)"
# Not fatal here: a demo machine may, say, run without a time service.
$EV doctor --config "$CFG" || echo "(doctor exit $?: see the FAIL lines above)"

say "generate footage with ffmpeg"
scripts/make-footage.sh "$DEMO_DIR/staging/BWC-0001" 16
scripts/make-footage.sh "$DEMO_DIR/staging/CAR-0001" "$LARGE_MB"
find "$DEMO_DIR/staging" -type f -printf '%P  %s bytes\n' | sort

say "start the daemon"
$EV run --config "$CFG" > "$DEMO_DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$DEMO_DIR/state/evidenced.sock" ] && break; sleep 0.1; done
[ -S "$DEMO_DIR/state/evidenced.sock" ] || { cat "$DEMO_DIR/daemon.log"; echo "daemon did not start" >&2; exit 1; }

say "dock the cameras (each folder appearing in the watched directory is a docked camera)"
total=$(find "$DEMO_DIR/staging" -type f | wc -l)
mv "$DEMO_DIR/staging/BWC-0001" "$DEMO_DIR/media/"
mv "$DEMO_DIR/staging/CAR-0001" "$DEMO_DIR/media/"

say "waiting until all $total recordings are verified in the store"
deadline=$((SECONDS + 600))
while :; do
  # status, not find: a search is an investigator's access and goes in the
  # custody chain; the queue counts are not.
  verified=$($EV status --config "$CFG" --json | sed -n 's/^ *"verified": \([0-9]*\).*/\1/p')
  verified=${verified:-0}
  printf '\r  %s/%s verified ' "$verified" "$total"
  [ "$verified" -ge "$total" ] && break
  if [ $SECONDS -gt $deadline ]; then echo; cat "$DEMO_DIR/daemon.log"; echo "timed out" >&2; exit 1; fi
  sleep 1
done
echo
$EV status --config "$CFG"

say "evidenced find"
$EV find --config "$CFG" --actor investigator-7 --reason "demo: complaint 2026-118"

# The body camera's first video (find --json lists "id" before the other fields).
ID=$($EV find --config "$CFG" --camera BWC-0001 --json | awk -F'"' '$2=="id"{id=$4} $2=="source_path" && $4 ~ /\.MP4$/ {print id; exit}')
say "evidenced custody $ID"
$EV custody --config "$CFG" "$ID"

say "evidenced verify --remote"
$EV verify --config "$CFG" --remote --actor custodian-3 --reason "demo: monthly audit"

say "evidenced get $ID (verified before the file appears; the access is recorded)"
$EV get --config "$CFG" "$ID" --reason "demo: complaint review" --out "$DEMO_DIR/retrieved.mp4"
ffprobe -v error -show_entries format=format_name,duration -of default=nw=1 "$DEMO_DIR/retrieved.mp4"

say "evidenced export $ID (a court package a third party checks with sha256sum and openssl alone)"
rm -rf "$DEMO_DIR/export"
$EV export --config "$CFG" "$ID" --footage --actor custodian-3 --reason "demo: disclosure to defence" --out "$DEMO_DIR/export"
ls "$DEMO_DIR/export"
say "evidenced verify-export, trusting the host key's fingerprint obtained out of band (no config, no ledger, no network)"
FP=$($EV key --config "$CFG" --fingerprint | head -n1 | cut -d' ' -f1)
echo "host key fingerprint (for the custodian's certificate): $FP"
$EV verify-export --key-fingerprint "$FP" "$DEMO_DIR/export"
(cd "$DEMO_DIR/export" && sha256sum -c --quiet MANIFEST.sha256 && echo "sha256sum -c MANIFEST.sha256: every file OK")

KEY=$($EV find --config "$CFG" --camera BWC-0001 --json | awk -F'"' -v id="$ID" '$2=="id"{cur=$4} $2=="object_key" && cur==id {print $4; exit}')
say "the object as the store reports it (independent client: Debian's aws)"
if [ -x /usr/bin/aws ]; then
  env -u AWS_CA_BUNDLE /usr/bin/aws --endpoint-url "http://127.0.0.1:$S3_PORT" s3api head-object \
    --bucket evidence-demo --key "$KEY" --checksum-mode ENABLED \
    --query '{Size:ContentLength,SHA256:ChecksumSHA256,LockMode:ObjectLockMode,RetainUntil:ObjectLockRetainUntilDate,Version:VersionId}'
fi

S3=(env S3_DIR="$DEMO_DIR/s3" S3_PORT="$S3_PORT" "$ROOT/scripts/s3-server.sh")
if [ "$KEEP" = 1 ]; then
  trap - EXIT # leave both running
else
  say "stop the daemon (SIGTERM: stop intake, drain, exit 0)"
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; echo "daemon exit code $?"; DAEMON_PID=
  "${S3[@]}" stop
fi

say "try it yourself"
cat <<EOF
everything is under $DEMO_DIR
  binary:  $EV
           (or put it on PATH: go install ./cmd/evidenced installs \$(go env GOPATH)/bin/evidenced)
  config:  $CFG
           (export EVIDENCED_CONFIG=$CFG and every command finds it without --config)
  the S3 server's endpoint and credentials, for evidenced and any S3 client:
$("${S3[@]}" env | sed 's/^/    /')
EOF
if [ "$KEEP" = 1 ]; then
  cat <<EOF
  running now: the S3 server (pid $(cat "$DEMO_DIR/s3/pid"), data in $DEMO_DIR/s3) and the daemon
  (pid $DAEMON_PID, log $DEMO_DIR/daemon.log). Stop them with:
    kill -TERM $DAEMON_PID    # the daemon drains and exits 0
    S3_DIR=$DEMO_DIR/s3 S3_PORT=$S3_PORT $ROOT/scripts/s3-server.sh stop
EOF
else
  cat <<EOF
  both were stopped; start the S3 server again with its data (bucket, objects and locks kept):
    S3_DIR=$DEMO_DIR/s3 S3_PORT=$S3_PORT $ROOT/scripts/s3-server.sh start
  and, if docks should be taken in, the daemon (commands work with or without it):
    $EV run --config $CFG > $DEMO_DIR/daemon.log 2>&1 &
EOF
fi
cat <<EOF
  then, with the exports above in your shell:
    $EV find --config $CFG --reason "trying it"
    $EV custody --config $CFG $ID --reason "trying it"
    $EV verify --config $CFG --remote
    $EV status --config $CFG
  undock and dock a camera again (daemon running): nothing is copied twice
    mv $DEMO_DIR/media/BWC-0001 $DEMO_DIR/staging/ && mv $DEMO_DIR/staging/BWC-0001 $DEMO_DIR/media/
EOF
