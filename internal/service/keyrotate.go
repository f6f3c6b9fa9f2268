package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// Key rotation (RotateKey) replaces the host's signing key so that the
// ledger vouches for the new one at every instant a crash could stop it:
//
//  1. the next key is written to a side file, <key file>.next (0600,
//     fsynced with its directory); the key in force still signs;
//  2. with --keep-retired, a copy of the key in force is written to
//     <key file>.retired-<key id> (0400, fsynced);
//  3. a KEY_ROTATED record naming the next key, signed by the key in
//     force, is committed to the ledger (bbolt fsyncs the commit);
//  4. the side file is renamed over the key file and the directory
//     fsynced: the key in force's private key is gone from the host;
//  5. the ledger is anchored, which publishes the KEY_ROTATED record and
//     the new public key (keys/<key id>.pem) in the object store.
//
// Open (finishRotation) settles a side file left by a crash under the
// ledger's lock: if the ledger's key in force is the side file's key (the
// crash came after step 3) the rename of step 4 is done; if not (the
// crash came before step 3 committed, so the key file's key is still in
// force), the side file is removed, and so is a retired copy of the key
// still in force. Either way the key file holds the key the ledger vouches
// for and the host starts. A side file is removed only when the key file
// holds the key in force: one that cannot be read while the ledger names
// a key the key file does not hold may be the only copy of that key, and
// Open refuses to start, naming it, rather than destroy it.
//
// By default the old private key is not kept: its public key, which is
// all a verifier needs, is in the ledger and the store, and a rotation
// is usually made because the old key may have leaked; keeping its
// private half would keep alive the means to sign records as the old key.
// A policy that escrows retired keys asks for the copy (KeepRetired).

// Rotation steps, in order; rotateStep is called after each (tests stop
// the rotation there, as a crash would).
const (
	stepNextWritten    = "next-written"
	stepRetiredWritten = "retired-written"
	stepRecorded       = "recorded"
	stepInstalled      = "installed"
)

// rotateStep is a test hook: a non-nil error stops RotateKey right after
// the step, leaving the files and the ledger as a crash there would.
var rotateStep = func(string) error { return nil }

// NextKeyPath is where a rotation writes the next key before the ledger
// names it.
func NextKeyPath(keyPath string) string { return keyPath + ".next" }

// RetiredKeyPath is where KeepRetired keeps the private key of keyID.
func RetiredKeyPath(keyPath, keyID string) string { return keyPath + ".retired-" + keyID }

// KeyRotateOptions is what a rotation records.
type KeyRotateOptions struct {
	// Reason is recorded in the KEY_ROTATED record (required).
	Reason string
	// KeepRetired keeps the old private key at RetiredKeyPath, mode 0400.
	KeepRetired bool
}

// KeyRotation is what RotateKey did.
type KeyRotation struct {
	// Old and New are the fingerprints (SHA256:…) of the key rotated out
	// and of the key in force from record Seq+1.
	Old string `json:"old"`
	New string `json:"new"`
	// Seq is the KEY_ROTATED record.
	Seq uint64 `json:"seq"`
	// Retired is the path of the kept old private key ("" when removed).
	Retired string `json:"retired,omitempty"`
	// Published says the rotation was anchored in the object store (the
	// new public key is the object KeyObject); PublishErr says why not
	// when it failed (the next anchor publishes it). All are zero
	// without a store.
	Published  bool   `json:"published"`
	PublishErr string `json:"publish_error,omitempty"`
	KeyObject  string `json:"key_object,omitempty"`
}

// ErrConsoleKey: a console's host key cannot be rotated by RotateKey.
var ErrConsoleKey = errors.New("a console's host key also signs the camera inventory its dock hosts pin (inventory.public_key_file); rotating it is not supported")

