package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

var bodyCam = map[string]int{
	"DCIM/100MEDIA/VID_0001.MP4":  3 << 20,
	"DCIM/100MEDIA/VID_0002.MP4":  11 << 20, // above the 8 MiB multipart threshold
	"DCIM/100MEDIA/VID_0001.NMEA": 4 << 10,
	"DCIM/100MEDIA/VID_0002.JSON": 700,
	"MISC/empty.txt":              0,
}

func openStore(t *testing.T, h *harness) *s3store.Store {
	t.Helper()
	cfg, err := config.Load(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: cfg.ObjectStore.Endpoint, Bucket: cfg.ObjectStore.Bucket, Region: cfg.ObjectStore.Region,
		PathStyle: true, MultipartThreshold: int64(cfg.ObjectStore.MultipartThreshold),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestIngestEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	content := writeCamera(t, cam, bodyCam)

	code, out, errs := h.cli("ingest", "--camera", "BWC-0001", "--from", cam)
	if code != 0 {
		t.Fatalf("ingest exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "SAFE TO UNDOCK") {
		t.Errorf("ingest output does not say safe to undock:\n%s", out)
	}
	items := h.find("--camera", "BWC-0001")
	if len(items) != len(bodyCam) {
		t.Fatalf("find: %d items, want %d", len(items), len(bodyCam))
	}
	st := openStore(t, h)
	for _, it := range items {
		want := digest.Bytes(content[it.SourcePath]).Hex()
		if it.SHA256 != want || it.Size != int64(len(content[it.SourcePath])) {
			t.Errorf("%s: sha %s size %d, want %s %d", it.SourcePath, it.SHA256, it.Size, want, len(content[it.SourcePath]))
		}
		if it.State != custody.StateVerified || it.ObjectKey == "" || it.VersionID == "" || it.AssignedTo != "officer-4711" {
			t.Errorf("%s: state %s key %q version %q assigned %q", it.SourcePath, it.State, it.ObjectKey, it.VersionID, it.AssignedTo)
		}
		// Retention and tags as the server reports them.
		info, err := st.Stat(context.Background(), it.ObjectKey, it.VersionID)
		if err != nil {
			t.Fatalf("stat %s: %v", it.ObjectKey, err)
		}
		if info.LockMode != "GOVERNANCE" || info.RetainUntil.Before(time.Now().AddDate(0, 0, 89)) {
			t.Errorf("%s: lock %s until %s, want GOVERNANCE ~90 days", it.ObjectKey, info.LockMode, info.RetainUntil)
		}
		if info.Tags["camera"] != "BWC-0001" || info.Tags["assigned_to"] != "officer-4711" ||
			info.Tags["retention_class"] != "uncategorized" || info.Tags["sha256"] != want {
			t.Errorf("%s: tags %v", it.ObjectKey, info.Tags)
		}
		if info.Size != it.Size {
			t.Errorf("%s: store size %d, want %d", it.ObjectKey, info.Size, it.Size)
		}
	}

	// The custody of one item runs from DOCKED to VERIFIED, chained; looking
	// at it is itself recorded, before it is shown. The recording above the
	// multipart threshold also records its upload's id and parts (find's
	// order follows item ids, which change with mtimes: pick by size).
	byPath := map[string]custody.Item{}
	for _, it := range items {
		byPath[it.SourcePath] = it
	}
	for path, want := range map[string][]string{
		"DCIM/100MEDIA/VID_0001.MP4": {"DOCKED", "COPIED", "VAULTED", "UPLOADED", "VERIFIED", "ACCESSED"},
		"DCIM/100MEDIA/VID_0002.MP4": {"DOCKED", "COPIED", "VAULTED", "UPLOAD_STARTED", "UPLOAD_PARTS", "UPLOADED", "VERIFIED", "ACCESSED"},
	} {
		if got := eventTypes(h.custody(byPath[path].ID)); !slices.Equal(got, want) {
			t.Errorf("%s: custody types %v, want %v", path, got, want)
		}
	}
	evs := h.custody(byPath["DCIM/100MEDIA/VID_0001.MP4"].ID)
	if d := evs[0].Details; d["host_time"] == "" || d["clock_method"] != "adjtimex" ||
		(d["clock_synced"] != "true" && d["clock_synced"] != "false") {
		t.Errorf("DOCKED does not record the host clock's state: %v", d)
	}
	if v := evs[len(evs)-1]; v.Details["action"] != "custody" || v.Actor == "" {
		t.Errorf("viewing the custody recorded as %+v", v)
	}
	for i, ev := range evs {
		if ev.Hash == "" || ev.PrevHash == "" || ev.Host != "test-dock" || ev.At.IsZero() {
			t.Errorf("event %d incomplete: %+v", i, ev)
		}
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("custody not ordered by seq: %d after %d", ev.Seq, evs[i-1].Seq)
		}
	}

	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote: exit %d\n%s%s", code, out, errs)
	}

	// get: the bytes, verified; the access recorded with actor and reason.
	outFile := filepath.Join(h.dir, "out.bin")
	h.mustCLI("get", items[0].ID, "--reason", "complaint 42", "--actor", "investigator-7", "--out", outFile)
	b, err := os.ReadFile(outFile)
	if err != nil || !bytes.Equal(b, content[items[0].SourcePath]) {
		t.Fatalf("get wrote %d bytes (err %v), want the original %d", len(b), err, len(content[items[0].SourcePath]))
	}
	evs = h.custody(items[0].ID)
	// The last two: the retrieval, then this look at the custody.
	last := evs[len(evs)-2]
	if last.Type != custody.Accessed || last.Actor != osUser || last.Details["on_behalf_of"] != "investigator-7" || last.Details["reason"] != "complaint 42" ||
		last.Details["action"] != "retrieve" {
		t.Errorf("event recorded for get: %+v", last)
	}
	if code, _, errs := h.cli("get", items[0].ID, "--reason", "again", "--out", outFile); code == 0 || !strings.Contains(errs, "exists") {
		t.Errorf("get over an existing file: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := h.cli("get", items[0].ID, "--out", filepath.Join(h.dir, "x")); code != exitUsage {
		t.Errorf("get without --reason: exit %d, want %d", code, exitUsage)
	}
}

func TestReDockCreatesNoDuplicates(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, bodyCam)
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	out := h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam, "--json")
	var res struct {
		Vaulted     int  `json:"vaulted"`
		AlreadyHeld int  `json:"already_held"`
		OK          bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Vaulted != 0 || res.AlreadyHeld != len(bodyCam) || !res.OK {
		t.Errorf("re-dock: %+v, want 0 vaulted, %d already held", res, len(bodyCam))
	}
	if n := len(h.find()); n != len(bodyCam) {
		t.Errorf("find after re-dock: %d items, want %d", n, len(bodyCam))
	}
	// One object version per recording in the store.
	if n := countVersions(t, h); n != len(bodyCam) {
		t.Errorf("store holds %d object versions, want %d", n, len(bodyCam))
	}
}

