#!/usr/bin/env bash
# Builds and caches the root of the systemd guest of the USB end-to-end test
# TestUSBDockSystemd (test/e2e/systemd_test.go): systemd 252 as PID 1 (this
# machine's own, with the ldd closure of every binary), journald,
# systemd-udevd and udevadm (the udev package unpacked by usb-e2e-setup.sh),
# util-linux/coreutils/kmod tools a dock host has (install, blockdev, mount,
# modprobe), dpkg and apt with a dpkg database (for TestDebianPackageSystemd,
# test/e2e/package_test.go: see PKG_BINS below), busybox applets for the rest,
# and the test's guest files (test/e2e/guest-systemd/: the rdinit that moves
# the root to a tmpfs and execs systemd, the harness agent and its unit).
#
# The archive is concatenated after build/base.cpio (kernel modules, busybox,
# libusb) and before the test's own overlay (the daemon and the project's
# files, installed by the test as the install comments say; or the .deb).
#
# Needs scripts/usb-e2e-setup.sh to have run. Cache:
# ${EVIDENCED_USBVM_DIR:-$HOME/.cache/evidenced/usbvm}/build/systemd-root.cpio,
# rebuilt when this script, guest-systemd/, any binary it takes or this host's
# dpkg database changes (about 30 s on a loaded host; well under 1 s when
# cached).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$0")/.."
REPO=$PWD
U=${EVIDENCED_USBVM_DIR:-$HOME/.cache/evidenced/usbvm}
GUEST=$REPO/test/e2e/guest-systemd
if [ ! -s "$U/build/base.cpio" ] || [ ! -x "$U/udev/bin/udevadm" ]; then
  echo "usb-e2e-systemd-setup: run scripts/usb-e2e-setup.sh first ($U/build/base.cpio, $U/udev)" >&2
  exit 1
fi
SYSTEMD_BINS="/lib/systemd/systemd /lib/systemd/systemd-journald /lib/systemd/systemd-modules-load
  /lib/systemd/systemd-shutdown /usr/bin/systemctl /usr/bin/journalctl /usr/bin/systemd-sysusers
  /usr/bin/systemd-tmpfiles"
# What the install steps and the udev rule run, as on a dock host: coreutils
# install, util-linux blockdev/mount, kmod (modprobe for the kernel's module
# autoloader, lsmod).
TOOLS="/usr/bin/install /usr/sbin/blockdev /usr/bin/mount /usr/bin/umount /usr/bin/kmod /usr/bin/stat /usr/bin/id"
# Debian's package tools, so that the test installs the project's .deb the
# way a dock host does (apt install ./evidenced_*.deb, apt remove, apt purge):
# dpkg (with its architecture tables, GNU tar, which dpkg-deb runs with
# options busybox's lacks, and the programs dpkg insists on finding in PATH:
# ldconfig, start-stop-daemon; sh, rm and diff come from busybox), apt with its
# local-file methods, and perl-base with init-system-helpers'
# deb-systemd-invoke, which the package's prerm runs (both are Essential on
# Debian, so every dock host has them).
PKG_BINS="/usr/bin/dpkg /usr/bin/dpkg-deb /usr/bin/dpkg-query /usr/bin/dpkg-split /usr/bin/dpkg-divert
  /usr/bin/dpkg-trigger /usr/bin/apt /usr/bin/apt-get /usr/bin/apt-config /usr/lib/apt/methods/file
  /usr/lib/apt/methods/copy /usr/lib/apt/methods/store /usr/sbin/start-stop-daemon /usr/bin/perl /usr/bin/tar"
PKG_SCRIPTS="/usr/bin/deb-systemd-invoke /usr/bin/deb-systemd-helper"
PERL_LIB=/usr/lib/x86_64-linux-gnu/perl-base
for b in $SYSTEMD_BINS $TOOLS $PKG_BINS $PKG_SCRIPTS /sbin/ldconfig; do
  [ -x "$b" ] || { echo "usb-e2e-systemd-setup: $b missing (systemd 252, util-linux, coreutils, kmod, dpkg, apt, perl-base, init-system-helpers)" >&2; exit 1; }
done
[ -d "$PERL_LIB" ] || { echo "usb-e2e-systemd-setup: $PERL_LIB missing (perl-base)" >&2; exit 1; }

