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

now() { date +%s.%N; }
# Each contender starts with the source in the page cache (warmed by a read),
# so the comparison is of what each does, not of the source disk.
warm() { find "$BENCH_DIR/src" -type f -exec cat {} + > /dev/null; }
# cleanup_out removes what any contender wrote and syncs, so none starts
# with another's dirty pages still to write.
cleanup_out() { rm -rf "$BENCH_DIR/state" "$BENCH_DIR/dst" "$BENCH_DIR/dd"; sync; }
