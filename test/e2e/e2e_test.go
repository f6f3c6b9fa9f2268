package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// required: in CI (or when asked) a missing prerequisite fails the test
// instead of skipping it — CI must never pass by not running the proof.
func required() bool { return os.Getenv("CI") != "" || os.Getenv("EVIDENCED_REQUIRE_USB") != "" }

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if required() {
		t.Fatalf("USB e2e prerequisite missing (CI / EVIDENCED_REQUIRE_USB set): "+format, args...)
	}
	t.Skipf("USB e2e skipped: "+format+" (run scripts/usb-e2e-setup.sh)", args...)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "../.."))
}

func cacheDir() string {
	if d := os.Getenv("EVIDENCED_USBVM_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache/evidenced/usbvm")
}

// prepare makes sure the VM's kernel and base initramfs are built: always
// when required (the script installs what is missing), otherwise only when
// this machine already has QEMU and a cache.
func prepare(t *testing.T) string {
	t.Helper()
	if testing.Short() && !required() {
		t.Skip("USB e2e boots a VM; skipped with -short")
	}
	dir := cacheDir()
	_, qerr := exec.LookPath("qemu-system-x86_64")
	_, cerr := os.Stat(filepath.Join(dir, "build/base.cpio"))
	if !required() && (qerr != nil || cerr != nil) {
		unavailable(t, "qemu-system-x86_64 or %s missing", dir)
	}
	start := time.Now()
	out, err := exec.Command("bash", filepath.Join(repoRoot(t), "scripts/usb-e2e-setup.sh")).CombinedOutput()
	if err != nil {
		unavailable(t, "scripts/usb-e2e-setup.sh: %v\n%s", err, out)
	}
	t.Logf("usb-e2e-setup: %s", time.Since(start).Round(time.Millisecond))
	for _, tool := range []string{"mkfs.vfat", "mcopy", "ffmpeg", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not installed", tool)
		}
	}
	return dir
}

// runDir is a fresh directory for sockets and logs. Not t.TempDir(): QEMU's
// option syntax breaks on the '=' and ',' subtest names put in paths.
func runDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "evidenced-usbvm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("VM run dir kept: %s", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir, c.Env = dir, append(os.Environ(), env...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// daemon builds what runs in the guest: the real `evidenced run`. It returns
// the binary and the command line to start it with.
func daemon(t *testing.T, out string) (bin, cmdline string) {
	t.Helper()
	bin = filepath.Join(out, "evidenced")
	run(t, repoRoot(t), []string{"CGO_ENABLED=1"}, "go", "build", "-o", bin, "./cmd/evidenced")
	return bin, "/usr/bin/evidenced run --config /etc/evidenced/evidenced.yaml"
}

// daemonFiles is the guest's part of the overlay that runs the daemon as
// startScript does: the binary, its libraries, util-linux setpriv (busybox's
// cannot change the user) and the config (guestConfig with storeCfg).
func daemonFiles(t *testing.T, dir, storeCfg string) (bin, cmdline string, files map[string]File) {
	t.Helper()
	bin, cmdline = daemon(t, dir)
	binData, err := os.ReadFile(bin)
	must(t, err)
	files = sharedLibs(t, bin)
	files["/usr/bin/"+filepath.Base(bin)] = File{Mode: 0o755, Data: binData}
	addHostTool(t, files, "setpriv")
	files["/etc/evidenced/evidenced.yaml"] = File{Mode: 0o644, Data: []byte(fmt.Sprintf(guestConfig, storeCfg))}
	return bin, cmdline, files
}

// sharedLibs lists what the dynamic binary needs (ldd), for the guest.
func sharedLibs(t *testing.T, bin string) map[string]File {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	files := map[string]File{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			p = f[0]
		default:
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		dst := "/lib/x86_64-linux-gnu/" + filepath.Base(p)
		if strings.HasPrefix(p, "/lib64/") {
			dst = p
		}
		files[dst] = File{Mode: 0o755, Data: b}
	}
	return files
}

// udevBundle puts udevadm (unpacked by scripts/usb-e2e-setup.sh), its
// libraries and systemd/99-evidenced-cameras.rules in dst, which the guest
// sees as /out/udev: `udevadm test` there checks the rules against a real
// USB device without udevd running.
func udevBundle(t *testing.T, cache, dst string) {
	t.Helper()
	bin := filepath.Join(cache, "udev/bin/udevadm")
	must(t, os.MkdirAll(filepath.Join(dst, "lib"), 0o755))
	for p, f := range sharedLibs(t, bin) {
		must(t, os.WriteFile(filepath.Join(dst, "lib", filepath.Base(p)), f.Data, 0o755))
	}
	b, err := os.ReadFile(bin)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dst, "udevadm"), b, 0o755))
	b, err = os.ReadFile(filepath.Join(repoRoot(t), "systemd/99-evidenced-cameras.rules"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dst, "99-evidenced-cameras.rules"), b, 0o644))
}

// udevTest runs the dock host's udev rules on a guest block device (no
// udevd: `udevadm test` only evaluates them) and returns the properties
// and RUN programs they produce.
func udevTest(t *testing.T, vm *VM, dev string) string {
	t.Helper()
	out, rc, err := vm.Sh("mkdir -p /run/udev/rules.d && cp /out/udev/99-evidenced-cameras.rules /run/udev/rules.d/ && "+
		"LD_LIBRARY_PATH=/out/udev/lib:/lib/x86_64-linux-gnu /out/udev/udevadm test --action=add /sys/class/block/"+dev+" 2>&1 | grep -E '^[A-Z_]+=|^run: |rules:[0-9]+'", 60*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("udevadm test %s in the guest: rc=%d %v\n%s", dev, rc, err, out)
	}
	return out
}

// addHostTool puts a program of this machine (found on PATH) in the guest
// at /usr/bin/<name>, with the libraries it links against.
func addHostTool(t *testing.T, files map[string]File, name string) {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, "%s not installed", name)
	}
	b, err := os.ReadFile(p)
	must(t, err)
	for lib, f := range sharedLibs(t, p) {
		files[lib] = f
	}
	files["/usr/bin/"+name] = File{Mode: 0o755, Data: b}
}

// writeInitrd writes dir/initrd.cpio: the cached base initramfs, then parts
// (more archives), then an overlay archive of files.
func writeInitrd(t *testing.T, cache, dir string, files map[string]File, parts ...[]byte) string {
	t.Helper()
	initrd, err := os.ReadFile(filepath.Join(cache, "build/base.cpio"))
	must(t, err)
	for _, p := range parts {
		initrd = append(initrd, p...)
	}
	var overlay bytes.Buffer
	must(t, WriteCPIO(&overlay, files))
	path := filepath.Join(dir, "initrd.cpio")
	must(t, os.WriteFile(path, append(initrd, overlay.Bytes()...), 0o644))
	return path
}

// vaultDisk makes an empty ext4 image of size bytes in dir and returns the
// QEMU options that attach it as the guest's /dev/vda. The image is sparse
// and attached with detect-zeroes=unmap, so zeros written to it cost
// nothing on the host.
func vaultDisk(t *testing.T, dir string, size int64) []string {
	t.Helper()
	vimg := filepath.Join(dir, "vault.img")
	vf, err := os.Create(vimg)
	must(t, err)
	must(t, vf.Truncate(size))
	must(t, vf.Close())
	run(t, dir, nil, "mkfs.ext4", "-q", "-F", "-L", "vault", "-E", "lazy_itable_init=0,lazy_journal_init=0", vimg)
	return []string{"-drive", "if=none,id=vault,format=raw,discard=unmap,detect-zeroes=unmap,file=" + vimg, "-device", "virtio-blk-pci,drive=vault"}
}

