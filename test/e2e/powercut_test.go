package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// powerCutDaemon starts the daemon the way startScript does (uid 999, group
// disk, CAP_SYS_ADMIN only), vault only. Its argument is the run number.
//
// In run 1 the power goes at a chosen moment, from the guest, with no round
// trip to the host: when the daemon logs the second recording's "vault
// stored" (Store has returned: the copy is renamed into items/ and, by the
// vault's contract, durable; the first recording is VAULTED by then), the
// loop that reads its log freezes it (SIGSTOP, before even echoing the
// line) and runs /etc/e2e/cut.
const powerCutDaemon = `#!/bin/sh
echo "@@ DAEMON_START run=$1" > /dev/ttyS1
n=0 pid=
( /usr/bin/setpriv --reuid=999 --regid=999 --groups=6 --inh-caps=-all,+sys_admin --ambient-caps=-all,+sys_admin --bounding-set=-all,+sys_admin --no-new-privs -- %s; echo "daemon exited rc=$?" ) 2>&1 | while IFS= read -r l; do
  [ -n "$pid" ] || pid=$(pidof evidenced)
  case "$l" in
    *'msg="vault stored"'*)
      n=$((n+1))
      if [ "$1" = 1 ] && [ $n = 2 ]; then kill -STOP $pid; echo "@@ LOG $l"; /etc/e2e/cut $pid "$l"; continue; fi ;;
  esac
  echo "@@ LOG $l"
done > /dev/ttyS1
`

// powerCutStart puts the state directory (ledger, vault, signing key) on
// the ext4 disk /dev/vda behind a device-mapper device that passes
// everything through (a linear table), then starts run 1. DM_DISABLE_UDEV:
// no udevd runs; dmsetup makes /dev/mapper/* itself.
//
// commit=60: ext4 commits its journal on its own every 60 s instead of 5,
// so what reaches the disk before the cut is what someone synced (an
// fsync, the directory's or the ledger's), not what the journal's timer
// happened to commit in the second or two the cut takes under TCG. Data
// nobody synced stays in the page cache for 30 s (the dirty expiry).
const powerCutStart = `#!/bin/sh
export DM_DISABLE_UDEV=1
mkdir -p /run/evidenced/mnt /var/lib/evidenced
modprobe crc32c_generic && modprobe ext4 && modprobe dm-flakey &&
  dmsetup create vault --table "0 $(cat /sys/block/vda/size) linear /dev/vda 0" &&
  mount -t ext4 -o commit=60 /dev/mapper/vault /var/lib/evidenced &&
  echo "@@ VAULT_DISK $(df -k /var/lib/evidenced | tail -1)" > /dev/ttyS1 || { echo "@@ VAULT_DISK_FAILED" > /dev/ttyS1; exit 1; }
echo 'sd[a-z].* 0:6 0660' > /etc/mdev.conf
/bin/mdev -d   # netlink daemon: the kernel has no uevent helper
chown -R 999:999 /var/lib/evidenced /run/evidenced
/etc/e2e/daemon 1
`

// powerCut is the cut. The daemon ($1) is frozen; the vault disk's table
// becomes dm-flakey with no up time and drop_writes: from now on every
// write and every flush is acknowledged and lost, as in a machine whose
// power just went (its disk keeps what it had been given). --nolockfs:
// suspending must not freeze the file system, which would write back
// everything first. The daemon then runs on, into the void, until the host
// kills it.
const powerCut = `#!/bin/sh
export DM_DISABLE_UDEV=1
echo "@@ FROZEN $1" > /dev/ttyS1
dmsetup suspend --nolockfs --noflush vault &&
  dmsetup load vault --table "0 $(cat /sys/block/vda/size) flakey /dev/vda 0 0 3600 1 drop_writes" &&
  dmsetup resume vault &&
  echo "@@ CUT after: $2" > /dev/ttyS1 || echo "@@ CUT_FAILED" > /dev/ttyS1
kill -CONT $1
`

