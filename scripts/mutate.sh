#!/usr/bin/env bash
# The mutation gate: each curated evidence-safety mutant (scripts/mutate/
# mutants.go) is applied to a scratch copy of the tree, one at a time, and the
# tests of the packages that own the guarantee it breaks are run against the
# real S3 server. Every mutant must be killed; a survivor means a guarantee
# no test holds. See docs/RELIABILITY.md ("Mutation testing").
#
#   scripts/mutate.sh              all mutants (about 10 minutes on 2 cores)
#   scripts/mutate.sh ID...        only these
#   scripts/mutate.sh --list       what there is
#
# It installs nothing: the S3 server comes from scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built, not `go run`, so that its exit status (1: a survivor or an invalid
# mutant, 2: a stale mutant or a failing baseline) reaches the caller.
bin=${TMPDIR:-/tmp}/evidenced-mutate.bin
go build -o "$bin" ./scripts/mutate
exec "$bin" "$@"
