package export

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// packageKey reads the public key of the package's i-th host key; the
// tests use it as the key "obtained out of band" where they know the
// package is genuine.
func packageKey(t testing.TB, dir string, r *Result, i int) ed25519.PublicKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(r.Info.Keys[i].File)))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ParsePublicPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// With nothing to trust, Verify refuses to say anything about the package.
func TestVerifyNeedsTrust(t *testing.T) {
	f := newFixture(t, signed)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, false)
	if _, err := Verify(context.Background(), dir, Trust{AllowUnsigned: true, TSACA: nil}); !errors.Is(err, ErrNoTrust) {
		t.Fatalf("Verify without a trusted key: %v, want ErrNoTrust", err)
	}
	if _, err := Verify(context.Background(), dir, Trust{PackageKey: true, TSACA: []byte("not a certificate")}); err == nil {
		t.Fatal("an unusable TSA CA was accepted as trust input")
	}
}

// The forgery of the security review: a copy of the ledger with a second
// key slipped into v1/keys (no KEY_ROTATED record), made-up DOCKED,
// COPIED and VAULTED records signed by it, and the genuine anchored
// checkpoint. Verify against the host's key (or even trusting the
// package's first key) refuses the forger's key and everything it signs.
func TestForgedSecondKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, signed)
	genuine := filepath.Join(t.TempDir(), "genuine")
	f.build(t, genuine, false)
	r := mustVerify(t, genuine)
	if !r.OK() {
		t.Fatalf("genuine package: %v", r.Problems)
	}
	hostPub := packageKey(t, genuine, r, 0)
	noteAt, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head := r.Info.TreeSize
	anchors := fakeAnchors{Anchored{Object: "_custody/" + host + "/checkpoints/" + itoa(int(head)) + ".note", Size: head, Note: noteAt}, true}

	// The forger works on a copy of the ledger file, without the host key.
	path := f.l.Path()
	if err := f.l.Close(); err != nil {
		t.Fatal(err)
	}
	forgerKey, err := signing.Generate(host) // never in hostTrust
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], head+1)
		return tx.Bucket([]byte("v1")).Bucket([]byte("keys")).Put(k[:], forgerKey.PublicPEM())
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	l, err := custody.Open(path, custody.Options{Host: host, Signer: forgerKey, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	dock, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "evidenced@" + host, Camera: "BWC-0002", At: at,
		Details: map[string]string{"assigned_to": "officer-9"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("ab", 32)
	id := sum[:24]
	if _, err := l.Append(ctx, custody.Event{Type: custody.Copied, Actor: "evidenced@" + host, Camera: "BWC-0002", Item: id, SHA256: sum, At: at,
		Details: map[string]string{"source_path": "DCIM/FAKE.MP4", "size": "10", "dock_seq": itoa(int(dock.Seq))}}, nil); err != nil {
		t.Fatal(err)
	}
	it := custody.Item{ID: id, Camera: "BWC-0002", AssignedTo: "officer-9", SourcePath: "DCIM/FAKE.MP4", Size: 10, SHA256: sum,
		IngestedAt: at, State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: dock.Seq}
	if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "evidenced@" + host, Camera: "BWC-0002", At: at}, &it); err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged")
	if err := os.MkdirAll(forged, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(ctx, l, nil, NewDirSink(forged), Options{IDs: append([]string{id}, f.ids...), ExportedBy: "custodian-1",
		Reason: "forged", Tool: "evidenced test", Anchors: anchors}); err != nil {
		t.Fatalf("the forger could not build the package: %v", err)
	}
	forgerFile := keyPath(forgerKey.KeyID())
	for name, trust := range map[string]Trust{
		"the host's key":              {Keys: []ed25519.PublicKey{hostPub}},
		"the host's fingerprint":      {KeyIDs: []string{signing.KeyID(hostPub)}},
		"the package's own key":       {PackageKey: true},
		"the host's key, unsigned ok": {Keys: []ed25519.PublicKey{hostPub}, AllowUnsigned: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := mustVerifyWith(t, forged, trust)
			if r.OK() {
				t.Fatalf("the forged package verified: %+v", r)
			}
			if !problemOn(r, forgerFile, "is not trusted") {
				t.Errorf("no problem names the forger's key %s: %v", forgerFile, r.Problems)
			}
			if !problemOn(r, sigPath(dock.Seq), "not accepted") || !problemOn(r, r.Info.Checkpoint, "does not verify with any accepted host key") {
				t.Errorf("the forged DOCKED record or the checkpoint it is under is not named: %v", r.Problems)
			}
			if len(r.Keys) != 1 || r.Keys[0].KeyID != signing.KeyID(hostPub) {
				t.Errorf("accepted keys %+v, want only the host's", r.Keys)
			}
		})
	}
	// A reader following the forged package's own VERIFY.md from the
	// host's fingerprint stops at step 0: the forger's key is neither the
	// trusted one nor introduced by a KEY_ROTATED record.
	t.Run("VERIFY.md by hand", func(t *testing.T) {
		needVerifyTools(t)
		r := follow(t, forged, signing.Fingerprint(hostPub))
		if r.OK() || !slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, "step 0: "+forgerFile+" is neither your key") }) {
			t.Errorf("following VERIFY.md on the forged package: failures %v", r.Failures)
		}
	})
}

