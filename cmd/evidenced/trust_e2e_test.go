package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/testutil/forge"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Issue #12, finding 3: `ingest --from <state_dir>` through the daemon
// vaulted and uploaded host.key, and a hard link to the key in a camera
// folder was ingested too. The daemon now reads only under configured
// sources, and refuses a file with a second name by name.
func TestDaemonIngestConfined(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	stop, logs := h.daemon(t)
	defer stop()
	key := filepath.Join(h.state, "host.key")
	if _, err := os.Stat(key); err != nil {
		t.Fatalf("the daemon's key: %v", err)
	}
	outside := filepath.Join(h.dir, "elsewhere")
	writeCamera(t, outside, map[string]int{"DCIM/A.MP4": 1000})
	for _, from := range []string{h.state, filepath.Join(h.state, "vault"), h.dir, outside} {
		code, out, errs := h.cli("ingest", "--camera", "BWC-0001", "--from", from)
		if code == 0 || !strings.Contains(errs, "not a configured source") {
			t.Errorf("ingest --from %s through the daemon: exit %d\n%s%s", from, code, out, errs)
		}
	}
	if items := h.find(); len(items) != 0 {
		t.Fatalf("items after refused ingests: %+v", items)
	}

	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 1000})
	if err := os.Link(key, filepath.Join(cam, "DCIM", "B.MP4")); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.cli("ingest", "--camera", "BWC-0001", "--from", cam)
	if code == 0 || !strings.Contains(out, "REFUSED DCIM/B.MP4: has 2 hard links") || strings.Contains(out, "\nSAFE TO UNDOCK:") {
		t.Errorf("a hard link to the host key in a camera folder: exit %d\n%s%s", code, out, errs)
	}
	items := h.find()
	if len(items) != 1 || items[0].SourcePath != "DCIM/A.MP4" {
		t.Errorf("items %+v: want only the camera's own recording", items)
	}
	if code := stop(); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, logs)
	}
}

// Finding 7: an --actor with a terminal escape, and a camera file named
// with one, reached the screen raw in `custody` and `find`. Every value
// from a camera or a user is printed escaped.
func TestTablesEscapeHostileText(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/X\x1b[2J\x1b[HSAFE TO UNDOCK\u202e.MP4": 1000})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	if len(items) != 1 {
		t.Fatalf("items %+v", items)
	}
	out := h.mustCLI("find", "--actor", "a\x1b[31mred")
	out += h.mustCLI("custody", items[0].ID, "--actor", "b\u009b31mred")
	if strings.ContainsAny(out, "\x1b\u009b\u202e") {
		t.Errorf("raw control characters on the terminal:\n%q", out)
	}
	for _, want := range []string{`X\x1b[2J\x1b[HSAFE TO UNDOCK\u202e.MP4`, `on_behalf_of=b\u009b31mred`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// Finding 6: `verify` on a deleted ledger created a new key and ledger and
// said OK (exit 0), ignoring the vault's files. Read-only commands now say
// "no ledger at PATH" (exit 1) and create nothing; verify on a fresh
// ledger beside an old vault names every file no item claims.
func TestVerifyDeletedLedger(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 1000})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	ledger, key := filepath.Join(h.state, "ledger.db"), filepath.Join(h.state, "host.key")
	if err := os.Remove(ledger); err != nil {
		t.Fatal(err)
	}
	os.Rename(key, key+".old")
	for _, args := range [][]string{{"verify"}, {"find"}, {"custody", items[0].ID}, {"key", "--public"}, {"status"}} {
		code, out, errs := h.cli(args...)
		if code != exitFailure || !strings.Contains(errs, "no ledger at "+ledger) {
			t.Errorf("%v on a deleted ledger: exit %d, want %d naming it\n%s%s", args, code, exitFailure, out, errs)
		}
	}
	for _, p := range []string{ledger, key} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was created by a read-only command: %v", p, err)
		}
	}
	// A new ledger (a first ingest makes one) beside the old vault: verify
	// names the footage no item claims.
	os.Rename(key+".old", key)
	other := filepath.Join(h.dir, "cam2")
	writeCamera(t, other, map[string]int{"DCIM/B.MP4": 500})
	h.mustCLI("ingest", "--camera", "BWC-0002", "--from", other)
	code, out, errs := h.cli("verify")
	if code != exitIntegrity || !strings.Contains(out, "FAIL vault: file no item in the ledger claims: ") || !strings.Contains(out, items[0].ID) {
		t.Errorf("verify beside an unclaimed vault file: exit %d\n%s%s", code, out, errs)
	}
}

// Finding 2: with the ledger anchored, a `get` and an `export` sat in the
// unanchored tail; trimming them (here: putting back the ledger as it was
// before them, head and tree consistent, no key needed) let the daemon
// sign a new history on top. A release is now anchored before its first
// byte, so the trimmed ledger is behind its anchors: the daemon refuses to
// start and verify --remote names the checkpoint.
func TestTrimmedTailRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	db := filepath.Join(h.state, "ledger.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	h.mustCLI("get", items[0].ID, "--reason", "complaint 42", "--out", filepath.Join(h.dir, "out.mp4"))
	h.mustCLI("export", items[0].ID, "--reason", "case 7", "--out", filepath.Join(h.dir, "pkg"))

	if err := os.WriteFile(db, before, 0o600); err != nil { // the tail trimmed
		t.Fatal(err)
	}
	code, out, errs := h.cli("verify", "--remote")
	if code != exitIntegrity || !strings.Contains(out, "FAIL checkpoint _custody/test-dock/checkpoints/") {
		t.Errorf("verify --remote of the trimmed ledger: exit %d\n%s%s", code, out, errs)
	}
	runRefuses(t, h, db, "does not extend the checkpoint anchored off the host")
}