func countVersions(t *testing.T, h *harness) int {
	t.Helper()
	st := openStore(t, h)
	n, err := st.CountVersions(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	// Custody checkpoints anchored under _custody/ are not footage.
	c, err := st.CountVersions(context.Background(), "_custody/")
	if err != nil {
		t.Fatal(err)
	}
	return n - c
}

func TestUnknownCameraIsNotIngested(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 1000})
	code, _, errs := h.cli("ingest", "--camera", "BWC-9999", "--from", cam)
	if code != exitFailure || !strings.Contains(errs, "BWC-9999") || !strings.Contains(errs, "inventory") {
		t.Fatalf("unknown camera: exit %d, stderr %q", code, errs)
	}
	if n := len(h.find()); n != 0 {
		t.Errorf("unknown camera produced %d items", n)
	}
	l := openLedger(t, h)
	var types []string
	l.Events(context.Background(), 1, func(e custody.Event) error { types = append(types, string(e.Type)); return nil })
	if !slices.Contains(types, "UNKNOWN_DEVICE") {
		t.Errorf("ledger events %v lack UNKNOWN_DEVICE", types)
	}
}

func openLedger(t *testing.T, h *harness) *custody.Ledger {
	t.Helper()
	l, err := custody.Open(filepath.Join(h.state, "ledger.db"), custody.Options{Host: "test-dock", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestHostileCameraContent(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	outside := filepath.Join(h.dir, "outside-secret")
	os.WriteFile(outside, []byte("not camera data"), 0o644)
	names := map[string]int{
		"DCIM/with space.MP4":                       1000,
		"DCIM/ünïcødé-видео.MP4":                    1001,
		"DCIM/bad-\xff\xfe-utf8.MP4":                1002,
		"DCIM/" + strings.Repeat("a", 251) + ".MP4": 1003, // 255 bytes
		"DCIM/--leading-dashes.MP4":                 1004,
		"DCIM/-n":                                   1005,
		"DCIM/new\nline.MP4":                        1006,
	}
	content := writeCamera(t, cam, names)
	if err := os.Symlink(outside, filepath.Join(cam, "DCIM", "link-out.MP4")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.dir, filepath.Join(cam, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(cam, "DCIM", "fifo.MP4"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.cli("ingest", "--camera", "BWC-0001", "--from", cam)
	if code != exitFailure {
		t.Fatalf("ingest with refused entries: exit %d, want %d\n%s%s", code, exitFailure, out, errs)
	}
	for _, refused := range []string{"link-out.MP4", "dirlink", "fifo.MP4"} {
		if !strings.Contains(out, "REFUSED") || !strings.Contains(out, refused) {
			t.Errorf("output does not name refused %s:\n%s", refused, out)
		}
	}
	items := h.find()
	if len(items) != len(names) {
		t.Fatalf("%d items vaulted, want %d (every regular file)", len(items), len(names))
	}
	for _, it := range items {
		if it.State != custody.StateVerified {
			t.Errorf("%q: state %s", it.SourcePath, it.State)
		}
		if strings.Contains(it.SourcePath, "outside") {
			t.Errorf("followed a link: %q", it.SourcePath)
		}
		// Retrieval returns the exact bytes of the hostile-named file.
		dst := filepath.Join(h.dir, "get-"+it.ID)
		h.mustCLI("get", it.ID, "--reason", "test", "--out", dst)
		got, _ := os.ReadFile(dst)
		found := false
		for _, c := range content {
			if bytes.Equal(c, got) {
				found = true
			}
		}
		if !found {
			t.Errorf("get %q returned bytes matching no source file", it.SourcePath)
		}
	}
	// The REFUSED events are in the ledger, naming the path.
	l := openLedgerAfter(t, h)
	var refused []string
	l.Events(context.Background(), 1, func(e custody.Event) error {
		if e.Type == custody.Refused {
			refused = append(refused, e.Details["source_path"]+": "+e.Details["reason"])
		}
		return nil
	})
	if len(refused) != 3 {
		t.Errorf("REFUSED events %v, want 3", refused)
	}
	// The source file outside the camera was never touched or copied.
	if b, _ := os.ReadFile(outside); string(b) != "not camera data" {
		t.Error("file outside the camera changed")
	}
}

// openLedgerAfter opens the ledger once the in-process commands are done.
func openLedgerAfter(t *testing.T, h *harness) *custody.Ledger { return openLedger(t, h) }

func TestVerifyDetectsChangedVaultFile(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 100 << 10, "DCIM/B.MP4": 50 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	h.mustCLI("verify")
	items := h.find()
	victim := items[1]
	p := filepath.Join(h.state, "vault", "items", victim.ID[:2], victim.ID)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	flipByte(t, p, 4242)
	code, out, _ := h.cli("verify")
	if code != exitIntegrity || !strings.Contains(out, victim.ID) {
		t.Fatalf("verify after vault tamper: exit %d, output does not name %s:\n%s", code, victim.ID, out)
	}
	if strings.Contains(out, items[0].ID) {
		t.Errorf("verify names the intact item %s too:\n%s", items[0].ID, out)
	}
	// get refuses to hand out the tampered copy.
	code, _, errs := h.cli("get", victim.ID, "--reason", "r", "--out", filepath.Join(h.dir, "o"))
	if code != exitIntegrity {
		t.Errorf("get of a tampered item: exit %d (%s), want 3", code, errs)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "o")); !errors.Is(err, os.ErrNotExist) {
		t.Error("get left an output file for a tampered item")
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDetectsFlippedLedgerRecord(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	h.mustCLI("verify")
	db := filepath.Join(h.state, "ledger.db")
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	// The VAULTED record's bytes: flip one inside its "read_back" detail, in
	// every copy bbolt has of the page (freed older copies included).
	needle := []byte(`"read_back":"cold"`)
	n := 0
	for i := bytes.Index(raw, needle); i >= 0; {
		flipByte(t, db, int64(i+len(`"read_back":"co`)))
		n++
		j := bytes.Index(raw[i+1:], needle)
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if n == 0 {
		t.Fatal("VAULTED record not found in the ledger file")
	}
	code, out, errs := h.cli("verify")
	if code != exitIntegrity {
		t.Fatalf("verify after flipping a record byte: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "FAIL record 4") { // 1 HOST_KEY, 2 DOCKED, 3 COPIED, 4 VAULTED
		t.Errorf("verify does not name record 4 (the VAULTED event):\n%s", out)
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "host_id: a\nstate_dir: /tmp/x\nbogus_key: 1\n", "bogus_key"},
		{"not yaml", "\t: : :\n", "evidenced.yaml"},
		{"bad class mode", "host_id: a\nstate_dir: /tmp/x\nretention:\n  default_class: c\n  classes:\n    - {name: c, days: 1, mode: FOREVER}\n", "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "evidenced.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o644)
			var out, errb bytes.Buffer
			code := Main(context.Background(), context.Background(), []string{"find", "--config", p}, nil, &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 naming %q", code, errb.String(), tt.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := Main(context.Background(), context.Background(), []string{"nonsense"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	for _, c := range commands {
		var out, errb bytes.Buffer
		// Help is what was asked for: stdout, exit 0, nothing on stderr.
		if code := Main(context.Background(), context.Background(), []string{c.name, "--help"}, nil, &out, &errb); code != 0 ||
			!strings.Contains(out.String(), "Usage: evidenced "+c.name) || errb.Len() != 0 {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, out.String(), errb.String())
		}
	}
}

// daemon starts `evidenced run` for h and returns a stop function that sends
// SIGTERM and returns the exit code.
func (h *harness) daemon(t *testing.T) (stop func() int, logs *bytes.Buffer) {
	t.Helper()
	logs = &bytes.Buffer{}
	cmd := h.startDaemon(t, logs)
	done := false
	stop = func() int {
		if done {
			return 0
		}
		done = true
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	}
	t.Cleanup(func() { stop() })
	return stop, logs
}

// startDaemon starts `evidenced run` on h's config, its output to logs
// (nil: discarded), and waits for its control socket.
func (h *harness) startDaemon(t *testing.T, logs io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath, "run", "--config", h.cfgPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(h.state, "evidenced.sock")
	waitFor(t, "daemon socket", 30*time.Second, func() bool {
		st, err := os.Stat(sock)
		return err == nil && st.Mode()&os.ModeSocket != 0
	})
	return cmd
}

func TestDaemonDockThroughWatchedFolder(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	stop, logs := h.daemon(t)

	// A camera folder is built aside and moved in: one dock.
	staging := filepath.Join(h.dir, "staging", "BWC-0002")
	writeCamera(t, staging, bodyCam)
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0002")); err != nil {
		t.Fatal(err)
	}
	// While the daemon runs, the CLI goes through its socket (no lock error).
	waitFor(t, "all recordings verified", 3*time.Minute, func() bool {
		items := h.find("--camera", "BWC-0002")
		if len(items) != len(bodyCam) {
			return false
		}
		for _, it := range items {
			if it.State != custody.StateVerified {
				return false
			}
		}
		return true
	})
	items := h.find("--assigned-to", "officer-0815")
	// A recording below the multipart threshold (find's order follows item
	// ids, which change with mtimes).
	slices.SortFunc(items, func(a, b custody.Item) int { return cmp.Compare(a.SourcePath, b.SourcePath) })
	if items[0].SourcePath != "DCIM/100MEDIA/VID_0001.MP4" {
		t.Fatalf("first item by path %s", items[0].SourcePath)
	}
	evs := h.custody(items[0].ID)
	if got := eventTypes(evs); !slices.Equal(got, []string{"DOCKED", "COPIED", "VAULTED", "UPLOADED", "VERIFIED", "ACCESSED"}) {
		t.Errorf("custody %v", got)
	}
	if evs[0].Details["via"] != "watch" {
		t.Errorf("DOCKED via %q, want watch", evs[0].Details["via"])
	}
	status := h.mustCLI("status")
	if !strings.Contains(status, "safe to undock") {
		t.Errorf("status does not show the bay safe to undock:\n%s", status)
	}
	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote through the daemon: exit %d\n%s%s", code, out, errs)
	}
	dst := filepath.Join(h.dir, "got.mp4")
	h.mustCLI("get", items[0].ID, "--reason", "through the daemon", "--out", dst)
	if b, err := os.ReadFile(dst); err != nil || digest.Bytes(b).Hex() != items[0].SHA256 {
		t.Errorf("get through the daemon: %v", err)
	}
	// Ingest through the daemon: same result as the daemon's own dock.
	cam2 := filepath.Join(h.dir, "cam-car")
	writeCamera(t, cam2, map[string]int{"DCIM/CAR.MP4": 2 << 20})
	out := h.mustCLI("ingest", "--camera", "CAR-0001", "--from", cam2)
	if !strings.Contains(out, "1 verified") {
		t.Errorf("ingest through the daemon:\n%s", out)
	}
	// Undock: the folder disappears → UNDOCKED.
	os.RemoveAll(filepath.Join(h.media, "BWC-0002"))
	waitFor(t, "UNDOCKED event", time.Minute, func() bool {
		out := h.mustCLI("status", "--json")
		return !strings.Contains(out, "BWC-0002")
	})
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM\n%s", code, logs)
	}
	l := openLedger(t, h)
	var undocked bool
	l.Events(context.Background(), 1, func(e custody.Event) error {
		undocked = undocked || (e.Type == custody.Undocked && e.Camera == "BWC-0002" && e.Details["clean"] == "true")
		return nil
	})
	if !undocked {
		t.Error("no clean UNDOCKED event for BWC-0002")
	}
}

// TestKillDuringIngest SIGKILLs a one-shot ingest in the middle of a large
// file, then runs it again: everything ends verified exactly once, nothing
// partial is left, and verify --remote is clean.
func TestKillDuringIngest(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	files := map[string]int{
		"DCIM/100MEDIA/A.MP4":   2 << 20,
		"DCIM/100MEDIA/BIG.MP4": 192 << 20,
		"DCIM/100MEDIA/C.MP4":   3 << 20,
	}
	writeCamera(t, cam, files)
	tmpDir := filepath.Join(h.state, "vault", "tmp")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(binPath, "ingest", "--config", h.cfgPath, "--camera", "BWC-0001", "--from", cam)
		cmd.Env = os.Environ()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once a partial vault file exists (mid-copy) or after a moment.
		deadline := time.Now().Add(time.Duration(300+round*400) * time.Millisecond)
		for time.Now().Before(deadline) {
			if ents, _ := os.ReadDir(tmpDir); len(ents) > 0 && round == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	if len(items) != len(files) {
		t.Fatalf("%d items after kills and a clean run, want %d", len(items), len(files))
	}
	for _, it := range items {
		if it.State != custody.StateVerified {
			t.Errorf("%s: %s", it.SourcePath, it.State)
		}
	}
	if n := countVersions(t, h); n != len(files) {
		t.Errorf("store holds %d versions, want %d (no duplicates)", n, len(files))
	}
	if ents, _ := os.ReadDir(tmpDir); len(ents) != 0 {
		t.Errorf("partial files left in the vault: %d", len(ents))
	}
	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote after kills: exit %d\n%s%s", code, out, errs)
	}
}

// Investigators' searches and custodians' checks are custody: each is in the
// chain with who did it and why, whether or not a daemon runs.
func TestEveryAccessIsRecorded(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	h.mustCLI("find", "--camera", "BWC-0001", "--actor", "investigator-7", "--reason", "complaint 42")
	h.mustCLI("verify", "--actor", "custodian-3", "--reason", "monthly audit")

	l, err := custody.Open(filepath.Join(h.state, "ledger.db"), custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accesses []custody.Event
	if err := l.Events(context.Background(), 1, func(ev custody.Event) error {
		if ev.Type == custody.Accessed {
			accesses = append(accesses, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(accesses) != 2 {
		t.Fatalf("ACCESSED events: %+v, want one for find and one for verify", accesses)
	}
	f, v := accesses[0], accesses[1]
	if f.Actor != osUser || f.Details["on_behalf_of"] != "investigator-7" || f.Details["action"] != "find" || f.Details["reason"] != "complaint 42" ||
		f.Details["camera"] != "BWC-0001" || f.Details["results"] != "1" {
		t.Errorf("find recorded as %+v", f)
	}
	if v.Actor != osUser || v.Details["on_behalf_of"] != "custodian-3" || v.Details["action"] != "verify" || v.Details["reason"] != "monthly audit" ||
		v.Details["outcome"] != "ok" {
		t.Errorf("verify recorded as %+v", v)
	}
}

// Whoever controls the host can put back an older copy of the ledger (and
// every local hash and signature in it still checks out). The checkpoints
// anchored in the object store under COMPLIANCE lock cannot be put back:
// verify --remote names the checkpoint the ledger no longer reproduces.
func TestRestoredOlderLedgerDetectedByAnchors(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	db := filepath.Join(h.state, "ledger.db")
	old, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	out := h.mustCLI("verify", "--remote")
	if !strings.Contains(out, "OK: ") || strings.Contains(out, " 0 anchored checkpoints") {
		t.Fatalf("verify --remote after ingest should check at least one anchored checkpoint:\n%s", out)
	}
	if !strings.Contains(out, "signed)") {
		t.Errorf("verify does not report signed records:\n%s", out)
	}

	cam2 := filepath.Join(h.dir, "cam2")
	writeCamera(t, cam2, map[string]int{"DCIM/B.MP4": 12 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0002", "--from", cam2)
	later := h.find("--camera", "BWC-0002")
	if len(later) != 1 {
		t.Fatalf("items of BWC-0002: %+v", later)
	}

	// The attacker restores the earlier ledger. The vault still holds the
	// later recording, which no item of the restored ledger claims: local
	// verify names it (issue #12, finding 6).
	if err := os.WriteFile(db, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := h.cli("verify"); code != exitIntegrity || !strings.Contains(out, "FAIL vault: file no item in the ledger claims: ") ||
		!strings.Contains(out, later[0].ID) {
		t.Fatalf("local verify of the restored ledger beside the later vault file: exit %d\n%s%s", code, out, errs)
	}
	// With that file removed too, the restored ledger is flawless locally.
	if err := os.Remove(later[0].VaultPath); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := h.cli("verify"); code != 0 {
		t.Fatalf("local verify of the restored ledger: exit %d (it should look clean locally)\n%s%s", code, out, errs)
	}
	code, out, errs := h.cli("verify", "--remote")
	if code != exitIntegrity {
		t.Fatalf("verify --remote of a restored older ledger: exit %d, want %d\n%s%s", code, exitIntegrity, out, errs)
	}
	if !strings.Contains(out, "FAIL checkpoint _custody/test-dock/checkpoints/") {
		t.Errorf("verify --remote does not name the anchored checkpoint:\n%s", out)
	}
}
