#!/usr/bin/env bash
# The README's test command (and what CI runs): installs what the tests need,
# then vets and runs every test with the race detector. Integration tests use
# real S3 servers that they start themselves: versitygw, and Ceph RGW (one
# single-node cluster per test binary that needs it, ~15-20 s to start, through
# scripts/ceph-rgw.sh); here they fail, never skip, when one cannot start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The USB end-to-end test boots a real kernel under QEMU; its kernel, initramfs
# and camera images are built from Debian packages and cached.
scripts/usb-e2e-setup.sh
export EVIDENCED_REQUIRE_S3=1 EVIDENCED_REQUIRE_USB=1 EVIDENCED_REQUIRE_RGW=1
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/evidenced-test.log
