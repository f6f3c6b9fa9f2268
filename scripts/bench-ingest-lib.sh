# Shared by the ingest benchmarks (sourced, not run): the camera folder of
# incompressible files, the config and the timing helpers. Expects
# TOTAL_MIB, FILES and BENCH_DIR to be set; BENCH_DIR must be on the disk
# under test.

# bench_setup makes BENCH_DIR/src/DCIM/100MEDIA with FILES files of
# TOTAL_MIB/FILES MiB each from /dev/urandom, and BENCH_DIR/bench.yaml (state
# in BENCH_DIR/state, one camera BENCH-0001, no object store).
bench_setup() {
  local per=$((TOTAL_MIB / FILES)) i
  rm -rf "$BENCH_DIR"; mkdir -p "$BENCH_DIR/src/DCIM/100MEDIA"
  echo "generating $FILES x $per MiB of incompressible data in $BENCH_DIR/src"
  for i in $(seq -w 1 "$FILES"); do
    head -c "$((per << 20))" /dev/urandom > "$BENCH_DIR/src/DCIM/100MEDIA/VID_$i.MP4"
  done
  sync
  cat > "$BENCH_DIR/bench.yaml" <<YAML
host_id: bench
state_dir: $BENCH_DIR/state
retention:
  default_class: uncategorized
  classes: [{name: uncategorized, days: 1, mode: GOVERNANCE}]
cameras: [{serial: BENCH-0001, kind: body, assigned_to: bench}]
vault_reserve: 0
YAML
}

# part_sums_configs, called once the config is complete, writes
# upload.part_sums_at_ingest into every contender's config explicitly, so
# that what a run prints is what it ran with: PART_SUMS (0 or 1, default 1,
# the product's default) for this tree, BASE_PART_SUMS (default PART_SUMS)
# for the base, in its own BENCH_DIR/bench.base.yaml, so that the cost of
# the part sums can be timed side by side. A BASE_REF older than the key
# (it refuses the unknown field) needs BASE_PART_SUMS=none: nothing is
# written for it, and it runs as its own tree does.
part_sums_configs() {
  local this=${PART_SUMS:-1} base=${BASE_PART_SUMS:-${PART_SUMS:-1}}
  cp "$BENCH_DIR/bench.yaml" "$BENCH_DIR/bench.base.yaml"
  part_sums_line "$this" >> "$BENCH_DIR/bench.yaml"
  if [ "$base" != none ]; then part_sums_line "$base" >> "$BENCH_DIR/bench.base.yaml"; fi
}
part_sums_line() {
  case $1 in
  1) printf 'upload:\n  part_sums_at_ingest: true\n' ;;
  0) printf 'upload:\n  part_sums_at_ingest: false\n' ;;
  *) echo "PART_SUMS/BASE_PART_SUMS: want 0 or 1 (BASE_PART_SUMS also none), got '$1'" >&2; exit 2 ;;
  esac
}
# config_of NAME is the config contender NAME runs with.
config_of() {
  if [ -e "$BENCH_DIR/bench.$1.yaml" ]; then echo "$BENCH_DIR/bench.$1.yaml"; else echo "$BENCH_DIR/bench.yaml"; fi
}

now() { date +%s.%N; }
# Each contender starts with the source in the page cache (warmed by a read),
# so the comparison is of what each does, not of the source disk.
warm() { find "$BENCH_DIR/src" -type f -exec cat {} + > /dev/null; }
# cleanup_out removes what any contender wrote and syncs, so none starts
# with another's dirty pages still to write.
cleanup_out() { rm -rf "$BENCH_DIR/state" "$BENCH_DIR/dst" "$BENCH_DIR/dd"; sync; }

# The pieces below are shared by the side-by-side benchmarks
# (bench-ingest-io.sh, bench-dock.sh). Each run_NAME contender prints its wall
# time in seconds and nothing else. They expect BENCH_DIR/bin/NAME binaries
# and SRC_FILES (every source file, relative to src, in a stable order).

# keep_rss NAME KiB keeps in BENCH_DIR/rss.NAME the largest peak RSS seen
# over NAME's runs.
keep_rss() {
  if [ ! -e "$BENCH_DIR/rss.$1" ] || [ "$2" -gt "$(cat "$BENCH_DIR/rss.$1")" ]; then echo "$2" > "$BENCH_DIR/rss.$1"; fi
}
# run_ev NAME: one `evidenced ingest` of src by BENCH_DIR/bin/NAME, its peak
# RSS (from /usr/bin/time) kept.
run_ev() {
  cleanup_out; warm
  local t0 kib; t0=$(now)
  /usr/bin/time -f %M -o "$BENCH_DIR/rss.now" \
    "$BENCH_DIR/bin/$1" ingest --config "$(config_of "$1")" --camera BENCH-0001 --from "$BENCH_DIR/src" > /dev/null
  echo "$(now) - $t0" | bc
  kib=$(tail -1 "$BENCH_DIR/rss.now")
  keep_rss "$1" "$kib"
}
# run_io: the bare I/O an ingest's guarantees need and nothing else: for
# every file `dd conv=fsync` into the vault's file system, then
# `dd iflag=direct` of the copy (every byte made durable, then read back from
# the device, not the page cache); no hashing, no rename, no ledger.
run_io() {
  cleanup_out; warm; mkdir -p "$BENCH_DIR/dd"
  local t0 f out; t0=$(now)
  for f in "${SRC_FILES[@]}"; do
    out=$BENCH_DIR/dd/$(basename "$f")
    dd if="$BENCH_DIR/src/$f" of="$out" bs=1M conv=fsync status=none
    dd if="$out" of=/dev/null bs=1M iflag=direct status=none
  done
  echo "$(now) - $t0" | bc
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# run_rounds NAME...: ROUNDS rounds of the contenders run_NAME, each round in
# an order rotated by one (the machine may be shared: no contender always
# runs first or last), one line per round with the times and the load
# average before and after; the times are collected, space-separated, in
# times[NAME].
declare -A times
run_rounds() {
  local names=("$@") r k n t l0 line
  for r in $(seq 1 "$ROUNDS"); do
    l0=$(cut -d' ' -f1 /proc/loadavg)
    line="round $r:"
    for k in "${!names[@]}"; do
      n=${names[$(((k + r - 1) % ${#names[@]}))]}
      t=$("run_$n")
      times[$n]+="$t "
      line+=$(printf ' %s %.2f s,' "$n" "$t")
    done
    echo "$line (load $l0 -> $(cut -d' ' -f1 /proc/loadavg))"
  done
}

# daemon_start NAME starts `evidenced run` of BENCH_DIR/bin/NAME on
# bench.yaml (log in BENCH_DIR/daemon.log) and returns once its control
# socket is up; DAEMON_PID is its pid. daemon_stop keeps its peak RSS
# (VmHWM, KiB) in DAEMON_HWM, stops it with SIGTERM and waits for it to exit
# (call it in the shell that started it, not in a $(...) subshell).
daemon_start() {
  local sock=$BENCH_DIR/state/evidenced.sock
  "$BENCH_DIR/bin/$1" run --config "$(config_of "$1")" > "$BENCH_DIR/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "daemon did not start:" >&2; cat "$BENCH_DIR/daemon.log" >&2; exit 1; }
}
daemon_stop() {
  DAEMON_HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status")
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true
}