// A rotated key is accepted from the first key alone through its
// KEY_ROTATED record; without that record (or with it signed by anyone but
// the previous key) the second key is refused.
func TestRotatedKeyNeedsItsRotationRecord(t *testing.T) {
	f := newFixture(t, rotated)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, false)
	all := mustVerify(t, dir)
	if !all.OK() {
		t.Fatal(all.Problems)
	}
	first := Trust{Keys: []ed25519.PublicKey{packageKey(t, dir, all, 0)}}
	r := mustVerifyWith(t, dir, first)
	rot := all.Info.Keys[1].FromSeq - 1
	if !r.OK() || len(r.Keys) != 2 || r.Keys[1].How != "rotation" || r.Keys[1].RotationSeq != rot {
		t.Fatalf("rotation from the trusted first key: problems %v keys %+v", r.Problems, r.Keys)
	}
	// Only the second key trusted: the first is not, and what it signed
	// does not count.
	if r := mustVerifyWith(t, dir, Trust{Keys: []ed25519.PublicKey{packageKey(t, dir, all, 1)}}); r.OK() || !problemOn(r, all.Info.Keys[0].File, "is not a key you trust") {
		t.Errorf("trusting only the later key: %v", r.Problems)
	}
	// The KEY_ROTATED record and its signature and proof taken out.
	d := copyDir(t, dir)
	for _, p := range []string{recordPath(rot), sigPath(rot), proofPath(rot)} {
		os.Remove(filepath.Join(d, filepath.FromSlash(p)))
	}
	rehash(t, d)
	if r := mustVerifyWith(t, d, first); r.OK() || !problemOn(r, all.Info.Keys[1].File, "no KEY_ROTATED record") {
		t.Errorf("second key without its rotation record: %v", r.Problems)
	}
	// Its signature replaced by one of another key.
	d = copyDir(t, dir)
	other, _ := signing.Generate(host)
	rec, _ := os.ReadFile(filepath.Join(d, filepath.FromSlash(recordPath(rot))))
	sig, _ := other.Sign(rec)
	os.WriteFile(filepath.Join(d, filepath.FromSlash(sigPath(rot))), sig, 0o644)
	rehash(t, d)
	if r := mustVerifyWith(t, d, first); r.OK() || !problemOn(r, all.Info.Keys[1].File, "no valid signature by the previous key") {
		t.Errorf("rotation record signed by another key: %v", r.Problems)
	}
}

// Trust by fingerprint, by the package's own key (said in the result), and
// a wrong fingerprint.
func TestTrustInputs(t *testing.T) {
	f := newFixture(t, signed)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, false)
	all := mustVerify(t, dir)
	fp := signing.Fingerprint(packageKey(t, dir, all, 0))
	id, err := signing.ParseFingerprint(strings.ToUpper(fp[:7]) + strings.ToUpper(fp[7:]))
	if err != nil {
		t.Fatal(err)
	}
	if r := mustVerifyWith(t, dir, Trust{KeyIDs: []string{id}}); !r.OK() || r.PackageKeyTrusted || r.Keys[0].How != "given" || r.Keys[0].Fingerprint != fp {
		t.Errorf("by fingerprint: %v %+v", r.Problems, r.Keys)
	}
	if r := mustVerifyWith(t, dir, Trust{PackageKey: true}); !r.OK() || !r.PackageKeyTrusted || r.Keys[0].How != "package" {
		t.Errorf("package key: %v %+v", r.Problems, r)
	}
	other, _ := signing.Generate(host)
	if r := mustVerifyWith(t, dir, Trust{KeyIDs: []string{other.KeyID()}}); r.OK() || !problemOn(r, all.Info.Keys[0].File, "is not a key you trust") {
		t.Errorf("another host's fingerprint: %v", r.Problems)
	}
	for _, bad := range []string{"", "SHA256:" + id[:63], "sha256:" + id, id, "SHA256:" + id + "0", "SHA256:" + strings.Repeat("g", 64)} {
		if _, err := signing.ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		}
	}
}

// An unsigned package fails unless unsigned packages are allowed; records
// from before the host had a key count when a trusted checkpoint holds
// them.
func TestUnsignedNeedsAllowing(t *testing.T) {
	f := newFixture(t, unsigned)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, false)
	r := mustVerifyWith(t, dir, Trust{PackageKey: true})
	if r.OK() || !problemOn(r, r.Info.Checkpoint, "is not signed") || !problemOn(r, "records/1.json", "has no signature") {
		t.Fatalf("unsigned package without allowing it: %v", r.Problems)
	}
	if r := mustVerifyWith(t, dir, Trust{PackageKey: true, AllowUnsigned: true}); !r.OK() || r.Unsigned != 7 {
		t.Fatalf("unsigned package allowed: %v %+v", r.Problems, r)
	}

	m := newFixture(t, mixed)
	dir = filepath.Join(t.TempDir(), "pkg")
	m.build(t, dir, false)
	all := mustVerify(t, dir)
	r = mustVerifyWith(t, dir, Trust{Keys: []ed25519.PublicKey{packageKey(t, dir, all, 0)}})
	if !r.OK() || r.Unsigned != 5 {
		t.Fatalf("pre-key records under a trusted checkpoint: %v %+v", r.Problems, r)
	}
}

// Finding 9: export --footage wrote 0644 under umask 022 while get wrote
// 0440. Every package file, written directly or extracted from the
// daemon's tar stream, is 0440.
func TestPackageFilesAreReadOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	f := newFixture(t, signed)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, true)
	var buf bytes.Buffer
	ts := NewTarSink(&buf, time.Now())
	if _, err := Build(context.Background(), f.l, memFootage(f.footage), ts, Options{IDs: f.ids, Footage: true, ExportedBy: "x", Reason: "y"}); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	extracted := t.TempDir()
	if err := Extract(&buf, extracted); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{dir, extracted} {
		n := 0
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			n++
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o440 {
				t.Errorf("%s: mode %v (%v), want 0440", p, st.Mode().Perm(), err)
			}
			return nil
		})
		if n < 20 {
			t.Errorf("%s: only %d files", root, n)
		}
	}
}
