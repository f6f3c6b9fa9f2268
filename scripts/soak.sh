#!/usr/bin/env bash
# The crash-loop soak (issue #5): the daemon on a multi-file camera (one
# recording over 1 GiB) is SIGKILLed at random moments N times in a row and
# restarted each time; afterwards every recording must be verified exactly
# once, with no duplicate objects or events, no leftover multipart upload,
# no partial vault file, and `verify --remote` clean.
#
# usage: scripts/soak.sh [N]        N kills (default 200; the default test run uses 30)
# Environment: EVIDENCED_SOAK_SEED=S replays the kill schedule of a failed run
# (the test logs its seed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export EVIDENCED_REQUIRE_S3=1
export EVIDENCED_SOAK_N=${1:-${EVIDENCED_SOAK_N:-200}}
echo "== crash-loop soak: $EVIDENCED_SOAK_N kills"
go test -count=1 -timeout 120m -run '^TestCrashLoop$' -v ./test/fault/
