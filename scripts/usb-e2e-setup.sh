#!/usr/bin/env bash
# Builds and caches what the USB end-to-end tests (test/e2e) need, from
# Debian packages only: QEMU, a stock Debian kernel (unpacked, never
# installed), an uncompressed vmlinux for fast PVH boot under TCG, and a base
# initramfs (busybox, the kernel modules for xHCI / usb-storage / FAT / exFAT /
# virtio / 9p, the guest init). The test itself adds the evidenced binary it
# builds as a second cpio archive (the kernel unpacks concatenated archives).
#
# Cache: ${EVIDENCED_USBVM_DIR:-$HOME/.cache/evidenced/usbvm}. Idempotent:
# about 20 s on a fresh machine after apt, well under 1 s when cached. The
# base initramfs is rebuilt when test/e2e/guest/ changes.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$0")/.."
REPO=$PWD
U=${EVIDENCED_USBVM_DIR:-$HOME/.cache/evidenced/usbvm}
mkdir -p "$U"/{deb,build}
cd "$U"
T0=$(date +%s.%N)
step() { printf '[usb-e2e-setup %5.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }

# 1. Host packages. pkg-config + libusb-1.0-0-dev: gousb's '#cgo pkg-config'.
# e2fsprogs: mkfs.ext4 for the long run's vault disk (EVIDENCED_USB_LONG=1).
# libkmod2 libssl3 libacl1 libselinux1: what udevadm (step 5) links against.
# dmsetup: the power-cut test's device-mapper tables (copied into the guest).
PKGS="qemu-system-x86 qemu-utils busybox-static libusb-1.0-0-dev pkg-config dosfstools mtools
      exfatprogs cpio kmod fdisk socat xz-utils bc ffmpeg e2fsprogs libkmod2 libssl3 libacl1 libselinux1
      dmsetup"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  step "installing: $(echo $missing)"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
step "packages ok"

# 2. The kernel package the archive currently names (old ABIs disappear, so
# it is resolved, not pinned), unpacked with its modules.
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { echo "usb-e2e-setup: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
if [ ! -e "deb/$KPKG.stamp" ] || [ ! -d kroot/lib/modules ]; then
  (cd deb && rm -f linux-image-*.deb && apt-get download -qq -o APT::Sandbox::User=root "$KPKG" >/dev/null)
  rm -rf kroot && dpkg -x deb/"$KPKG"_*.deb kroot
  depmod -b kroot "$(ls kroot/lib/modules)"
  rm -f deb/*.stamp && touch "deb/$KPKG.stamp"
fi
step "kernel $KPKG"

# 3. Uncompressed vmlinux: PVH boot skips the XZ decompressor (~3 s less under TCG).
VMLINUZ=$(ls kroot/boot/vmlinuz-*)
if [ ! -s build/vmlinux ] || [ "$VMLINUZ" -nt build/vmlinux ]; then
  off=$( { LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$VMLINUZ" || true; } | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) "$VMLINUZ" > build/vmlinux.xz   # a file, not a pipe: xz exits early (SIGPIPE)
  xz -dc --single-stream build/vmlinux.xz > build/vmlinux.tmp && mv build/vmlinux.tmp build/vmlinux
  rm -f build/vmlinux.xz
fi
step "vmlinux"

# 4. Base initramfs: busybox, modules, guest scripts, the libraries a cgo
# binary linked against libusb needs (Debian has no static libudev, so the
# daemon is linked dynamically).
GUEST=$REPO/test/e2e/guest
stamp=$(cat "$GUEST"/* "$SELF" | sha256sum | cut -c1-16)-$KPKG
if [ "$(cat build/base.stamp 2>/dev/null)" != "$stamp" ] || [ ! -s build/base.cpio ]; then
  KROOT=$U/kroot KVER=$(ls kroot/lib/modules)
  ST=$(mktemp -d); trap 'rm -rf "$ST"' EXIT
  # mktemp's 0700 would become the guest's / and lock out the daemon's own
  # user (it runs unprivileged, as on a dock host).
  chmod 755 "$ST"
  mkdir -p "$ST"/{bin,sbin,usr/bin,dev,proc,sys,tmp,run,mnt,out,etc,lib64,lib/x86_64-linux-gnu,etc/modprobe.d}
  cp /bin/busybox "$ST/bin/busybox"
  install -m755 "$GUEST/init" "$ST/init"
  install -m755 "$GUEST/gadget.sh" "$ST/bin/gadget.sh"
  MODS="xhci-pci usb-storage sd_mod vfat exfat nls_cp437 nls_iso8859-1 nls_utf8 nls_ascii
        virtio_pci virtio_net 9pnet_virtio 9p virtio_blk configfs dummy_hcd libcomposite usb_f_mass_storage"
  # Shipped but not loaded at boot: ext4 for the vault disk of the long run
  # (EVIDENCED_USB_LONG=1), whose >4 GiB recording does not fit in guest RAM,
  # and of the power-cut test (TestUSBPowerCut), which puts it behind
  # device-mapper: linear, then dm-flakey dropping every write.
  LAZY_MODS="ext4 crc32c_generic dm-flakey"   # ext4 needs crc32c (a softdep, so named here)
  for m in $MODS $LAZY_MODS; do
    modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
  done | sort -u | while read -r ko; do
    rel=${ko#"$KROOT"/}; mkdir -p "$ST/$(dirname "$rel")"; cp "$ko" "$ST/$rel"
  done
  cp "$KROOT"/lib/modules/$KVER/modules.{builtin,builtin.modinfo,order} "$ST/lib/modules/$KVER/"
  depmod -b "$ST" "$KVER"
  echo $MODS | tr ' ' '\n' > "$ST/etc/e2e-modules"
  echo "options dummy_hcd num=2" > "$ST/etc/modprobe.d/e2e.conf"
  for lib in $(ldd "$(ls /usr/lib/x86_64-linux-gnu/libusb-1.0.so.0)" | awk '/=>/ {print $3} /ld-linux/ {print $1}') \
             /usr/lib/x86_64-linux-gnu/libusb-1.0.so.0; do
    case $lib in /lib64/*) cp -L "$lib" "$ST/lib64/";; *) cp -L "$lib" "$ST/lib/x86_64-linux-gnu/";; esac
  done
  (cd "$ST" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > build/base.cpio.tmp
  mv build/base.cpio.tmp build/base.cpio
  echo "$stamp" > build/base.stamp
fi
step "base initramfs $(du -h build/base.cpio | cut -f1)"

# 5. udevadm from the udev package (unpacked, never installed: the host needs
# no udevd). The test runs `udevadm test` in the guest on a gadget camera's
# block device, to check systemd/99-evidenced-cameras.rules against a real
# device; it reaches the guest through 9p with its libraries (libkmod2 etc.).
UPKG=$(apt-cache policy udev | awk '/Candidate:/{print $2}')
if [ ! -x udev/bin/udevadm ] || [ "$(cat deb/udev.stamp 2>/dev/null)" != "$UPKG" ]; then
  (cd deb && rm -f udev_*.deb && apt-get download -qq -o APT::Sandbox::User=root udev >/dev/null)
  rm -rf udev && dpkg -x deb/udev_*.deb udev
  echo "$UPKG" > deb/udev.stamp
fi
if ldd udev/bin/udevadm | grep -q 'not found'; then
  echo "usb-e2e-setup: udevadm lacks libraries: $(ldd udev/bin/udevadm | grep 'not found' | tr -s ' \t\n' ' ')" >&2; exit 1
fi
step "udevadm $UPKG"
echo "$U"
