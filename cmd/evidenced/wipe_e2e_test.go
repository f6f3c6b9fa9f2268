package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
)

const wipeOn = "wipe_after_verify: true\nverify_source_before_wipe: true\n"

// appendConfig adds YAML to the harness's config file.
func appendConfig(t *testing.T, h *harness, extra string) {
	t.Helper()
	f, err := os.OpenFile(h.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
}

// daemonProc is a running `evidenced run`.
type daemonProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// signal sends sig and waits for the process to exit.
func (d *daemonProc) signal(sig syscall.Signal) {
	d.cmd.Process.Signal(sig)
	<-d.exited
}

// startDaemon starts `evidenced run` and returns the process, for tests that
// SIGKILL it; cleanup kills it if the test did not.
func startDaemon(t *testing.T, h *harness) (*daemonProc, *bytes.Buffer) {
	t.Helper()
	sock := filepath.Join(h.state, "evidenced.sock")
	os.Remove(sock) // a SIGKILLed daemon leaves its socket behind
	cmd := exec.Command(binPath, "run", "--config", h.cfgPath)
	logs := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d := &daemonProc{cmd: cmd, exited: exited}
	t.Cleanup(func() { d.signal(syscall.SIGKILL) })
	waitFor(t, "daemon socket", 30*time.Second, func() bool {
		st, err := os.Stat(sock)
		return err == nil && st.Mode()&os.ModeSocket != 0
	})
	return d, logs
}

// ledgerEvents reads every custody event of item id straight from the
// ledger file (no daemon may be running).
func ledgerEvents(t *testing.T, h *harness, id string) []custody.Event {
	t.Helper()
	l := openLedger(t, h)
	defer l.Close()
	evs, err := l.Custody(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func countType(evs []custody.Event, typ custody.EventType) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestWipeAfterIngest(t *testing.T) {
	h := newHarness(t, harnessOpts{extra: wipeOn})
	cam := filepath.Join(h.dir, "cam")
	files := map[string]int{
		"DCIM/100MEDIA/VID_0001.MP4":  2 << 20,
		"DCIM/100MEDIA/VID_0002.MP4":  9 << 20, // multipart: composite checksum
		"DCIM/100MEDIA/VID_0001.NMEA": 3 << 10,
	}
	content := writeCamera(t, cam, files)
	out := h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	if !strings.Contains(out, fmt.Sprintf("%d verified", len(files))) {
		t.Fatalf("ingest:\n%s", out)
	}
	for rel := range files {
		if _, err := os.Lstat(filepath.Join(cam, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still on the camera after a verified ingest with the wipe rule on (%v)", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cam, "DCIM/100MEDIA")); err != nil {
		t.Errorf("the camera's folders must stay: %v", err)
	}
	for _, it := range h.find() {
		evs := ledgerEvents(t, h, it.ID)
		if countType(evs, custody.Wiped) != 1 || countType(evs, custody.WipeChecked) != 4 {
			t.Errorf("%s custody %v", it.SourcePath, eventTypes(evs))
		}
		// The recording is still retrievable, bit for bit, from the vault.
		dst := filepath.Join(h.dir, it.ID+".out")
		h.mustCLI("get", it.ID, "--reason", "check after wipe", "--out", dst)
		if b, _ := os.ReadFile(dst); !bytes.Equal(b, content[it.SourcePath]) {
			t.Errorf("%s: retrieved bytes differ", it.SourcePath)
		}
	}
	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote: exit %d\n%s%s", code, out, errs)
	}
}

// TestWipeRefusedUnlessEveryConditionHolds: one camera, one file per
// injected failure plus one control. With the wipe rule switched on
// afterwards, the daemon's start-up scan wipes the control only; every
// other file stays, with WIPE_REFUSED naming the check that failed.
func TestWipeRefusedUnlessEveryConditionHolds(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	names := []string{"control", "vault", "object", "retention", "source"}
	files := map[string]int{}
	for _, n := range names {
		files["DCIM/"+n+".MP4"] = 256 << 10
	}
	writeCamera(t, cam, files)
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := map[string]custody.Item{}
	for _, it := range h.find() {
		items[strings.TrimSuffix(filepath.Base(it.SourcePath), ".MP4")] = it
	}
	ctx := context.Background()
	c := h.srv.Client()

	// (a)=(b) fails: the vault copy no longer reads back as streamed.
	vp := filepath.Join(h.state, "vault", "items", items["vault"].ID[:2], items["vault"].ID)
	os.Chmod(vp, 0o640)
	flipByte(t, vp, 1000)
	// (c) fails: something else wrote a newer version of the key.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(h.bucket), Key: aws.String(items["object"].ObjectKey), Body: strings.NewReader("replaced"),
	}); err != nil {
		t.Fatal(err)
	}
	// (d) fails: a privileged GOVERNANCE override shortened the retention
	// to a moment that is now past.
	it := items["retention"]
	soon := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	if _, err := c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{
		Bucket: aws.String(h.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
		Retention:                 &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(soon)},
		BypassGovernanceRetention: aws.Bool(true),
	}); err != nil {
		t.Fatalf("shorten governance retention (the injected fault): %v", err)
	}
	// (e) fails: the camera file changed, same size and mtime.
	sp := filepath.Join(cam, "DCIM/source.MP4")
	st, _ := os.Stat(sp)
	flipByte(t, sp, 10)
	os.Chtimes(sp, st.ModTime(), st.ModTime())
	for time.Now().Before(soon.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}

	appendConfig(t, h, wipeOn)
	d, logs := startDaemon(t, h)
	waitFor(t, "every wipe decided", 2*time.Minute, func() bool {
		for _, n := range names {
			evs := h.custody(items[n].ID)
			if countType(evs, custody.Wiped)+countType(evs, custody.WipeRefused) == 0 {
				return false
			}
		}
		return true
	})
	d.signal(syscall.SIGTERM)
	wantCheck := map[string]string{"vault": "stream_vault", "object": "store", "retention": "lock", "source": "source"}
	for _, n := range names {
		_, err := os.Lstat(filepath.Join(cam, "DCIM", n+".MP4"))
		evs := ledgerEvents(t, h, items[n].ID)
		if n == "control" {
			if !errors.Is(err, os.ErrNotExist) || countType(evs, custody.Wiped) != 1 {
				t.Errorf("control: not wiped (%v): %v\n%s", err, eventTypes(evs), logs)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: the camera file is gone although its check failed: %v", n, err)
		}
		if countType(evs, custody.Wiped) != 0 || countType(evs, custody.WipeUnlinking) != 0 {
			t.Errorf("%s: custody %v", n, eventTypes(evs))
		}
		ref := lastOf(t, evs, custody.WipeRefused)
		if ref.Details["check"] != wantCheck[n] || ref.Details["retry"] != "false" {
			t.Errorf("%s: WIPE_REFUSED %v, want check %s", n, ref.Details, wantCheck[n])
		}
	}
}

// TestWipeSurvivesSIGKILL kills the daemon while it wipes a camera, several
// times, and checks after each kill that every file missing from the camera
// went through every check of one attempt and the unlink intent; then a
// last run finishes with each file wiped exactly once.
func TestWipeSurvivesSIGKILL(t *testing.T) {
	h := newHarness(t, harnessOpts{extra: wipeOn})
	const n = 40
	files := map[string]int{}
	for i := range n {
		files[fmt.Sprintf("DCIM/100MEDIA/V%03d.MP4", i)] = 96 << 10
	}
	staging := filepath.Join(h.dir, "staging", "BWC-0001")
	content := writeCamera(t, staging, files)
	cam := filepath.Join(h.media, "BWC-0001")
	left := func() int {
		k := 0
		for rel := range files {
			if _, err := os.Lstat(filepath.Join(cam, rel)); err == nil {
				k++
			}
		}
		return k
	}
	kills := 0
	for round := 0; round < 3; round++ {
		d, _ := startDaemon(t, h)
		if round == 0 {
			if err := os.Rename(staging, cam); err != nil {
				t.Fatal(err)
			}
		}
		before := left()
		deadline := time.Now().Add(2 * time.Minute)
		for left() == before && before > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		// Land the kill a little after a file went: sometimes between the
		// unlink and WIPED, sometimes in the middle of the next checks.
		time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
		d.signal(syscall.SIGKILL)
		kills++
		t.Logf("kill %d: %d of %d files left on the camera", kills, left(), n)
		// The invariant, read from the ledger with the daemon dead.
		l := openLedger(t, h)
		for rel := range files {
			if _, err := os.Lstat(filepath.Join(cam, rel)); err == nil {
				continue
			}
			var it custody.Item
			l.Items(context.Background(), custody.Filter{}, func(x custody.Item) error {
				if x.SourcePath == rel {
					it = x
				}
				return nil
			})
			evs, err := l.Custody(context.Background(), it.ID)
			if err != nil {
				t.Fatalf("%s is gone from the camera but not in the ledger: %v", rel, err)
			}
			checks, intent := map[string]bool{}, false
			for _, e := range evs {
				switch e.Type {
				case custody.WipeStarted:
					checks, intent = map[string]bool{}, false
				case custody.WipeChecked:
					checks[e.Details["check"]] = true
				case custody.WipeUnlinking:
					intent = true
				}
			}
			if len(checks) != 4 || !intent || it.State != custody.StateVerified {
				t.Errorf("after kill %d: %s is gone but its last attempt has checks %v, intent %v, state %s: %v",
					kills, rel, checks, intent, it.State, eventTypes(evs))
			}
		}
		l.Close()
		if left() == 0 {
			break
		}
	}
	stop, logs := h.daemon(t)
	waitFor(t, "every file wiped", 3*time.Minute, func() bool { return left() == 0 })
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	l := openLedger(t, h)
	var items []custody.Item
	l.Items(context.Background(), custody.Filter{}, func(x custody.Item) error { items = append(items, x); return nil })
	if len(items) != n {
		t.Fatalf("%d items, want %d", len(items), n)
	}
	for _, it := range items {
		evs, _ := l.Custody(context.Background(), it.ID)
		if countType(evs, custody.Wiped) != 1 || countType(evs, custody.Verified) != 1 || it.SHA256 != digest.Bytes(content[it.SourcePath]).Hex() {
			t.Errorf("%s: %v", it.SourcePath, eventTypes(evs))
		}
	}
	l.Close()
	if n := countVersions(t, h); n != len(files) {
		t.Errorf("%d object versions, want %d", n, len(files))
	}
	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote after %d kills: exit %d\n%s%s", kills, code, out, errs)
	}
	t.Logf("%d SIGKILLs during wipes", kills)
}

// TestVaultFullRefusesDockThenResumes runs the real binary with its state
// directory on a small tmpfs (in a private mount namespace): a dock whose
// footage would not fit is refused before any copy starts, with a REFUSED
// event and a clear message; what was already vaulted is untouched; once
// space is freed the same dock goes through and everything verifies.
func TestVaultFullRefusesDockThenResumes(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed: cannot mount a private tmpfs")
	}
	h := newHarness(t, harnessOpts{extra: "vault:\n  min_free: 1MiB\n"})
	car := filepath.Join(h.dir, "car")
	writeCamera(t, car, map[string]int{"DCIM/CAR.MP4": 1 << 20})
	cam := filepath.Join(h.dir, "cam")
	content := writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 4 << 20, "DCIM/B.MP4": 4 << 20, "DCIM/C.MP4": 4 << 20})
	out := filepath.Join(h.dir, "out")
	os.MkdirAll(out, 0o755)
	script := `
set -u
mkdir -p "$STATE"
mount -t tmpfs -o size=24m tmpfs "$STATE" || { echo MOUNT_FAILED; exit 0; }
"$BIN" ingest --config "$CFG" --camera CAR-0001 --from "$CAR"; echo "STEP0 rc=$?"
head -c 13M /dev/zero > "$STATE/filler"
"$BIN" ingest --config "$CFG" --camera BWC-0001 --from "$CAM"; echo "STEP1 rc=$?"
echo "FILES1 $(find "$STATE/vault" -type f | wc -l)"
rm "$STATE/filler"
"$BIN" ingest --config "$CFG" --camera BWC-0001 --from "$CAM"; echo "STEP2 rc=$?"
"$BIN" verify --remote --config "$CFG"; echo "STEP3 rc=$?"
cp "$STATE/ledger.db" "$OUT/ledger.db"
`
	cmd := exec.Command("unshare", "-rm", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "STATE="+h.state, "BIN="+binPath, "CFG="+h.cfgPath, "CAR="+car, "CAM="+cam, "OUT="+out)
	b, err := cmd.CombinedOutput()
	text := string(b)
	if err != nil || strings.Contains(text, "MOUNT_FAILED") {
		t.Skipf("no private tmpfs here (%v): %s", err, text)
	}
	for _, want := range []string{"STEP0 rc=0", "STEP1 rc=1", "vault full", "FILES1 1\n", "STEP2 rc=0", "STEP3 rc=0"} {
		if !strings.Contains(text, want) {
			t.Errorf("want %q in the run:\n%s", want, text)
		}
	}
	l, err := custody.Open(filepath.Join(out, "ledger.db"), custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var refused []custody.Event
	var firstDockAfterRefusal bool
	l.Events(context.Background(), 1, func(e custody.Event) error {
		switch {
		case e.Type == custody.Refused && e.Camera == "BWC-0001":
			refused = append(refused, e)
		case len(refused) == 1 && e.Type == custody.Docked && e.Camera == "BWC-0001":
			firstDockAfterRefusal = true
		case len(refused) == 1 && !firstDockAfterRefusal && e.Camera == "BWC-0001":
			t.Errorf("%s for BWC-0001 after the refusal and before the next dock", e.Type)
		}
		return nil
	})
	if len(refused) != 1 || refused[0].Details["need_bytes"] != fmt.Sprint(12<<20) || !strings.Contains(refused[0].Details["reason"], "vault full") {
		t.Fatalf("REFUSED events %+v", refused)
	}
	var items []custody.Item
	l.Items(context.Background(), custody.Filter{}, func(it custody.Item) error { items = append(items, it); return nil })
	if len(items) != 4 {
		t.Fatalf("%d items, want 4", len(items))
	}
	for _, it := range items {
		if it.State != custody.StateVerified {
			t.Errorf("%s: %s", it.SourcePath, it.State)
		}
		if c, ok := content[it.SourcePath]; ok && digest.Bytes(c).Hex() != it.SHA256 {
			t.Errorf("%s: hash differs", it.SourcePath)
		}
	}
}

