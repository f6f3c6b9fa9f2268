#!/usr/bin/env bash
# The fleet console's indexing, side by side (issue 13, goal 6): ITEMS
# recordings (default 1,000,000) of a generated fleet (20 dock hosts, 20
# cameras each, anchored every 500 recordings, every record signed) are
# indexed from scratch, first by BASE_REF's code (default: where this branch
# left main; SKIP_BASE=1 skips it), then by this tree's, each in a process
# of its own. Each prints items per second (wall and per CPU-second), the
# process's peak RSS (VmHWM) and, sampled every 50 ms, the peaks of the heap
# in use, of resident anonymous memory and of the resident mapped index
# file, the index's size, and the p99 of 200 `find --assigned-to` searches
# over one month. The load average is printed beside each.
#
# The fleet is generated once (TestBenchIndexBuild) into BENCH_DIR (default
# /tmp/evidenced-bench-index/ITEMS) as one file per object, and kept.
#
# usage: scripts/bench-index.sh [ITEMS]
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-1000000}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-index}
FLEET=$BENCH_DIR/$ITEMS
BASE_REF=${BASE_REF:-$(git merge-base HEAD main)}
mkdir -p "$FLEET"

if [ ! -e "$FLEET/hosts.json" ]; then
  echo "generating $ITEMS items at $FLEET (once; kept)"
  rm -rf "$FLEET/store"
  EVIDENCED_BENCH_FLEET=$FLEET EVIDENCED_BENCH_ITEMS=$ITEMS \
    go test -count=1 -run '^TestBenchIndexBuild$' -timeout 6h -v ./internal/catalog/fleetgen/ | grep '^generated'
fi
echo "fleet: $(du -sh "$FLEET/store" | cut -f1) in $(find "$FLEET/store" -type f | wc -l) objects"

measure() { # dir label
  echo "== $2  $(date -u +%Y-%m-%dT%H:%M:%SZ)  load average $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$1" && TMPDIR=$BENCH_DIR EVIDENCED_BENCH_FLEET=$FLEET EVIDENCED_BENCH_MEASURE=1 \
    go test -count=1 -run '^TestBenchIndexMeasure$' -timeout 3h -v ./internal/catalog/fleetgen/ | grep -E '^(indexed|memory|find|walk|index) ')
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

if [ -z "${SKIP_BASE:-}" ]; then
  # The base tree: BASE_REF's files, with this tree's measuring test (it
  # uses only the exported API both have).
  BASE=$BENCH_DIR/base-$(git rev-parse --short "$BASE_REF")
  if [ ! -d "$BASE" ]; then
    mkdir -p "$BASE"
    git archive "$BASE_REF" | tar -x -C "$BASE"
  fi
  cp internal/catalog/fleetgen/benchindex_test.go "$BASE/internal/catalog/fleetgen/"
  measure "$BASE" "base $BASE_REF"
fi
measure . "this $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)')"
