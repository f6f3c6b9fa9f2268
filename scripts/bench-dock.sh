#!/usr/bin/env bash
# Side-by-side benchmark of a dock as an officer meets it (issue 15, goal 5):
# from a folder camera appearing in a watched directory to the dock page
# saying SAFE TO UNDOCK for it, against the bare I/O of the same files. One
# run, the same files for every contender:
#
#   dock      an `evidenced run` daemon built from this tree (started before
#             the clock on a fresh state dir) watches BENCH_DIR/watch
#             (sources.watch, settle SETTLE) and serves the dock page
#             (http.listen, role dock). The clock starts when the prepared
#             camera folder BENCH-0001 is renamed into the watched directory
#             (one atomic `mv` on the same file system, its files in the page
#             cache, nothing left to write back) and stops when the page's
#             event stream (GET /api/events, what the page's script follows)
#             first shows the bay safe_to_undock. Also noted: when the bay
#             first appears on the page, i.e. when the settle period is over
#             and the copy starts; the daemon's peak RSS (VmHWM).
#   io        the bare I/O of goal 1 on the same files (run_io: per file
#             `dd conv=fsync`, then `dd iflag=direct` of the copy)
#   ingest    `evidenced ingest` of the same folder (one process, no watch,
#             no settle, no page): where the dock's time goes
#
# Each round runs them in a rotated order; every round's times, the load
# average, the medians and the ratio dock / bare I/O are printed.
#
# usage: scripts/bench-dock.sh [TOTAL_MIB (4096)] [FILES (4)] [ROUNDS (3)]
# BENCH_DIR (default /tmp/evidenced-bench-dock) must be on the disk under
# test; SETTLE (default 2s, the shipped sources.settle); PORT (18470) for the
# dock page on 127.0.0.1; PART_SUMS (0 or 1, default 1 like the
# product) sets upload.part_sums_at_ingest.
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL_MIB=${1:-4096}
FILES=${2:-4}
ROUNDS=${3:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-dock}
SETTLE=${SETTLE:-2s}
PORT=${PORT:-18470}
. scripts/bench-ingest-lib.sh

bench_setup
mkdir -p "$BENCH_DIR/watch" "$BENCH_DIR/bin"
cat >> "$BENCH_DIR/bench.yaml" <<YAML
sources:
  watch: [$BENCH_DIR/watch]
  settle: $SETTLE
http:
  listen: 127.0.0.1:$PORT
YAML
part_sums_configs
# Every source file, relative to src (the camera folder), in a stable order.
mapfile -t SRC_FILES < <(cd "$BENCH_DIR/src" && find . -type f | sort)
go build -o "$BENCH_DIR/bin/this" ./cmd/evidenced

# follow_events prints "up T" once the dock page's event stream is connected,
# "seen T" when the bay of BENCH-0001 first shows on it and "safe T" when it
# first says safe to undock (T: $EPOCHREALTIME as the line arrives), then
# returns; it fails on a problem state or when the stream ends first.
follow_events() {
  local line up='' seen=''
  while IFS= read -r line; do
    case $line in data:*) ;; *) continue ;; esac
    [ -n "$up" ] || { up=1; echo "up $EPOCHREALTIME"; }
    case $line in *'"camera":"BENCH-0001"'*) ;; *) continue ;; esac
    [ -n "$seen" ] || { seen=1; echo "seen $EPOCHREALTIME"; }
    case $line in
      *'"safe_to_undock":true'*) echo "safe $EPOCHREALTIME"; return 0 ;;
      *'"state":"problem"'*) echo "problem: $line" >&2; return 1 ;;
    esac
  done < <(curl -sSN "http://127.0.0.1:$PORT/api/events")
  echo "the dock page's event stream ended before the bay was safe" >&2
  return 1
}
run_dock() {
  cleanup_out; warm
  local ev=$BENCH_DIR/events t0 fpid
  daemon_start this
  follow_events > "$ev" &
  fpid=$!
  for _ in $(seq 100); do grep -q '^up' "$ev" && break; sleep 0.05; done
  grep -q '^up' "$ev" || { echo "the dock page did not answer:" >&2; cat "$BENCH_DIR/daemon.log" >&2; daemon_stop; exit 1; }
  t0=$EPOCHREALTIME
  mv "$BENCH_DIR/src" "$BENCH_DIR/watch/BENCH-0001"
  wait "$fpid" || { cat "$BENCH_DIR/daemon.log" >&2; daemon_stop; exit 1; }
  daemon_stop
  mv "$BENCH_DIR/watch/BENCH-0001" "$BENCH_DIR/src"
  grep -q "dock complete.*vaulted=$FILES " "$BENCH_DIR/daemon.log" ||
    { echo "the daemon did not vault $FILES files:" >&2; cat "$BENCH_DIR/daemon.log" >&2; exit 1; }
  keep_rss dock "$DAEMON_HWM"
  # The vault checks with mincore that its read-back found none of the
  # file's pages cached; a warm read-back would flatter the dock.
  if grep -q "read-back not fully cold" "$BENCH_DIR/daemon.log"; then
    echo "warning: the daemon's read-back was not fully cold this round:" >&2
    grep "read-back not fully cold" "$BENCH_DIR/daemon.log" >&2
  fi
  awk -v t0="$t0" '$1 == "seen" {print $2 - t0}' "$ev" >> "$BENCH_DIR/seen.times"
  awk -v t0="$t0" '$1 == "safe" {print $2 - t0}' "$ev"
}
run_ingest() { run_ev this; }

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  this: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)')  cpus: $(nproc)  disk: $(df --output=source "$BENCH_DIR" | tail -1)  settle: $SETTLE"
echo "$TOTAL_MIB MiB in $FILES files, one folder camera, $ROUNDS rounds"
run_rounds dock io ingest
echo "dock: bay first on the page (settle over, copy starting) after: $(tr '\n' ' ' < "$BENCH_DIR/seen.times")s"
m_dock=$(median "${times[dock]}"); m_io=$(median "${times[io]}"); m_ing=$(median "${times[ingest]}")
m_seen=$(median "$(tr '\n' ' ' < "$BENCH_DIR/seen.times")")
awk -v dock="$m_dock" -v io="$m_io" -v ing="$m_ing" -v seen="$m_seen" -v mib="$TOTAL_MIB" 'BEGIN {
  printf "medians: dock to SAFE TO UNDOCK %.2f s (%.0f MiB/s), of it before the copy %.2f s; bare I/O %.2f s; evidenced ingest %.2f s\n", dock, mib/dock, seen, io, ing
  printf "dock / bare I/O          = %.2f  (goal <= 1.25)\n", dock/io
  printf "(dock - wait) / bare I/O = %.2f\n", (dock-seen)/io
  printf "ingest / bare I/O        = %.2f\n", ing/io
}'
echo "peak RSS: daemon $(($(cat "$BENCH_DIR/rss.dock") / 1024)) MiB, evidenced ingest $(($(cat "$BENCH_DIR/rss.this") / 1024)) MiB"
rm -rf "$BENCH_DIR"