// powerBack is what a reboot does to the state directory: the daemon is
// gone (killed: it kept writing into the void), the camera's mount with it,
// the page cache holds nothing of the vault disk, and the disk comes back
// with only what reached it before the cut (a linear table again; ext4
// replays its journal at mount).
const powerBack = `#!/bin/sh
export DM_DISABLE_UDEV=1
kill -KILL $(pidof evidenced) 2>/dev/null
for i in $(seq 100); do pidof evidenced >/dev/null || break; sleep 0.1; done
pidof evidenced && { echo "daemon still running"; exit 1; }
for m in $(awk '$2 ~ "^/run/evidenced/mnt/" {print $2}' /proc/mounts); do umount "$m" || exit 1; done
umount /var/lib/evidenced || exit 1
dmsetup remove vault || exit 1
sync; echo 3 > /proc/sys/vm/drop_caches
dmsetup create vault --table "0 $(cat /sys/block/vda/size) linear /dev/vda 0" || exit 1
mount -t ext4 /dev/mapper/vault /var/lib/evidenced || exit 1
dmesg | grep -i 'EXT4-fs (dm-' | tail -3
`

// vaultHashes lists every file in the vault's items/ with its SHA-256, as
// the guest reads it now: item id → sha256.
func vaultHashes(t *testing.T, vm *VM) map[string]string {
	t.Helper()
	out, rc, err := vm.Sh("cd /var/lib/evidenced/vault/items && find . -type f | xargs -r sha256sum", 120*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("hash the vault in the guest: rc=%d %v\n%s", rc, err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			got[filepath.Base(f[1])] = f[0]
		}
	}
	return got
}

// guestVerify runs `evidenced verify` in the guest, as the daemon's user:
// the chain, the signatures and every vault file re-hashed against the
// ledger.
func guestVerify(t *testing.T, vm *VM, when string) {
	t.Helper()
	out, rc, err := vm.Sh("/usr/bin/setpriv --reuid=999 --regid=999 --clear-groups -- /usr/bin/evidenced verify --config /etc/evidenced/evidenced.yaml --reason 'power-cut test "+when+"'", 120*time.Second)
	if err != nil || rc != 0 {
		t.Errorf("evidenced verify %s: rc=%d %v\n%s", when, rc, err, out)
	}
}

// custodyOf is what a ledger says of one camera's recordings.
type custodyOf struct {
	head     uint64
	copiedAt map[string][]uint64 // source path → seqs of its COPIED events
	itemOf   map[string]string   // source path → item id
	vaulted  map[string][]string // item id → sha256 of each VAULTED
}

func readCustody(t *testing.T, path, camera string) custodyOf {
	t.Helper()
	c := custodyOf{copiedAt: map[string][]uint64{}, itemOf: map[string]string{}, vaulted: map[string][]string{}}
	for _, e := range ledgerEvents(t, path) {
		c.head = e.Seq
		if e.Camera != camera {
			continue
		}
		switch e.Type {
		case custody.Copied:
			p := e.Details["source_path"]
			c.copiedAt[p] = append(c.copiedAt[p], e.Seq)
			if old, ok := c.itemOf[p]; ok && old != e.Item {
				t.Errorf("%s copied as two items, %s and %s", p, old, e.Item)
			}
			c.itemOf[p] = e.Item
		case custody.Vaulted:
			c.vaulted[e.Item] = append(c.vaulted[e.Item], e.SHA256)
		}
	}
	return c
}

