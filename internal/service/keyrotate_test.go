package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/witness"
)

var errCrash = errors.New("simulated crash")

// appendSigned appends one record through s's ledger: it succeeds only
// when the key s signs with is the ledger's key in force.
func appendSigned(t *testing.T, s *Service) {
	t.Helper()
	if _, err := s.ledger.Append(context.Background(), custody.Event{Type: custody.HostStarted, Actor: s.DaemonActor()}, nil); err != nil {
		t.Fatalf("append after the rotation: %v", err)
	}
}

// keyState is what the key file, the side file and the ledger say.
type keyState struct {
	file, inForce string // key ids
	next, retired bool   // side file, any retired copy present
}

func readKeyState(t *testing.T, cfg *config.Config, s *Service) keyState {
	t.Helper()
	k, err := signing.Load(cfg.KeyPath(), cfg.HostID)
	if err != nil {
		t.Fatalf("key file after the rotation: %v", err)
	}
	keys, err := s.ledger.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := keyState{file: k.KeyID(), inForce: keys[len(keys)-1].KeyID}
	_, err = os.Lstat(NextKeyPath(cfg.KeyPath()))
	st.next = err == nil
	m, _ := filepath.Glob(cfg.KeyPath() + ".retired-*")
	st.retired = len(m) > 0
	return st
}

// verifyClean fails on any problem Verify finds.
func verifyClean(t *testing.T, s *Service) {
	t.Helper()
	var probs []string
	if _, err := s.ledger.Verify(context.Background(), func(p custody.Problem) { probs = append(probs, fmt.Sprint(p)) }); err != nil {
		t.Fatal(err)
	}
	if len(probs) > 0 {
		t.Fatalf("ledger does not verify after the rotation:\n%s", strings.Join(probs, "\n"))
	}
}

// openRecorded opens a service on cfg and appends one record: the
// ledger has its HOST_KEY and a record signed by the first key.
func openRecorded(t *testing.T, cfg *config.Config) *Service {
	t.Helper()
	s, err := Open(context.Background(), cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendSigned(t, s)
	return s
}

// rotateCrashingAt runs a rotation that stops right after step, as a
// crash there would.
func rotateCrashingAt(t *testing.T, s *Service, step string, keep bool) KeyRotation {
	t.Helper()
	rotateStep = func(st string) error {
		if st == step {
			return errCrash
		}
		return nil
	}
	defer func() { rotateStep = func(string) error { return nil } }()
	res, err := s.RotateKey(context.Background(), Caller{Actor: "custodian"}, KeyRotateOptions{Reason: "yearly", KeepRetired: keep}, false)
	if !errors.Is(err, errCrash) {
		t.Fatalf("rotation stopped at %s: %v", step, err)
	}
	return res
}

// A rotation stopped after any of its steps (as kill -9 or a power cut
// would stop it; every step before is durable) leaves a host that opens
// with the key the ledger vouches for, signs with it, and has no side
// file left: a crash before the KEY_ROTATED record is committed keeps the
// old key (and drops a retired copy of it), one after it finishes with
// the new key. Real bbolt, real key files; the service is reopened as
// the daemon or any command would.
func TestRotateKeyCrashAtEveryStep(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		step    string
		keep    bool
		rotated bool // the new key is in force after the restart
	}{
		{stepNextWritten, false, false},
		{stepNextWritten, true, false},
		{stepRetiredWritten, true, false},
		{stepRecorded, false, true},
		{stepRecorded, true, true},
		{stepInstalled, false, true},
	} {
		t.Run(fmt.Sprintf("%s keep=%v", tc.step, tc.keep), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), "")
			s := openRecorded(t, cfg)
			old := s.HostKey().KeyID()
			res := rotateCrashingAt(t, s, tc.step, tc.keep)
			s.Close()

			s, err := Open(ctx, cfg, nil, Options{MustExist: true})
			if err != nil {
				t.Fatalf("open after a crash at %s: %v", tc.step, err)
			}
			defer s.Close()
			st := readKeyState(t, cfg, s)
			if st.file != st.inForce || s.HostKey().KeyID() != st.inForce {
				t.Fatalf("after a crash at %s: key file %s, service key %s, ledger's key in force %s", tc.step, st.file, s.HostKey().KeyID(), st.inForce)
			}
			if st.next {
				t.Fatalf("after a crash at %s: the side file %s is still there", tc.step, NextKeyPath(cfg.KeyPath()))
			}
			if got := st.inForce != old; got != tc.rotated {
				t.Fatalf("after a crash at %s: rotated %v, want %v", tc.step, got, tc.rotated)
			}
			if tc.rotated && st.inForce != strings.TrimPrefix(res.New, signing.FingerprintPrefix) {
				t.Fatalf("in force %s, the rotation named %s", st.inForce, res.New)
			}
			if st.retired != (tc.keep && tc.rotated) {
				t.Fatalf("after a crash at %s (keep %v): retired copy present %v", tc.step, tc.keep, st.retired)
			}
			appendSigned(t, s)
			verifyClean(t, s)
		})
	}
}

