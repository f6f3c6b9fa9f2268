#!/usr/bin/env bash
# Load benchmark of the web front ends (issue 14, goal 5), in one run:
#  1. search: ITEMS recordings (default 1,000,000) of a generated fleet
#     (internal/catalog/fleetgen: 20 dock hosts, 20 cameras each, one
#     recording a minute per host) written to a real S3 server (versitygw),
#     indexed by the built binary (`evidenced find`), then served by it
#     (`evidenced run`, console role, http.listen) in its own process;
#     USERS people (default 20), in the test process, signed in through the
#     real OIDC flow against the test's provider search /api/items without pause for
#     SECONDS (default 30), once the console's start-up work is quiet (the
#     wait is printed as "settle"): by officer (paged), officer and one day,
#     camera, camera and one day. Latency p50/p95/p99/max per kind and overall,
#     searches per second, the server's CPU (per search) and RSS apart from
#     the clients'; the server's start-up memory (from its start until its
#     start-up work is quiet): VmHWM and, sampled every 50 ms, the peaks of
#     RssAnon (heap, stacks) and RssFile (the mapped index's pages, the
#     binary) apart; the indexing `find`'s peak RSS. BASELINE=REV also builds that revision and runs the same
#     load against it first, on the same fleet and index (before/after).
#     INPROCESS=1 serves the console's handler in the test process instead
#     (the earlier form: one process, one CPU figure for both sides).
#     PERF=DIR records the server with perf during the load.
#  2. dock page fan-out: CLIENTS (default 50) clients on GET /api/events
#     while a simulated dock updates its bays RATE times a second (default 10)
#     for SECONDS: delivery latency from each change to each client, changes
#     coalesced, the process's CPU and RSS; at the default stream limit and
#     with the limit raised.
# The tests assert only correctness (each search returns what it was built to
# find; every client ends on the last state); the numbers are printed.
#
# usage: scripts/bench-web.sh [ITEMS]
# CPUPROFILE=FILE writes a CPU profile of the search phase (go tool pprof).
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=${1:-1000000}
status=0 # a failed part does not stop the other; the script exits 1
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpus: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)  items: $ITEMS  tree: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)"
bins=
if [ -z "${INPROCESS:-}" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if [ -n "${BASELINE:-}" ]; then
    rev=$(git rev-parse --short "$BASELINE")
    mkdir "$tmp/base"
    git archive "$rev" | tar -x -C "$tmp/base"
    (cd "$tmp/base" && go build -o "$tmp/evidenced-$rev" ./cmd/evidenced)
    bins="$rev=$tmp/evidenced-$rev,"
  fi
  go build -o "$tmp/evidenced" ./cmd/evidenced
  bins="${bins}tree=$tmp/evidenced"
fi
EVIDENCED_BENCH_BINS=$bins EVIDENCED_BENCH_PERF=${PERF:-} EVIDENCED_BENCH_ITEMS=$ITEMS EVIDENCED_BENCH_USERS=${USERS:-20} EVIDENCED_BENCH_SECONDS=${DURATION:-30} \
EVIDENCED_BENCH_CPUPROFILE=${CPUPROFILE:-} \
  go test -count=1 -run '^TestBenchWebSearch$' -timeout 6h -v ./internal/web/console/ |
  sed -n 's/.*RESULT //p; /^--- FAIL/p; /_test.go:[0-9]*: [^R]/p' || status=1
echo "load between: $(cut -d' ' -f1-3 /proc/loadavg)"
EVIDENCED_BENCH_CLIENTS=${CLIENTS:-50} EVIDENCED_BENCH_RATE=${RATE:-10} EVIDENCED_BENCH_SECONDS=${DURATION:-30} \
  go test -count=1 -run '^TestBenchDockFanout$' -timeout 1h -v ./internal/web/dock/ |
  sed -n 's/.*RESULT //p; /^--- FAIL/p; /_test.go:[0-9]*: [^R]/p' || status=1
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
