#!/usr/bin/env bash
# Builds the Debian package evidenced_<version>_amd64.deb with dpkg-deb:
#   scripts/package.sh [OUTDIR]            (default OUTDIR: dist/)
# VERSION overrides the version (default: 0~git<commit date>.<short hash>).
# The package installs the binary, the unit (Type=notify, reload), the USB
# drop-in as an opt-in example, sysusers, tmpfiles, the udev rule,
# modules-load, /etc/evidenced/evidenced.yaml as a conffile (the example
# config with object_store left out: vault only until it is configured) and
# the docs. Its maintainer scripts create the user and directories and reload
# udev; they enable and start nothing (`evidenced doctor`, then
# `systemctl enable --now evidenced`). Checked by packaging/package_test.go.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
arch=amd64
if [ -z "${VERSION:-}" ]; then
  VERSION="0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=12 HEAD)"
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
pkg=$root/evidenced

# The binary: PIE (ASLR), without the Go symbol tables (Debian strips
# binaries), the version stamped as `evidenced version` reports it.
install -d "$pkg/usr/bin"
# The cgo part (libusb) is built fortified, and linked with full RELRO.
CGO_ENABLED=1 GOARCH=$arch CGO_CFLAGS="-O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong" \
  go build -trimpath -buildmode=pie \
  -ldflags "-s -w -linkmode=external -extldflags=-Wl,-z,relro,-z,now -X github.com/evidenced/evidenced/internal/service.Version=$VERSION" \
  -o "$pkg/usr/bin/evidenced" ./cmd/evidenced
objcopy --remove-section=.comment "$pkg/usr/bin/evidenced"

# systemd, udev and friends, under /usr/lib as Debian ships them; the unit
# runs the packaged binary.
install -d "$pkg/usr/lib/systemd/system" "$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/tmpfiles.d" \
  "$pkg/usr/lib/udev/rules.d" "$pkg/usr/lib/modules-load.d" "$pkg/usr/share/evidenced"
sed 's#/usr/local/bin/evidenced#/usr/bin/evidenced#g' systemd/evidenced.service > "$pkg/usr/lib/systemd/system/evidenced.service"
chmod 0644 "$pkg/usr/lib/systemd/system/evidenced.service"
install -m 0644 systemd/evidenced.sysusers.conf "$pkg/usr/lib/sysusers.d/evidenced.conf"
install -m 0644 systemd/evidenced.tmpfiles.conf "$pkg/usr/lib/tmpfiles.d/evidenced.conf"
install -m 0644 systemd/99-evidenced-cameras.rules "$pkg/usr/lib/udev/rules.d/99-evidenced-cameras.rules"
install -m 0644 systemd/evidenced-modules.conf "$pkg/usr/lib/modules-load.d/evidenced.conf"
# USB docks need CAP_SYS_ADMIN: opt-in, never granted by installing.
install -m 0644 systemd/evidenced-usb.conf "$pkg/usr/share/evidenced/evidenced-usb.conf"
install -m 0644 systemd/evidenced.rules.yml "$pkg/usr/share/evidenced/evidenced.rules.yml"

