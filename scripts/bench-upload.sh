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
# PART_CONCURRENCY (default 4), VGW_SIDECAR (default 1).
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
# and T_KB (peak RSS, KiB).
timed() {
  local name=$1; shift
  cat "$F" >/dev/null # every client starts with the file in the page cache
  /usr/bin/time -f '%e %M' -o "$BENCH_DIR/$name.time" "$@"
  read -r T_S T_KB <"$BENCH_DIR/$name.time"
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
declare -A S KB

echo "== evidenced upload engine ($SIZE_MIB MiB, 8 MiB parts, part_concurrency $PC, SHA-256 per part, Object Lock)"
timed ev .build/bin/benchupload -endpoint "$ENDPOINT" -bucket "$B_EV" -file "$F" -part-concurrency "$PC" >"$BENCH_DIR/ev.out"
EVOUT=$(cat "$BENCH_DIR/ev.out"); echo "$EVOUT"
S[ev]=$(echo "$EVOUT" | sed -n 's/.*upload_s=\([0-9.]*\).*/\1/p')
S[evv]=$(echo "$EVOUT" | sed -n 's/.*upload_verify_s=\([0-9.]*\).*/\1/p')
KB[ev]=$T_KB

echo "== bare aws-sdk-go-v2 multipart upload (same parts and concurrency; no checksums, lock, tags or ledger)"
timed bare .build/bin/benchupload -bare -endpoint "$ENDPOINT" -bucket "$B_BARE" -file "$F" -part-concurrency "$PC" >"$BENCH_DIR/bare.out"
BAREOUT=$(cat "$BENCH_DIR/bare.out"); echo "$BAREOUT"
S[bare]=$(echo "$BAREOUT" | sed -n 's/.*bare_s=\([0-9.]*\).*/\1/p')
KB[bare]=$T_KB
check "$B_BARE" bare.bin

echo "== aws s3 cp ($("$AWS" --version 2>&1 | cut -d' ' -f1); no --checksum-algorithm in this version)"
timed cp aws s3 cp --only-show-errors "$F" "s3://$B_CP/upload.bin"
S[cp]=$T_S KB[cp]=$T_KB
check "$B_CP" upload.bin

API_NOTE=""
if [ "$BYTES" -le $((5 << 30)) ]; then
  echo "== aws s3api put-object --checksum-algorithm SHA256 --object-lock-mode GOVERNANCE (single PUT)"
  timed api aws s3api put-object --bucket "$B_API" --key upload.bin --body "$F" --checksum-algorithm SHA256 \
    --object-lock-mode GOVERNANCE --object-lock-retain-until-date "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)" --output text >/dev/null
  S[api]=$T_S KB[api]=$T_KB
  check "$B_API" upload.bin sha256
else
  API_NOTE="skipped: a single PUT is limited to 5 GiB"
fi

echo "== rclone copy ($(rclone version 2>/dev/null | head -1 | cut -d' ' -f2); 8 MiB chunks, $PC in flight)"
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENV_AUTH=true \
  RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_REGION=us-east-1 RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
timed rc rclone copy --config /dev/null --expect-continue-timeout 0 --s3-chunk-size 8M --s3-upload-concurrency "$PC" \
  "$F" "bench:$B_RC/"
S[rc]=$T_S KB[rc]=$T_KB
check "$B_RC" upload.bin

echo
echo "$SIZE_MIB MiB, same file, same server, one run ($(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)):"
row() { printf "%-58s %8s s %8s MB/s %7s MiB\n" "$1" "$2" "$(mbps "$2")" "$3"; }
row "evidenced upload (SHA-256 per part, lock, ledger)" "${S[ev]}" "$((KB[ev] / 1024))"
row "evidenced upload + verify" "${S[evv]}" "$((KB[ev] / 1024))"
row "bare aws-sdk-go-v2 (no checksums, lock, tags, ledger)" "${S[bare]}" "$((KB[bare] / 1024))"
row "aws s3 cp (CRC32 per part; no lock)" "${S[cp]}" "$((KB[cp] / 1024))"
if [ -n "${S[api]:-}" ]; then
  row "aws s3api put-object (SHA-256, lock; single PUT)" "${S[api]}" "$((KB[api] / 1024))"
else
  echo "aws s3api put-object: $API_NOTE"
fi
row "rclone copy (MD5 first; no checksum header, no lock)" "${S[rc]}" "$((KB[rc] / 1024))"
echo "(last column: peak RSS of the client process)"
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }
echo "throughput ratio evidenced upload / aws s3 cp:         $(ratio "${S[cp]}" "${S[ev]}")"
echo "throughput ratio evidenced upload / bare aws-sdk-go-v2: $(ratio "${S[bare]}" "${S[ev]}")"
echo "throughput ratio bare aws-sdk-go-v2 / aws s3 cp:       $(ratio "${S[cp]}" "${S[bare]}")"
echo "throughput ratio evidenced upload+verify / aws s3 cp:  $(ratio "${S[cp]}" "${S[evv]}")"
[ -n "${S[api]:-}" ] && echo "throughput ratio evidenced upload / aws s3api put-object: $(ratio "${S[api]}" "${S[ev]}")"
echo "throughput ratio evidenced upload / rclone copy:       $(ratio "${S[rc]}" "${S[ev]}")"
echo "throughput ratio evidenced upload+verify / rclone:     $(ratio "${S[rc]}" "${S[evv]}")"

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
