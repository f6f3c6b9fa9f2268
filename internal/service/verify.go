package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/upload"
)

// VerifyProblem is one thing that does not check out.
type VerifyProblem struct {
	Kind string `json:"kind"` // "record", "item", "object", "checkpoint", "ledger", "vault"; at a console also "host", "catalog"
	// Host, at a console, is the dock host the problem is in (its
	// history, or an item it ingested).
	Host   string `json:"host,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Item   string `json:"item,omitempty"`
	Object string `json:"object,omitempty"`
	What   string `json:"what"`
}

// VerifyReport is what a verification found.
type VerifyReport struct {
	OK     bool `json:"ok"`
	Events int  `json:"events"`
	Items  int  `json:"items"`
	// Vault counts the vault copies checked (re-hashed or found missing),
	// VaultFailed those of them that failed; a copy released after
	// vault.grace is not checked.
	Vault       int `json:"vault_files_checked"`
	VaultFailed int `json:"vault_files_failed"`
	// Objects counts the objects checked in the store (with Remote; the
	// store answered for them), ObjectsFailed those of them with a problem
	// (one object may have several).
	Objects       int `json:"objects_checked"`
	ObjectsFailed int `json:"objects_failed"`
	Signed        int `json:"signed_records"`
	// Checkpoints is how many checkpoints anchored in the object store
	// were checked against this ledger (with Remote).
	Checkpoints int              `json:"checkpoints_checked"`
	Problems    []VerifyProblem  `json:"problems"`
	Notices     []custody.Notice `json:"notices"`
	// Pending counts items vaulted but not yet uploaded (with Remote):
	// nothing to check in the store yet, and not a problem.
	Pending int `json:"items_pending_upload"`
	// StoreUnchecked says why the object store could not be checked (with
	// Remote): it could not be reached or would not let evidenced in. The
	// local checks are still done and reported; what the store holds is
	// neither proven nor found wrong.
	StoreUnchecked string `json:"store_unchecked,omitempty"`
	// ObjectsUnchecked counts the objects that were therefore not checked.
	ObjectsUnchecked int `json:"objects_unchecked,omitempty"`
	// Witness is where the ledger's signed heads are witnessed outside
	// state_dir ("" when nowhere); WitnessedSize the size of the newest
	// witnessed head the ledger was compared with (0: none yet).
	Witness       string `json:"witness,omitempty"`
	WitnessedSize uint64 `json:"witnessed_size,omitempty"`
	// WitnessUnchecked says why the ledger could not be compared with its
	// witness (unreadable): neither proven nor found wrong.
	WitnessUnchecked string `json:"witness_unchecked,omitempty"`
	// AnchorsUnchecked says why the anchored checkpoints could not be
	// checked although the store answered (with Remote): the check itself
	// failed (a listing that broke off, a ledger read that failed), as
	// opposed to finding an anchored object wrong, which is a problem.
	// Neither proven nor found wrong.
	AnchorsUnchecked string `json:"anchors_unchecked,omitempty"`
}

// Complete reports whether everything asked for was checked.
func (r VerifyReport) Complete() bool {
	return r.StoreUnchecked == "" && r.WitnessUnchecked == "" && r.AnchorsUnchecked == ""
}

// Unchecked says what was not checked and why ("" when everything was).
func (r VerifyReport) Unchecked() string {
	var parts []string
	if r.StoreUnchecked != "" {
		parts = append(parts, fmt.Sprintf("%s; %d object(s) not checked", r.StoreUnchecked, r.ObjectsUnchecked))
	}
	if r.WitnessUnchecked != "" {
		parts = append(parts, "the ledger was not compared with its witness: "+r.WitnessUnchecked)
	}
	if r.AnchorsUnchecked != "" {
		parts = append(parts, "the anchored checkpoints were not checked: "+r.AnchorsUnchecked)
	}
	return strings.Join(parts, "; ")
}

// VerifyOptions say what to check.
type VerifyOptions struct {
	// Remote also checks every object and the anchored checkpoints in the
	// object store.
	Remote bool
	Reason string
}

// Verify re-walks the custody chain, re-hashes every vault file and (with
// Remote) checks every object and anchored checkpoint; at a console, the
// fleet it serves too (verifyFleet). The check and its
// outcome are custody too: it is recorded after it ran. A ledger too
// damaged to take that record still gets its report; the error then says
// the record failed.
func (s *Service) Verify(ctx context.Context, c Caller, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if s.catalog != nil {
		rep = s.verifyFleet(ctx, o.Remote)
	} else {
		rep = s.verify(ctx, o.Remote)
	}
	outcome := "ok"
	switch {
	case !rep.OK:
		outcome = strconv.Itoa(len(rep.Problems)) + " problem(s)"
	case !rep.Complete():
		outcome = "incomplete: " + rep.Unchecked()
	}
	err := s.RecordAccess(ctx, c, "verify", o.Reason, nil, map[string]string{
		"remote": strconv.FormatBool(o.Remote), "outcome": outcome,
		"events": strconv.Itoa(rep.Events), "items": strconv.Itoa(rep.Items),
	})
	return rep, err
}

func (s *Service) verify(ctx context.Context, remote bool) VerifyReport {
	rep := VerifyReport{Problems: []VerifyProblem{}, Notices: []custody.Notice{}}
	add := func(p VerifyProblem) { rep.Problems = append(rep.Problems, p) }
	if err := s.ledger.Check(); err != nil {
		add(VerifyProblem{Kind: "ledger", What: "database consistency check: " + err.Error()})
	}
	stats, err := s.ledger.VerifyNotices(ctx, func(p custody.Problem) {
		switch {
		case p.Seq != 0:
			add(VerifyProblem{Kind: "record", Seq: p.Seq, Item: p.Item, What: p.What})
		case p.Item == "":
			add(VerifyProblem{Kind: "ledger", What: p.What})
		default:
			add(VerifyProblem{Kind: "item", Item: p.Item, What: p.What})
		}
	}, func(n custody.Notice) {
		rep.Notices = append(rep.Notices, n)
	})
	if err != nil {
		add(VerifyProblem{Kind: "ledger", What: "chain walk stopped: " + err.Error()})
	}
	rep.Events = int(stats.Events)
	rep.Signed = int(stats.Signed)
	if what := s.keyFileProblem(ctx); what != "" {
		add(VerifyProblem{Kind: "ledger", What: what})
	}
	storeDown := s.storeDownFor(&rep)
	if remote && s.store != nil {
		// One question first: a store that cannot be asked would
		// otherwise fail every object one by one, which says nothing
		// about the evidence.
		if err := s.probeStore(ctx); err != nil {
			if !storeDown(err) {
				rep.StoreUnchecked = fmt.Sprintf("object store %s could not be checked: %v", s.endpoint(), err)
			}
		}
	}
	if remote && s.anchorStore != nil && rep.StoreUnchecked == "" {
		s.checkAnchors(ctx, &rep, add, storeDown)
	}
	var items []custody.Item
	if err := s.ledger.Items(ctx, custody.Filter{}, func(it custody.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		add(VerifyProblem{Kind: "ledger", What: "list items: " + err.Error()})
	}
	rep.Items = len(items)
	for _, it := range items {
		if ctx.Err() != nil {
			add(VerifyProblem{Kind: "ledger", What: "verification interrupted: " + ctx.Err().Error()})
			break
		}
		// A copy released after vault.grace (VAULT_RELEASED) is not
		// checked: the object store holds it; remote checks that.
		if released := it.VaultPath == "" && it.State == custody.StateVerified; !released {
			rep.Vault++
			if what := s.vaultCopyProblem(ctx, it); what != "" {
				add(VerifyProblem{Kind: "item", Item: it.ID, What: what})
				rep.VaultFailed++
			}
		}
		if !remote {
			continue
		}
		if it.State == custody.StateVaulted {
			rep.Pending++
			continue
		}
		if s.store == nil {
			add(VerifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey, What: "no object_store configured to check it against"})
			continue
		}
		if rep.StoreUnchecked != "" {
			rep.ObjectsUnchecked++
			continue
		}
		_, _, err = upload.VerifyObject(ctx, s.store, s.vault, it, s.config)
		if storeDown(err) {
			rep.ObjectsUnchecked++
			continue
		}
		failed := err != nil
		if errors.Is(err, objstore.ErrNotFound) {
			add(VerifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey + "@" + it.VersionID,
				What: "the recorded version " + it.VersionID + " is gone from the store (deleted; with a governance retention bypass if it was still locked): " + err.Error()})
		} else if err != nil {
			add(VerifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey + "@" + it.VersionID, What: err.Error()})
		}
		// The current version must be the recorded one: whoever fetches the
		// key without a version id gets the current version, so another one
		// on top (a PUT after ours, or after deleting ours) is a problem even
		// while the recorded version is intact.
		cur, cerr := s.currentVersionProblem(ctx, it)
		if storeDown(cerr) {
			if !failed {
				rep.ObjectsUnchecked++
				continue
			}
			// Already found wrong: checked, and failed, whatever the
			// second question would have said.
			cur = ""
		}
		if cur != "" {
			add(VerifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey, What: cur})
			failed = true
		}
		rep.Objects++
		if failed {
			rep.ObjectsFailed++
		}
	}
	// Footage the ledger does not account for is a finding too (a ledger
	// replaced or lost beside a full vault).
	known := make(map[string]bool, len(items))
	for _, it := range items {
		known[it.ID] = true
	}
	stray, err := s.vault.Unclaimed(ctx, func(id string) bool { return known[id] })
	if err != nil {
		add(VerifyProblem{Kind: "vault", What: err.Error()})
	}
	for _, p := range stray {
		if seq, ok := s.interruptedCopy(ctx, filepath.Base(p)); ok {
			// Ingest records COPIED before a copy appears under items/, so a
			// crash or power cut before VAULTED leaves a file the ledger
			// names: on record, not vaulted, and still on the camera, whose
			// next dock copies it again.
			rep.Notices = append(rep.Notices, custody.Notice{Seq: seq,
				What: "vault file of an interrupted copy (COPIED, never VAULTED; the camera still holds it): " + p})
			continue
		}
		add(VerifyProblem{Kind: "vault", What: "file no item in the ledger claims: " + p})
	}
	s.verifyWitness(ctx, &rep, add)
	rep.OK = len(rep.Problems) == 0
	return rep
}

// storeDownFor returns a test of an error from the store: true when the
// store could not be asked (unreachable, or it would not let evidenced
// in), after noting the first such reason in rep.StoreUnchecked. What
// needed the store is then unchecked, never failed by it.
func (s *Service) storeDownFor(rep *VerifyReport) func(error) bool {
	return func(err error) bool {
		if whyUnavailable(err) == "" {
			return false
		}
		if rep.StoreUnchecked == "" {
			rep.StoreUnchecked = s.storeErrAs("checked", err).Error()
		}
		return true
	}
}

// verifyWitness compares the ledger with the newest signed head witnessed
// outside state_dir: a ledger behind it, or not reproducing its root, lost
// records (anchored or not) and is a problem; a witness that cannot be read
// leaves the report incomplete, never failed.
func (s *Service) verifyWitness(ctx context.Context, rep *VerifyReport, add func(VerifyProblem)) {
	if s.witness == nil {
		rep.Notices = append(rep.Notices, custody.Notice{What: "no witness of the signed head outside state_dir (no journald, custody.witness_file unset): a trimmed unanchored tail cannot be detected"})
		return
	}
	rep.Witness = s.witness.String()
	size, problem, skipped, err := s.checkWitness(ctx)
	rep.WitnessedSize = size
	if skipped > 0 {
		rep.Notices = append(rep.Notices, custody.Notice{What: fmt.Sprintf("%d witnessed head(s) in %s not signed by a host key the ledger vouches for (for their size) were not trusted", skipped, s.witness)})
	}
	switch {
	case err != nil:
		rep.WitnessUnchecked = err.Error()
	case problem != "":
		add(VerifyProblem{Kind: "witness", What: problem})
	}
}

// interruptedCopy says whether the ledger's last record of item id is its
// COPIED (the copy was published, then the process stopped before the read
// back and VAULTED), and that record's seq.
func (s *Service) interruptedCopy(ctx context.Context, id string) (uint64, bool) {
	evs, err := s.ledger.Custody(ctx, id)
	if err != nil || len(evs) == 0 {
		return 0, false
	}
	last := evs[len(evs)-1]
	return last.Seq, last.Type == custody.Copied
}

// vaultCopyProblem re-hashes it's vault copy and says what is wrong with
// it, or "" when it holds what the ledger recorded.
func (s *Service) vaultCopyProblem(ctx context.Context, it custody.Item) string {
	sum, n, err := s.vault.ReadBack(ctx, it.ID)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "vault copy is missing: " + s.vault.Path(it.ID)
	case err != nil:
		return "vault copy unreadable: " + err.Error()
	case sum.Hex() != it.SHA256 || n != it.Size:
		return fmt.Sprintf("vault copy %s hashes %s (%d bytes), recorded %s (%d bytes)",
			s.vault.Path(it.ID), sum.Hex(), n, it.SHA256, it.Size)
	}
	return ""
}

// currentVersionProblem says what is wrong with the current (latest)
// version of it's object key, or "" when it is the recorded version; the
// error is the store's when it could not be asked.
func (s *Service) currentVersionProblem(ctx context.Context, it custody.Item) (string, error) {
	cur, err := s.store.Stat(ctx, it.ObjectKey, "")
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fmt.Sprintf("the key has no current version (deleted, or hidden by a delete marker): fetching it without the recorded version id %s finds nothing", it.VersionID), nil
	case err != nil:
		return "cannot stat the current version: " + err.Error(), err
	case cur.VersionID != it.VersionID:
		sha := cur.SHA256
		if sha == "" {
			sha = "none"
		}
		return fmt.Sprintf("version %s (%d bytes, sha256 metadata %s) is the current version, not the recorded version %s (%d bytes, sha256 %s): anyone fetching the key gets those bytes, not the evidence",
			cur.VersionID, cur.Size, sha, it.VersionID, it.Size, it.SHA256), nil
	}
	return "", nil
}

// checkAnchors replays every checkpoint this host anchored in the object
// store against the local ledger: a ledger rewritten, truncated, forked or
// restored from an older copy fails here even if every local hash and
// signature was recomputed, because the anchored checkpoints are locked
// (COMPLIANCE) where the host cannot change them.
func (s *Service) checkAnchors(ctx context.Context, rep *VerifyReport, add func(VerifyProblem), storeDown func(error) bool) {
	keys, err := s.ledger.Keys(ctx)
	if err != nil {
		add(VerifyProblem{Kind: "ledger", What: "list host keys: " + err.Error()})
		return
	}
	if len(keys) == 0 {
		// A ledger with no record yet has no host key, and nothing of it
		// can have been anchored: a checkpoint in the store under this
		// host's name means the ledger that anchored it was lost or
		// replaced (a finding), none means there is nothing to check.
		prefix := anchor.Prefix(s.config.HostID) + "checkpoints/"
		n := 0 // counted a page at a time: the listing is not kept
		err := objstore.EachVersionPage(ctx, s.anchorStore, prefix, func(vs []objstore.Version) error {
			n += len(vs)
			return nil
		})
		switch {
		case storeDown(err):
		case err != nil:
			rep.AnchorsUnchecked = fmt.Sprintf("%s in the object store: %v", prefix, err)
		case n > 0:
			add(VerifyProblem{Kind: "checkpoint", Object: prefix, What: fmt.Sprintf("%d anchored object(s) of this host in the store, but the ledger holds no record (so no host key): the ledger that anchored them was lost or replaced", n)})
		}
		return
	}
	var vs []note.Verifier
	for _, k := range keys {
		pub, err := signing.ParsePublicPEM([]byte(k.PublicPEM))
		if err != nil {
			add(VerifyProblem{Kind: "ledger", What: fmt.Sprintf("host key %s: %v", k.KeyID, err)})
			continue
		}
		v, err := signing.NoteVerifier(s.config.HostID, pub)
		if err != nil {
			add(VerifyProblem{Kind: "ledger", What: fmt.Sprintf("host key %s: %v", k.KeyID, err)})
			continue
		}
		vs = append(vs, v)
	}
	ar, err := anchor.CheckWith(ctx, s.ledger, s.anchorStore, s.config.HostID, anchor.CheckOptions{Verifiers: vs})
	// What the check found is reported even when it also returns an error
	// (a read that failed and may pass comes back with the findings made
	// before and after it): a problem found is not hidden behind "not
	// checked".
	rep.Checkpoints = ar.Checkpoints
	for _, n := range ar.Notices {
		rep.Notices = append(rep.Notices, custody.Notice{What: n})
	}
	for _, p := range ar.Problems {
		obj := p.Object
		if p.VersionID != "" {
			obj += "@" + p.VersionID
		}
		add(VerifyProblem{Kind: "checkpoint", Object: obj, What: p.What})
	}
	if storeDown(err) {
		return
	}
	if err != nil {
		// CheckWith's error is a check that could not be made (its
		// findings are Problems): exit 3 must mean something was found
		// wrong, so this leaves the report incomplete, never failed.
		rep.AnchorsUnchecked = fmt.Sprintf("%s in the object store: %v", anchor.Prefix(s.config.HostID), err)
	}
}
