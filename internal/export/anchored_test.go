package export

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/tsa"
	"github.com/evidenced/evidenced/internal/tsa/tsatest"
)

// fakeAnchors hands Build one anchored checkpoint, as the store would.
type fakeAnchors struct {
	a     Anchored
	found bool
}

func (f fakeAnchors) Latest(_ context.Context, maxSize uint64) (Anchored, bool, error) {
	if !f.found || f.a.Size > maxSize {
		return Anchored{}, false, nil
	}
	return f.a, true, nil
}

func (f *fixture) buildWith(t testing.TB, dir string, anchors Anchors, tsaCA []byte) (Summary, error) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return Build(context.Background(), f.l, memFootage(f.footage), NewDirSink(dir), Options{
		IDs: f.ids, ExportedBy: "custodian-1", Reason: "appeal", Tool: "evidenced test",
		Now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), Anchors: anchors, TSACA: tsaCA,
	})
}

func problemOn(r *Result, file, contains string) bool {
	for _, p := range r.Problems {
		if p.File == file && strings.Contains(p.Msg, contains) {
			return true
		}
	}
	return false
}

// The anchored checkpoint goes into the package with its time-stamp, the
// TSA CA and a consistency proof to the export's checkpoint; Verify checks
// each and names the file that fails; Build refuses anchored evidence that
// does not check out.
func TestAnchoredEvidence(t *testing.T) {
	ts := tsatest.Start(t)
	ca, err := os.ReadFile(ts.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := newFixture(t, signed)
	// The host anchored at size 8 (with a time-stamp); two more accesses
	// came after, so the export's checkpoint is of size 10.
	noteAt8, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := (&tsa.Client{URL: ts.URL}).Timestamp(ctx, digest.Bytes(noteAt8))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range f.ids {
		if _, err := f.l.Append(ctx, custody.Event{Type: custody.Accessed, Actor: "custodian-2", Item: id,
			Details: map[string]string{"action": "find"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	anchored := Anchored{Object: "_custody/" + host + "/checkpoints/8.note", Size: 8, Note: noteAt8, Timestamp: tok.Response}

	t.Run("consistency proof and verified time-stamp", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "pkg")
		if _, err := f.buildWith(t, dir, fakeAnchors{anchored, true}, ca); err != nil {
			t.Fatal(err)
		}
		withCA := hostTrust()
		withCA.TSACA = ca
		r := mustVerifyWith(t, dir, withCA)
		if !r.OK() || !r.Anchored || !r.Timestamped || r.Info.Anchored.Consistency != "checkpoints/10.proof" {
			t.Fatalf("result %+v, anchored %+v", r, r.Info.Anchored)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "checkpoints", "8.note"))
		if !bytes.Equal(got, noteAt8) {
			t.Error("checkpoints/8.note is not the anchored bytes")
		}
		md, _ := os.ReadFile(filepath.Join(dir, "VERIFY.md"))
		if !strings.Contains(string(md), "    openssl ts -verify -in checkpoints/8.tsr -data checkpoints/8.note -CAfile \"$TSA_CA\"\n") {
			t.Error("VERIFY.md lacks the openssl ts -verify step")
		}
		rep, _ := os.ReadFile(filepath.Join(dir, "report.html"))
		if !strings.Contains(string(rep), "Time-stamped by an independent time-stamping authority (RFC 3161) at "+tok.GenTime.UTC().Format("2006-01-02 15:04:05 UTC")) {
			t.Error("report.html does not state the time-stamp")
		}
		// Tampering, each with the manifest recomputed: named by file.
		for _, c := range []struct{ file, edit, want string }{
			{"checkpoints/8.note", "flip", "does not verify with any accepted host key"},
			{"checkpoints/10.proof", "proof", "does not prove the export's checkpoint"},
			{"checkpoints/8.tsr", "flip", "does not verify with the TSA CA given"},
			{"package.json", "time", "time-stamped at"},
		} {
			t.Run(c.file, func(t *testing.T) {
				d := copyDir(t, dir)
				p := filepath.Join(d, filepath.FromSlash(c.file))
				switch c.edit {
				case "flip":
					editFile(t, p, func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-2] ^= 1; return b })
				case "proof":
					// A well-formed proof with one hash changed: flip a bit
					// of the decoded hash, not of its base64 text (which
					// can turn 'A' into '@' and test the parser instead).
					editFile(t, p, func(b []byte) []byte {
						l := bytes.Split(bytes.Clone(b), []byte("\n"))
						h, err := base64.StdEncoding.DecodeString(string(l[2]))
						if err != nil || len(h) != 32 {
							t.Fatalf("proof line 3 %q is not a base64 hash: %v", l[2], err)
						}
						h[0] ^= 1
						l[2] = []byte(base64.StdEncoding.EncodeToString(h))
						return bytes.Join(l, []byte("\n"))
					})
				case "time":
					editFile(t, p, func(b []byte) []byte {
						return bytes.Replace(b, []byte(`"timestamp_time": "2`), []byte(`"timestamp_time": "1`), 1)
					})
				}
				rehash(t, d)
				r := mustVerifyWith(t, d, withCA)
				if !problemOn(r, c.file, c.want) {
					t.Fatalf("no problem on %s containing %q: %v", c.file, c.want, r.Problems)
				}
			})
		}
	})

	// A package that brings its own TSA and CA: the CA inside is only
	// informational, so the stamp is attributed to no TSA without a CA
	// from outside, and fails against the genuine TSA's CA.
	t.Run("a TSA CA inside the package is not trusted", func(t *testing.T) {
		forger := tsatest.Start(t)
		forgerCA, err := os.ReadFile(forger.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		ftok, err := (&tsa.Client{URL: forger.URL}).Timestamp(ctx, digest.Bytes(noteAt8))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pkg")
		if _, err := f.buildWith(t, dir, fakeAnchors{Anchored{Object: anchored.Object, Size: 8, Note: noteAt8, Timestamp: ftok.Response}, true}, forgerCA); err != nil {
			t.Fatal(err)
		}
		if r := mustVerify(t, dir); !r.OK() || r.Timestamped || !strings.Contains(strings.Join(r.Notices, "\n"), "informational") {
			t.Fatalf("the package's own CA made the stamp count: %+v", r)
		}
		genuine := hostTrust()
		genuine.TSACA = ca
		if r := mustVerifyWith(t, dir, genuine); r.OK() || r.Timestamped || !problemOn(r, "checkpoints/8.tsr", "does not verify with the TSA CA given") {
			t.Fatalf("a stamp by another TSA passed against the genuine CA: %+v", r)
		}
	})

	t.Run("time-stamp without a CA is a notice", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "pkg")
		if _, err := f.buildWith(t, dir, fakeAnchors{anchored, true}, nil); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, dir)
		if !r.OK() || !r.Anchored || r.Timestamped || len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "no TSA CA") {
			t.Fatalf("result %+v", r)
		}
	})

	t.Run("anchored at the export's size", func(t *testing.T) {
		now, err := f.l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pkg")
		if _, err := f.buildWith(t, dir, fakeAnchors{Anchored{Object: "x", Size: 10, Note: now}, true}, nil); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, dir)
		if !r.OK() || !r.Anchored || r.Info.Anchored.Checkpoint != r.Info.Checkpoint || r.Info.Anchored.Consistency != "" {
			t.Fatalf("result %+v anchored %+v", r, r.Info.Anchored)
		}
	})

	t.Run("Build refuses what does not check out", func(t *testing.T) {
		forged := bytes.Replace(noteAt8, []byte("\n8\n"), []byte("\n7\n"), 1)
		other := digest.Bytes([]byte("another note"))
		otherTok, err := (&tsa.Client{URL: ts.URL}).Timestamp(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		otherCA := tsatest.Start(t)
		wrongCA, _ := os.ReadFile(otherCA.CAFile)
		for _, c := range []struct {
			name string
			a    Anchored
			ca   []byte
		}{
			{"forged note", Anchored{Object: "o", Size: 8, Note: forged}, nil},
			{"stamp of other bytes", Anchored{Object: "o", Size: 8, Note: noteAt8, Timestamp: otherTok.Response}, nil},
			{"stamp from a TSA the CA did not certify", anchored, wrongCA},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := f.buildWith(t, filepath.Join(t.TempDir(), "pkg"), fakeAnchors{c.a, true}, c.ca)
				if !errors.Is(err, ErrIntegrity) {
					t.Fatalf("build: %v, want ErrIntegrity", err)
				}
			})
		}
	})
}
