package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/testutil/verifymd"
)

// verifyExport runs the real binary's standalone verifier, with no config
// and from another working directory, as a third party would, trusting
// what trust says (--key-fingerprint …, --tsa-ca …).
func verifyExport(t *testing.T, dir string, trust ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, append(append([]string{"verify-export"}, trust...), dir)...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("run verify-export: %v", err)
	return 0, "", ""
}

// fingerprint is the host's first key fingerprint as `evidenced key
// --fingerprint` prints it: what a verifier obtains out of band.
func (h *harness) fingerprint(t *testing.T) string {
	t.Helper()
	out := h.mustCLI("key", "--fingerprint")
	fp, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	if !strings.HasPrefix(fp, "SHA256:") || len(fp) != 7+64 {
		t.Fatalf("key --fingerprint printed %q", out)
	}
	return fp
}

func exportCopy(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "pkg")
	out, err := exec.Command("cp", "-a", src, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return dst
}

func exportEdit(t *testing.T, p string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	nb := fn(bytes.Clone(b))
	if bytes.Equal(nb, b) {
		t.Fatalf("tampering with %s changed nothing", p)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nb, 0o644); err != nil {
		t.Fatal(err)
	}
}

// remanifest rewrites file's line in the package's MANIFEST.sha256 to its
// current hash, as someone covering an edit would.
func remanifest(t *testing.T, dir, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "MANIFEST.sha256")
	exportEdit(t, mp, func(m []byte) []byte {
		lines := strings.Split(string(m), "\n")
		for i, l := range lines {
			if strings.HasSuffix(l, "  "+file) {
				lines[i] = digest.Bytes(b).Hex() + "  " + file
			}
		}
		return []byte(strings.Join(lines, "\n"))
	})
}

func flipAt(off int) func([]byte) []byte {
	return func(b []byte) []byte { b[off%len(b)] ^= 0x01; return b }
}

func TestExportEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	content := writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 300 << 10, "DCIM/100MEDIA/VID_0001.NMEA": 2 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find("--camera", "BWC-0001")
	if len(items) != 2 {
		t.Fatalf("find: %d items", len(items))
	}
	sort.Slice(items, func(i, j int) bool { return items[i].SourcePath < items[j].SourcePath })
	ids := []string{items[0].ID, items[1].ID}

	out := filepath.Join(h.dir, "court-pkg")
	// Refusals first: none records anything or leaves a directory.
	if code, _, errs := h.cli("export", ids[0], "--out", out); code != exitUsage {
		t.Errorf("export without --reason: exit %d (%s)", code, errs)
	}
	if code, _, errs := h.cli("export", "0123456789abcdef01234567", "--reason", "x", "--out", out); code != exitFailure || !strings.Contains(errs, "not in the ledger") {
		t.Errorf("export of an unknown item: exit %d (%s)", code, errs)
	}
	full := filepath.Join(h.dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if code, _, errs := h.cli("export", ids[0], "--reason", "x", "--out", full); code != exitUsage || !strings.Contains(errs, "not empty") {
		t.Errorf("export into a non-empty directory: exit %d (%s)", code, errs)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused export left %s: %v", out, err)
	}

	args := append([]string{"export"}, ids...)
	args = append(args, "--footage", "--reason", "case 2026/113, subpoena", "--actor", "custodian-1", "--out", out)
	stdout := h.mustCLI(args...)
	if !regexp.MustCompile(`MANIFEST.sha256 sha256 [0-9a-f]{64}`).MatchString(stdout) {
		t.Errorf("export stdout: %q", stdout)
	}

	// The export is custody: one ACCESSED per item, with actor and reason.
	l, err := custody.Open(filepath.Join(h.state, "ledger.db"), custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var exports []custody.Event
	if err := l.Events(context.Background(), 1, func(ev custody.Event) error {
		if ev.Type == custody.Accessed && ev.Details["action"] == "export" {
			exports = append(exports, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(exports) != 2 || exports[0].Actor != osUser || exports[0].Details["on_behalf_of"] != "custodian-1" || exports[0].Details["reason"] != "case 2026/113, subpoena" ||
		exports[0].Item != ids[0] || exports[1].Item != ids[1] || exports[0].Details["footage"] != "true" {
		t.Fatalf("ACCESSED events for the export: %+v", exports)
	}

	// The package: each item's files, footage byte for byte.
	for i, id := range ids {
		for _, f := range []string{"item.json", "custody.json", "custody.csv"} {
			if _, err := os.Stat(filepath.Join(out, "items", id, f)); err != nil {
				t.Error(err)
			}
		}
		ext := strings.ToLower(filepath.Ext(items[i].SourcePath))
		b, err := os.ReadFile(filepath.Join(out, "items", id, "footage"+ext))
		if err != nil || !bytes.Equal(b, content[items[i].SourcePath]) {
			t.Errorf("footage of %s: %d bytes, err %v", id, len(b), err)
		}
		// The package holds its own making: the export's ACCESSED record.
		cj, _ := os.ReadFile(filepath.Join(out, "items", id, "custody.json"))
		if !strings.Contains(string(cj), `"action": "export"`) || !strings.Contains(string(cj), `"type": "DOCKED"`) {
			t.Errorf("custody.json of %s lacks the DOCKED or the export record", id)
		}
	}
	rep, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{"evidenced copied DCIM/100MEDIA/VID_0001.MP4 (307,200 bytes, SHA-256 " + items[0].SHA256[:8] + "…) off camera BWC-0001 issued to officer-4711",
		"NTP-synchronised", "Certified to be correct", "@media print"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	if code, _, errs := verifyExport(t, filepath.Join(h.dir, "no-such-package")); code != exitUsage {
		t.Errorf("verify-export of a missing directory: exit %d (%s)", code, errs)
	}
	fp := h.fingerprint(t)
	code, vout, verrs := verifyExport(t, out, "--key-fingerprint", fp)
	if code != 0 || !strings.HasPrefix(vout, "OK ") || !strings.Contains(vout, "host key "+fp+" from record 1: a key you trust") {
		t.Fatalf("verify-export of a fresh package: exit %d\n%s%s", code, vout, verrs)
	}
	// Issue #12: nothing to trust is a usage error asking for the key;
	// trusting the package's own key says so on the first line.
	if code, _, errs := verifyExport(t, out); code != exitUsage || !strings.Contains(errs, "which host key do you trust") {
		t.Errorf("verify-export without a trusted key: exit %d\n%s", code, errs)
	}
	if code, vout, _ := verifyExport(t, out, "--trust-package-key"); code != 0 || !strings.HasPrefix(vout, "UNTRUSTED KEY: ") {
		t.Errorf("verify-export --trust-package-key: exit %d\n%s", code, vout)
	}
	other := h.dir + "/other.pem"
	if err := os.WriteFile(other, []byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := verifyExport(t, out, "--key", other); code != exitIntegrity || !strings.Contains(errs, "is not a key you trust") {
		t.Errorf("verify-export against another host's key: exit %d\n%s", code, errs)
	}
	signed := len(mustGlob(t, filepath.Join(out, "records", "*.sig"))) > 0
	if !signed {
		t.Log("the ledger is not signed in this build (no signer wired into the service): signature checks not exercised here; internal/export tests cover them")
	}

	// Tampering: each named by the standalone verifier, exit 3.
	recs := mustGlob(t, filepath.Join(out, "records", "*.json"))
	proofs := mustGlob(t, filepath.Join(out, "proofs", "*.json"))
	rel := func(p string) string { r, _ := filepath.Rel(out, p); return filepath.ToSlash(r) }
	cases := []struct{ name, file string }{
		{"report", "report.html"},
		{"custody.json", "items/" + ids[0] + "/custody.json"},
		{"item.json", "items/" + ids[0] + "/item.json"},
		{"record", rel(recs[0])},
		{"proof", rel(proofs[len(proofs)-1])},
		{"footage", "items/" + ids[0] + "/footage.mp4"},
		{"manifest", "MANIFEST.sha256"},
	}
	for _, c := range cases {
		t.Run("tamper "+c.name, func(t *testing.T) {
			dir := exportCopy(t, out)
			p := filepath.Join(dir, filepath.FromSlash(c.file))
			switch c.name {
			case "report":
				exportEdit(t, p, func(b []byte) []byte { return bytes.Replace(b, []byte("officer-4711"), []byte("officer-4712"), 1) })
			case "item.json":
				// An edit whose MANIFEST line is regenerated too: what is
				// named must be the file that was changed, not the report
				// derived from it.
				exportEdit(t, p, func(b []byte) []byte { return bytes.Replace(b, []byte("officer-4711"), []byte("officer-4712"), 1) })
				remanifest(t, dir, c.file)
			case "custody.json":
				exportEdit(t, p, func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"on_behalf_of": "custodian-1"`), []byte(`"on_behalf_of": "nobody"`), 1)
				})
			case "proof":
				exportEdit(t, p, func(b []byte) []byte {
					return regexp.MustCompile(`("leaf_hash": ")[0-9a-f]`).ReplaceAll(b, []byte("${1}x"))
				})
			case "manifest":
				exportEdit(t, p, func(b []byte) []byte { b[0] = map[bool]byte{true: '0', false: '1'}[b[0] != '0']; return b })
			default:
				exportEdit(t, p, flipAt(100))
			}
			code, out, errs := verifyExport(t, dir, "--key-fingerprint", fp)
			if code != exitIntegrity {
				t.Fatalf("exit %d, want %d\n%s%s", code, exitIntegrity, out, errs)
			}
			if !strings.Contains(errs, "FAILED "+c.file+":") && !(c.name == "manifest" && strings.Contains(errs, "MANIFEST.sha256 (line 1)")) {
				t.Errorf("stderr does not name %s:\n%s", c.file, errs)
			}
			if c.name == "item.json" && strings.Contains(errs, "FAILED report.html") {
				t.Errorf("the report regenerated from the edited item.json is blamed instead of following from it:\n%s", errs)
			}
		})
	}

	// A genuine package whose report and VERIFY.md an earlier release wrote
	// (no "documents" in package.json, older wording) is not a finding:
	// exit 0, with a note that they were not compared. Its records are
	// checked all the same.
	t.Run("documents of an earlier release", func(t *testing.T) {
		dir := exportCopy(t, out)
		exportEdit(t, filepath.Join(dir, "package.json"), func(b []byte) []byte {
			return regexp.MustCompile(`(?m)^  "documents": [0-9]+,\n`).ReplaceAll(b, nil)
		})
		exportEdit(t, filepath.Join(dir, "VERIFY.md"), func(b []byte) []byte {
			return bytes.Replace(b, []byte("# How to verify this package"), []byte("# How to verify this package (older wording)"), 1)
		})
		remanifest(t, dir, "package.json")
		remanifest(t, dir, "VERIFY.md")
		code, vout, verrs := verifyExport(t, dir, "--key-fingerprint", fp)
		if code != 0 || !strings.HasPrefix(vout, "OK ") ||
			!strings.Contains(verrs, "note: report.html and VERIFY.md were written by documents version 0, this evidenced writes ") ||
			!strings.Contains(verrs, ": not compared; the records, proofs, signatures and files were checked") {
			t.Fatalf("exit %d\n%s%s", code, vout, verrs)
		}
		exportEdit(t, filepath.Join(dir, rel(recs[0])), flipAt(100))
		remanifest(t, dir, rel(recs[0]))
		if code, vout, verrs := verifyExport(t, dir, "--key-fingerprint", fp); code != exitIntegrity || !strings.Contains(verrs, "FAILED "+rel(recs[0])+":") {
			t.Errorf("an edited record in it: exit %d\n%s%s", code, vout, verrs)
		}
	})

	// VERIFY.md, as a third party follows it from the fingerprint the host
	// printed (package verifymd: every command block run with bash, every
	// "must" of its prose checked against what it names).
	t.Run("VERIFY.md steps", func(t *testing.T) {
		for _, tool := range verifymd.Tools {
			needTool(t, tool)
		}
		md, err := os.ReadFile(filepath.Join(out, "VERIFY.md"))
		if err != nil {
			t.Fatal(err)
		}
		sigStep := regexp.MustCompile(`(?m)^    openssl pkeyutl -verify -pubin -inkey \S+ -rawin -in \S+ -sigfile \S+$`).Match(md)
		if sigStep != signed {
			t.Fatalf("signed package %v, VERIFY.md signature step %v", signed, sigStep)
		}
		r, err := verifymd.Follow(out, verifymd.Env{FP: fp})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() {
			t.Fatalf("VERIFY.md's steps fail on the exported package:\n%s", strings.Join(r.Failures, "\n"))
		}
		if r.Trusted == "" || r.Root == "" || len(r.InTree) == 0 || len(r.Footage) != len(ids) {
			t.Errorf("followed: trusted %q, root %q, %d records in the tree, footage %v", r.Trusted, r.Root, len(r.InTree), r.Footage)
		}
	})
}

// TestExportFromObjectStore exports footage the vault no longer holds: it
// comes from the object store, verified against the recorded SHA-256.
func TestExportFromObjectStore(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	content := writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0002.MP4": 9 << 20}) // multipart
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find("--camera", "BWC-0001")
	if len(items) != 1 || items[0].State != custody.StateVerified {
		t.Fatalf("items %+v", items)
	}
	it := items[0]
	vp := filepath.Join(h.state, "vault", "items", it.ID[:2], it.ID)
	if err := os.Remove(vp); err != nil {
		t.Fatalf("remove the vault copy: %v", err)
	}
	out := filepath.Join(h.dir, "pkg")
	h.mustCLI("export", it.ID, "--footage", "--reason", "appeal", "--out", out)
	b, err := os.ReadFile(filepath.Join(out, "items", it.ID, "footage.mp4"))
	if err != nil || !bytes.Equal(b, content[it.SourcePath]) {
		t.Fatalf("footage from the store: %d bytes, err %v", len(b), err)
	}
	ij, _ := os.ReadFile(filepath.Join(out, "items", it.ID, "item.json"))
	if !strings.Contains(string(ij), it.VersionID) || !strings.Contains(string(ij), it.ObjectKey) {
		t.Errorf("item.json lacks the object key/version: %s", ij)
	}
	if code, vout, verrs := verifyExport(t, out, "--key-fingerprint", h.fingerprint(t)); code != 0 {
		t.Fatalf("verify-export: exit %d\n%s%s", code, vout, verrs)
	}
}

func mustGlob(t *testing.T, pat string) []string {
	t.Helper()
	m, err := filepath.Glob(pat)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// needTool skips when a tool is missing, except in CI, where it fails.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
}

// TestExportThroughDaemon: with the daemon holding the ledger, the package
// is built inside it and streamed to the client, which writes and checks
// the directory; the daemon writes nothing outside its state directory.
func TestExportThroughDaemon(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	cam := filepath.Join(h.dir, "cam")
	content := writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0003.MP4": 2<<20 + 17})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	stop, logs := h.daemon(t)
	items := h.find("--camera", "BWC-0001")
	if len(items) != 1 {
		t.Fatalf("items %+v", items)
	}
	out := filepath.Join(h.dir, "pkg")
	if err := os.Mkdir(out, 0o755); err != nil { // an existing empty directory is fine
		t.Fatal(err)
	}
	h.mustCLI("export", items[0].ID, "--footage", "--reason", "through the daemon", "--actor", "custodian-2", "--out", out)
	b, err := os.ReadFile(filepath.Join(out, "items", items[0].ID, "footage.mp4"))
	if err != nil || !bytes.Equal(b, content[items[0].SourcePath]) {
		t.Fatalf("footage through the daemon: %d bytes, err %v", len(b), err)
	}
	if code, vout, verrs := verifyExport(t, out, "--key-fingerprint", h.fingerprint(t)); code != 0 {
		t.Fatalf("verify-export: exit %d\n%s%s", code, vout, verrs)
	}
	cj, _ := os.ReadFile(filepath.Join(out, "items", items[0].ID, "custody.json"))
	// The actor is the client's OS user as the kernel reported it on the
	// socket; --actor is only on whose behalf.
	if !strings.Contains(string(cj), `"actor": "`+osUser+`"`) || !strings.Contains(string(cj), `"on_behalf_of": "custodian-2"`) || !strings.Contains(string(cj), `"peer": "uid=`) {
		t.Errorf("the export's ACCESSED record (actor, peer) is not in the package:\n%s", cj)
	}
	if code := stop(); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, logs)
	}
}