// TestDaemonShowsVaultFull: a dock the vault cannot take shows as a problem
// bay with the reason in `status`, and nothing is copied.
func TestDaemonShowsVaultFull(t *testing.T) {
	h := newHarness(t, harnessOpts{extra: "vault:\n  min_free: 1000TiB\n"})
	stop, logs := h.daemon(t)
	staging := filepath.Join(h.dir, "staging", "BWC-0002")
	writeCamera(t, staging, map[string]int{"DCIM/A.MP4": 1 << 20})
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0002")); err != nil {
		t.Fatal(err)
	}
	var status string
	waitFor(t, "the refusal in status", time.Minute, func() bool {
		status = h.mustCLI("status")
		return strings.Contains(status, "vault full")
	})
	if !strings.Contains(status, "problem") || !strings.Contains(status, "BWC-0002") {
		t.Errorf("status:\n%s", status)
	}
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	if items := h.find(); len(items) != 0 {
		t.Errorf("%d items vaulted from a refused dock", len(items))
	}
	l := openLedger(t, h)
	defer l.Close()
	var refused, docked int
	l.Events(context.Background(), 1, func(e custody.Event) error {
		if e.Camera == "BWC-0002" && e.Type == custody.Refused {
			refused++
		}
		if e.Type == custody.Docked {
			docked++
		}
		return nil
	})
	if refused == 0 || docked != 0 {
		t.Errorf("%d REFUSED, %d DOCKED events; want a refusal and no dock", refused, docked)
	}
}