// A rotation that runs to its end records the caller and the reason in
// the KEY_ROTATED record, signs the very next record with the new key in
// the same process (the daemon keeps running), removes the old private
// key from the host unless asked to keep it (0400), and the next Open
// loads the new key.
func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), "")
			s, err := Open(ctx, cfg, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			appendSigned(t, s)
			if _, err := s.RotateKey(ctx, Caller{Actor: "custodian"}, KeyRotateOptions{Reason: " "}, false); !errors.Is(err, ErrInvalid) {
				t.Fatalf("rotation without a reason: %v, want ErrInvalid", err)
			}
			old := s.HostKey()
			res, err := s.RotateKey(ctx, Caller{Actor: "custodian", OnBehalfOf: "records-officer"}, KeyRotateOptions{Reason: "key may have leaked", KeepRetired: keep}, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Old != signing.Fingerprint(old.Public()) || res.New != s.HostKeyFingerprint() || res.Old == res.New {
				t.Fatalf("result %+v; old %s, now %s", res, signing.Fingerprint(old.Public()), s.HostKeyFingerprint())
			}
			var rot custody.Event
			if err := s.ledger.Events(ctx, res.Seq, func(ev custody.Event) error {
				if ev.Seq == res.Seq {
					rot = ev
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if rot.Type != custody.KeyRotated || rot.Actor != "custodian" || rot.Details["reason"] != "key may have leaked" ||
				rot.Details["on_behalf_of"] != "records-officer" || rot.Details["previous_key_id"] != old.KeyID() {
				t.Fatalf("record %d: %+v", res.Seq, rot)
			}
			appendSigned(t, s) // signed by the new key, no restart
			verifyClean(t, s)
			st := readKeyState(t, cfg, s)
			if st.file != st.inForce || st.inForce == old.KeyID() || st.next {
				t.Fatalf("after the rotation: %+v (old %s)", st, old.KeyID())
			}
			retired := RetiredKeyPath(cfg.KeyPath(), old.KeyID())
			fi, err := os.Stat(retired)
			switch {
			case keep && (err != nil || fi.Mode().Perm() != 0o400 || res.Retired != retired):
				t.Fatalf("kept old key %s: %v %v (result %q)", retired, fi, err, res.Retired)
			case !keep && (err == nil || st.retired || res.Retired != ""):
				t.Fatalf("the old private key is still on the host: %v", err)
			}
			if keep {
				if k, err := signing.Load(retired, cfg.HostID); err != nil || k.KeyID() != old.KeyID() {
					t.Fatalf("retired copy: %v", err)
				}
			}
			s.Close()
			if s, err = Open(ctx, cfg, nil, Options{MustExist: true}); err != nil {
				t.Fatal(err)
			}
			if s.HostKeyFingerprint() != res.New {
				t.Fatalf("reopened with %s, want %s", s.HostKeyFingerprint(), res.New)
			}
			appendSigned(t, s)
		})
	}
}

// A side file that is no key the ledger names (a rotation whose record
// never committed, or junk), and a next key's temporary file a crash left
// half written, are removed at Open and never become the key.
func TestOpenRemovesUnvouchedNextKey(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir(), "")
	s := openRecorded(t, cfg)
	want := s.HostKey().KeyID()
	s.Close()
	if _, err := signing.Create(NextKeyPath(cfg.KeyPath()), cfg.HostID); err != nil {
		t.Fatal(err)
	}
	// A next key a crash cut short while it was written.
	half := filepath.Join(filepath.Dir(cfg.KeyPath()), ".host.key.next.tmp-4711")
	if err := os.WriteFile(half, []byte("-----BEGIN PRIV"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, cfg, nil, Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := readKeyState(t, cfg, s)
	if st.next || st.file != want || st.inForce != want {
		t.Fatalf("unvouched side file: %+v, want key %s and no side file", st, want)
	}
	if _, err := os.Lstat(half); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-written next key %s kept: %v", half, err)
	}
	appendSigned(t, s)
}

// A rotation whose anchor did not happen (the crash came after the rename,
// or the store was down) leaves checkpoints signed only by the old key in
// the store. The next process signs with the new key and must still
// extend them (the ledger vouches for the old key through the chain), not
// skip them as planted and anchor the ledger again from record 1; verify
// --remote then finds the anchors intact.
func TestRotateKeyThenAnchorExtendsTheOldKeysCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, who, _, _ := anchoredHost(t)
	head, err := s.ledger.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rotateStep = func(step string) error {
		if step == stepInstalled {
			return errCrash
		}
		return nil
	}
	_, err = s.RotateKey(ctx, who, KeyRotateOptions{Reason: "yearly"}, false)
	rotateStep = func(string) error { return nil }
	if !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	cfg := s.config
	s.Close()
	s, err = Open(ctx, cfg, nil, Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := s.anchors
	res, err := anchor.Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
	if err != nil {
		t.Fatal(err)
	}
	if res.Since != head.Size || res.Size <= head.Size {
		t.Fatalf("anchor after the rotation: since %d, size %d; want it to extend the checkpoint of size %d the old key signed", res.Since, res.Size, head.Size)
	}
	rep, err := s.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || !rep.OK || !rep.Complete() {
		t.Fatalf("verify --remote after the rotation: %v %+v", err, rep.Problems)
	}
}

// A next key the ledger's KEY_ROTATED record names but that cannot be
// loaded at the next start (a restore that widened its mode, say) is the
// only copy of the key the ledger now signs with: Open refuses to start,
// naming it, and leaves it in place; once it is readable again the start
// finishes the rotation and the host signs with it.
func TestOpenKeepsAnUnreadableNextKeyTheLedgerNames(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir(), "")
	s := openRecorded(t, cfg)
	res := rotateCrashingAt(t, s, stepRecorded, false)
	s.Close()
	next := NextKeyPath(cfg.KeyPath())
	if err := os.Chmod(next, 0o644); err != nil {
		t.Fatal(err)
	}

	if s, err := Open(ctx, cfg, nil, Options{MustExist: true}); err == nil {
		s.Close()
		t.Fatalf("Open started with the ledger's key in force %s unreadable in %s", res.New, next)
	} else if !strings.Contains(err.Error(), next) {
		t.Fatalf("Open's refusal does not name %s: %v", next, err)
	}
	if _, err := os.Lstat(next); err != nil {
		t.Fatalf("the only copy of the key in force was removed: %v", err)
	}

	if err := os.Chmod(next, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, cfg, nil, Options{MustExist: true})
	if err != nil {
		t.Fatalf("open once the next key is readable: %v", err)
	}
	defer s.Close()
	if got := signing.Fingerprint(s.HostKey().Public()); got != res.New {
		t.Fatalf("host key %s after the start, want the rotated-to %s", got, res.New)
	}
	appendSigned(t, s)
	verifyClean(t, s)
}

