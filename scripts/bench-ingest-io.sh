#!/usr/bin/env bash
# Side-by-side benchmark of an ingest (issue 15, goal 1), one run, the same
# files for every contender:
#
#   this      `evidenced ingest` built from this tree
#   base      `evidenced ingest` built from BASE_REF (default: where this
#             branch left main), to see what the change bought
#   bare I/O  the I/O the guarantees need and nothing else: for every file
#             `dd conv=fsync` into the vault's file system, then
#             `dd iflag=direct` of the copy (every byte written and made
#             durable, then read back from the device, not the page cache);
#             no hashing, no rename, no ledger
#   cp+sha    what a careful custodian does by hand: `cp -r`, `sync`,
#             `sha256sum` of the source, `sha256sum -c` of the copy (the copy
#             is checked from the page cache, not cold)
#
# `evidenced ingest` does the bare I/O plus two SHA-256 passes, the rename
# and directory fsync, and three ledger transactions per file. The machine
# may be shared, so the contenders run in ROUNDS rounds, each round in a
# rotated order, each run with the source in the page cache and nothing of
# the previous run left to write back; every round's times and the medians
# and their ratios are printed. Also printed once: the hash alone
# (`openssl dgst -sha256` of the files, SHA-NI where the CPU has it) and
# each ingest's peak RSS over its runs.
#
# With CAMERAS > 1 (issue 15 goal 1, eight cameras at once) the files are
# dealt round-robin into CAMERAS camera folders and each ingest is ONE
# `evidenced run` daemon (started before the clock, on a fresh state dir)
# into which CAMERAS `evidenced ingest` commands dock all the cameras at
# once; the time is from the first command to the last one's return (every
# camera SAFE TO UNDOCK) and the peak RSS is the daemon's (VmHWM). The bare
# I/O is the same dd pair over all the files one after the other, and also
# "io-par": one dd pair per camera, all cameras at once.
#
# usage: scripts/bench-ingest-io.sh [TOTAL_MIB (1024)] [FILES (4)] [ROUNDS (3)] [CAMERAS (1)]
# BENCH_DIR (default /tmp/evidenced-bench-io) must be on the disk under test.
# PART_SUMS (0 or 1, default 1 like the product) sets upload.part_sums_at_ingest
# for both ingests, BASE_PART_SUMS (0, 1 or none; default PART_SUMS) for the
# base apart (see part_sums_configs in bench-ingest-lib.sh).
# e.g. eight cameras of 128 MiB, one file each: scripts/bench-ingest-io.sh 1024 8 3 8
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL_MIB=${1:-1024}
FILES=${2:-4}
ROUNDS=${3:-3}
CAMERAS=${4:-1}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-io}
BASE_REF=${BASE_REF:-$(git merge-base HEAD main)}
. scripts/bench-ingest-lib.sh