// RotateKey replaces the host signing key (see the protocol above). The
// KEY_ROTATED record carries the caller as its actor, and the reason. In
// the daemon the anchor goes through its anchor loop (inDaemon).
func (s *Service) RotateKey(ctx context.Context, c Caller, o KeyRotateOptions, inDaemon bool) (KeyRotation, error) {
	if strings.TrimSpace(o.Reason) == "" {
		return KeyRotation{}, fmt.Errorf("%w: key rotate needs a reason (it is recorded in the custody ledger)", ErrInvalid)
	}
	if s.config.IsConsole() {
		return KeyRotation{}, fmt.Errorf("%w: %w", ErrInvalid, ErrConsoleKey)
	}
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	path := s.config.KeyPath()
	old := s.hostKey()
	res := KeyRotation{Old: signing.Fingerprint(old.Public())}
	nextPath := NextKeyPath(path)
	next, err := signing.Create(nextPath, s.config.HostID)
	if errors.Is(err, fs.ErrExist) {
		return res, fmt.Errorf("rotate host key: %s exists: an earlier rotation is unsettled (restart the daemon, or run any command, to settle it)", nextPath)
	}
	if err != nil {
		return res, fmt.Errorf("rotate host key: write the next key: %w", err)
	}
	if err := rotateStep(stepNextWritten); err != nil {
		return res, err
	}
	if o.KeepRetired {
		res.Retired = RetiredKeyPath(path, old.KeyID())
		if err := old.WriteRetired(res.Retired); err != nil {
			_ = signing.Remove(nextPath)
			return KeyRotation{Old: res.Old}, fmt.Errorf("rotate host key: keep the old key: %w", err)
		}
		if err := rotateStep(stepRetiredWritten); err != nil {
			return res, err
		}
	}
	ev, err := s.ledger.RotateKeyBy(ctx, next, c.Actor, c.details(map[string]string{"reason": o.Reason, "peer": c.Peer}))
	if err != nil {
		// Whether the record was committed is what the ledger says now:
		// settle exactly as a restart would.
		if _, _, serr := finishRotation(ctx, s.config, s.log, old, s.ledger, nil); serr != nil {
			err = errors.Join(err, serr)
		}
		return KeyRotation{Old: res.Old}, fmt.Errorf("rotate host key: %w", err)
	}
	res.Seq, res.New = ev.Seq, signing.Fingerprint(next.Public())
	if err := rotateStep(stepRecorded); err != nil {
		return res, err
	}
	if err := signing.Install(nextPath, path); err != nil {
		// The ledger signs with the next key already; the next start
		// finishes the rename (finishRotation).
		s.addKeyVerifier(next)
		return res, errors.Join(s.setKey(next), fmt.Errorf("rotate host key: record %d names the next key, but it is not yet in place (the next start puts it there): %w", ev.Seq, err))
	}
	s.addKeyVerifier(next)
	if err := s.setKey(next); err != nil {
		return res, fmt.Errorf("rotate host key: record %d names the next key, which is in place: %w", ev.Seq, err)
	}
	s.log.Info("host signing key rotated", "seq", ev.Seq, "old", res.Old, "new", res.New, "actor", c.Actor, "retired", res.Retired)
	if err := rotateStep(stepInstalled); err != nil {
		return res, err
	}
	if s.anchors != nil {
		res.KeyObject = anchor.KeyKey(s.config.HostID, next.KeyID())
		if err := s.anchorBeforeRelease(ctx, inDaemon); err != nil {
			res.PublishErr = err.Error()
			s.log.Warn("host key rotated but not yet anchored; the next anchor publishes it", "err", err)
		} else {
			res.Published = true
		}
	}
	return res, nil
}

// finishRotation settles a rotation a crash cut short (see the protocol
// above). It runs under the ledger's lock, before anything signs: l was
// opened with key (the key file's). When the side file's key is the
// ledger's key in force, the side file becomes the key file and the
// ledger is reopened (reopen) to sign with it; otherwise the side file is
// removed. A retired copy of the key in force is removed too (the crash
// came before the rotation committed). reopen nil: the ledger is not
// reopened (RotateKey's own settling, which swaps keys itself).
func finishRotation(ctx context.Context, cfg *config.Config, log *slog.Logger, key *signing.Key, l *custody.Ledger,
	reopen func(*signing.Key) (*custody.Ledger, error)) (*signing.Key, *custody.Ledger, error) {
	path := cfg.KeyPath()
	nextPath := NextKeyPath(path)
	keys, err := l.Keys(ctx)
	if err != nil {
		return key, l, fmt.Errorf("settle host key rotation: %w", err)
	}
	inForce := ""
	if len(keys) > 0 {
		inForce = keys[len(keys)-1].KeyID
	}
	retired := RetiredKeyPath(path, inForce)
	if inForce != "" {
		if _, err := os.Lstat(retired); err == nil {
			if err := signing.Remove(retired); err != nil {
				return key, l, fmt.Errorf("settle host key rotation: %w", err)
			}
			log.Warn("removed the retired copy of the key still in force: its rotation did not happen", "path", retired, "key_id", inForce)
		}
	}
	// A next key or retired copy whose write a crash cut short is only
	// a temporary file (signing writes through one): no record names it.
	for _, pat := range []string{"." + filepath.Base(nextPath) + ".tmp-*", "." + filepath.Base(path) + ".retired-*.tmp-*"} {
		tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), pat))
		for _, tmp := range tmps {
			if err := signing.Remove(tmp); err != nil {
				return key, l, fmt.Errorf("settle host key rotation: %w", err)
			}
			log.Warn("removed a key file a crash left half written", "path", tmp)
		}
	}
	if _, err := os.Lstat(nextPath); errors.Is(err, fs.ErrNotExist) {
		return key, l, nil
	}
	next, err := signing.Load(nextPath, cfg.HostID)
	switch {
	case err == nil && next.KeyID() == inForce:
		// The rotation committed: the rename below finishes it.
	case inForce == "" || key.KeyID() == inForce:
		// The key file's key is still in force: the rotation did not
		// commit, and the side file signs nothing the ledger accepts.
		if rerr := signing.Remove(nextPath); rerr != nil {
			return key, l, fmt.Errorf("settle host key rotation: %w", rerr)
		}
		log.Warn("removed the next host key of a rotation that did not commit; the key in force stays", "path", nextPath, "key_id", key.KeyID(), "err", err)
		return key, l, nil
	default:
		// Neither file holds the key in force as far as can be read
		// (the side file unreadable, say, after a restore changed its
		// mode): it may be the only copy of the key the ledger signs
		// with from now on, so it is never removed here.
		return key, l, fmt.Errorf("settle host key rotation: the ledger's key in force is %s%s, which the key file %s does not hold, and the next key %s could not be taken as it (%v): nothing was removed; make %s readable (mode 0600) if it holds that key, then start again",
			signing.FingerprintPrefix, inForce, path, nextPath, describeNext(next, err), nextPath)
	}
	if err := signing.Install(nextPath, path); err != nil {
		return key, l, fmt.Errorf("settle host key rotation: %w", err)
	}
	log.Warn("finished a host key rotation cut short: the key the ledger's KEY_ROTATED record names is now the key file", "path", path, "key_id", next.KeyID(), "rotated_out", key.KeyID())
	if reopen == nil {
		return next, l, nil
	}
	if err := l.Close(); err != nil {
		return next, nil, fmt.Errorf("settle host key rotation: close ledger: %w", err)
	}
	l, err = reopen(next)
	return next, l, err
}