// TestVaultReleasedAfterGrace: with the wipe rule on and a short grace, the
// daemon wipes the camera, then releases the vault copies; verify (local
// and remote) stays clean and get serves the recording from the store.
func TestVaultReleasedAfterGrace(t *testing.T) {
	h := newHarness(t, harnessOpts{extra: wipeOn + "vault:\n  grace: 1s\n"})
	stop, logs := h.daemon(t)
	staging := filepath.Join(h.dir, "staging", "BWC-0001")
	content := writeCamera(t, staging, map[string]int{"DCIM/A.MP4": 1 << 20, "DCIM/B.MP4": 9 << 20})
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0001")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "vault copies released", 2*time.Minute, func() bool {
		items := h.find()
		if len(items) != len(content) {
			return false
		}
		for _, it := range items {
			if it.State != custody.StateVerified || it.VaultPath != "" {
				return false
			}
		}
		return true
	})
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	for _, it := range h.find() {
		evs := ledgerEvents(t, h, it.ID)
		if countType(evs, custody.Wiped) != 1 || countType(evs, custody.VaultReleased) != 1 {
			t.Errorf("%s: %v", it.SourcePath, eventTypes(evs))
		}
		if _, err := os.Lstat(filepath.Join(h.state, "vault", "items", it.ID[:2], it.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: vault copy still there (%v)", it.SourcePath, err)
		}
		dst := filepath.Join(h.dir, it.ID+".out")
		h.mustCLI("get", it.ID, "--reason", "after release", "--out", dst)
		if b, _ := os.ReadFile(dst); !bytes.Equal(b, content[it.SourcePath]) {
			t.Errorf("%s: bytes from the store differ", it.SourcePath)
		}
	}
	for _, args := range [][]string{{"verify"}, {"verify", "--remote"}} {
		if code, out, errs := h.cli(args...); code != 0 {
			t.Fatalf("%v after release: exit %d\n%s%s", args, code, out, errs)
		}
	}
}
