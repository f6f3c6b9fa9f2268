#!/usr/bin/env bash
# Side-by-side benchmark, one run, same files: `evidenced ingest` (one pass:
# read once, hash while writing, fsync, rename, cold read-back and re-hash)
# against the shell way (`cp -r`, then `sha256sum` of source and copy) and
# against the slowest single step (`cat`, `sha256sum`, `dd conv=fsync`).
# Prints times and ratios; docs/BENCHMARKS.md records a run.
#
# usage: scripts/bench-ingest.sh [TOTAL_MIB (default 2048)] [FILES (default 4)]
# BENCH_DIR (default /tmp/evidenced-bench) must be on the disk under test.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL_MIB=${1:-2048}
FILES=${2:-4}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench}
. scripts/bench-ingest-lib.sh

mkdir -p .build/bin
go build -o .build/bin/evidenced ./cmd/evidenced
EV=$PWD/.build/bin/evidenced

bench_setup
BYTES=$((TOTAL_MIB << 20))

cleanup_out; warm
t0=$(now); "$EV" ingest --config "$BENCH_DIR/bench.yaml" --camera BENCH-0001 --from "$BENCH_DIR/src" > /dev/null; t1=$(now)
T_EV=$(echo "$t1 - $t0" | bc)

cleanup_out; warm
t0=$(now)
cp -r "$BENCH_DIR/src" "$BENCH_DIR/dst"; sync
(cd "$BENCH_DIR/src" && sha256sum DCIM/100MEDIA/*) > "$BENCH_DIR/src.sha"
(cd "$BENCH_DIR/dst" && sha256sum -c --quiet "$BENCH_DIR/src.sha")
t1=$(now); T_CP=$(echo "$t1 - $t0" | bc)

cleanup_out; warm
t0=$(now); cat "$BENCH_DIR"/src/DCIM/100MEDIA/* > /dev/null; t1=$(now); T_CAT=$(echo "$t1 - $t0" | bc)
t0=$(now); sha256sum "$BENCH_DIR"/src/DCIM/100MEDIA/* > /dev/null; t1=$(now); T_SHA=$(echo "$t1 - $t0" | bc)
mkdir -p "$BENCH_DIR/dd"
t0=$(now)
for f in "$BENCH_DIR"/src/DCIM/100MEDIA/*; do dd if="$f" of="$BENCH_DIR/dd/$(basename "$f")" bs=1M conv=fsync status=none; done
t1=$(now); T_DD=$(echo "$t1 - $t0" | bc)
cleanup_out

slowest=$(printf '%s cat\n%s sha256sum\n%s dd_conv=fsync\n' "$T_CAT" "$T_SHA" "$T_DD" | sort -g | tail -1)
T_SLOW=${slowest% *}; SLOW_NAME=${slowest#* }
mibs() { echo "scale=1; $TOTAL_MIB / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

printf '\n%s MiB in %s files on %s (%s)\n' "$TOTAL_MIB" "$FILES" "$(df --output=source "$BENCH_DIR" | tail -1)" "$(nproc) cores"
printf '%-46s %8s s %9s MiB/s\n' "evidenced ingest (1 read, hash, fsync, cold re-read)" "$T_EV" "$(mibs "$T_EV")"
printf '%-46s %8s s %9s MiB/s\n' "cp -r && sync && sha256sum src && sha256sum -c copy" "$T_CP" "$(mibs "$T_CP")"
printf '%-46s %8s s %9s MiB/s\n' "cat (read only)" "$T_CAT" "$(mibs "$T_CAT")"
printf '%-46s %8s s %9s MiB/s\n' "sha256sum (hash only)" "$T_SHA" "$(mibs "$T_SHA")"
printf '%-46s %8s s %9s MiB/s\n' "dd conv=fsync (copy only)" "$T_DD" "$(mibs "$T_DD")"
printf '\nratio cp+sha256sum / evidenced:          %sx  (>1: evidenced is faster)\n' "$(ratio "$T_CP" "$T_EV")"
printf 'ratio evidenced / slowest single step (%s): %sx  (1.0 = as fast as the bottleneck alone)\n' "$SLOW_NAME" "$(ratio "$T_EV" "$T_SLOW")"
rm -rf "$BENCH_DIR"