// describeNext says why a side file is not the ledger's key in force.
func describeNext(next *signing.Key, err error) string {
	if err != nil {
		return err.Error()
	}
	return "it holds key " + signing.Fingerprint(next.Public())
}

// setKey makes k the key in force in this process, and the find
// cursors' key the one derived from it: the one every process that opens
// the host from now on derives, so a cursor the daemon prints after a
// rotation is taken by the next start and by a command run alone.
func (s *Service) setKey(k *signing.Key) error {
	ck, err := cursorKey(k.Sign)
	if err != nil {
		return err
	}
	s.key.Store(k)
	s.cursorKey.Store(&ck)
	return nil
}

// findCursorKey is the find cursors' MAC key (cursorKey).
func (s *Service) findCursorKey() []byte { return *s.cursorKey.Load() }

// hostKey is the key in force.
func (s *Service) hostKey() *signing.Key { return s.key.Load() }

// loadKeyVerifiers reads the checkpoint verifiers of every host key of
// the ledger (the anchor trusts checkpoints signed by any of them).
func (s *Service) loadKeyVerifiers(ctx context.Context) error {
	_, vs, err := s.ledgerKeys(ctx)
	if err != nil {
		return err
	}
	s.keyVerifiers.Store(&vs)
	return nil
}

// ledgerKeys are the ledger's host key periods, oldest first, and the
// signed-note verifier of each.
func (s *Service) ledgerKeys(ctx context.Context) ([]custody.KeyPeriod, []note.Verifier, error) {
	keys, err := s.ledger.Keys(ctx)
	if err != nil {
		return nil, nil, err
	}
	vs := []note.Verifier{}
	for _, k := range keys {
		pub, err := signing.ParsePublicPEM([]byte(k.PublicPEM))
		if err != nil {
			return nil, nil, fmt.Errorf("host key %s of the ledger: %w", k.KeyID, err)
		}
		v, err := signing.NoteVerifier(s.config.HostID, pub)
		if err != nil {
			return nil, nil, fmt.Errorf("host key %s of the ledger: %w", k.KeyID, err)
		}
		vs = append(vs, v)
	}
	return keys, vs, nil
}

// addKeyVerifier adds a key the ledger now vouches for.
func (s *Service) addKeyVerifier(k *signing.Key) {
	old := s.keyVerifiers.Load()
	vs := append([]note.Verifier{k.NoteVerifier()}, *old...)
	s.keyVerifiers.Store(&vs)
}

// ledgerKeyVerifiers is anchor.Options.Verifiers.
func (s *Service) ledgerKeyVerifiers() []note.Verifier { return *s.keyVerifiers.Load() }

// keyFileProblem says how the host key file differs from the ledger's key
// in force ("" when it is that key, or the ledger has none yet): a key
// file replaced without a KEY_ROTATED record signs nothing the ledger or
// a verifier would accept. A rotation in this process looks the same
// between its record's commit and the swap of the key in memory, so a
// difference is looked at again once no rotation runs: a verify during a
// rotation must not report the rotation as a swapped key.
func (s *Service) keyFileProblem(ctx context.Context) string {
	if what := s.keyMismatch(ctx); what == "" {
		return ""
	}
	s.rotateMu.Lock()
	defer s.rotateMu.Unlock()
	return s.keyMismatch(ctx)
}

func (s *Service) keyMismatch(ctx context.Context) string {
	keys, err := s.ledger.Keys(ctx)
	if err != nil || len(keys) == 0 {
		return "" // Verify reports an unreadable v1/keys
	}
	last := keys[len(keys)-1]
	if k := s.hostKey(); k.KeyID() != last.KeyID {
		return fmt.Sprintf("the host key file %s holds key %s, but the ledger's key in force (from record %d) is %s: the key was replaced without a KEY_ROTATED record signed by the key before it (evidenced key rotate)",
			s.config.KeyPath(), signing.Fingerprint(k.Public()), last.FromSeq, signing.FingerprintPrefix+last.KeyID)
	}
	return ""
}
