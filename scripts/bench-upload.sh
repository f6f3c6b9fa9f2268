#!/usr/bin/env bash
# Side-by-side upload benchmark, one run, same file, same local S3 server
# (versitygw, posix backend, Object-Locked versioned buckets), then the peak
# memory of evidenced during a large upload. Prints MB/s (10^6 bytes/s), peak
# RSS and ratios; docs/BENCHMARKS.md records a run.
#
# Part 1, SIZE_MIB of incompressible data, each client into a fresh bucket,
# the file in the page cache for all; each row's peak RSS from /usr/bin/time:
#   evidenced   its upload engine as the daemon runs it (test/fault/benchupload):
#               resumable multipart, 8 MiB parts, PART_CONCURRENCY in flight,
#               x-amz-checksum-sha256 on every part (the server checks it),
#               Object Lock GOVERNANCE + retain-until and tags on the object,
#               the ledger records; then the verification (HeadObject and the
#               composite SHA-256 recomputed from the file). Timed in-process,
#               so the SHA-256 of the whole file (done at ingest) is not counted.
#   bare SDK    the yardstick for the engine's own cost (benchupload -bare):
#               the same multipart upload with aws-sdk-go-v2 alone, same part
#               size and concurrency, section readers over the file, and no
#               checksum of any kind (UNSIGNED-PAYLOAD, none per part), no
#               lock, no tags, no ledger, no verification.
#   bare + store checks SHA-256  (benchupload -bare-sha256) the bare upload
#               with each part's x-amz-checksum-sha256 sent (the part sums
#               computed before the clock starts, so the client hashes
#               nothing while timed): the store hashes every part to check it,
#               as it does for evidenced. bare -> this row is what that check
#               costs on the store; this row -> evidenced is the engine's own.
#   aws s3 cp   Debian awscli; same part size and concurrency (AWS_CONFIG_FILE
#               with s3.multipart_chunksize / max_concurrent_requests).
#               awscli 2.9's `s3 cp` has no --checksum-algorithm (added in later
#               2.x) and no Object Lock options; by default it sends a CRC32
#               checksum per part (the store then reports a composite CRC32).
#   aws s3api put-object  the only awscli 2.9 command that sends our integrity
#               and lock headers: --checksum-algorithm SHA256 and
#               --object-lock-mode GOVERNANCE; a single PUT (<= 5 GiB), no
#               parallelism.
#   rclone copy Debian rclone 1.60, env-configured remote (path style,
#               --expect-continue-timeout 0), same part size and concurrency.
#               rclone 1.60 sends no x-amz-checksum-* and has no Object Lock
#               options; it MD5s the file first (its own integrity metadata).
# Beside each row's wall time: the client's CPU (user + system; for
# benchupload its own getrusage over the timed part, for the others
# /usr/bin/time over the whole process) and the store's, versitygw's
# utime + stime from /proc/<pid>/stat before and after the row. On a 2-core
# host the two compete for the cores, so CPU seconds say where the time went.
# So aws s3 cp and rclone store unlocked objects: a bucket default retention
# would lock them server-side, but versitygw 1.8.0 stores that configuration
# without applying it (GetObjectRetention: none), so they are not given one.
#
# Part 2 (RSS_GIB > 0): `evidenced ingest` of one RSS_GIB GiB recording (a
# sparse file with random blocks, created in a second) into a fresh state dir
# with the store configured: copy + hash into the vault, cold read-back,
# multipart upload, verify — the whole pipeline in one process. Peak RSS from
# /usr/bin/time -v (ru_maxrss) and VmHWM polled from /proc every second, so
# the growth (or not) over the run shows. Needs ~3 x RSS_GIB GiB of free disk
# (vault copy + the server's object + its multipart parts); everything is
# removed at the end.
#
# The server keeps object metadata in a sidecar directory (VGW_SIDECAR=1,
# for every row alike): in user xattrs on ext4, versitygw 1.8.0 cannot
# complete a multipart upload of 1280 parts (10 GiB in 8 MiB parts) —
# "set object multipart metadata: No space left on device", answered as 500
# InternalError — because the parts' metadata outgrows ext4's one xattr block.
#
# usage: scripts/bench-upload.sh [SIZE_MIB (default 1024)] [RSS_GIB (default 10; 0 skips part 2)]
# Environment: BENCH_DIR (default /tmp/evidenced-bench-upload; the SIZE_MIB
# source file is kept there for the next run), S3_PORT (default 7171),
# PART_CONCURRENCY (default 4), VGW_SIDECAR (default 1), ROWS (the rows of
# part 1, run in the order given; default "ev bare baresha cp api rc";
# e.g. ROWS="base ev bare baresha" then ROWS="ev base baresha bare" for
# back-to-back pairs), BASE_BIN (a benchupload binary built from another
# tree, e.g. main, timed as row "base" on the same server and file).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
RSS_GIB=${2:-10}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-upload}
export S3_PORT=${S3_PORT:-7171}
export S3_DIR=$BENCH_DIR/s3
PC=${PART_CONCURRENCY:-4}
export VGW_SIDECAR=${VGW_SIDECAR:-1}
AWS=/usr/bin/aws
[ -x "$AWS" ] || { echo "bench-upload: Debian awscli missing (scripts/setup.sh)" >&2; exit 1; }
command -v rclone >/dev/null || { echo "bench-upload: rclone missing (scripts/setup.sh)" >&2; exit 1; }

