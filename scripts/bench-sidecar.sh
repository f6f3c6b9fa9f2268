#!/usr/bin/env bash
# Scale benchmark of the sidecar facts index (issue 17, goal 6): READS plate
# reads (default 1,000,000) are generated as ANPR CSV logs (5,000 reads per
# camera-day, 80 cameras; a plate pool a quarter the size of the reads), GPS
# tracks of GPS_CAMERAS cameras (default 20) for one evening at 1 Hz with a
# recording every 30 minutes; each file is VAULTED in a real custody ledger
# and goes through the parse step (hash check, PARSED record, index), as on
# a dock host. Then QUERIES sampled reads (default 500) are looked up by
# plate, exactly and with one OCR confusion (--fuzzy), and the GPS points
# by place (300 m, one hour): p50, p99 and max latency, and hits per query.
#
# usage: scripts/bench-sidecar.sh [READS]
# BENCH_DIR (default /tmp/evidenced-bench-sidecar) keeps the ledger, the held
# copies and facts.db of the last run; it is emptied at each start.
# CPUPROFILE=FILE writes a CPU profile of the run and keeps the test binary
# beside it (go tool pprof FILE.test FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
READS=${1:-1000000}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-sidecar}
mkdir -p "$BENCH_DIR"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpus: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  reads: $READS"
EVIDENCED_BENCH_READS=$READS EVIDENCED_BENCH_DIR=$BENCH_DIR \
EVIDENCED_BENCH_GPS_CAMERAS=${GPS_CAMERAS:-20} EVIDENCED_BENCH_QUERIES=${QUERIES:-500} \
  go test -count=1 -run '^TestBenchSidecarScale$' -timeout 6h -v ${CPUPROFILE:+-cpuprofile "$CPUPROFILE" -o "$CPUPROFILE.test"} ./internal/facts/ |
  sed -n 's/.*RESULT //p'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
