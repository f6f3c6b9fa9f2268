#!/usr/bin/env bash
# Side-by-side benchmark of the custody ledger's verify and proofs (issue 15
# goals 3 and 4): the same signed ledger of EVENTS records (default
# 1,000,000) is verified, a record's inclusion proof taken and one item
# exported, first by BASE_REF's code (default: where this branch left main)
# and then by this tree's, in one run. Prints wall and CPU time per record
# (of Verify, and of the read-only Open that checks the file's structure),
# the load average around each, and the ratios (base/this, and this against
# the goals: verify <= 10 s for 1 M records, one-item export <= 1 s).
#
# The ledger is built once (TestBenchLedgerBuild, appends in large batches:
# TestBatchedBuildIsAppends shows the file is the one single Appends give)
# and kept in BENCH_DIR (default /tmp/evidenced-bench-ledger). The base
# code reads it as it is: it ignores the stored nodes and signed heads.
#
# usage: scripts/bench-ledger.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
BENCH_DIR=${BENCH_DIR:-/tmp/evidenced-bench-ledger}
BASE_REF=${BASE_REF:-$(git merge-base HEAD main)}
LEDGER=$BENCH_DIR/ledger-$EVENTS.db
mkdir -p "$BENCH_DIR"

if [ ! -e "$LEDGER" ]; then
  echo "building a signed ledger of $EVENTS records at $LEDGER (once; kept)"
  EVIDENCED_BENCH_LEDGER=$LEDGER EVIDENCED_BENCH_EVENTS=$EVENTS \
    go test -count=1 -run '^TestBenchLedgerBuild$' -timeout 6h ./internal/custody/ >/dev/null
fi
ls -l "$LEDGER"

# The base tree: BASE_REF's files, with this tree's measuring test (it uses
# only the exported API both have).
BASE=$BENCH_DIR/base-$(git rev-parse --short "$BASE_REF")
if [ ! -d "$BASE" ]; then
  mkdir -p "$BASE"
  git archive "$BASE_REF" | tar -x -C "$BASE"
fi
cp internal/custody/benchmeasure_test.go "$BASE/internal/custody/"

measure() { # dir label
  local out
  out=$(cd "$1" && EVIDENCED_BENCH_LEDGER=$LEDGER go test -count=1 -run '^TestBenchLedgerMeasure$' -timeout 3h -v ./internal/custody/ | grep '^RESULT ')
  echo "$2 ${out#RESULT }"
}
field() { # line key
  tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  cpus: $(nproc)  base: $BASE_REF"
base=$(measure "$BASE" base)
echo "$base"
# The tree as it is when measured (it may have moved on during the base run).
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  this: $(git rev-parse HEAD)$(git diff --quiet || echo ' (modified)')"
this=$(measure . this)
echo "$this"

awk -v bw="$(field "$base" verify_wall_s)" -v tw="$(field "$this" verify_wall_s)" \
    -v bc="$(field "$base" verify_cpu_s)" -v tc="$(field "$this" verify_cpu_s)" \
    -v bow="$(field "$base" open_wall_s)" -v tow="$(field "$this" open_wall_s)" \
    -v boc="$(field "$base" open_cpu_s)" -v toc="$(field "$this" open_cpu_s)" \
    -v be="$(field "$base" export_one_item_ms)" -v te="$(field "$this" export_one_item_ms)" \
    -v bi="$(field "$base" inclusion_ms)" -v ti="$(field "$this" inclusion_ms)" \
    -v n="$(field "$this" records)" -v cpus="$(nproc)" 'BEGIN {
  printf "verify wall:  base %.2f s, this %.2f s: %.2fx faster; this/goal(10 s per 1 M) = %.2f\n", bw, tw, bw/tw, tw/10*1e6/n
  printf "verify CPU:   base %.1f us/record, this %.1f us/record: %.2fx less; per core this verifies %.0f records/s\n", bc/n*1e6, tc/n*1e6, bc/tc, n/tc
  printf "              with %d idle cores the CPU bound is %.2f s per 1 M records\n", cpus, tc/cpus*1e6/n
  printf "open (structure check of every page): base %.2f s wall / %.2f s CPU, this %.2f s / %.2f s\n", bow, boc, tow, toc
  printf "open + verify: base %.2f s wall / %.2f s CPU, this %.2f s / %.2f s: %.2fx less CPU; CPU bound on %d idle cores %.2f s per 1 M records\n", bow+bw, boc+bc, tow+tw, toc+tc, (boc+bc)/(toc+tc), cpus, (toc+tc)/cpus*1e6/n
  printf "inclusion:    base %.1f ms, this %.1f ms\n", bi, ti
  printf "export 1 item: base %.0f ms, this %.0f ms: %.1fx faster; this/goal(1 s) = %.2f\n", be, te, be/te, te/1000
}'
