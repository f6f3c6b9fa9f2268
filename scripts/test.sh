#!/usr/bin/env bash
# The README's test command (and what CI runs): installs what the tests need,
# then vets and runs every test with the race detector. Integration tests use
# real S3 servers that they start themselves: versitygw, and Ceph RGW (one
# single-node cluster per test binary that needs it, ~15-20 s to start, through
# scripts/ceph-rgw.sh); here they fail, never skip, when one cannot start.
#
# Each stage is announced with the time since the start. `go test` runs with
# -json through scripts/testfmt, which prints each package's closing line
# (`ok`/`FAIL`, as plain `go test` prints them) the moment it ends, every
# failed test's output, and, after a minute without output, which packages
# are still running. The printed run is kept in /tmp/evidenced-test.log, the
# raw JSON in /tmp/evidenced-test.json.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
stage() { printf '== %s  [%dm%02ds]\n' "$*" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }
stage "setup (Debian packages, Go modules, S3 servers)"
scripts/setup.sh
# The USB end-to-end test boots a real kernel under QEMU; its kernel, initramfs
# and camera images are built from Debian packages and cached.
stage "USB end-to-end setup (QEMU kernel, initramfs, camera images)"
scripts/usb-e2e-setup.sh
export EVIDENCED_REQUIRE_S3=1 EVIDENCED_REQUIRE_USB=1 EVIDENCED_REQUIRE_RGW=1 EVIDENCED_REQUIRE_BROWSER=1
stage "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi
stage "go vet"
go vet ./...
stage "go test -race ./... (each package's line as it ends)"
mkdir -p .build/bin
go build -o .build/bin/testfmt ./scripts/testfmt
go test -json -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/evidenced-test.json |
  .build/bin/testfmt | tee /tmp/evidenced-test.log
stage "all tests passed"