# The dpkg database of the guest: the packages its files come from (the
# evidenced package's Depends: libc6, libusb-1.0-0, systemd), closed over
# Depends and Pre-Depends as this host has them installed (the first
# installed alternative; a virtual name by its installed provider), so that
# apt resolves the package's dependencies as on a dock host. Their records
# are this host's; their file lists are left empty (the guest carries only
# the binaries above, and dpkg must not claim files it does not have).
dpkg_closure() {
  local -A seen=()
  local queue=(libc6 libusb-1.0-0 systemd) p group alt name pick
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    [ -n "${seen[$p]:-}" ] && continue
    seen[$p]=1
    echo "$p"
    while IFS= read -r group; do
      pick=""
      IFS='|' read -ra alts <<< "$group"
      for alt in "${alts[@]}"; do
        name=$(echo "$alt" | sed 's/([^)]*)//; s/:any//; s/ //g')
        [ -n "$name" ] || continue
        if dpkg-query -W -f='${db:Status-Abbrev}' "$name" 2>/dev/null | grep -q '^ii'; then pick=$name; break; fi
        pick=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' | awk -v v="$name" '
          /^ii/ { for (i = 3; i <= NF; i++) { f = $i; sub(/,$/, "", f); if (f == v) { print $2; exit } } }')
        [ -n "$pick" ] && break
      done
      [ -n "$pick" ] || { echo "usb-e2e-systemd-setup: $p: no installed package satisfies '$group'" >&2; exit 1; }
      queue+=("$pick")
    done < <(dpkg-query -W -f='${Pre-Depends}, ${Depends}\n' "$p" | tr ',' '\n' | sed 's/^ *//; /^$/d')
  done
}
stamp=$( { cat "$SELF" "$GUEST"/*; sha256sum $SYSTEMD_BINS $TOOLS $PKG_BINS $PKG_SCRIPTS /sbin/ldconfig "$U/udev/bin/udevadm" /bin/busybox \
  /var/lib/dpkg/status; ls -l /lib/systemd/system; } | sha256sum | cut -c1-16)
OUT=$U/build/systemd-root.cpio
if [ "$(cat "$U/build/systemd-root.stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$OUT" ]; then
  echo "$OUT"
  exit 0
fi

PKGS=$(dpkg_closure | LC_ALL=C sort)
ST=$(mktemp -d); trap 'rm -rf "$ST"' EXIT
chmod 755 "$ST"
mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib/systemd/system,lib64,etc/systemd/system,etc/udev/rules.d}
mkdir -p "$ST"/{etc/modules-load.d,etc/sysusers.d,etc/tmpfiles.d,usr/lib/sysusers.d,usr/lib/tmpfiles.d,var/lib,var/log,e2e,out,newroot}

# Binaries at their paths on the host, and their libraries (cp -L: the
# guest has no usr-merge symlinks; /lib and /usr/lib are real directories).
libs() { ldd "$1" | awk '/=> \// {print $3} /^[ \t]*\/lib64\// {print $1}'; }
copy() { mkdir -p "$ST$(dirname "$2")"; cp -L "$1" "$ST$2"; }
for b in $SYSTEMD_BINS $TOOLS "$U/udev/bin/udevadm"; do
  for l in $(libs "$b"); do copy "$l" "$l"; done
done
for b in $SYSTEMD_BINS $TOOLS; do copy "$b" "$b"; done
copy "$U/udev/bin/udevadm" /bin/udevadm
ln -s /bin/udevadm "$ST/lib/systemd/systemd-udevd"
ln -s /usr/sbin/blockdev "$ST/sbin/blockdev"    # the udev rule's RUN path
for k in modprobe lsmod insmod rmmod; do ln -s /usr/bin/kmod "$ST/sbin/$k"; done
ln -s /usr/bin/systemctl "$ST/bin/systemctl"
# dpkg, apt and perl (see PKG_BINS), with their state directories.
for b in $PKG_BINS; do
  for l in $(libs "$b"); do copy "$l" "$l"; done
  copy "$b" "$b"
done
for b in $PKG_SCRIPTS; do copy "$b" "$b"; done
copy /sbin/ldconfig /sbin/ldconfig
mkdir -p "$ST$PERL_LIB" "$ST/usr/share/dpkg" && cp -a "$PERL_LIB/." "$ST$PERL_LIB/" && cp -a /usr/share/dpkg/. "$ST/usr/share/dpkg/"
mkdir -p "$ST"/var/lib/dpkg/{info,updates,triggers,alternatives} "$ST"/etc/dpkg/dpkg.cfg.d "$ST"/var/log/apt \
  "$ST"/etc/apt/{apt.conf.d,preferences.d,sources.list.d,trusted.gpg.d} "$ST"/var/lib/apt/lists/partial \
  "$ST"/var/cache/apt/archives/partial
: > "$ST/var/lib/dpkg/available"
awk -v list="$(echo $PKGS)" 'BEGIN { RS = ""; ORS = "\n\n"; n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
  { if (match($0, /^Package: [^\n]+/)) { p = substr($0, 10, RLENGTH - 9); if (p in want) print } }' /var/lib/dpkg/status > "$ST/var/lib/dpkg/status"
for p in $PKGS; do
  for f in "$p:amd64.list" "$p.list"; do
    if [ -e "/var/lib/dpkg/info/$f" ]; then : > "$ST/var/lib/dpkg/info/$f"; break; fi
  done
done

# busybox for everything else (sh, grep, ip, stty, ...), never shadowing a real tool.
for a in $(/bin/busybox --list | grep -vx busybox); do
  found=""
  for d in bin sbin usr/bin usr/sbin; do [ -e "$ST/$d/$a" ] || [ -L "$ST/$d/$a" ] && found=1; done
  [ -n "$found" ] || ln -s /bin/busybox "$ST/bin/$a"
done

# udev: rules, helpers, units (from the Debian package).
cp -a "$U/udev/lib/udev" "$ST/lib/"
cp -a "$U/udev/etc/udev/." "$ST/etc/udev/"
# systemd's units, without the distribution's .wants (the guest pulls in only
# what a minimal dock host runs, below).
(cd /lib/systemd/system && find . -maxdepth 1 \( -type f -o -type l \) -print0 | xargs -0 cp -P -t "$ST/lib/systemd/system/")
cp -P "$U"/udev/lib/systemd/system/*.service "$U"/udev/lib/systemd/system/*.socket "$ST/lib/systemd/system/"
want() { mkdir -p "$ST/lib/systemd/system/$1.wants"; ln -sf "../$2" "$ST/lib/systemd/system/$1.wants/$2"; }
for u in systemd-journald.service systemd-modules-load.service systemd-sysusers.service systemd-tmpfiles-setup.service \
         systemd-tmpfiles-setup-dev.service systemd-udevd.service systemd-udev-trigger.service; do want sysinit.target $u; done
for u in systemd-journald.socket systemd-journald-dev-log.socket systemd-udevd-control.socket systemd-udevd-kernel.socket; do
  want sockets.target $u
done
ln -s /lib/systemd/system/multi-user.target "$ST/etc/systemd/system/default.target"
# The harness agent (test only: it answers on ttyS1 and forwards the
# daemon's journal; see guest-systemd/agent).
install -m 0644 "$GUEST/e2e-agent.service" "$ST/lib/systemd/system/e2e-agent.service"
want multi-user.target e2e-agent.service
install -m 0755 "$GUEST/agent" "$ST/e2e/agent"
install -m 0755 "$GUEST/init" "$ST/e2e/init"

# The system's users and groups come from systemd-sysusers at boot (root,
# nobody, disk=6, systemd-journal, ...), its runtime directories from
# systemd-tmpfiles, as on a Debian host.
cp /usr/lib/sysusers.d/basic.conf /usr/lib/sysusers.d/systemd-journal.conf "$ST/usr/lib/sysusers.d/"
cp /usr/lib/tmpfiles.d/systemd.conf /usr/lib/tmpfiles.d/tmp.conf /usr/lib/tmpfiles.d/var.conf "$ST/usr/lib/tmpfiles.d/"
# The groups Debian's udev package adds in its postinst (its rules name them).
printf 'g input -\ng kvm -\ng render -\ng sgx -\n' > "$ST/usr/lib/sysusers.d/e2e-udev.conf"
# The user apt's postinst adds (apt drops to it to fetch).
printf 'u _apt - - /nonexistent\n' > "$ST/usr/lib/sysusers.d/e2e-apt.conf"
cp -L /etc/os-release "$ST/etc/os-release"
printf 'passwd: files\ngroup: files\nshadow: files\n' > "$ST/etc/nsswitch.conf"
# A fixed machine id: an empty one would make this a "first boot" (presets applied to every unit).
echo 2b7e151628aed2a6abf7158809cf4f3c > "$ST/etc/machine-id"
echo e2e-dock > "$ST/etc/hostname"

(cd "$ST" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$OUT.tmp.$$"
mv "$OUT.tmp.$$" "$OUT"
echo "$stamp" > "$U/build/systemd-root.stamp"
echo "$OUT"
