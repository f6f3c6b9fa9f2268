package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/testutil/verifymd"
	"github.com/evidenced/evidenced/internal/tsa/tsatest"
)

// rehashManifest rewrites MANIFEST.sha256 over the package's files as they
// are now: the attacker who also fixes the manifest.
func rehashManifest(t *testing.T, dir string) {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "MANIFEST.sha256" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, digest.Bytes(b).Hex()+"  "+rel+"\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	p := filepath.Join(dir, "MANIFEST.sha256")
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue #3: "openssl alone verifies a signature and a TSA token from an
// exported package (the steps in VERIFY.md, run as a test)". The host
// time-stamps its anchored checkpoints with a real TSA (openssl ts); the
// export carries the newest anchored checkpoint (its own, since the export
// is anchored before it is released), its token and the TSA CA;
// VERIFY.md's steps pass with sha256sum, openssl and bash alone;
// verify-export checks the token against the TSA CA given and names a
// tampered token.
func TestExportCarriesAnchoredTimestamp(t *testing.T) {
	for _, tool := range []string{"sha256sum", "openssl", "bash"} {
		needTool(t, tool)
	}
	ts := tsatest.Start(t)
	h := newHarness(t, harnessOpts{extra: fmt.Sprintf("custody:\n  tsa_url: %s\n  tsa_ca: %s\n", ts.URL, ts.CAFile)})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 200 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find("--camera", "BWC-0001")
	if len(items) != 1 || items[0].State != custody.StateVerified {
		t.Fatalf("items %+v", items)
	}
	out := filepath.Join(h.dir, "pkg")
	h.mustCLI("export", items[0].ID, "--footage", "--reason", "case 2026/201", "--actor", "custodian-1", "--out", out)

	var info export.Info
	b, err := os.ReadFile(filepath.Join(out, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	a := info.Anchored
	if a == nil || a.Timestamp == "" || a.TSACA == "" || a.TimestampTime == nil {
		t.Fatalf("package.json anchored: %+v", a)
	}
	// The export's own ACCESSED records are anchored before anything is
	// released (issue #12, finding 2): the anchored checkpoint is the
	// export's own, and no consistency proof is needed. (A package whose
	// anchor lags its checkpoint, and the tampered proof, are covered by
	// internal/export TestAnchoredEvidence.)
	if a.TreeSize != info.TreeSize || a.Consistency != "" || a.Checkpoint != info.Checkpoint || !strings.HasPrefix(a.Object, "_custody/test-dock/checkpoints/") {
		t.Fatalf("anchored %+v, export tree size %d", a, info.TreeSize)
	}
	// The anchored bytes, exactly as in the store.
	st := openStore(t, h)
	rc, err := st.Open(context.Background(), a.Object, "")
	if err != nil {
		t.Fatal(err)
	}
	var inStore bytes.Buffer
	inStore.ReadFrom(rc)
	rc.Close()
	if got, _ := os.ReadFile(filepath.Join(out, a.Checkpoint)); !bytes.Equal(got, inStore.Bytes()) {
		t.Fatalf("%s differs from the anchored object %s", a.Checkpoint, a.Object)
	}

	fp := h.fingerprint(t)
	trust := []string{"--key-fingerprint", fp, "--tsa-ca", ts.CAFile}
	code, vout, verrs := verifyExport(t, out, trust...)
	t.Logf("verify-export:\n%s", vout)
	if code != 0 || !strings.Contains(vout, "RFC 3161 time-stamp "+a.Timestamp) || !strings.Contains(vout, "verified with the TSA CA given") ||
		!strings.Contains(vout, "anchored checkpoint "+a.Checkpoint) {
		t.Fatalf("verify-export: exit %d\n%s%s", code, vout, verrs)
	}

	t.Run("VERIFY.md steps with openssl", func(t *testing.T) {
		md, err := os.ReadFile(filepath.Join(out, "VERIFY.md"))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("    openssl ts -verify -in %s -data %s -CAfile \"$TSA_CA\"\n", a.Timestamp, a.Checkpoint)
		if !strings.Contains(string(md), want) {
			t.Fatalf("VERIFY.md lacks %q", want)
		}
		r, err := verifymd.Follow(out, verifymd.Env{FP: fp, TSACA: ts.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || !r.TimestampVerified || r.Ran["4"] < 5 {
			t.Errorf("VERIFY.md with openssl: time-stamp verified %v, %d blocks of step 4; failures:\n%s", r.TimestampVerified, r.Ran["4"], strings.Join(r.Failures, "\n"))
		}
	})

	// Tampering with the token: openssl refuses it, and verify-export names
	// it, whether or not the manifest was recomputed to match.
	flipLast := func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }
	for _, fix := range []bool{false, true} {
		t.Run(fmt.Sprintf("tampered .tsr, manifest recomputed %v", fix), func(t *testing.T) {
			dir := exportCopy(t, out)
			exportEdit(t, filepath.Join(dir, a.Timestamp), flipLast)
			if fix {
				rehashManifest(t, dir)
			}
			code, vout, verrs := verifyExport(t, dir, trust...)
			if code != exitIntegrity || !strings.Contains(verrs, "FAILED "+a.Timestamp+":") {
				t.Fatalf("verify-export: exit %d, want %d naming %s\n%s%s", code, exitIntegrity, a.Timestamp, vout, verrs)
			}
			t.Logf("verify-export:\n%s", verrs)
			if fix && !strings.Contains(verrs, "does not verify") {
				t.Errorf("the token check itself should name %s:\n%s", a.Timestamp, verrs)
			}
			cmd := exec.Command("openssl", "ts", "-verify", "-in", a.Timestamp, "-data", a.Checkpoint, "-CAfile", a.TSACA)
			cmd.Dir = dir
			if o, err := cmd.CombinedOutput(); err == nil {
				t.Errorf("openssl ts -verify accepted the tampered token:\n%s", o)
			}
		})
	}
}

// Issue #3: "Replace an object's content with a new version (the
// governance bypass a privileged insider has): verify --remote names it."
// GOVERNANCE lock lets a privileged insider delete a version with
// x-amz-bypass-governance-retention; anyone with PutObject can add a newer
// version on top. Either way the key no longer yields the evidence.
func TestVerifyRemoteNamesReplacedObject(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 40 << 10, "DCIM/B.MP4": 50 << 10, "DCIM/C.MP4": 30 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find("--camera", "BWC-0001")
	if len(items) != 3 {
		t.Fatalf("items %+v", items)
	}
	slices.SortFunc(items, func(a, b custody.Item) int { return strings.Compare(a.SourcePath, b.SourcePath) })
	if out := h.mustCLI("verify", "--remote"); !strings.Contains(out, "3 vault files checked (0 failed), 3 objects checked (0 failed)") {
		t.Fatalf("verify --remote before the insider: %s", out)
	}
	ctx := context.Background()
	c := h.srv.Client()
	other := bytes.Repeat([]byte("not the evidence "), 1000)

	// (a) Delete the recorded version (governance bypass), put other bytes.
	deleted := items[0]
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(h.bucket), Key: aws.String(deleted.ObjectKey),
		VersionId: aws.String(deleted.VersionID)}); err == nil {
		t.Fatal("the store deleted a GOVERNANCE-locked version without a bypass")
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(h.bucket), Key: aws.String(deleted.ObjectKey),
		VersionId: aws.String(deleted.VersionID), BypassGovernanceRetention: aws.Bool(true)}); err != nil {
		t.Fatalf("governance bypass delete: %v", err)
	}
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.bucket), Key: aws.String(deleted.ObjectKey),
		Body: bytes.NewReader(other), Metadata: map[string]string{"sha256": deleted.SHA256}}) // even lying about its hash
	if err != nil {
		t.Fatal(err)
	}
	// (b) Only add a newer version on top; the recorded one stays intact.
	shadowed := items[1]
	put2, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(h.bucket), Key: aws.String(shadowed.ObjectKey), Body: bytes.NewReader(other)})
	if err != nil {
		t.Fatal(err)
	}

	code, out, errs := h.cli("verify", "--remote")
	if code != exitIntegrity {
		t.Fatalf("verify --remote after the insider: exit %d, want %d\n%s%s", code, exitIntegrity, out, errs)
	}
	for _, want := range []string{
		"FAIL object " + deleted.ObjectKey + "@" + deleted.VersionID + " (item " + deleted.ID + "): the recorded version " + deleted.VersionID + " is gone",
		"FAIL object " + deleted.ObjectKey + " (item " + deleted.ID + "): version " + aws.ToString(put.VersionId) + " (",
		"FAIL object " + shadowed.ObjectKey + " (item " + shadowed.ID + "): version " + aws.ToString(put2.VersionId) + " (",
		"is the current version, not the recorded version " + shadowed.VersionID,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify --remote does not say %q:\n%s", want, out)
		}
	}
	// The summary counts what was checked and what failed, not only what
	// passed: three objects checked, the two touched ones failed (the
	// deleted one with two problems, still one object).
	if !strings.Contains(out, "3 vault files checked (0 failed), 3 objects checked (2 failed)") || !strings.Contains(out, "3 problem(s)") {
		t.Errorf("verify --remote summary does not count 3 objects checked, 2 failed, 3 problems:\n%s", out)
	}
	var rep struct {
		Objects int `json:"objects_checked"`
		Failed  int `json:"objects_failed"`
	}
	_, js, _ := h.cli("verify", "--remote", "--json")
	if err := json.Unmarshal([]byte(js), &rep); err != nil || rep.Objects != 3 || rep.Failed != 2 {
		t.Errorf("verify --remote --json: %+v (%v), want objects_checked 3, objects_failed 2", rep, err)
	}
	t.Logf("verify --remote:\n%s", out)
	// The shadowed item's recorded version is intact: only the current
	// version is named for it, not its content.
	if strings.Contains(out, shadowed.ObjectKey+"@") {
		t.Errorf("the intact recorded version of %s is reported as damaged:\n%s", shadowed.ObjectKey, out)
	}
}