scripts/s3-server.sh install >/dev/null
mkdir -p .build/bin "$BENCH_DIR"
go build -o .build/bin/benchupload ./test/fault/benchupload
go build -o .build/bin/evidenced ./cmd/evidenced

RSS_DIR=$BENCH_DIR/rss
POLL_PID=
cleanup() {
  [ -n "$POLL_PID" ] && kill "$POLL_PID" 2>/dev/null || true
  scripts/s3-server.sh stop "$S3_DIR" >/dev/null 2>&1 || true
  rm -rf "$S3_DIR" "$RSS_DIR" "$BENCH_DIR/aws.config" "$BENCH_DIR"/*.time
}
trap cleanup EXIT
cleanup
scripts/s3-server.sh start "$S3_DIR" "$S3_PORT" >/dev/null
eval "$(scripts/s3-server.sh env)"
unset AWS_CA_BUNDLE
ENDPOINT=http://127.0.0.1:$S3_PORT
B_EV=bench-ev-$$ B_CP=bench-cp-$$ B_API=bench-api-$$ B_RC=bench-rc-$$ B_RSS=bench-rss-$$ B_BARE=bench-bare-$$
for b in "$B_EV" "$B_BARE" "$B_CP" "$B_API" "$B_RC" "$B_RSS"; do scripts/s3-server.sh bucket "$b" >/dev/null; done
aws() { env -u AWS_CA_BUNDLE -u AWS_PROFILE AWS_CONFIG_FILE="$BENCH_DIR/aws.config" "$AWS" --endpoint-url "$ENDPOINT" "$@"; }
cat >"$BENCH_DIR/aws.config" <<EOF
[default]
region = us-east-1
s3 =
  multipart_chunksize = 8MB
  max_concurrent_requests = $PC
EOF

F=$BENCH_DIR/upload.bin
if [ ! -f "$F" ] || [ "$(stat -c %s "$F")" != $((SIZE_MIB << 20)) ]; then
  echo "generating $SIZE_MIB MiB of incompressible data"
  head -c "$((SIZE_MIB << 20))" /dev/urandom >"$F"
fi
BYTES=$(stat -c %s "$F")
SHA_B64=$(sha256sum "$F" | cut -d' ' -f1 | xxd -r -p | base64)

# timed NAME CMD...: runs CMD under /usr/bin/time; sets T_S (wall seconds)
# and T_KB (peak RSS, KiB); the client's user and system seconds follow in
# $BENCH_DIR/NAME.time.
timed() {
  local name=$1; shift
  # Every row starts with no dirty pages left by the one before (the store
  # wrote a GiB or more of parts and object): without this sync the third
  # and fourth rows paid for the writeback of the first two, slower by up
  # to 2x whatever they were. Then the file is read into the page cache.
  sync
  cat "$F" >/dev/null
  /usr/bin/time -f '%e %M %U %S' -o "$BENCH_DIR/$name.time" "$@"
  read -r T_S T_KB _ <"$BENCH_DIR/$name.time"
}
# check BUCKET KEY [sha256]: the object is there with the file's size (and,
# for a client that sent them, our SHA-256 as the server's checksum and the
# lock).
check() {
  local h
  h=$(aws s3api head-object --bucket "$1" --key "$2" --checksum-mode ENABLED --output json)
  echo "$h" | grep -q "\"ContentLength\": $BYTES," || { echo "bench-upload: $1/$2: wrong size" >&2; echo "$h" >&2; exit 1; }
  if [ "${3:-}" = sha256 ]; then
    echo "$h" | grep -q '"ObjectLockMode": "GOVERNANCE"' || { echo "bench-upload: $1/$2: not locked" >&2; echo "$h" >&2; exit 1; }
    echo "$h" | grep -q "\"ChecksumSHA256\": \"$SHA_B64\"" || { echo "bench-upload: $1/$2: no/wrong ChecksumSHA256" >&2; echo "$h" >&2; exit 1; }
  fi
}
mbps() { echo "scale=1; $BYTES / 1000000 / $1" | bc; }
declare -A S KB CC SC LD
ROWS=" ${ROWS:-ev bare baresha cp api rc} "
want() { [[ $ROWS == *" $1 "* ]]; }
if want base; then
  [ -x "${BASE_BIN:-}" ] || { echo "bench-upload: row base needs BASE_BIN, a benchupload binary" >&2; exit 1; }
  scripts/s3-server.sh bucket "$B_EV-base" >/dev/null
fi
for r in baresha; do want $r && scripts/s3-server.sh bucket "$B_BARE-$r" >/dev/null; done
VGW_PID=$(cat "$S3_DIR/pid")
TCK=$(getconf CLK_TCK)
# vgw_ticks: the store's CPU so far (utime + stime, clock ticks). The
# command name in field 2 has no spaces (versitygw).
vgw_ticks() { awk '{print $14 + $15}' "/proc/$VGW_PID/stat"; }
# storecpu NAME CMD...: timed, and sets SC[NAME] (the store's CPU seconds
# over the row) and, from /usr/bin/time, CC[NAME] (the client's).
storecpu() {
  local name=$1 t0; shift
  LD[$name]=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(vgw_ticks)
  timed "$name" "$@"
  SC[$name]=$(awk -v a="$t0" -v b="$(vgw_ticks)" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}')
  CC[$name]=$(awk '{printf "%.2f", $3 + $4}' "$BENCH_DIR/$name.time")
}
# field NAME KEY: KEY=value from benchupload's output line.
field() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$BENCH_DIR/$1.out"; }

# evrow NAME BIN BUCKET: the engine's row (BIN is this tree's benchupload or BASE_BIN).
evrow() {
  storecpu "$1" "$2" -endpoint "$ENDPOINT" -bucket "$3" -file "$F" -part-concurrency "$PC" >"$BENCH_DIR/$1.out"
  cat "$BENCH_DIR/$1.out"
  S[$1]=$(field "$1" upload_s) S[$1v]=$(field "$1" upload_verify_s) KB[$1]=$T_KB
  [ -n "$(field "$1" cpu_s)" ] && CC[$1]=$(field "$1" cpu_s)
  return 0
}
run_base() {
  echo "== evidenced upload engine, BASE_BIN $BASE_BIN ($SIZE_MIB MiB, 8 MiB parts, part_concurrency $PC)"
  evrow base "$BASE_BIN" "$B_EV-base"
}
run_ev() {
  echo "== evidenced upload engine ($SIZE_MIB MiB, 8 MiB parts, part_concurrency $PC, SHA-256 per part, Object Lock)"
  evrow ev .build/bin/benchupload "$B_EV"
}
# barerow NAME FLAG BUCKET KEY
barerow() {
  storecpu "$1" .build/bin/benchupload "$2" -endpoint "$ENDPOINT" -bucket "$3" -file "$F" -part-concurrency "$PC" >"$BENCH_DIR/$1.out"
  cat "$BENCH_DIR/$1.out"
  S[$1]=$(field "$1" "$1_s") CC[$1]=$(field "$1" cpu_s) KB[$1]=$T_KB
  check "$3" "$4"
}
run_bare() {
  echo "== bare aws-sdk-go-v2 multipart upload (same parts and concurrency; no checksums, lock, tags or ledger)"
  barerow bare -bare "$B_BARE" bare.bin
}
run_baresha() {
  echo "== bare aws-sdk-go-v2 + x-amz-checksum-sha256 per part (precomputed; the store checks it)"
  barerow baresha -bare-sha256 "$B_BARE-baresha" baresha.bin
}

run_cp() {
  echo "== aws s3 cp ($("$AWS" --version 2>&1 | cut -d' ' -f1); no --checksum-algorithm in this version)"
  storecpu cp aws s3 cp --only-show-errors "$F" "s3://$B_CP/upload.bin"
  S[cp]=$T_S KB[cp]=$T_KB
  check "$B_CP" upload.bin
}

API_NOTE=""
run_api() {
  if [ "$BYTES" -le $((5 << 30)) ]; then
    echo "== aws s3api put-object --checksum-algorithm SHA256 --object-lock-mode GOVERNANCE (single PUT)"
    storecpu api aws s3api put-object --bucket "$B_API" --key upload.bin --body "$F" --checksum-algorithm SHA256 \
      --object-lock-mode GOVERNANCE --object-lock-retain-until-date "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" --output text >/dev/null
    S[api]=$T_S KB[api]=$T_KB
    check "$B_API" upload.bin sha256
  else
    API_NOTE="skipped: a single PUT is limited to 5 GiB"
  fi
}

run_rc() {
  echo "== rclone copy ($(rclone version 2>/dev/null | head -1 | cut -d' ' -f2); 8 MiB chunks, $PC in flight)"
  export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENV_AUTH=true \
    RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
  storecpu rc rclone copy --config /dev/null --expect-continue-timeout 0 --s3-chunk-size 8M --s3-upload-concurrency "$PC" \
    "$F" "bench:$B_RC/"
  S[rc]=$T_S KB[rc]=$T_KB
  check "$B_RC" upload.bin
}

# The rows run in the order ROWS names them (alternate it between runs).
for r in $ROWS; do
  declare -F "run_$r" >/dev/null || { echo "bench-upload: unknown row $r" >&2; exit 1; }
  "run_$r"
done

echo
echo "$SIZE_MIB MiB, same file, same server, one run ($(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)):"
printf "%-58s %8s   %8s      %10s %9s %7s %6s\n" "" "wall" "" "client CPU" "store CPU" "RSS" "load"
# row NAME LABEL [WALL]: one contender (skipped when it did not run).
row() {
  local w=${3:-${S[$1]:-}}
  [ -n "$w" ] || return 0
  printf "%-58s %8s s %8s MB/s %8s s %7s s %5s MiB %6s\n" "$2" "$w" "$(mbps "$w")" "${CC[$1]:--}" "${SC[$1]:--}" "$((${KB[$1]:-0} / 1024))" "${LD[$1]:--}"
}
row base "evidenced upload, BASE_BIN" 
row base "evidenced upload + verify, BASE_BIN" "${S[basev]:-}"
row ev "evidenced upload (SHA-256 per part, lock, ledger)"
row ev "evidenced upload + verify" "${S[evv]:-}"
row bare "bare aws-sdk-go-v2 (no checksums, lock, tags, ledger)"
row baresha "bare + store checks SHA-256 (x-amz-checksum-sha256)"
row cp "aws s3 cp (CRC32 per part; no lock)"
row api "aws s3api put-object (SHA-256, lock; single PUT)"
[ -n "$API_NOTE" ] && echo "aws s3api put-object: $API_NOTE"
row rc "rclone copy (MD5 first; no checksum header, no lock)"
echo "(client CPU: benchupload's own over the timed part — for evidenced, upload + verify —"
echo " or /usr/bin/time over the whole process; store CPU: versitygw over the whole row;"
echo " RSS: peak RSS of the client process; load: 1-minute load average as the row started)"
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
# ratios A B LABEL: throughput of A over B, when both ran.
ratios() { [ -n "${S[$1]:-}" ] && [ -n "${S[$2]:-}" ] && printf "throughput ratio %-44s %s\n" "$3:" "$(ratio "${S[$2]}" "${S[$1]}")"; return 0; }
ratios ev cp "evidenced upload / aws s3 cp"
ratios ev bare "evidenced upload / bare aws-sdk-go-v2"
ratios ev baresha "evidenced upload / bare + store checks SHA-256"
ratios baresha bare "bare + store checks SHA-256 / bare"
ratios base bare "BASE_BIN upload / bare aws-sdk-go-v2"
ratios base baresha "BASE_BIN upload / bare + store checks SHA-256"
ratios base cp "BASE_BIN upload / aws s3 cp"
ratios bare cp "bare aws-sdk-go-v2 / aws s3 cp"
ratios evv cp "evidenced upload+verify / aws s3 cp"
ratios ev api "evidenced upload / aws s3api put-object"
ratios ev rc "evidenced upload / rclone copy"
ratios evv rc "evidenced upload+verify / rclone"

[ "$RSS_GIB" -gt 0 ] || exit 0
echo
echo "== peak RSS: evidenced ingest of one $RSS_GIB GiB recording (copy, read-back, multipart upload, verify)"
free_gib=$(( $(df -k --output=avail "$BENCH_DIR" | tail -1) >> 20 ))
if [ "$free_gib" -lt $((3 * RSS_GIB + 5)) ]; then
  echo "bench-upload: $free_gib GiB free under $BENCH_DIR; need $((3 * RSS_GIB + 5)): skipping part 2" >&2
  exit 1
fi
mkdir -p "$RSS_DIR/cam/DCIM/100MEDIA" "$RSS_DIR/watch"
BIG=$RSS_DIR/cam/DCIM/100MEDIA/BIG.MP4
truncate -s "${RSS_GIB}G" "$BIG"
for ((g = 0; g < RSS_GIB * 16; g++)); do # 1 MiB of random data every 64 MiB: parts differ
  head -c 1048576 /dev/urandom | dd of="$BIG" bs=1M seek=$((g * 64)) conv=notrunc status=none
done
cat >"$RSS_DIR/evidenced.yaml" <<EOF
host_id: bench-rss
state_dir: $RSS_DIR/state
sources:
  watch: [$RSS_DIR/watch]
object_store:
  endpoint: $ENDPOINT
  bucket: $B_RSS
  region: us-east-1
  path_style: true
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 1, mode: GOVERNANCE}
cameras:
  - {serial: BENCH-RSS, kind: vehicle, assigned_to: bench}
vault_reserve: 0
upload:
  part_concurrency: $PC
EOF
/usr/bin/time -v -o "$BENCH_DIR/rss.time" .build/bin/evidenced ingest --camera BENCH-RSS --from "$RSS_DIR/cam" \
  --config "$RSS_DIR/evidenced.yaml" --json >"$BENCH_DIR/rss.out" &
TIME_PID=$!
(
  # VmHWM of the evidenced process (the child of /usr/bin/time), about once
  # a second; t is the seconds since the start.
  SECONDS=0
  while kill -0 "$TIME_PID" 2>/dev/null; do
    pid=$(pgrep -P "$TIME_PID" || true)
    [ -n "$pid" ] && awk -v t=$SECONDS '/^VmHWM|^VmRSS/ {v[$1]=$2} END {if (v["VmHWM:"]) print t, v["VmRSS:"], v["VmHWM:"]}' "/proc/$pid/status" 2>/dev/null
    sleep 1
  done
) >"$BENCH_DIR/rss.poll" &
POLL_PID=$!
rc=0; wait "$TIME_PID" || rc=$?
wait "$POLL_PID" 2>/dev/null || true; POLL_PID=
if [ $rc -ne 0 ]; then
  echo "bench-upload: evidenced ingest exited $rc" >&2; cat "$BENCH_DIR/rss.out" "$BENCH_DIR/rss.time" >&2; exit 1
fi
grep -q '"verified"' "$BENCH_DIR/rss.out" || { echo "bench-upload: recording not verified" >&2; cat "$BENCH_DIR/rss.out" >&2; exit 1; }
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$BENCH_DIR/rss.time")
maxkb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$BENCH_DIR/rss.time")
n=$(wc -l <"$BENCH_DIR/rss.poll")
echo "VmRSS / VmHWM (KiB) over the run, every 10% of it:"
awk -v n="$n" 'n > 0 && (NR == 1 || NR % int((n + 9) / 10) == 0 || NR == n) {printf "  t=%4ds  VmRSS %7d  VmHWM %7d\n", $1, $2, $3}' "$BENCH_DIR/rss.poll"
hwm=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$BENCH_DIR/rss.poll")
echo "evidenced ingest of $RSS_GIB GiB: wall $wall, peak RSS $((maxkb / 1024)) MiB ($maxkb KiB, /usr/bin/time -v; highest VmHWM polled: $hwm KiB)"
echo "(wall covers the copy into the vault + fsync, the cold read-back, the multipart upload and the verification)"
