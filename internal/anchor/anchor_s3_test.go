package anchor_test

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/tsa"
	"github.com/evidenced/evidenced/internal/tsa/tsatest"
)

const host = "dock-07"

type s3env struct {
	srv    *s3srv.Server
	bucket string
	st     *s3store.Store
	store  anchor.Store
}

func startS3(t *testing.T) s3env {
	t.Helper()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	const prefix = "evidence/"
	st, err := s3store.New(context.Background(), s3store.Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true, Prefix: prefix,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s3env{srv: srv, bucket: bucket, st: st, store: st}
}

func openLedger(t *testing.T, path string, key *signing.Key) *custody.Ledger {
	t.Helper()
	l, err := custody.Open(path, custody.Options{Host: host, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendDocks appends n DOCKED/UNDOCKED events of numbered cameras, at
// fixed times so a rebuilt ledger can replay them exactly.
func appendDocks(t *testing.T, l *custody.Ledger, from, n int) {
	t.Helper()
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		typ := custody.Docked
		if i%2 == 1 {
			typ = custody.Undocked
		}
		_, err := l.Append(context.Background(), custody.Event{
			Type: typ, Actor: "evidenced", Camera: "BWC-" + string(rune('A'+i%26)),
			At: base.Add(time.Duration(i) * time.Minute),
		}, nil)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, s objstore.Store, key, version string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key, version)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func requireProblem(t *testing.T, rep anchor.Report, object, contains string) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Object == object && strings.Contains(p.What, contains) {
			t.Logf("detected: %s", p)
			return
		}
	}
	t.Fatalf("no problem on %s containing %q; got:\n%s", object, contains, problems(rep))
}

func problems(rep anchor.Report) string {
	var b strings.Builder
	for _, p := range rep.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

func TestAnchorAndCheckOnS3(t *testing.T) {
	e := startS3(t)
	ctx := context.Background()
	dir := t.TempDir()
	key, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	ts := tsatest.Start(t)
	roots, err := tsa.LoadRoots(ts.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	opts := anchor.Options{TSA: &tsa.Client{URL: ts.URL, Roots: roots}}
	until := time.Now().Add(24 * time.Hour)
	path := filepath.Join(dir, "ledger.db")

	// 1. Anchor after some appends: HOST_KEY + 5 events.
	l := openLedger(t, path, key)
	appendDocks(t, l, 0, 5)
	res, err := anchor.Anchor(ctx, l, e.store, host, until, opts)
	if err != nil {
		t.Fatalf("first anchor: %v", err)
	}
	if res.Size != 6 || res.Since != 0 || !res.Timestamped {
		t.Fatalf("first anchor: %+v", res)
	}
	want := []string{
		anchor.RecordsKey(host, 1, 6), anchor.SigsKey(host, 1, 6), anchor.KeyKey(host, key.KeyID()),
		anchor.TimestampKey(host, 6), anchor.CheckpointKey(host, 6),
	}
	if strings.Join(res.Written, ",") != strings.Join(want, ",") {
		t.Fatalf("written %v, want %v", res.Written, want)
	}
	// Every object is locked COMPLIANCE.
	for _, k := range want {
		info, err := e.st.Stat(ctx, k, "")
		if err != nil {
			t.Fatal(err)
		}
		if info.LockMode != objstore.LockCompliance || info.RetainUntil.IsZero() {
			t.Errorf("%s: lock %q until %v, want COMPLIANCE", k, info.LockMode, info.RetainUntil)
		}
	}
	// The records object is the exact record bytes, one per line.
	lines := bytes.Split(bytes.TrimSuffix(read(t, e.st, anchor.RecordsKey(host, 1, 6), ""), []byte("\n")), []byte("\n"))
	if len(lines) != 6 {
		t.Fatalf("%d record lines, want 6", len(lines))
	}
	var stored [][]byte
	if err := l.Records(ctx, 1, func(_ uint64, rec []byte) error { stored = append(stored, bytes.Clone(rec)); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range lines {
		if !bytes.Equal(lines[i], stored[i]) {
			t.Errorf("record line %d differs from the ledger's bytes", i+1)
		}
	}
	// openssl verifies the anchored time-stamp over the anchored note.
	noteBytes := read(t, e.st, anchor.CheckpointKey(host, 6), "")
	tsr := filepath.Join(dir, "6.tsr")
	if err := os.WriteFile(tsr, read(t, e.st, anchor.TimestampKey(host, 6), ""), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := ts.Verify(tsr, digest.Bytes(noteBytes).Hex()); err != nil {
		t.Fatalf("openssl ts -verify of the anchored reply: %v\n%s", err, out)
	}

	// 2. Re-anchoring the same size writes nothing.
	before, err := e.st.CountVersions(ctx, anchor.Prefix(host))
	if err != nil {
		t.Fatal(err)
	}
	res, err = anchor.Anchor(ctx, l, e.store, host, until, opts)
	if err != nil || len(res.Written) != 0 || res.Size != 6 {
		t.Fatalf("re-anchor: %+v, %v", res, err)
	}
	if after, _ := e.st.CountVersions(ctx, anchor.Prefix(host)); after != before {
		t.Fatalf("re-anchor wrote: %d versions, was %d", after, before)
	}

	// 3. More appends, anchor again: records 7..9 and a consistency proof.
	l.Close()
	older := filepath.Join(dir, "ledger-at-6.db")
	copyFile(t, path, older)
	l = openLedger(t, path, key)
	appendDocks(t, l, 5, 3)
	res, err = anchor.Anchor(ctx, l, e.store, host, until, opts)
	if err != nil || res.Size != 9 || res.Since != 6 {
		t.Fatalf("second anchor: %+v, %v", res, err)
	}
	if !strings.Contains(strings.Join(res.Written, ","), anchor.RecordsKey(host, 7, 9)) {
		t.Fatalf("second anchor wrote %v", res.Written)
	}
	rep, err := anchor.CheckWith(ctx, l, e.store, host, anchor.CheckOptions{Verifiers: []note.Verifier{key.NoteVerifier()}, TSARoots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Checkpoints != 2 || rep.Reproduced != 9 || rep.Records != 9 || rep.Signatures != 9 || rep.Timestamps != 2 {
		t.Fatalf("clean check: %+v\n%s", rep, problems(rep))
	}
	l.Close()

	// (a) An attacker with the host and its key deletes record 4 and
	// rebuilds the whole ledger: every hash and signature is right again.
	t.Run("deleted event, chain recomputed", func(t *testing.T) {
		forged := filepath.Join(t.TempDir(), "ledger.db")
		rebuildWithout(t, path, forged, key, 4)
		fl := openLedger(t, forged, key)
		defer fl.Close()
		var problemsLocal []custody.Problem
		if _, err := fl.Verify(ctx, func(p custody.Problem) { problemsLocal = append(problemsLocal, p) }); err != nil || len(problemsLocal) != 0 {
			t.Fatalf("the forged ledger should verify on its own: %v %v", err, problemsLocal)
		}
		rep, err := anchor.Check(ctx, fl, e.store, host, key.NoteVerifier())
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, rep, anchor.CheckpointKey(host, 6), "does not reproduce")
		requireProblem(t, rep, anchor.CheckpointKey(host, 9), "does not reproduce")
		if rep.Records != 9 {
			t.Errorf("the anchored records themselves are intact and should all check: %d", rep.Records)
		}
		if _, err := anchor.Anchor(ctx, fl, e.store, host, until, opts); !errors.Is(err, anchor.ErrDiverged) {
			t.Errorf("anchoring the forged ledger: %v, want ErrDiverged", err)
		}
		// Grown past the anchored size, the forged ledger hands Anchor a
		// checkpoint and a consistency proof of its own that are fine in
		// themselves: only the proof from the anchored root refuses it.
		appendDocks(t, fl, 8, 3)
		before, err := e.st.CountVersions(ctx, anchor.Prefix(host))
		if err != nil {
			t.Fatal(err)
		}
		if res, err := anchor.Anchor(ctx, fl, e.store, host, until, opts); !errors.Is(err, anchor.ErrDiverged) {
			t.Errorf("anchoring the forged ledger grown to 11 records: %+v, %v, want ErrDiverged", res, err)
		}
		if after, _ := e.st.CountVersions(ctx, anchor.Prefix(host)); after != before {
			t.Errorf("anchoring the forged ledger wrote %d versions", after-before)
		}
	})

	// (b) The ledger restored from an older copy (truncated to 6 records).
	t.Run("restored older copy", func(t *testing.T) {
		ol := openLedger(t, older, key)
		defer ol.Close()
		rep, err := anchor.Check(ctx, ol, e.store, host, key.NoteVerifier())
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, rep, anchor.CheckpointKey(host, 9), "does not reproduce")
		if rep.Reproduced != 6 {
			t.Errorf("reproduced %d, want 6", rep.Reproduced)
		}
		if _, err := anchor.Anchor(ctx, ol, e.store, host, until, opts); !errors.Is(err, anchor.ErrDiverged) {
			t.Errorf("anchoring the older copy: %v, want ErrDiverged", err)
		}
	})

	// (b2) The key holder adds a new version of the last records object in
	// which the last record is rewritten and re-signed: the chain (no later
	// record vouches for it) and the signatures check; the checkpoint's root
	// does not.
	t.Run("anchored record rewritten and re-signed", func(t *testing.T) {
		c := e.srv.Client()
		put := func(key string, b []byte) {
			t.Helper()
			if _, err := c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(e.bucket), Key: aws.String("evidence/" + key), Body: bytes.NewReader(b),
				Metadata: map[string]string{"sha256": digest.Bytes(b).Hex()},
			}); err != nil {
				t.Fatal(err)
			}
		}
		lines := bytes.Split(bytes.TrimSuffix(read(t, e.st, anchor.RecordsKey(host, 7, 9), ""), []byte("\n")), []byte("\n"))
		sigs := bytes.Split(bytes.TrimSuffix(read(t, e.st, anchor.SigsKey(host, 7, 9), ""), []byte("\n")), []byte("\n"))
		if len(lines) != 3 || len(sigs) != 3 {
			t.Fatalf("%d records, %d signatures anchored for 7-9", len(lines), len(sigs))
		}
		ev, err := custody.DecodeRecord(lines[2])
		if err != nil {
			t.Fatal(err)
		}
		ev.Camera = "BWC-Z"
		if lines[2], err = custody.EncodeRecord(ev); err != nil {
			t.Fatal(err)
		}
		sig, err := key.Sign(lines[2])
		if err != nil {
			t.Fatal(err)
		}
		sigs[2] = []byte("9 " + base64.StdEncoding.EncodeToString(sig))
		put(anchor.RecordsKey(host, 7, 9), append(bytes.Join(lines, []byte("\n")), '\n'))
		put(anchor.SigsKey(host, 7, 9), append(bytes.Join(sigs, []byte("\n")), '\n'))
		l := openLedger(t, path, key)
		defer l.Close()
		rep, err := anchor.Check(ctx, l, e.store, host, key.NoteVerifier())
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, rep, anchor.RecordsKey(host, 7, 9), "an anchored record was altered")
		for _, p := range rep.Problems {
			// Besides the root, only the added versions are named: the
			// rewrite chains and its signature verifies.
			if !strings.Contains(p.What, "an anchored record was altered") && !strings.Contains(p.What, "2 versions") {
				t.Errorf("unexpected problem: %s", p)
			}
		}
	})

	// (c) Tamper with an anchored checkpoint in the store.
	t.Run("tampered checkpoint object", func(t *testing.T) {
		c := e.srv.Client()
		k := "evidence/" + anchor.CheckpointKey(host, 9)
		orig, err := e.st.Stat(ctx, anchor.CheckpointKey(host, 9), "")
		if err != nil {
			t.Fatal(err)
		}
		origBytes := read(t, e.st, anchor.CheckpointKey(host, 9), orig.VersionID)
		// COMPLIANCE: the version cannot be deleted, even by the root user.
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k), VersionId: aws.String(orig.VersionID)})
		if err == nil {
			t.Fatal("the store deleted a COMPLIANCE-locked checkpoint version")
		}
		t.Logf("delete refused: %v", err)
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k), VersionId: aws.String(orig.VersionID), BypassGovernanceRetention: aws.Bool(true)})
		if err == nil {
			t.Fatal("the store deleted a COMPLIANCE-locked checkpoint version with a governance bypass")
		}
		// Overwriting only adds a version; the original stays as it was.
		forged := bytes.Replace(origBytes, []byte("\n9\n"), []byte("\n8\n"), 1)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(k), Body: bytes.NewReader(forged)}); err != nil {
			t.Fatal(err)
		}
		if got := read(t, e.st, anchor.CheckpointKey(host, 9), orig.VersionID); !bytes.Equal(got, origBytes) {
			t.Fatal("the locked version changed")
		}
		l := openLedger(t, path, key)
		defer l.Close()
		rep, err := anchor.Check(ctx, l, e.store, host, key.NoteVerifier())
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, rep, anchor.CheckpointKey(host, 9), "2 versions")
		requireProblem(t, rep, anchor.CheckpointKey(host, 9), "does not verify with the host key")
		if rep.Reproduced != 9 {
			t.Errorf("the original version still checks: reproduced %d, want 9", rep.Reproduced)
		}
		// A tampered records object is caught by re-hashing.
		rk := "evidence/" + anchor.RecordsKey(host, 1, 6)
		recs := read(t, e.st, anchor.RecordsKey(host, 1, 6), "")
		recs = bytes.Replace(recs, []byte("BWC-C"), []byte("BWC-X"), 1)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(rk), Body: bytes.NewReader(recs)}); err != nil {
			t.Fatal(err)
		}
		rep, err = anchor.Check(ctx, l, e.store, host, key.NoteVerifier())
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, rep, anchor.RecordsKey(host, 1, 6), "2 versions")
		requireProblem(t, rep, anchor.RecordsKey(host, 1, 6), "does not chain to record 4")
	})
}

// rebuildWithout replays every event of the ledger at from, except record
// drop, into a new ledger at to signed with key: the forgery of an
// attacker who holds the host and its key. HOST_KEY is rewritten by Append.
func rebuildWithout(t *testing.T, from, to string, key *signing.Key, drop uint64) {
	t.Helper()
	src, err := custody.Open(from, custody.Options{Host: host, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var evs []custody.Event
	err = src.Events(context.Background(), 1, func(ev custody.Event) error {
		if ev.Seq != drop && ev.Type != custody.HostKey {
			evs = append(evs, ev)
		}
		return nil
	})
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst := openLedger(t, to, key)
	defer dst.Close()
	for _, ev := range evs {
		ev.Seq, ev.PrevHash, ev.Hash, ev.ItemHash = 0, "", "", ""
		if _, err := dst.Append(context.Background(), ev, nil); err != nil {
			t.Fatal(err)
		}
	}
}