// runRefuses starts the daemon on h's config and wants it to exit non-zero
// with want in its output, without appending to the ledger at db.
func runRefuses(t *testing.T, h *harness, db, want string) {
	t.Helper()
	was := ledgerSize(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a daemon that starts is killed
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "run", "--config", h.cfgPath)
	cmd.Env = os.Environ()
	o, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if ctx.Err() != nil || !errors.As(err, &ee) || !strings.Contains(string(o), want) {
		t.Fatalf("the daemon on a trimmed ledger: %v, want a refusal saying %q\n%s", err, want, o)
	}
	if now := ledgerSize(t, db); now != was {
		t.Errorf("the daemon appended to the trimmed ledger before refusing: %d records, was %d", now, was)
	}
}

// ledgerSize is the tree size of the ledger at db (no daemon running).
func ledgerSize(t *testing.T, db string) uint64 {
	t.Helper()
	l, err := custody.Open(db, custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	th, err := l.TreeHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return th.Size
}

// witnessConfig is the custody section of a host whose signed heads are
// witnessed in a file outside its state_dir.
func witnessConfig(t *testing.T) string {
	return "custody:\n  witness_file: " + filepath.Join(t.TempDir(), "heads.jsonl") + "\n"
}

// Finding 2, the part anchoring cannot reach: records that released
// nothing (a find, a custody look) and were never anchored. They are
// trimmed (the ledger put back as it was before them: consistent in
// itself, no key needed) after the daemon was killed with SIGKILL (no final
// anchor). Every signed head was also written to the witness outside
// state_dir: verify names the witnessed head the ledger no longer reaches
// (exit 3), and the daemon refuses to start.
func TestTrimmedUnanchoredTailWitnessed(t *testing.T) {
	t.Run("never anchored daemon killed", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true, extra: witnessConfig(t)})
		cam := filepath.Join(h.dir, "cam")
		writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
		h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
		db := filepath.Join(h.state, "ledger.db")
		before, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		cmd := h.startDaemon(t, nil)
		items := h.find()
		h.mustCLI("custody", items[0].ID, "--reason", "complaint 42")
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		os.Remove(filepath.Join(h.state, "evidenced.sock"))
		if err := os.WriteFile(db, before, 0o600); err != nil { // the tail trimmed
			t.Fatal(err)
		}
		code, out, errs := h.cli("verify")
		if code != exitIntegrity || !strings.Contains(out, "FAIL witness: witness file ") || !strings.Contains(out, "records were removed") {
			t.Errorf("verify of the trimmed ledger: exit %d\n%s%s", code, out, errs)
		}
		runRefuses(t, h, db, "does not reproduce the newest signed head its witness holds")
	})
	t.Run("anchored before accesses after", func(t *testing.T) {
		h := newHarness(t, harnessOpts{extra: witnessConfig(t)})
		cam := filepath.Join(h.dir, "cam")
		writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
		h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
		items := h.find()
		// A retrieval anchors the ledger (its own record included).
		h.mustCLI("get", items[0].ID, "--reason", "complaint 42", "--out", filepath.Join(h.dir, "out.mp4"))
		db := filepath.Join(h.state, "ledger.db")
		before, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		h.find()
		h.mustCLI("custody", items[0].ID)
		if err := os.WriteFile(db, before, 0o600); err != nil { // the unanchored tail trimmed
			t.Fatal(err)
		}
		code, out, errs := h.cli("verify", "--remote")
		if code != exitIntegrity || !strings.Contains(out, "FAIL witness: ") || strings.Contains(out, "FAIL checkpoint") {
			t.Errorf("verify --remote of the trimmed ledger: exit %d (want %d, the anchors intact, the witness naming it)\n%s%s", code, exitIntegrity, out, errs)
		}
		runRefuses(t, h, db, "does not reproduce the newest signed head its witness holds")
	})
}

// Finding 2's start check trusted whatever checkpoint the store listed
// last: one planted by someone who can write the bucket but has no host
// key (here of size 1000, far beyond the ledger) kept the daemon from
// starting. Only a checkpoint signed by the pinned host key counts now.
func TestPlantedCheckpointDoesNotStopStart(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	h.mustCLI("get", items[0].ID, "--reason", "complaint 42", "--out", filepath.Join(h.dir, "out.mp4"))

	forged := forge.Checkpoint(t, "test-dock", 1000, tlog.Hash{})
	if _, err := h.srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(h.bucket),
		Key: aws.String("_custody/test-dock/checkpoints/1000.note"), Body: bytes.NewReader(forged)}); err != nil {
		t.Fatal(err)
	}
	stop, logs := h.daemon(t)
	if code := stop(); code != 0 || !strings.Contains(logs.String(), "anchored checkpoint not signed by the host key; not trusted") {
		t.Errorf("the daemon beside a planted checkpoint: exit %d\n%s", code, logs)
	}
}
