#!/usr/bin/env bash
# Installs everything evidenced's demo and tests need on a fresh Debian machine
# of this kind (Go is already there): Debian packages, Go modules and the two S3
# servers the tests run against (versitygw, built from the Go module proxy and
# cached; Ceph RGW, Debian's ceph-mon ceph-osd radosgw). Idempotent and quick
# when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v ffprobe >/dev/null || need+=(ffmpeg)
[ -x /usr/bin/aws ] || need+=(awscli)
command -v rclone >/dev/null || need+=(rclone)   # scripts/bench-upload.sh compares against it
command -v curl >/dev/null || need+=(curl)
command -v pkg-config >/dev/null || need+=(pkg-config)
dpkg -s libusb-1.0-0-dev >/dev/null 2>&1 || need+=(libusb-1.0-0-dev)
# systemd/units_test.go checks the unit files with systemd's own tools.
command -v systemd-analyze >/dev/null || need+=(systemd)
# promtool checks the /metrics scrape and the alerting rules
# (cmd/evidenced/metrics_e2e_test.go, systemd/rules_test.go).
command -v promtool >/dev/null || need+=(prometheus)
# scripts/package.sh builds the .deb with dpkg-deb; lintian checks it.
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v lintian >/dev/null || need+=(lintian)
# The web tests drive Debian's headless Chromium (internal/testutil/browser);
# the fonts make the screenshots readable.
command -v chromium >/dev/null || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go mod download
scripts/s3-server.sh install
scripts/ceph-rgw.sh install
echo "setup: ok"
