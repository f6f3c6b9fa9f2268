#!/usr/bin/env bash
# Side-by-side upload benchmark, one run, same file, same local S3 server
# (versitygw, posix backend): evidenced's upload engine (resumable multipart,
# per-part x-amz-checksum-sha256, Object Lock GOVERNANCE, then verification)
# against `aws s3 cp` (Debian awscli 2.9, its default integrity checks; no lock:
# `s3 cp` cannot set one). Prints MB/s and ratios; docs/BENCHMARKS.md records
# a run.
#
# usage: scripts/bench-upload.sh [SIZE_MIB (default 1024)]
# Environment: BENCH_DIR (default /tmp/evidenced-bench-upload), S3_PORT
# (default 7171), PART_CONCURRENCY (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-upload}
export S3_PORT=${S3_PORT:-7171}
export S3_DIR=$BENCH_DIR/s3
PC=${PART_CONCURRENCY:-4}

scripts/s3-server.sh install >/dev/null
mkdir -p .build/bin "$BENCH_DIR"
go build -o .build/bin/benchupload ./test/fault/benchupload

stop() { scripts/s3-server.sh stop "$S3_DIR" >/dev/null 2>&1 || true; }
trap stop EXIT
stop
rm -rf "$S3_DIR"
scripts/s3-server.sh start "$S3_DIR" "$S3_PORT" >/dev/null
eval "$(scripts/s3-server.sh env)"
unset AWS_CA_BUNDLE
ENDPOINT=http://127.0.0.1:$S3_PORT
B1=bench-ev-$$; B2=bench-aws-$$
scripts/s3-server.sh bucket "$B1" >/dev/null
scripts/s3-server.sh bucket "$B2" >/dev/null

F=$BENCH_DIR/upload.bin
if [ ! -f "$F" ] || [ "$(stat -c %s "$F")" != $((SIZE_MIB << 20)) ]; then
  echo "generating $SIZE_MIB MiB of incompressible data"
  head -c "$((SIZE_MIB << 20))" /dev/urandom > "$F"
fi
BYTES=$(stat -c %s "$F")
cat "$F" > /dev/null # both start with the file in the page cache

now() { date +%s.%N; }
echo "== evidenced upload engine ($SIZE_MIB MiB, part_concurrency $PC)"
EVOUT=$(.build/bin/benchupload -endpoint "$ENDPOINT" -bucket "$B1" -file "$F" -part-concurrency "$PC")
echo "$EVOUT"
EV_UP=$(echo "$EVOUT" | sed -n 's/.*upload_s=\([0-9.]*\).*/\1/p')
EV_ALL=$(echo "$EVOUT" | sed -n 's/.*upload_verify_s=\([0-9.]*\).*/\1/p')

echo "== aws s3 cp ($(env -u AWS_CA_BUNDLE /usr/bin/aws --version 2>&1 | cut -d' ' -f1))"
t0=$(now)
env -u AWS_CA_BUNDLE /usr/bin/aws s3 cp --only-show-errors --endpoint-url "$ENDPOINT" "$F" "s3://$B2/upload.bin"
t1=$(now)
AWS_S=$(echo "$t1 - $t0" | bc)

mbps() { echo "scale=1; $BYTES / 1000000 / $1" | bc; }
echo
printf "%-40s %8s s %8s MB/s\n" "evidenced (upload, incl. hashing)" "$EV_UP" "$(mbps "$EV_UP")"
printf "%-40s %8s s %8s MB/s\n" "evidenced (upload + verify)" "$EV_ALL" "$(mbps "$EV_ALL")"
printf "%-40s %8s s %8s MB/s\n" "aws s3 cp (CRC/MD5 defaults)" "$AWS_S" "$(mbps "$AWS_S")"
echo "ratio evidenced upload / aws s3 cp throughput: $(echo "scale=2; $AWS_S / $EV_UP" | bc)"
echo "ratio evidenced upload+verify / aws s3 cp:     $(echo "scale=2; $AWS_S / $EV_ALL" | bc)"
