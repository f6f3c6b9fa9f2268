package catalog

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/signing"
)

// Audit re-checks, for every trusted host whose history Sync follows
// without a break, everything anchored under its prefix against itself
// (anchor.CheckWith without a ledger and without re-reading the records:
// every checkpoint's versions and signature with the keys followed, the
// consistency proofs between them, objects evidenced does not write).
//
// Why: Sync reads only what comes after the last checkpoint it followed,
// so an object written later *behind* it (a second version of a
// checkpoint, a checkpoint that does not verify, a forged continuation
// from an earlier size) is not seen there; a rebuilt index would see some
// of it and serve less. A host the audit finds such a problem in is
// withheld: nothing of it is served (Find, Custody, Item, the scrub and
// the orphans leave it out) until a custodian looks, and it is returned
// as a Break (for an alert).
//
// The audit reads only what is new since the last clean one: what that
// one verified (up to the tail it had followed) is remembered in the
// index (bAudited) as a count and digest of the checkpoints/ versions
// listed; those versions are COMPLIANCE-locked, so their bytes cannot
// change under their version ids, and a version added behind the tail or
// gone changes the count or digest, which makes the audit read and check
// everything again. So a day's audit of a host lists its checkpoints/ and
// records/ once each and reads the day's checkpoints, not its years of
// them.
//
// What the remembered versions' bytes are is taken from Object Lock, not
// re-read: a store that corrupted the bytes it holds under a locked
// version (not a new version) is found by AuditAll (a console's verify
// --remote), which reads everything.
//
// A host whose check could not be made (a read that failed for now) is
// still withheld for what the check found, and the hosts after it are
// still audited; the error says which could not be, after them all.
func (c *Catalog) Audit(ctx context.Context) ([]Break, error) { return c.audit(ctx, false) }

// AuditAll is Audit reading every checkpoint, proof and time-stamp of
// every host again, whatever earlier audits verified (and remembering
// what it verified for the next Audit): what a custodian's verify
// --remote at the console asks for.
func (c *Catalog) AuditAll(ctx context.Context) ([]Break, error) { return c.audit(ctx, true) }

func (c *Catalog) audit(ctx context.Context, all bool) ([]Break, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	var out []Break
	var errs error // audits that could not be made
	for _, t := range c.trusted {
		hs, err := c.hostState(t.ID)
		if err != nil {
			return out, err
		}
		if hs.Tail.Size == 0 || hs.Withheld || len(hs.Broken) > 0 {
			continue
		}
		vers, err := keyVerifiers(t.ID, hs.Keys)
		if err != nil {
			return out, fmt.Errorf("catalog audit %s: %w", t.ID, err)
		}
		if len(vers) == 0 {
			continue
		}
		var since *anchor.Audited
		if !all {
			if since, err = c.auditMemory(t.ID, hs); err != nil {
				return out, err
			}
		}
		rep, err := anchor.CheckWith(ctx, nil, c.store, t.ID, anchor.CheckOptions{Verifiers: vers, SkipRecords: true,
			Since: since, Through: hs.Tail.Size})
		if err != nil {
			// A check that could not be made (a read that may pass, a
			// listing) still comes back with what it found: a problem
			// found withholds the host now, not at the next audit; and
			// the hosts after this one are still audited.
			if ctx.Err() != nil {
				return out, errors.Join(errs, fmt.Errorf("catalog audit %s: %w", t.ID, err))
			}
			errs = errors.Join(errs, fmt.Errorf("catalog audit %s: %w", t.ID, err))
		}
		// The checkpoints' audit does not list the records: a version
		// added to a records or signatures object behind the tail is
		// seen here (as fleet clear sees it), against the checkpoints
		// the audit listed (checkpoints/ is listed once a run: at fleet
		// scale each listing of it is many paged calls).
		if rep.Listed == nil {
			errs = errors.Join(errs, fmt.Errorf("catalog audit %s, its records: not checked, its checkpoints could not be listed", t.ID))
		} else if p, err := c.recordObjectsOnce(ctx, t.ID, hs.Tail.Size, rep.Listed); err != nil {
			errs = errors.Join(errs, fmt.Errorf("catalog audit %s, its records: %w", t.ID, err))
		} else if p != nil {
			rep.Problems = append(rep.Problems, *p)
		}
		if rep.OK() {
			if err == nil && rep.Audited != nil {
				if err := c.putAuditMemory(t.ID, AuditMemory{Pinned: hs.Pinned, Audited: *rep.Audited}); err != nil {
					return out, errors.Join(errs, err)
				}
			}
			continue
		}
		c.log.Error("the audit of a dock host's anchored history found a problem; nothing of the host is served",
			"host", t.ID, "problem", rep.Problems[0].String())
		hs.Withheld, hs.Broken = true, rep.Problems
		if err := c.putHost(hs); err != nil {
			return out, errors.Join(errs, err)
		}
		out = append(out, Break{Host: t.ID, Problems: rep.Problems, ByAudit: true})
	}
	return out, errs
}

// keyVerifiers are the checkpoint verifiers of host's followed keys
// (HostState.Keys, base64).
func keyVerifiers(host string, keys []string) ([]note.Verifier, error) {
	var vers []note.Verifier
	for _, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("a followed key: %w", err)
		}
		v, err := signing.NoteVerifier(host, raw)
		if err != nil {
			return nil, err
		}
		vers = append(vers, v)
	}
	return vers, nil
}

// AuditMemory is what the last clean audit of a host verified (see Audit),
// under the pinned key the host was followed from.
type AuditMemory struct {
	Pinned string `json:"pinned_key_id"`
	anchor.Audited
}

// auditMemory is what the last clean audit of host verified, or nil (none,
// another pin, or beyond the tail hs followed).
func (c *Catalog) auditMemory(host string, hs HostState) (*anchor.Audited, error) {
	var m AuditMemory
	found := false
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bAudited).Get([]byte(host))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &m)
	})
	if err != nil {
		return nil, fmt.Errorf("catalog audit %s: read what the last audit verified: %w", host, err)
	}
	if !found || m.Pinned != hs.Pinned || m.Size == 0 || m.Size > hs.Tail.Size {
		return nil, nil
	}
	return &m.Audited, nil
}

func (c *Catalog) putAuditMemory(host string, m AuditMemory) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bAudited).Put([]byte(host), v) }); err != nil {
		return fmt.Errorf("catalog audit %s: remember what was verified: %w", host, err)
	}
	return nil
}

// forgetAudit drops what the audits of host verified: its next audit reads
// everything again.
func forgetAudit(tx *bolt.Tx, host string) error {
	return tx.Bucket(bAudited).Delete([]byte(host))
}