# The config: the example without object_store (vault only until the site
# configures its store) and without inventory (it is read from the store,
# and names the site's console). A conffile: dpkg keeps the site's edits.
install -d "$pkg/etc/evidenced"
awk '
  /^object_store:/ { skip = 1; print "# object_store: not configured yet: recordings stay in the vault. See"; print "# /usr/share/doc/evidenced/examples/evidenced.example.yaml for the section."; next }
  /^inventory:/ { skip = 1; print "# inventory: not configured: cameras: above is the inventory. See the"; print "# example in /usr/share/doc/evidenced/examples/ to take a console'"'"'s."; skip = 2; next }
  skip == 2 && /^$/ { skip = 0 }
  skip && /^[a-z_]+:/ { skip = 0 }
  !skip { print }
' configs/evidenced.example.yaml > "$pkg/etc/evidenced/evidenced.yaml"
chmod 0644 "$pkg/etc/evidenced/evidenced.yaml"

# Docs.
doc=$pkg/usr/share/doc/evidenced
install -d "$doc/examples"
install -m 0644 README.md docs/ARCHITECTURE.md docs/RELIABILITY.md "$doc/"
install -m 0644 configs/evidenced.example.yaml "$doc/examples/"
first=$(git log --reverse --format=%cd --date=format:%Y | sed -n 1p)
last=$(git log -1 --format=%cd --date=format:%Y)
years=$first; [ "$first" = "$last" ] || years=$first-$last
# The copyright file in Debian's machine-readable format (DEP-5); the
# project is Apache-2.0 (LICENSE), whose text Debian ships in
# common-licenses, so it is referred to rather than repeated.
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: evidenced
Upstream-Contact: evidenced maintainers <evidenced@lists.debian.org>
Source: https://github.com/evidenced/evidenced
Comment: /usr/bin/evidenced is statically linked with the Go standard library
 (BSD-3-Clause) and the Go modules that \`go version -m /usr/bin/evidenced\`
 lists; each keeps its own licence, found in its module source.

Files: *
Copyright: $years the evidenced authors
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License");
 you may not use this file except in compliance with the License.
 You may obtain a copy of the License at
 .
     http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS,
 WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 See the License for the specific language governing permissions and
 limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0
 can be found in "/usr/share/common-licenses/Apache-2.0".
COPYRIGHT
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
cat > "$root/changelog" <<CHANGELOG
evidenced ($VERSION) unstable; urgency=medium

  * Built from commit $(git rev-parse --short=12 HEAD) by scripts/package.sh.

 -- evidenced maintainers <evidenced@lists.debian.org>  $date
CHANGELOG
gzip -9n -c "$root/changelog" > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz" "$doc/copyright"

# Control files.
install -d "$pkg/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: evidenced
Version: $VERSION
Architecture: $arch
Maintainer: evidenced maintainers <evidenced@lists.debian.org>
Installed-Size: $size
Depends: libc6 (>= 2.34), libusb-1.0-0 (>= 2:1.0.16), systemd (>= 247)
Section: admin
Priority: optional
Homepage: https://github.com/evidenced/evidenced
Description: camera footage custody daemon for body-worn and in-vehicle cameras
 evidenced takes footage off docked body-worn and in-vehicle cameras into a
 local vault (hashed while copying, synced and read back cold), records each
 step in a signed, tamper-evident custody ledger, and uploads to S3 object
 storage under Object Lock, verifying every upload.
 .
 The package installs the daemon, its systemd unit and udev rule, but enables
 and starts nothing: edit /etc/evidenced/evidenced.yaml, run
 "evidenced doctor", then "systemctl enable --now evidenced".
CONTROL
echo /etc/evidenced/evidenced.yaml > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	# The evidenced user and its directories (/var/lib/evidenced holds the
	# ledger and the vault; /etc/evidenced the config).
	systemd-sysusers evidenced.conf
	systemd-tmpfiles --create evidenced.conf || true
	# The modules a USB dock needs, now rather than at the next boot: the
	# USB drop-in's DeviceAllow=block-sd is resolved when the unit starts,
	# so sd_mod must already be loaded then (see its modules-load file).
	if [ -d /run/systemd/system ] && [ -x /lib/systemd/systemd-modules-load ]; then
		/lib/systemd/systemd-modules-load evidenced.conf || true
	fi
	# The udev rule keeps desktop automounters off docked cameras.
	if [ -d /run/udev ]; then
		udevadm control --reload-rules || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	if [ -z "$2" ]; then
		echo "evidenced is installed but not started. Edit /etc/evidenced/evidenced.yaml,"
		echo "put the object store credentials in /etc/evidenced/credentials, run"
		echo "'evidenced doctor', then 'systemctl enable --now evidenced'."
	fi
fi
POSTINST
cat > "$pkg/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
# Its unit file is about to go: stop a running daemon (it drains first).
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop evidenced.service >/dev/null || true
fi
PRERM
cat > "$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ -d /run/udev ]; then
	udevadm control --reload-rules || true
fi
# Neither remove nor purge deletes evidence: the ledger, the vault and the
# host key under /var/lib/evidenced stay, and so does the evidenced user
# that owns them. purge also removes /etc/evidenced (the config and the
# credentials file).
if [ "$1" = purge ]; then
	rm -rf /etc/evidenced
fi
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

# lintian overrides, each with its reason.
install -d "$pkg/usr/share/lintian/overrides"
cat > "$pkg/usr/share/lintian/overrides/evidenced" <<'OVERRIDES'
# evidenced needs systemd (Type=notify, the watchdog, the sandbox in its
# unit, sysusers/tmpfiles); Depends: systemd. There is no sysvinit script.
evidenced: package-supports-alternative-init-but-no-init.d-script [usr/lib/systemd/system/evidenced.service]
# The misspelling is in a message of a vendored Go module (gousb), not ours.
evidenced: spelling-error-in-binary successfuly successfully [usr/bin/evidenced]
# `evidenced --help` and `evidenced <command> --help` document every command,
# and /usr/share/doc/evidenced/README.md the whole tool; no man page yet.
evidenced: no-manual-page [usr/bin/evidenced]
OVERRIDES
chmod 0644 "$pkg/usr/share/lintian/overrides/evidenced"

(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/md5sums" "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles"
find "$pkg" -type d -exec chmod 0755 {} +

deb="$out/evidenced_${VERSION}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