// closeOnCleanup powers vm off when the test ends and, if it failed, logs
// the harness channel and the last consoleTail bytes of the kernel console.
func closeOnCleanup(t *testing.T, vm *VM, consoleTail int) {
	t.Cleanup(func() {
		vm.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(vm.Opts.Dir, "ev.log"))
			t.Logf("ev.log:\n%s", tail(string(b), 12000))
			b, _ = os.ReadFile(filepath.Join(vm.Opts.Dir, "console.log"))
			t.Logf("console.log (tail):\n%s", tail(string(b), consoleTail))
		}
	})
}

// mustWait is vm.Wait that fails the test on a timeout.
func mustWait(t *testing.T, vm *VM, from int, re string, d time.Duration) Line {
	t.Helper()
	l, _, err := vm.Wait(from, re, d)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// mustSh runs a guest command that must succeed and returns its output.
func mustSh(t *testing.T, vm *VM, cmd string, d time.Duration) string {
	t.Helper()
	out, rc, err := vm.Sh(cmd, d)
	if err != nil || rc != 0 {
		t.Fatalf("guest: %s: rc=%d %v\n%s", cmd, rc, err, out)
	}
	return out
}

// camera is one fake camera volume and what is on it.
type camera struct {
	image    string
	manifest map[string]string // path on the volume → sha256
	sum      string            // sha256 of the image, as made (and found again)
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// makeCamera builds a FAT32 volume with real MP4s (ffmpeg) and a GPS
// sidecar, without mounting anything (mtools). files maps a path on the
// volume to an ffmpeg recipe: "clip:SECONDS" (a small H.264 clip) or
// "noise:SECONDS" (MPEG-4 of noise: large, as real footage is), or "text:…".
//
// Images are cached in dir by recipe, with their manifest and their own
// sha256, and rebuilt when the image no longer hashes as it did when made.
func makeCamera(t *testing.T, dir, name string, sizeMiB int, partitioned bool, files map[string]string) camera {
	t.Helper()
	keys := make([]string, 0, len(files))
	for k, v := range files {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	id := sha256.Sum256([]byte(fmt.Sprint("v3", name, sizeMiB, partitioned, keys)))
	final := filepath.Join(dir, fmt.Sprintf("%s-%x.img", name, id[:6]))
	if c, ok := cachedCamera(t, final); ok {
		return c
	}
	must(t, os.MkdirAll(dir, 0o755))
	stale, _ := filepath.Glob(filepath.Join(dir, name+"-*.img*"))
	for _, p := range stale {
		os.Remove(p) // an older recipe of this camera
	}
	img := final + ".tmp"
	work := t.TempDir()
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	must(t, os.Truncate(img, int64(sizeMiB)<<20))
	target := img
	if partitioned {
		c := exec.Command("sfdisk", "-q", img)
		c.Stdin = strings.NewReader("start=2048, type=c\n")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
		run(t, work, nil, "mkfs.vfat", "-F", "32", "-n", "CAMERA", "--offset", "2048", img, fmt.Sprint(sizeMiB*1024-1024))
		target = img + "@@1048576"
	} else {
		args := []string{"-F", "32", "-n", "CAMERA", img}
		if sizeMiB >= 4096 {
			// 32 KiB clusters as on real camera cards (FAT32 needs 65525
			// clusters, so only on a large, sparse image).
			args = append([]string{"-s", "64"}, args...)
		}
		run(t, work, nil, "mkfs.vfat", args...)
	}
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	cam := camera{image: img, manifest: map[string]string{}}
	made := map[string]bool{}
	for rel, recipe := range files {
		src := filepath.Join(work, filepath.Base(rel))
		makeFile(t, src, name+"/"+rel, recipe)
		var dirs []string
		for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
			dirs = append([]string{d}, dirs...)
		}
		for _, d := range dirs {
			if !made[d] {
				run(t, work, env, "mmd", "-i", target, "::"+d)
				made[d] = true
			}
		}
		run(t, work, env, "mcopy", "-i", target, src, "::"+rel)
		cam.manifest[rel] = sha256File(t, src)
	}
	cam.sum = sha256File(t, img)
	b, err := json.Marshal(map[string]any{"Manifest": cam.manifest, "SHA256": cam.sum})
	must(t, err)
	must(t, os.Rename(img, final))
	must(t, os.WriteFile(final+".json", b, 0o644))
	cam.image = final
	return cam
}

// makeExFATCamera builds an exFAT volume (superfloppy, as cameras with
// cards over 32 GB ship). No tool writes files into exFAT without mounting
// it, so a short-lived VM does: the image is its virtio disk, the files come
// through 9p. Cached like makeCamera's images.
//
// A "sparse:SIZE" recipe is a SIZE-byte file of zeros with markers
// (sparseMarks) where 32-bit offsets would wrap. The VM makes it in place
// (truncate, then the markers), not through 9p, and the disk is attached
// with detect-zeroes=unmap, so its zeros stay holes in the image file: a
// >4 GiB recording costs a few MiB on the host's disk.
func makeExFATCamera(t *testing.T, cache, dir, name string, sizeMiB int, files map[string]string) camera {
	t.Helper()
	keys := make([]string, 0, len(files))
	for k, v := range files {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	id := sha256.Sum256([]byte(fmt.Sprint("exfat-v1", name, sizeMiB, keys)))
	final := filepath.Join(dir, fmt.Sprintf("%s-%x.img", name, id[:6]))
	if c, ok := cachedCamera(t, final); ok {
		return c
	}
	must(t, os.MkdirAll(dir, 0o755))
	stale, _ := filepath.Glob(filepath.Join(dir, name+"-*.img*"))
	for _, p := range stale {
		os.Remove(p)
	}
	img := final + ".tmp"
	f, err := os.Create(img)
	must(t, err)
	f.Close()
	must(t, os.Truncate(img, int64(sizeMiB)<<20))
	run(t, t.TempDir(), nil, "mkfs.exfat", "-L", "CAMERA", img)

	rd := runDir(t)
	src := filepath.Join(rd, "out/src")
	cam := camera{manifest: map[string]string{}}
	must(t, os.MkdirAll(src, 0o755))
	var sparse []string // shell commands that make the sparse files in place
	for rel, recipe := range files {
		if size, ok := strings.CutPrefix(recipe, "sparse:"); ok {
			var n int64
			if _, err := fmt.Sscan(size, &n); err != nil || n < 1<<20 {
				t.Fatalf("recipe %q: want sparse:BYTES (at least 1 MiB)", recipe)
			}
			dst := "/mnt/fill/" + rel
			sparse = append(sparse, fmt.Sprintf("mkdir -p '%s' && truncate -s %d '%s'", filepath.Dir(dst), n, dst))
			for _, mk := range sparseMarks(n) {
				sparse = append(sparse, fmt.Sprintf("printf '%%s' '%s' | dd of='%s' bs=1 seek=%d conv=notrunc 2>/dev/null", mk.text, dst, mk.off))
			}
			h := sha256.New()
			must(t, writeSparse(h, n))
			cam.manifest[rel] = hex.EncodeToString(h.Sum(nil))
			continue
		}
		p := filepath.Join(src, rel)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		makeFile(t, p, name+"/"+rel, recipe)
		cam.manifest[rel] = sha256File(t, p)
	}
	vm, err := Start(Options{Kernel: filepath.Join(cache, "build/vmlinux"), Initrd: filepath.Join(cache, "build/base.cpio"),
		Dir: rd, Extra: []string{"-drive", "if=none,id=fill,format=raw,discard=unmap,detect-zeroes=unmap,file=" + img, "-device", "virtio-blk-pci,drive=fill"}})
	must(t, err)
	defer vm.Close()
	if _, _, err := vm.Wait(0, `^READY `, 120*time.Second); err != nil {
		t.Fatal(err)
	}
	fill := "mkdir -p /mnt/fill && mount -t exfat -o iocharset=utf8 /dev/vda /mnt/fill && cp -r /out/src/. /mnt/fill/"
	for _, c := range sparse {
		fill += " && " + c
	}
	tFill := time.Now()
	out, rc, err := vm.Sh(fill+" && umount /mnt/fill && sync", 1800*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("fill exFAT image in a VM: rc=%d %v\n%s", rc, err, out)
	}
	t.Logf("exFAT image %s filled in a VM in %s", name, time.Since(tFill).Round(time.Second))
	vm.Close()
	cam.sum = sha256File(t, img)
	b, err := json.Marshal(map[string]any{"Manifest": cam.manifest, "SHA256": cam.sum})
	must(t, err)
	must(t, os.Rename(img, final))
	must(t, os.WriteFile(final+".json", b, 0o644))
	cam.image = final
	return cam
}

// mark is a few bytes at an offset of a "sparse:" file.
type mark struct {
	off  int64
	text string
}

// sparseMarks are the non-zero bytes of a "sparse:SIZE" file: at its start,
// across 2^31 and 2^32 (where a signed or unsigned 32-bit offset or length
// wraps), just past 4 GiB, and at its very end. A copy that loses the high
// bits of an offset puts them elsewhere and its SHA-256 no longer matches.
func sparseMarks(size int64) []mark {
	var ms []mark
	for _, off := range []int64{0, 1<<31 - 8, 1<<32 - 8, 1<<32 + 1<<20 + 3} {
		if off+64 < size {
			ms = append(ms, mark{off, fmt.Sprintf("evidenced-e2e mark at %d;", off)})
		}
	}
	end := "evidenced-e2e mark: end of file;"
	return append(ms, mark{size - int64(len(end)), end})
}

// writeSparse writes the content of a "sparse:SIZE" file to w.
func writeSparse(w io.Writer, size int64) error {
	zeros := make([]byte, 1<<20)
	var at int64
	pad := func(to int64) error {
		for at < to {
			n := min(int64(len(zeros)), to-at)
			if _, err := w.Write(zeros[:n]); err != nil {
				return err
			}
			at += n
		}
		return nil
	}
	for _, m := range sparseMarks(size) {
		if err := pad(m.off); err != nil {
			return err
		}
		if _, err := io.WriteString(w, m.text); err != nil {
			return err
		}
		at += int64(len(m.text))
	}
	return pad(size)
}

// cachedCamera returns the cached image at path if it still hashes as made.
func cachedCamera(t *testing.T, path string) (camera, bool) {
	b, err := os.ReadFile(path + ".json")
	if err != nil {
		return camera{}, false
	}
	var c struct {
		Manifest map[string]string
		SHA256   string
	}
	if json.Unmarshal(b, &c) != nil || sha256File(t, path) != c.SHA256 {
		return camera{}, false
	}
	return camera{image: path, manifest: c.Manifest, sum: c.SHA256}, true
}

// makeFile writes one recording or sidecar from its recipe (see makeCamera).
func makeFile(t *testing.T, dst, title, recipe string) {
	t.Helper()
	kind, arg, _ := strings.Cut(recipe, ":")
	// The title makes every recording unique, as real footage is.
	meta := []string{"-metadata", "title=" + title}
	switch kind {
	case "clip":
		run(t, filepath.Dir(dst), nil, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
			"-t", arg, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"}, append(meta, "-f", "mp4", dst)...)...)
	case "noise":
		run(t, filepath.Dir(dst), nil, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
			"nullsrc=s=640x360:r=25,geq=lum='random(1)*255':cb=128:cr=128", "-t", arg, "-c:v", "mpeg4", "-q:v", "1"}, append(meta, "-f", "mp4", dst)...)...)
	case "text":
		must(t, os.WriteFile(dst, []byte(arg), 0o644))
	default:
		t.Fatalf("unknown recipe %q", recipe)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const guestConfig = `host_id: e2e-dock
state_dir: /var/lib/evidenced
sources:
  usb:
    enabled: true
    poll: 500ms
    mount_dir: /run/evidenced/mnt
    per_bus: 1
    profiles:
      # QEMU's usb-storage is always 46f4:0001 ("QEMU USB HARDDRIVE").
      - {name: qemu-bodycam, vendor_id: "46f4", product_id: "0001", recordings: [DCIM], fs: [vfat, exfat]}
      # The dummy_hcd gadget (guest/gadget.sh) can be any vendor:product.
      - {name: bodycam-x1, vendor_id: "1209", product_id: "0001", recordings: [DCIM], fs: [vfat]}
%s
retention:
  default_class: short
  classes:
    - {name: short, days: 1, mode: GOVERNANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-0001}
  - {serial: BWC-0002, kind: body, assigned_to: officer-0002}
  - {serial: BWC-0003, kind: body, assigned_to: officer-0003}
  - {serial: BWC-0004, kind: body, assigned_to: officer-0004}
  - {serial: BWC-0005, kind: body, assigned_to: officer-0005}
  - {serial: BWC-0006, kind: body, assigned_to: officer-0006}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-CA123456}
  - {serial: CAR-0002, kind: vehicle, assigned_to: vehicle-CA654321}
  - {serial: BWC-0007, kind: body, assigned_to: officer-0007}
  - {serial: BWC-0008, kind: body, assigned_to: officer-0008}
vault_reserve: 0
upload:
  concurrency: 2
  retry_min: 1s
  retry_max: 5s
log_level: debug
`

// startScript starts the daemon with the privileges a dock host gives it
// (systemd/evidenced.service with the evidenced-usb.conf drop-in): its own
// user, group disk, CAP_SYS_ADMIN and no other capability, no new
// privileges. On a dock host udev's default rules give disks group disk;
// here busybox mdev, listening to the kernel's uevents, does the same.
const startScript = `#!/bin/sh
export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
mkdir -p /run/evidenced/mnt /var/lib/evidenced
%s
echo 'sd[a-z].* 0:6 0660' > /etc/mdev.conf
/bin/mdev -d   # netlink daemon: the kernel has no uevent helper
chown -R 999:999 /var/lib/evidenced /run/evidenced
echo "@@ DAEMON_START" > /dev/ttyS1
( /usr/bin/setpriv --reuid=999 --regid=999 --groups=6 --inh-caps=-all,+sys_admin --ambient-caps=-all,+sys_admin --bounding-set=-all,+sys_admin --no-new-privs -- %s; echo "daemon exited rc=$?" ) 2>&1 | while IFS= read -r l; do echo "@@ LOG $l"; done > /dev/ttyS1
# The custody record goes to the host for checking once the daemon is gone.
cp /var/lib/evidenced/ledger.db /out/ledger.db && sync && echo "@@ LEDGER_OUT" > /dev/ttyS1
`

// longRun: EVIDENCED_USB_LONG=1 copies the >4 GiB exFAT recording in full
// (about 10+ minutes under TCG), onto a vault disk of its own.
func longRun() bool { return os.Getenv("EVIDENCED_USB_LONG") == "1" }

// bigSize is the >4 GiB recording on CAR-0002: past 2^32 by 24 MiB and an
// odd 123 bytes, so neither its size nor its last chunk is aligned.
const bigSize = 1<<32 + 24<<20 + 123

// vaultDiskStart mounts the long run's vault disk (/dev/vda, ext4 made on
// the host) at the state directory before the daemon starts.
const vaultDiskStart = `modprobe crc32c_generic && modprobe ext4 && mount -t ext4 /dev/vda /var/lib/evidenced && echo "@@ VAULT_DISK $(df -k /var/lib/evidenced | tail -1)" > /dev/ttyS1 || echo "@@ VAULT_DISK_FAILED" > /dev/ttyS1`

type metrics struct {
	t *testing.T
	m []string
}

func (m *metrics) add(k string, v any) {
	m.m = append(m.m, fmt.Sprintf("%s = %v", k, v))
	m.t.Logf("METRIC %s = %v", k, v)
}

// TestUSBDock runs the USB scenarios in one VM, in order: a body camera
// docked and vaulted (and uploaded and verified when the S3 server runs), a
// corrupt file system on another bay that must not stop the others, a known
// model with an unknown serial, and a camera yanked mid-file and re-docked.
func TestUSBDock(t *testing.T) {
	cache := prepare(t)
	long := longRun()
	if dl, ok := t.Deadline(); long && ok && time.Until(dl) < 60*time.Minute {
		t.Fatalf("EVIDENCED_USB_LONG=1 copies a >4 GiB file under TCG: run with -timeout 70m (%s left)", time.Until(dl).Round(time.Minute))
	}
	tStart := time.Now()
	m := &metrics{t: t}
	dir := runDir(t)
	imgDir := filepath.Join(cache, "images")

	// The object store, when its server is available here.
	var srv *s3srv.Server
	var bucket string
	storeCfg := ""
	if _, err := s3srv.Binary(); err == nil || required() {
		srv = s3srv.Start(t)
		bucket = srv.NewBucket(t)
		storeCfg = fmt.Sprintf("object_store: {endpoint: \"http://10.0.2.100:8080\", bucket: %s, region: us-east-1, path_style: true}", bucket)
	} else {
		t.Log("no S3 server binary (scripts/s3-server.sh install): vault only, uploads not checked")
	}

	// The cameras.
	t0 := time.Now()
	body := makeCamera(t, imgDir, "body", 64, true, map[string]string{
		"DCIM/100MEDIA/BWC00001.MP4": "clip:4", "DCIM/100MEDIA/BWC00002.MP4": "clip:6",
		"DCIM/100MEDIA/BWC00001.NMEA": "text:$GPGGA,092750.000,2546.2345,S,02814.3456,E,1,8,1.03,1340.0,M,,,,*76\n",
	})
	big := makeCamera(t, imgDir, "big", 4096, false, map[string]string{
		"DCIM/100MEDIA/BIG00001.MP4": "noise:10", "DCIM/100MEDIA/SML00002.MP4": "clip:2",
	})
	corrupt := filepath.Join(dir, "corrupt.img")
	b, err := os.ReadFile(body.image)
	must(t, err)
	// Partition 1 keeps its FAT32 signature, but bytes per sector (offset 11)
	// is 0: the kernel refuses it as it would a damaged card.
	b[1<<20+11], b[1<<20+12] = 0, 0
	must(t, os.WriteFile(corrupt, b, 0o644))
	var pair [3]camera
	for i := range pair {
		pair[i] = makeCamera(t, imgDir, fmt.Sprintf("pair%d", i), 64, i%2 == 0, map[string]string{
			"DCIM/100MEDIA/CLP00001.MP4": fmt.Sprintf("clip:%d", 3+i), "DCIM/100MEDIA/CLP00002.MP4": fmt.Sprintf("noise:%d", 2+i),
		})
	}
	car := makeExFATCamera(t, cache, imgDir, "car", 256, map[string]string{
		"DCIM/100MEDIA/CAR00001.MP4": "clip:5", "DCIM/100MEDIA/CAR00002.MP4": "noise:2",
		"ANPR/READS001.CSV":                  "text:time,plate,confidence\n2026-11-30T07:00:00Z,CA123456,0.97\n",
		"DCIM/100MEDIA/Zoë-métadonnées.JSON": `text:{"officer":"Ndlovu","note":"naïve UTF-8 name"}`,
	})
	// CAR-0002's card holds a >4 GiB recording (sparse: a few MiB on disk).
	const bigRel = "DCIM/100MEDIA/CAR10002.MP4"
	car4g := makeExFATCamera(t, cache, imgDir, "car4g", 4608, map[string]string{
		"DCIM/100MEDIA/CAR10001.MP4": "clip:3", bigRel: fmt.Sprintf("sparse:%d", bigSize),
		"ANPR/READS002.CSV": "text:time,plate,confidence\n2026-11-30T07:05:00Z,CA654321,0.91\n",
	})
	car4gWant := map[string]string{} // the default run refuses the whole dock
	if long {
		car4gWant = car4g.manifest
	}
	gadget := makeCamera(t, imgDir, "gadget", 64, true, map[string]string{
		"DCIM/100MEDIA/GDG00001.MP4": "clip:3", "DCIM/100MEDIA/GDG00001.NMEA": "text:$GPGGA,101010.000,2546.0001,S,02814.0002,E,1,8,1.03,1340.0,M,,,,*70\n",
	})
	// The gadget's backing file reaches the guest through the 9p share.
	gb, err := os.ReadFile(gadget.image)
	must(t, err)
	must(t, os.MkdirAll(filepath.Join(dir, "out"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "out/gadget.img"), gb, 0o644))
	udevBundle(t, cache, filepath.Join(dir, "out/udev"))
	bigBefore := big.sum // hashed just now, as it is checked for the cache
	m.add("images_s", time.Since(t0).Round(time.Millisecond))

	// The guest: base initramfs + overlay (daemon, libraries, config, start).
	bin, cmdline, files := daemonFiles(t, dir, storeCfg)
	prelude, extra := "", []string(nil)
	if long {
		// The >4 GiB copy needs a vault on disk: the guest's root is RAM.
		extra = vaultDisk(t, dir, 10<<30)
		prelude = vaultDiskStart
	}
	files["/etc/e2e/start"] = File{Mode: 0o755, Data: []byte(fmt.Sprintf(startScript, s3srv.AccessKey, s3srv.SecretKey, prelude, cmdline))}
	initrd := writeInitrd(t, cache, dir, files)

	port := 0
	if srv != nil {
		u, err := url.Parse(srv.Endpoint)
		must(t, err)
		fmt.Sscan(u.Port(), &port)
	}
	accel := os.Getenv("EVIDENCED_USBVM_ACCEL")
	vm, err := Start(Options{Accel: accel, Kernel: filepath.Join(cache, "build/vmlinux"), Initrd: initrd, MemMB: 1536, HostPort: port, Dir: dir, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, vm, 3000)
	ready, _, err := vm.Wait(0, `^READY `, 120*time.Second)
	must(t, err)
	m.add("boot_to_ready_s", ready.At.Sub(vm.Started).Seconds())
	if long {
		if l, _, err := vm.Wait(0, `^VAULT_DISK`, 60*time.Second); err != nil || strings.Contains(l.Text, "FAILED") {
			t.Fatalf("vault disk for the long run: %v %s", err, l.Text)
		}
	}
	if _, _, err := vm.Wait(0, `msg="watching USB for docked cameras"`, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	// Everything below runs with the daemon unprivileged but for mounting.
	if out, _, err := vm.Sh("grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/$(pidof "+filepath.Base(bin)+")/status", 30*time.Second); err != nil ||
		!regexp.MustCompile(`Uid:\s+999\s+999\s+999\s+999`).MatchString(out) || !regexp.MustCompile(`Groups:\s+6\s`).MatchString(out+" ") ||
		!strings.Contains(out, "CapEff:\t0000000000200000") || !strings.Contains(out, "CapBnd:\t0000000000200000") || !regexp.MustCompile(`NoNewPrivs:\s+1`).MatchString(out) {
		t.Fatalf("the daemon does not run as the unit runs it (uid 999, group disk, CAP_SYS_ADMIN only, no new privileges): %v\n%s", err, out)
	}

	wait := func(t *testing.T, from int, re string, d time.Duration) Line {
		t.Helper()
		return mustWait(t, vm, from, re, d)
	}

	// undocked waits for the USB source to see the camera leave its bay and
	// for the service's verdict on it (clean: it was safe to undock).
	undocked := func(t *testing.T, from int, serial, bay string, clean bool, d time.Duration) Line {
		t.Helper()
		wait(t, from, `msg="camera undocked" camera=`+serial+` bay=`+bay+`( |$)`, d)
		return wait(t, from, fmt.Sprintf(`msg="camera undocked" camera=%s .*clean=%t`, serial, clean), d)
	}
	waitVerified := func(t *testing.T, want int, d time.Duration) { t.Helper(); waitVerified(t, vm, want, d) }
	allManifests := []map[string]string{body.manifest, big.manifest, car.manifest, pair[0].manifest, pair[1].manifest, pair[2].manifest, gadget.manifest, car4gWant}
	wantItems := 0
	for _, mf := range allManifests {
		wantItems += len(mf)
	}

	t.Run("body_camera", func(t *testing.T) {
		mk := vm.Mark()
		tAdd := time.Now()
		must(t, vm.Plug("cam1", body.image, "BWC-0001", 1))
		seen := wait(t, mk, `camera docked" camera=BWC-0001 bay=2-1`, 30*time.Second)
		docked := wait(t, mk, `msg=docked camera=BWC-0001 via=usb`, 60*time.Second)
		m.add("device_add_to_detected_ms", seen.At.Sub(tAdd).Milliseconds())
		m.add("device_add_to_DOCKED_ms", docked.At.Sub(tAdd).Milliseconds())
		mounted := wait(t, mk, `camera volume mounted read-only" camera=BWC-0001 bay=2-1 source=/dev/sda1 fs=vfat`, 30*time.Second)
		m.add("device_add_to_mounted_ms", mounted.At.Sub(tAdd).Milliseconds())
		done := wait(t, mk, `msg="dock complete" camera=BWC-0001 .*vaulted=3 .*safe_to_undock=true`, 120*time.Second)
		m.add("body_DOCKED_to_safe_ms", done.At.Sub(docked.At).Milliseconds())
		if out, _, _ := vm.Sh("grep /run/evidenced/mnt /proc/mounts", 30*time.Second); out != "" {
			t.Errorf("camera still mounted after its dock finished: %s", out)
		}
		if srv != nil {
			checkStore(t, srv, bucket, body.manifest, 180*time.Second)
			m.add("body_device_add_to_all_in_store_s", time.Since(tAdd).Seconds())
		}
		mk = vm.Mark()
		tDel := time.Now()
		must(t, vm.Yank("cam1"))
		und := undocked(t, mk, "BWC-0001", "2-1", true, 30*time.Second)
		m.add("device_del_to_UNDOCKED_ms", und.At.Sub(tDel).Milliseconds())
	})

	t.Run("corrupt_fs", func(t *testing.T) {
		mk := vm.Mark()
		must(t, vm.Plug("bad", corrupt, "BWC-0003", 2))
		l := wait(t, mk, `msg="camera storage unreadable" camera=BWC-0003`, 60*time.Second)
		if !strings.Contains(l.Text, "cannot mount camera volume") {
			t.Errorf("error does not say what is wrong: %s", l.Text)
		}
		// It stays docked (broken) while the next scenarios use other bays.
	})

	t.Run("unknown_serial", func(t *testing.T) {
		mk := vm.Mark()
		must(t, vm.Plug("stranger", body.image, "STRANGER-9", 3))
		wait(t, mk, `msg="unknown camera docked; not mounted, not ingested" camera=STRANGER-9`, 60*time.Second)
		if l := vm.Lines(mk, `camera volume mounted.*STRANGER-9`); len(l) != 0 {
			t.Errorf("an unknown camera's storage was mounted: %s", l[0].Text)
		}
		must(t, vm.Yank("stranger"))
	})

	t.Run("yank_mid_file", func(t *testing.T) {
		mk := vm.Mark()
		must(t, vm.Plug("cam2", big.image, "BWC-0002", 4))
		wait(t, mk, `msg="dock pass started" camera=BWC-0002`, 60*time.Second)
		// BIG00001.MP4 is copied first (names sort before SML…) and takes
		// many seconds under TCG; checkLedger proves the yank landed mid-file.
		time.Sleep(2 * time.Second)
		tDel := time.Now()
		must(t, vm.Yank("cam2"))
		und := undocked(t, mk, "BWC-0002", "2-4", false, 60*time.Second)
		m.add("yank_to_UNDOCKED_ms", und.At.Sub(tDel).Milliseconds())
		if out, _, _ := vm.Sh("grep /run/evidenced/mnt /proc/mounts", 30*time.Second); out != "" {
			t.Errorf("yanked camera still mounted: %s", out)
		}

		mk = vm.Mark()
		tAdd := time.Now()
		must(t, vm.Plug("cam2b", big.image, "BWC-0002", 4))
		done := wait(t, mk, `msg="dock complete" camera=BWC-0002 .*safe_to_undock=true`, 300*time.Second)
		m.add("redock_to_safe_s", done.At.Sub(tAdd).Seconds())
		var bytes int64
		if i := strings.Index(done.Text, " bytes="); i >= 0 {
			fmt.Sscan(done.Text[i+len(" bytes="):], &bytes)
		}
		m.add("redock_MiB", float64(bytes)/(1<<20))
		m.add("redock_copy_and_readback_MiBps", float64(bytes)/(1<<20)/done.At.Sub(tAdd).Seconds())
		for _, l := range vm.Lines(mk, `msg="vault stored" .*mb_per_s=`) {
			m.add("vault_store_"+strings.Fields(l.Text[strings.Index(l.Text, "bytes="):])[0], l.Text[strings.Index(l.Text, "mb_per_s="):])
		}
		must(t, vm.Yank("cam2b"))
		undocked(t, mk, "BWC-0002", "2-4", true, 60*time.Second)
		if after := sha256File(t, big.image); after != bigBefore {
			t.Errorf("camera image changed: sha256 %s before, %s after", bigBefore, after)
		}
		if srv != nil {
			checkStore(t, srv, bucket, merge(body.manifest, big.manifest), 300*time.Second)
		}
	})
	t.Run("exfat_vehicle", func(t *testing.T) {
		mk := vm.Mark()
		must(t, vm.Plug("car", car.image, "CAR-0001", 7))
		wait(t, mk, `camera volume mounted read-only" camera=CAR-0001 bay=2-7 source=/dev/sd[a-z] fs=exfat`, 60*time.Second)
		wait(t, mk, `msg="dock complete" camera=CAR-0001 .*vaulted=4 .*safe_to_undock=true`, 180*time.Second)
		must(t, vm.Yank("car"))
		undocked(t, mk, "CAR-0001", "2-7", true, 60*time.Second)
	})

	t.Run("several_bays", func(t *testing.T) {
		// BWC-0004 and BWC-0005 share bus usb2 (per_bus: 1): one copies
		// after the other. BWC-0006 is on the second controller's bus and
		// copies beside them.
		mk := vm.Mark()
		must(t, vm.Plug("p4", pair[0].image, "BWC-0004", 5))
		must(t, vm.Plug("p5", pair[1].image, "BWC-0005", 6))
		must(t, vm.PlugOn("xhci2.0", "p6", pair[2].image, "BWC-0006", 1))
		type span struct{ start, end Line }
		spans := map[string]span{}
		for _, c := range []string{"BWC-0004", "BWC-0005", "BWC-0006"} {
			// DOCKED is recorded for all three at once; the copy passes
			// on one bus take turns.
			wait(t, mk, `msg=docked camera=`+c+` via=usb`, 60*time.Second)
			st := wait(t, mk, `msg="dock pass started" camera=`+c+` via=usb`, 180*time.Second)
			en := wait(t, mk, `msg="dock complete" camera=`+c+` .*vaulted=2 .*safe_to_undock=true`, 180*time.Second)
			spans[c] = span{st, en}
		}
		a, b := spans["BWC-0004"], spans["BWC-0005"]
		if !(a.end.At.Before(b.start.At) || b.end.At.Before(a.start.At)) {
			t.Errorf("two cameras on one bus copied at the same time: %v-%v and %v-%v", a.start.At, a.end.At, b.start.At, b.end.At)
		}
		c := spans["BWC-0006"]
		first := a
		if b.start.At.Before(a.start.At) {
			first = b
		}
		if !c.start.At.Before(first.end.At) {
			t.Errorf("the camera on the other bus waited for bus usb2: it started at %v, after the first usb2 dock ended at %v", c.start.At, first.end.At)
		}
		if l := wait(t, mk, `camera docked" camera=BWC-0006`, time.Second); strings.Contains(l.Text, "bay=2-") {
			t.Errorf("BWC-0006 is not on a bus of its own: %s", l.Text)
		}
		if srv != nil {
			checkStore(t, srv, bucket, merge(body.manifest, big.manifest, car.manifest, pair[0].manifest, pair[1].manifest, pair[2].manifest), 300*time.Second)
		}
		for _, id := range []string{"p4", "p5", "p6"} {
			must(t, vm.Yank(id))
		}
		for _, c := range []string{"BWC-0004", "BWC-0005", "BWC-0006"} {
			undocked(t, mk, c, "[0-9-]+", true, 60*time.Second)
		}
	})
	t.Run("custom_vid_pid", func(t *testing.T) {
		// A configfs mass-storage gadget on dummy_hcd, in the guest: a USB
		// device with any vendor:product (QEMU's usb-storage is always
		// 46f4:0001). Plugged and pulled through the agent, not QMP.
		sh := func(cmd string) {
			t.Helper()
			if out, rc, err := vm.Sh(cmd, 60*time.Second); err != nil || rc != 0 {
				t.Fatalf("guest: %s: rc=%d %v\n%s", cmd, rc, err, out)
			}
		}
		sh("cp /out/gadget.img /tmp/gadget.img")
		// 1209:0002 matches no profile: not a camera, even with a serial
		// that is in the inventory. It is looked at once and ignored.
		mk := vm.Mark()
		sh("gadget.sh add other 0x1209 0x0002 BWC-0008 /tmp/gadget.img 'Other Co' 'Not A Camera'")
		l := wait(t, mk, `msg="USB device is not a camera model; ignored" bay=[0-9]+-[0-9.]+ vendor_id=1209 product_id=0002`, 30*time.Second)
		obay := strings.Fields(l.Text[strings.Index(l.Text, "bay=")+len("bay="):])[0]
		// Its disk, as the kernel named it (the rules must leave it alone).
		out, rc, err := vm.Sh("for i in $(seq 100); do for b in /sys/block/sd*; do readlink -f $b | grep -q /"+obay+"/ && basename $b && exit 0; done; sleep 0.1; done; exit 1", 60*time.Second)
		if err != nil || rc != 0 {
			t.Fatalf("no block device under %s: rc=%d %v %s", obay, rc, err, out)
		}
		if u := udevTest(t, vm, strings.TrimSpace(out)); strings.Contains(u, "UDISKS") || strings.Contains(u, "EVIDENCED_CAMERA") || strings.Contains(u, "blockdev") {
			t.Errorf("udev rules act on a device of no camera model (1209:0002):\n%s", u)
		}
		sh("gadget.sh del other")
		if l := vm.Lines(mk, `BWC-0008`); len(l) != 0 {
			t.Errorf("a device of no camera model was acted on: %s", l[0].Text)
		}
		// 1209:0001 is the bodycam-x1 profile, BWC-0007 is in the inventory.
		mk = vm.Mark()
		sh("gadget.sh add cam 0x1209 0x0001 BWC-0007 /tmp/gadget.img 'Fake Camera Co' 'BodyCam X1'")
		l = wait(t, mk, `camera docked" camera=BWC-0007 bay=[0-9]+-[0-9.]+ profile=bodycam-x1`, 30*time.Second)
		bay := strings.Fields(l.Text[strings.Index(l.Text, "bay=")+len("bay="):])[0]
		if strings.HasPrefix(bay, "2-") || strings.HasPrefix(bay, "4-") {
			t.Errorf("gadget on an xHCI bus (%s), not on dummy_hcd", bay)
		}
		l = wait(t, mk, `camera volume mounted read-only" camera=BWC-0007 bay=`+bay+` source=/dev/sd[a-z]1 fs=vfat`, 60*time.Second)
		part := strings.TrimPrefix(strings.Fields(l.Text[strings.Index(l.Text, "source=")+len("source="):])[0], "/dev/")
		// The gadget is write-protected (gadget.sh sets lun ro=1), so the
		// kernel holds the disk read-only, as the udev rule's blockdev
		// --setro would: evidenced mounted it all the same.
		if out, _, _ := vm.Sh("cat /sys/block/"+strings.TrimRight(part, "0123456789")+"/ro", 30*time.Second); strings.TrimSpace(out) != "1" {
			t.Errorf("gadget disk not read-only in the kernel (ro=%q)", out)
		}
		// The dock host's udev rules, on this real 1209:0001 partition and its disk.
		for _, dev := range []string{part, strings.TrimRight(part, "0123456789")} {
			u := udevTest(t, vm, dev)
			for _, want := range []string{"UDISKS_IGNORE=1", "UDISKS_AUTO=0", "EVIDENCED_CAMERA=bodycam-x1", ":evidenced-camera:", "run: '/sbin/blockdev --setro /dev/" + dev + "'"} {
				if !strings.Contains(u, want) {
					t.Errorf("udev rules on %s (1209:0001): no %q in\n%s", dev, want, u)
				}
			}
		}
		wait(t, mk, `msg="dock complete" camera=BWC-0007 .*vaulted=2 .*safe_to_undock=true`, 120*time.Second)
		sh("gadget.sh unplug cam")
		undocked(t, mk, "BWC-0007", bay, true, 60*time.Second)
		sh("gadget.sh del cam")
		if srv != nil {
			checkStore(t, srv, bucket, merge(allManifests[:len(allManifests)-1]...), 300*time.Second)
		}
	})

	// Last, so that its long copy (EVIDENCED_USB_LONG=1) holds up no other
	// camera on bus 2.
	t.Run("exfat_over_4gib", func(t *testing.T) {
		mk := vm.Mark()
		tAdd := time.Now()
		must(t, vm.Plug("car4g", car4g.image, "CAR-0002", 8))
		docked := wait(t, mk, `msg=docked camera=CAR-0002 via=usb`, 60*time.Second)
		m.add("car4g_device_add_to_DOCKED_ms", docked.At.Sub(tAdd).Milliseconds())
		wait(t, mk, `camera volume mounted read-only" camera=CAR-0002 bay=2-8 source=/dev/sd[a-z] fs=exfat`, 60*time.Second)
		if !long {
			// The vault (guest RAM, ~0.5 GiB free) cannot take the card:
			// the admission check lists it, sums its files with the
			// recording at its full 64-bit size, and refuses the whole dock
			// before a byte is copied. The bay is never safe to undock.
			// Reading past 4 GiB is proven only by EVIDENCED_USB_LONG=1.
			l := wait(t, mk, `msg="dock refused: vault full" camera=CAR-0002 need_bytes=[0-9]+`, 120*time.Second)
			var need int64
			fmt.Sscan(l.Text[strings.Index(l.Text, "need_bytes=")+len("need_bytes="):], &need)
			if need < bigSize || need > bigSize+16<<20 {
				t.Errorf("refusal needs %d bytes; the card holds %d in the big recording plus a few small files", need, int64(bigSize))
			}
			must(t, vm.Yank("car4g"))
			undocked(t, mk, "CAR-0002", "2-8", false, 60*time.Second)
			if l := vm.Lines(mk, `dock pass done" camera=CAR-0002|dock complete" camera=CAR-0002`); len(l) != 0 {
				t.Errorf("a refused dock went ahead: %s", l[0].Text)
			}
			if srv != nil {
				// Nothing of CAR-0002 in the bucket.
				checkStore(t, srv, bucket, merge(allManifests...), 300*time.Second)
			}
			return
		}
		before := car4g.sum
		done := wait(t, mk, `msg="dock complete" camera=CAR-0002 .*vaulted=3 .*safe_to_undock=true`, 60*time.Minute)
		m.add("car4g_DOCKED_to_safe_s", done.At.Sub(docked.At).Seconds())
		for _, l := range vm.Lines(mk, fmt.Sprintf(`msg="vault stored" .*bytes=%d .*mb_per_s=`, int64(bigSize))) {
			m.add("car4g_big_vault_store", l.Text[strings.Index(l.Text, "seconds="):])
		}
		must(t, vm.Yank("car4g"))
		undocked(t, mk, "CAR-0002", "2-8", true, 60*time.Second)
		if after := sha256File(t, car4g.image); after != before {
			t.Errorf("exFAT camera image changed: sha256 %s before, %s after", before, after)
		}
		if srv != nil {
			waitVerified(t, wantItems, 30*time.Minute)
			m.add("car4g_device_add_to_all_verified_s", time.Since(tAdd).Seconds())
			checkStore(t, srv, bucket, merge(allManifests...), 10*time.Minute)
		}
	})
	must(t, vm.Yank("bad"))
	wait(t, 0, `camera undocked" camera=BWC-0003`, 30*time.Second)

	// Every recording uploaded and verified before the daemon stops.
	if srv != nil {
		waitVerified(t, wantItems, 300*time.Second)
	}

	// The custody record, read on the host from the guest's ledger.
	mk := vm.Mark()
	if _, rc, err := vm.Sh("kill -TERM $(pidof "+filepath.Base(bin)+")", 30*time.Second); err != nil || rc != 0 {
		t.Fatalf("stop daemon: rc=%d %v", rc, err)
	}
	wait(t, mk, `LOG daemon exited rc=0`, 120*time.Second)
	wait(t, mk, `^LEDGER_OUT`, 60*time.Second)
	checkLedger(t, filepath.Join(dir, "out/ledger.db"), map[string]map[string]string{
		"BWC-0001": body.manifest, "BWC-0002": big.manifest, "CAR-0001": car.manifest,
		"BWC-0004": pair[0].manifest, "BWC-0005": pair[1].manifest, "BWC-0006": pair[2].manifest,
		"CAR-0002": car4gWant, "BWC-0007": gadget.manifest,
	}, srv != nil, bigCheck{camera: "CAR-0002", rel: bigRel, size: bigSize, copied: long})
	m.add("total_s", time.Since(tStart).Seconds())
	t.Logf("metrics:\n  %s", strings.Join(m.m, "\n  "))
}

// waitVerified waits until the daemon in vm has logged want distinct items
// verified in the store.
func waitVerified(t *testing.T, vm *VM, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ids := map[string]bool{}
		for _, l := range vm.Lines(0, `msg=verified item=`) {
			ids[strings.Fields(strings.SplitN(l.Text, "item=", 2)[1])[0]] = true
		}
		if len(ids) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d recordings verified in the store", len(ids), want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// merge joins manifests of several cameras (keys made unique per camera).
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for i, m := range ms {
		for k, v := range m {
			out[fmt.Sprintf("%d:%s", i, k)] = v
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// checkStore waits until the bucket holds exactly one object version per
// file, each byte-identical to the file on the camera (read back and hashed
// here, with the test's own client).
func checkStore(t *testing.T, srv *s3srv.Server, bucket string, want map[string]string, timeout time.Duration) {
	t.Helper()
	c := srv.Client()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]int{} // sha256 → versions
		n := 0
		out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
		if err == nil {
			for _, v := range out.Versions {
				if strings.HasPrefix(aws.ToString(v.Key), "_custody/") {
					continue // anchored custody checkpoints, not footage
				}
				obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId})
				if err != nil {
					continue
				}
				h := sha256.New()
				_, err = io.Copy(h, obj.Body)
				obj.Body.Close()
				if err == nil {
					got[hex.EncodeToString(h.Sum(nil))]++
					n++
				}
			}
		}
		missing := 0
		for _, sum := range want {
			if got[sum] == 0 {
				missing++
			}
		}
		if missing == 0 {
			for sum, k := range got {
				if k > 1 {
					t.Errorf("object with sha256 %s stored %d times", sum, k)
				}
			}
			if n != len(want) {
				t.Errorf("bucket holds %d object versions, want %d", n, len(want))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the store lacks %d of %d files (list err %v)", timeout, missing, len(want), err)
		}
		time.Sleep(time.Second)
	}
}

// bigCheck is what the ledger must say of the >4 GiB recording: COPIED at
// its full size when the long run copied it; otherwise the dock REFUSED with
// need_bytes counting it, never DOCKED, nothing COPIED, UNDOCKED unclean.
type bigCheck struct {
	camera, rel string
	size        int64
	copied      bool
}

// ledgerEvents opens a ledger copied out of a guest read-only, checks that
// it verifies (chain, signatures, tree) and returns every event.
func ledgerEvents(t *testing.T, path string) []custody.Event {
	t.Helper()
	l, err := custody.Open(path, custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	defer l.Close()
	ctx := context.Background()
	var problems []string
	if _, err := l.Verify(ctx, func(p custody.Problem) { problems = append(problems, fmt.Sprint(p)) }); err != nil || len(problems) > 0 {
		t.Errorf("ledger does not verify: %v %v", err, problems)
	}
	var evs []custody.Event
	must(t, l.Events(ctx, 0, func(e custody.Event) error { evs = append(evs, e); return nil }))
	return evs
}

// checkLedger reads the guest's ledger and checks the custody story.
func checkLedger(t *testing.T, path string, cams map[string]map[string]string, uploads bool, big bigCheck) {
	t.Helper()
	evs := ledgerEvents(t, path)
	story := map[string][]string{} // camera → event types in order
	copied := map[string]map[string]string{}
	copiedSize := map[string]string{} // camera/path → COPIED size
	var bigFailed []string            // COPY_FAILED reasons on big.camera
	var bigNeed []string              // need_bytes of REFUSED docks of big.camera
	vaultedItems := map[string]int{}
	verified := map[string]bool{}
	for _, e := range evs {
		s := string(e.Type)
		if e.Type == custody.Undocked {
			s += "(clean=" + e.Details["clean"] + ")"
		}
		story[e.Camera] = append(story[e.Camera], s)
		switch e.Type {
		case custody.Copied:
			if copied[e.Camera] == nil {
				copied[e.Camera] = map[string]string{}
			}
			copied[e.Camera][e.Details["source_path"]] = e.SHA256
			copiedSize[e.Camera+"/"+e.Details["source_path"]] = e.Details["size"]
		case custody.CopyFailed:
			if e.Camera == big.camera {
				bigFailed = append(bigFailed, e.Details["reason"])
			}
		case custody.Refused:
			if e.Camera == big.camera {
				bigNeed = append(bigNeed, e.Details["need_bytes"])
			}
		case custody.Vaulted:
			vaultedItems[e.Item]++
		case custody.Verified:
			verified[e.Item] = true
		}
	}
	for cam, s := range story {
		t.Logf("custody %s: %s", cam, strings.Join(s, " "))
	}
	for id, n := range vaultedItems {
		if n != 1 {
			t.Errorf("item %s VAULTED %d times", id, n)
		}
		if uploads && !verified[id] {
			t.Errorf("item %s vaulted but never VERIFIED in the store", id)
		}
	}
	for cam, man := range cams {
		for rel, sum := range man {
			if copied[cam][rel] != sum {
				t.Errorf("%s %s: COPIED sha256 %q, camera file %s", cam, rel, copied[cam][rel], sum)
			}
		}
		if len(copied[cam]) != len(man) {
			t.Errorf("%s: %d files copied, camera has %d", cam, len(copied[cam]), len(man))
		}
	}
	has := func(cam, seq string) bool {
		return strings.Contains(" "+strings.Join(story[cam], " ")+" ", " "+seq+" ")
	}
	if s := strings.Join(story["BWC-0001"], " "); !strings.HasPrefix(s, "DOCKED") || !has("BWC-0001", "SAFE_TO_UNDOCK") || !has("BWC-0001", "UNDOCKED(clean=true)") {
		t.Errorf("BWC-0001 custody: %s; want DOCKED … SAFE_TO_UNDOCK … UNDOCKED(clean=true)", s)
	}
	s2 := strings.Join(story["BWC-0002"], " ")
	first, rest, _ := strings.Cut(s2, "UNDOCKED(clean=false)")
	if !strings.HasPrefix(first, "DOCKED") || strings.Contains(first, "SAFE_TO_UNDOCK") || !strings.Contains(rest, "DOCKED") || !strings.Contains(rest, "SAFE_TO_UNDOCK") || !strings.Contains(rest, "UNDOCKED(clean=true)") {
		t.Errorf("BWC-0002 custody: %s; want DOCKED … UNDOCKED(clean=false) DOCKED … SAFE_TO_UNDOCK UNDOCKED(clean=true)", s2)
	}
	if strings.Count(first, "VAULTED") >= len(cams["BWC-0002"]) {
		t.Errorf("BWC-0002: everything was vaulted before the yank (%s): the yank did not land mid-file", first)
	}
	if !has("STRANGER-9", "UNKNOWN_DEVICE") || has("STRANGER-9", "DOCKED") {
		t.Errorf("STRANGER-9 custody: %v; want UNKNOWN_DEVICE and no DOCKED", story["STRANGER-9"])
	}
	// The dock is on record at arrival, before the mount is tried.
	if s := strings.Join(story["BWC-0003"], " "); s != "DOCKED REFUSED UNDOCKED(clean=false)" {
		t.Errorf("BWC-0003 (corrupt) custody: %s; want DOCKED REFUSED UNDOCKED(clean=false): nothing copied", s)
	}
	if s := story["BWC-0007"]; !has("BWC-0007", "SAFE_TO_UNDOCK") || !has("BWC-0007", "UNDOCKED(clean=true)") {
		t.Errorf("BWC-0007 (gadget 1209:0001) custody: %v; want DOCKED … SAFE_TO_UNDOCK UNDOCKED(clean=true)", s)
	}
	if s := story["BWC-0008"]; len(s) != 0 {
		t.Errorf("BWC-0008 (gadget 1209:0002, no profile) custody: %v; want none", s)
	}
	sb := strings.Join(story[big.camera], " ")
	if big.copied {
		if got := copiedSize[big.camera+"/"+big.rel]; got != fmt.Sprint(big.size) {
			t.Errorf("%s %s: COPIED size %q, want %d", big.camera, big.rel, got, big.size)
		}
		if !has(big.camera, "SAFE_TO_UNDOCK") || !has(big.camera, "UNDOCKED(clean=true)") || len(bigFailed) != 0 {
			t.Errorf("%s custody: %s (copy failures %q); want DOCKED … SAFE_TO_UNDOCK UNDOCKED(clean=true)", big.camera, sb, bigFailed)
		}
	} else {
		var need int64
		if len(bigNeed) == 1 {
			fmt.Sscan(bigNeed[0], &need)
		}
		if need < big.size || need > big.size+16<<20 {
			t.Errorf("%s: REFUSED need_bytes %q; want one refusal counting the recording's %d bytes", big.camera, bigNeed, big.size)
		}
		if sb != "DOCKED REFUSED UNDOCKED(clean=false)" {
			t.Errorf("%s custody: %s; want DOCKED REFUSED UNDOCKED(clean=false): nothing copied", big.camera, sb)
		}
	}
}