bench_setup
if [ "$CAMERAS" -gt 1 ]; then
  # Deal the files into camera folders cam1..camN, each a camera's layout,
  # and name every camera in the config; the daemon may read them (manual).
  i=0
  for f in "$BENCH_DIR"/src/DCIM/100MEDIA/*; do
    c=$((i % CAMERAS + 1)); i=$((i + 1))
    mkdir -p "$BENCH_DIR/src/cam$c/DCIM/100MEDIA"
    mv "$f" "$BENCH_DIR/src/cam$c/DCIM/100MEDIA/"
  done
  rm -r "$BENCH_DIR/src/DCIM"
  cams=$(for c in $(seq 1 "$CAMERAS"); do printf '{serial: BENCH-%04d, kind: body, assigned_to: bench}, ' "$c"; done)
  sed -i "s|^cameras: .*|cameras: [${cams%, }]|" "$BENCH_DIR/bench.yaml"
  printf 'sources:\n  manual: [%s]\n' "$BENCH_DIR/src" >> "$BENCH_DIR/bench.yaml"
fi
part_sums_configs
# Every source file, relative to src, in a stable order.
mapfile -t SRC_FILES < <(cd "$BENCH_DIR/src" && find . -type f | sort)
mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/base"
go build -o "$BENCH_DIR/bin/this" ./cmd/evidenced
git archive "$BASE_REF" | tar -x -C "$BENCH_DIR/base"
(cd "$BENCH_DIR/base" && go build -o "$BENCH_DIR/bin/base" ./cmd/evidenced)

# run_daemon: CAMERAS cameras docked at once into one daemon (see above).
run_daemon() { # name
  cleanup_out; warm
  local t0 t1 c fail=0
  daemon_start "$1"
  t0=$(now)
  local pids=()
  for c in $(seq 1 "$CAMERAS"); do
    "$BENCH_DIR/bin/$1" ingest --config "$(config_of "$1")" --camera "$(printf BENCH-%04d "$c")" \
      --from "$BENCH_DIR/src/cam$c" > "$BENCH_DIR/ingest.$c.out" 2>&1 &
    pids+=($!)
  done
  for c in "${pids[@]}"; do wait "$c" || fail=1; done
  t1=$(now)
  daemon_stop
  if [ "$fail" != 0 ] || [ "$(cat "$BENCH_DIR"/ingest.*.out | grep -c 'SAFE TO UNDOCK')" != "$CAMERAS" ]; then
    echo "an ingest failed:" >&2; cat "$BENCH_DIR"/ingest.*.out >&2; exit 1
  fi
  echo "$t1 - $t0" | bc
  keep_rss "$1" "$DAEMON_HWM"
}
if [ "$CAMERAS" -gt 1 ]; then
  run_ev() { run_daemon "$1"; }
fi
run_this() { run_ev this; }
run_base() { run_ev base; }
# run_io_par: the same dd pairs, one camera's files per process, all at once.
run_io_par() {
  cleanup_out; warm; mkdir -p "$BENCH_DIR/dd"
  local t0 c; t0=$(now)
  for c in $(seq 1 "$CAMERAS"); do
    (for f in "$BENCH_DIR/src/cam$c"/DCIM/100MEDIA/*; do
      out=$BENCH_DIR/dd/$(basename "$f")
      dd if="$f" of="$out" bs=1M conv=fsync status=none
      dd if="$out" of=/dev/null bs=1M iflag=direct status=none
    done) &
  done
  wait
  echo "$(now) - $t0" | bc
}
run_cp() {
  cleanup_out; warm
  local t0; t0=$(now)
  cp -r "$BENCH_DIR/src" "$BENCH_DIR/dst"; sync
  (cd "$BENCH_DIR/src" && sha256sum "${SRC_FILES[@]}") > "$BENCH_DIR/src.sha"
  (cd "$BENCH_DIR/dst" && sha256sum -c --quiet "$BENCH_DIR/src.sha")
  echo "$(now) - $t0" | bc
}

names=(this base io cp)
if [ "$CAMERAS" -gt 1 ]; then names+=(io_par); fi
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  this: $(git rev-parse --short HEAD)$(git diff HEAD --quiet || echo ' (modified)')  base: $(git rev-parse --short "$BASE_REF")  cpus: $(nproc)  disk: $(df --output=source "$BENCH_DIR" | tail -1)"
echo "$TOTAL_MIB MiB in $FILES files, $CAMERAS camera(s), $ROUNDS rounds, part sums at ingest: this ${PART_SUMS:-1}, base ${BASE_PART_SUMS:-${PART_SUMS:-1}}"
run_rounds "${names[@]}"
cleanup_out
t0=$(now); (cd "$BENCH_DIR/src" && openssl dgst -sha256 "${SRC_FILES[@]}" > /dev/null); t_sha=$(echo "$(now) - $t0" | bc)

m_this=$(median "${times[this]}"); m_base=$(median "${times[base]}"); m_io=$(median "${times[io]}"); m_cp=$(median "${times[cp]}")
awk -v this="$m_this" -v base="$m_base" -v io="$m_io" -v cp="$m_cp" -v sha="$t_sha" -v mib="$TOTAL_MIB" 'BEGIN {
  printf "medians: this %.2f s (%.0f MiB/s), base %.2f s, bare I/O %.2f s, cp+sha256sum %.2f s; openssl dgst -sha256 once %.2f s\n", this, mib/this, base, io, cp, sha
  printf "this / bare I/O      = %.2f  (goal <= 1.25)\n", this/io
  printf "base / bare I/O      = %.2f\n", base/io
  printf "base / this          = %.2f  (>1: this tree is faster)\n", base/this
  printf "cp+sha256sum / this  = %.2f  (>1: evidenced is faster)\n", cp/this
  printf "this / openssl hash  = %.2f\n", this/sha
}'
if [ "$CAMERAS" -gt 1 ]; then
  m_par=$(median "${times[io_par]}")
  awk -v this="$m_this" -v par="$m_par" -v n="$CAMERAS" 'BEGIN {
    printf "bare I/O, one dd pair per camera at once (%d) %.2f s; this / that = %.2f\n", n, par, this/par }'
fi
echo "peak RSS of an ingest: this $(($(cat "$BENCH_DIR/rss.this") / 1024)) MiB, base $(($(cat "$BENCH_DIR/rss.base") / 1024)) MiB"
rm -rf "$BENCH_DIR"