// After a rotation the newest witnessed head is the old key's (the ledger
// signs the head of its KEY_ROTATED record with the key before) until the
// next record. It counts: verify compares the ledger with it, and a
// ledger put back to before the rotation stops the start and fails verify
// as behind its witness. A head the rotated-out key signs for a size past
// its rotation (a leaked copy) is not trusted: no false finding.
func TestWitnessAfterRotationTrustsEachKeyForItsRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wfile := filepath.Join(dir, "witness", "heads.jsonl")
	if err := os.MkdirAll(filepath.Dir(wfile), 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, "custody:\n  witness_file: "+wfile+"\n")
	s := openRecorded(t, cfg)
	old := s.HostKey()
	s.Close()
	before, err := os.ReadFile(cfg.LedgerPath())
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RotateKey(ctx, Caller{Actor: "custodian"}, KeyRotateOptions{Reason: "yearly"}, false)
	if err != nil {
		t.Fatal(err)
	}
	rep := s.verify(ctx, false)
	if !rep.OK || !rep.Complete() || rep.WitnessedSize != res.Seq || strings.Contains(noticesText(rep), "not trusted") {
		t.Fatalf("verify right after the rotation: witnessed size %d, want the KEY_ROTATED record %d; %+v", rep.WitnessedSize, res.Seq, rep)
	}

	// The old key signs a head of a size past its rotation.
	c := tlog.Checkpoint{Origin: custody.CheckpointOrigin(cfg.HostID), Size: res.Seq + 5, Root: tlog.Hash{1}}
	forged, err := tlog.SignCheckpoint(c, old.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	if err := (witness.File{Path: wfile}).Write(witness.Head{Host: cfg.HostID, Size: c.Size, Note: string(forged), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rep = s.verify(ctx, false)
	if !rep.OK || rep.WitnessedSize != res.Seq || !strings.Contains(noticesText(rep), "1 witnessed head(s)") {
		t.Fatalf("verify with a head the rotated-out key signed past its rotation: %+v", rep)
	}
	s.Close()

	// The ledger put back as it was before the rotation.
	if err := os.WriteFile(cfg.LedgerPath(), before, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.checkNotBehind(ctx); !errors.Is(err, ErrBehindWitness) {
		t.Errorf("start check on the ledger put back before its rotation: %v, want ErrBehindWitness", err)
	}
	rep = s.verify(ctx, false)
	found := false
	for _, p := range rep.Problems {
		found = found || (p.Kind == "witness" && strings.Contains(p.What, "records were removed"))
	}
	if rep.OK || !found {
		t.Errorf("verify of the ledger put back before its rotation: %+v", rep)
	}
}

// A rotation while the daemon appends (ingest, upload and access records
// all go through the ledger) neither fails an append nor lets one be
// signed by the old key after the KEY_ROTATED record: the ledger swaps
// its signer under the lock appends share, and Verify checks every
// record against the key in force at its sequence number.
func TestRotateKeyDuringAppends(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir(), "")
	s := openRecorded(t, cfg)
	defer s.Close()
	const writers, each = 6, 40
	errs := make(chan error, writers*each)
	start := make(chan struct{})
	done := make(chan struct{})
	var appended atomic.Int64
	for w := 0; w < writers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			for i := 0; i < each; i++ {
				if _, err := s.ledger.Append(ctx, custody.Event{Type: custody.HostStarted, Actor: s.DaemonActor()}, nil); err != nil {
					errs <- err
				}
				appended.Add(1)
			}
		}()
	}
	close(start)
	for appended.Load() < writers { // the writers are busy on the ledger
		time.Sleep(time.Millisecond)
	}
	res, err := s.RotateKey(ctx, Caller{Actor: "custodian"}, KeyRotateOptions{Reason: "yearly"}, false)
	for w := 0; w < writers; w++ {
		<-done
	}
	close(errs)
	if err != nil {
		t.Fatal(err)
	}
	for err := range errs {
		t.Errorf("append during the rotation: %v", err)
	}
	keys, err := s.ledger.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := keys[len(keys)-1]
	stats, err := s.ledger.Verify(ctx, func(p custody.Problem) { t.Errorf("ledger after the rotation: %v", p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || signing.FingerprintPrefix+last.KeyID != res.New || last.FromSeq != res.Seq+1 ||
		stats.Events != uint64(2+writers*each+1) || res.Seq <= uint64(2+writers) || res.Seq == stats.Events {
		t.Fatalf("keys %+v, rotation %+v, %d records: want the rotation among the appends and the new key from the next record", keys, res, stats.Events)
	}
}

// A find cursor the daemon prints after a rotation is MAC'd with the key
// every later process derives (from the new key): the next start, or a
// command run alone, takes it instead of refusing it as altered.
func TestFindCursorAfterRotationTakenByTheNextProcess(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir(), "")
	s := openRecorded(t, cfg)
	if _, err := s.RotateKey(ctx, Caller{Actor: "custodian"}, KeyRotateOptions{Reason: "yearly"}, false); err != nil {
		t.Fatal(err)
	}
	o := FindOptions{Limit: 1}
	cur := findCursor{offset: 1, total: 2}.encode(s.findCursorKey(), o)
	s.Close()
	s, err := Open(ctx, cfg, nil, Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fc, err := decodeCursor(s.findCursorKey(), "--after", cur, o); err != nil || fc.offset != 1 || fc.total != 2 {
		t.Fatalf("cursor printed after the rotation, read by the next process: %+v, %v", fc, err)
	}
}

// A rotation while the store is down is still made and recorded (the old
// key's private half is already gone when the anchor is tried): the result
// says the publication is pending, not done, and the next anchor puts the
// KEY_ROTATED record and the new public key in the store. Real versitygw.
func TestRotateKeyWithTheStoreDown(t *testing.T) {
	ctx := context.Background()
	s, who, _, _ := anchoredHost(t)
	defer s.Close()
	store := s.anchors.Store
	s.anchors.Store = failingListing{store}
	res, err := s.RotateKey(ctx, who, KeyRotateOptions{Reason: "leak suspected"}, false)
	if err != nil {
		t.Fatalf("rotation with the store down: %v", err)
	}
	if res.Published || res.PublishErr == "" || res.Seq == 0 {
		t.Fatalf("rotation with the store down reported as %+v, want published false and the anchor's error", res)
	}
	st := readKeyState(t, s.config, s)
	if st.file != st.inForce || signing.FingerprintPrefix+st.inForce != res.New {
		t.Fatalf("after a rotation with the store down: %+v, rotation %+v", st, res)
	}

	s.anchors.Store = store
	r := s.anchors
	ar, err := anchor.Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
	if err != nil {
		t.Fatal(err)
	}
	if ar.Since >= res.Seq || ar.Size < res.Seq || !slices.Contains(ar.Written, res.KeyObject) {
		t.Fatalf("the anchor after the store came back: %+v; want it to cover record %d and write %s", ar, res.Seq, res.KeyObject)
	}
	rep, err := s.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || !rep.OK || !rep.Complete() {
		t.Fatalf("verify --remote once published: %v %+v", err, rep.Problems)
	}
}

// A verify that runs while the daemon rotates, between the KEY_ROTATED
// record's commit and the swap of the key in memory, does not report the
// rotation as a key file swapped without one (a false exit 3): it looks
// again once the rotation is over.
func TestVerifyDuringRotationIsNoKeySwap(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir(), "")
	s := openRecorded(t, cfg)
	defer s.Close()
	found := make(chan string, 1)
	var during string
	seen := false
	rotateStep = func(step string) error {
		if step != stepRecorded {
			return nil
		}
		go func() { found <- s.keyFileProblem(ctx) }()
		select {
		case during = <-found:
			seen = true
		case <-time.After(300 * time.Millisecond): // waits for the rotation
		}
		return nil
	}
	defer func() { rotateStep = func(string) error { return nil } }()
	if _, err := s.RotateKey(ctx, Caller{Actor: "custodian"}, KeyRotateOptions{Reason: "yearly"}, false); err != nil {
		t.Fatal(err)
	}
	if !seen {
		during = <-found
	}
	if during != "" {
		t.Fatalf("verify during the rotation: %s", during)
	}
}