// TestUSBPowerCut cuts the power to the vault disk during an ingest and
// restarts the daemon on what survived. The state directory (ledger, vault,
// key) is ext4 on a device-mapper device; once the first recording is
// VAULTED and the second one's Store has returned, the daemon is frozen and
// the device starts dropping every write. The daemon is killed, the file system unmounted, the page cache
// dropped and the device re-created plain: only what reached the disk
// before the cut is there. Then every event logged as committed must be in
// the ledger, which must verify (on the host and with evidenced verify);
// every recording the ledger calls COPIED or VAULTED, and the one whose
// Store returned, must be in the vault, and every file there must be
// byte-identical to the camera's; a restarted daemon must copy the rest
// from the camera, each recording vaulted exactly once in the end.
func TestUSBPowerCut(t *testing.T) {
	cache := prepare(t)
	tStart := time.Now()
	dir := runDir(t)
	// Four recordings of ~7 MB each: smaller than the vault's writeback
	// window, so until its fsync a copy is only in the page cache.
	files := map[string]string{}
	for i := 1; i <= 4; i++ {
		files[fmt.Sprintf("DCIM/100MEDIA/PWR%05d.MP4", i)] = "noise:1"
	}
	cam := makeCamera(t, filepath.Join(cache, "images"), "powercut", 128, true, files)

	// Vault only: no object store, the guarantee is local durability.
	_, cmdline, guest := daemonFiles(t, dir, "")
	addHostTool(t, guest, "dmsetup")
	guest["/etc/e2e/start"] = File{Mode: 0o755, Data: []byte(powerCutStart)}
	guest["/etc/e2e/daemon"] = File{Mode: 0o755, Data: []byte(fmt.Sprintf(powerCutDaemon, cmdline))}
	guest["/etc/e2e/cut"] = File{Mode: 0o755, Data: []byte(powerCut)}
	guest["/etc/e2e/powerback"] = File{Mode: 0o755, Data: []byte(powerBack)}
	initrd := writeInitrd(t, cache, dir, guest)

	vm, err := Start(Options{Accel: os.Getenv("EVIDENCED_USBVM_ACCEL"), Kernel: filepath.Join(cache, "build/vmlinux"), Initrd: initrd,
		MemMB: 1024, Dir: dir, Extra: vaultDisk(t, dir, 1<<30)})
	must(t, err)
	closeOnCleanup(t, vm, 3000)
	wait := func(from int, re string, d time.Duration) Line { t.Helper(); return mustWait(t, vm, from, re, d) }
	sh := func(cmd string) string { t.Helper(); return mustSh(t, vm, cmd, 120*time.Second) }
	if l := wait(0, `^VAULT_DISK`, 120*time.Second); strings.Contains(l.Text, "FAILED") {
		t.Fatal("vault disk behind device-mapper: setup failed")
	}
	ready := wait(0, `msg="watching USB for docked cameras"`, 60*time.Second)
	t.Logf("boot to daemon ready: %s", ready.At.Sub(vm.Started).Round(time.Millisecond))

	// Run 1: dock; the second recording's "vault stored" cuts the power.
	mk := vm.Mark()
	tPlug := time.Now()
	must(t, vm.Plug("cam", cam.image, "BWC-0001", 1))
	frozen := wait(mk, `^FROZEN`, 180*time.Second)
	if !regexp.MustCompile(`^FROZEN [0-9]+$`).MatchString(frozen.Text) {
		t.Fatalf("the daemon was not frozen before the cut (no pid): %s", frozen.Text)
	}
	cut := wait(mk, `^CUT`, 60*time.Second)
	if strings.HasPrefix(cut.Text, "CUT_FAILED") {
		t.Fatal("dmsetup could not switch the vault disk to dm-flakey")
	}
	m := regexp.MustCompile(`msg="vault stored" item=([a-z0-9_-]+) `).FindStringSubmatch(cut.Text)
	if m == nil {
		t.Fatalf("cut line names no stored item: %s", cut.Text)
	}
	stored := m[1]
	// Every event the daemon logged before it was frozen had been committed
	// (lines still in the log pipe then are read after the cut: not counted).
	var committed uint64
	for _, l := range vm.Lines(mk, `msg="custody event appended" seq=`) {
		if l.At.After(frozen.At) {
			break
		}
		var seq uint64
		fmt.Sscan(l.Text[strings.Index(l.Text, "seq=")+len("seq="):], &seq)
		committed = max(committed, seq)
	}
	t.Logf("power cut %s after the camera was plugged; frozen after item %s was stored, ledger seq %d committed",
		cut.At.Sub(tPlug).Round(time.Millisecond), stored, committed)
	// Let the daemon write into the void for a moment, as it would until
	// the power supply's capacitors drain: the more it believes it did,
	// the more the restart must find undone.
	time.Sleep(time.Second)
	t.Logf("after the cut: %s", sh("/etc/e2e/powerback"))

	// What survived.
	sh("cp /var/lib/evidenced/ledger.db /out/ledger-cut.db && sync")
	before := readCustody(t, filepath.Join(dir, "out/ledger-cut.db"), "BWC-0001")
	held := vaultHashes(t, vm)
	if before.head < committed {
		t.Errorf("the ledger came back with head seq %d; seq %d was committed (fsync returned) before the cut", before.head, committed)
	}
	survived := 0
	for rel, want := range cam.manifest {
		id, ok := before.itemOf[rel]
		if !ok || len(before.vaulted[id]) == 0 {
			continue
		}
		survived++
		if v := before.vaulted[id]; len(v) != 1 || v[0] != want {
			t.Errorf("%s (%s): VAULTED %v before the cut, camera file %s", rel, id, v, want)
		}
	}
	if survived == 0 || survived == len(cam.manifest) {
		t.Fatalf("%d of %d recordings VAULTED when the power went: the cut did not land mid-ingest", survived, len(cam.manifest))
	}
	t.Logf("%d of %d recordings VAULTED before the cut; vault files present: %d", survived, len(cam.manifest), len(held))
	guestVerify(t, vm, "after the cut")

	// Run 2, on the surviving state, the camera still in its bay.
	mk = vm.Mark()
	tRestart := time.Now()
	sh("/etc/e2e/daemon 2 </dev/null >/dev/null 2>&1 &")
	wait(mk, `msg="dock complete" camera=BWC-0001 .*safe_to_undock=true`, 180*time.Second)
	t.Logf("restart to dock complete: %s", time.Since(tRestart).Round(time.Millisecond))
	mk = vm.Mark()
	sh("kill -TERM $(pidof evidenced)")
	wait(mk, `LOG daemon exited rc=0`, 120*time.Second)
	guestVerify(t, vm, "after the restart")
	sh("cp /var/lib/evidenced/ledger.db /out/ledger.db && sync")
	after := readCustody(t, filepath.Join(dir, "out/ledger.db"), "BWC-0001")
	final := vaultHashes(t, vm)
	for rel, want := range cam.manifest {
		id := after.itemOf[rel]
		if v := after.vaulted[id]; len(v) != 1 || v[0] != want {
			t.Errorf("%s (%s): VAULTED %v in the end; want once, camera file %s", rel, id, v, want)
		}
		if final[id] != want {
			t.Errorf("%s (%s): vault file %q in the end, camera file %s", rel, id, final[id], want)
		}
		if bid := before.itemOf[rel]; bid == "" || len(before.vaulted[bid]) == 0 {
			// Not vaulted when the power went: copied again, from the camera.
			again := false
			for _, s := range after.copiedAt[rel] {
				again = again || s > before.head
			}
			if !again {
				t.Errorf("%s: not VAULTED before the cut and not copied again after it (COPIED at seqs %v, head was %d)", rel, after.copiedAt[rel], before.head)
			}
		} else if n := len(after.copiedAt[rel]); n != len(before.copiedAt[rel]) {
			t.Errorf("%s: VAULTED before the cut, yet copied again (%d COPIED, %d before)", rel, n, len(before.copiedAt[rel]))
		}
	}
	// The vault after the cut, now that every recording's item is known:
	// each file under items/ is a complete copy (never a torn one), and the
	// recordings the ledger had COPIED or VAULTED, and the one whose Store
	// had returned, are there.
	relOf := map[string]string{}
	for rel, id := range after.itemOf {
		relOf[id] = rel
	}
	for id, got := range held {
		if rel, ok := relOf[id]; !ok || got != cam.manifest[rel] {
			t.Errorf("after the power cut the vault holds %s (%s) reading as %s; the camera file is %s", id, rel, got, cam.manifest[rel])
		}
	}
	durable := map[string]string{stored: "its Store returned before the cut"}
	for _, id := range before.itemOf {
		durable[id] = "COPIED in the surviving ledger"
		if len(before.vaulted[id]) > 0 {
			durable[id] = "VAULTED in the surviving ledger"
		}
	}
	for id, why := range durable {
		if _, ok := held[id]; !ok {
			t.Errorf("%s (%s): %s, but its vault file did not survive the power cut", id, relOf[id], why)
		}
	}
	if len(after.vaulted) != len(cam.manifest) {
		t.Errorf("%d items VAULTED, the camera has %d recordings", len(after.vaulted), len(cam.manifest))
	}
	if after := sha256File(t, cam.image); after != cam.sum {
		t.Errorf("camera image changed: sha256 %s before, %s after", cam.sum, after)
	}
	t.Logf("power-cut test: %s", time.Since(tStart).Round(time.Second))
}
