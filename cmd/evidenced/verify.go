package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/upload"
)

// verifyProblem is one thing that does not check out.
type verifyProblem struct {
	Kind   string `json:"kind"` // "record", "item", "object", "ledger"
	Seq    uint64 `json:"seq,omitempty"`
	Item   string `json:"item,omitempty"`
	Object string `json:"object,omitempty"`
	What   string `json:"what"`
}

type verifyReport struct {
	OK      bool `json:"ok"`
	Events  int  `json:"events"`
	Items   int  `json:"items"`
	Vault   int  `json:"vault_files_checked"`
	Objects int  `json:"objects_checked"`
	Signed  int  `json:"signed_records"`
	// Checkpoints is how many checkpoints anchored in the object store
	// were checked against this ledger (with --remote).
	Checkpoints int              `json:"checkpoints_checked"`
	Problems    []verifyProblem  `json:"problems"`
	Notices     []custody.Notice `json:"notices"`
}

func verifyCommand() *command {
	return &command{
		name: "verify", summary: "re-walk the custody chain and re-hash every vault file (and with --remote every object)",
		setup: func(fs *flag.FlagSet) runner {
			remote := fs.Bool("remote", false, "also check every object in the store: exists, size, SHA-256, retention")
			asJSON := fs.Bool("json", false, "print the report as JSON")
			reason := fs.String("reason", "", "why the check is run (recorded in the custody ledger)")
			return func(ctx context.Context, e *env) error {
				rep := runVerify(ctx, e, *remote)
				// The check and its outcome are custody too. A ledger too damaged
				// to take the record still gets its report and exit 3.
				outcome := "ok"
				if !rep.OK {
					outcome = strconv.Itoa(len(rep.Problems)) + " problem(s)"
				}
				if err := recordAccess(ctx, e, "verify", *reason, nil, map[string]string{
					"remote": strconv.FormatBool(*remote), "outcome": outcome,
					"events": strconv.Itoa(rep.Events), "items": strconv.Itoa(rep.Items),
				}); err != nil {
					if rep.OK {
						return err
					}
					fmt.Fprintf(e.stderr, "evidenced: %v\n", err)
				}
				if *asJSON {
					enc := json.NewEncoder(e.stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(rep); err != nil {
						return err
					}
				} else {
					for _, p := range rep.Problems {
						switch p.Kind {
						case "record":
							fmt.Fprintf(e.stdout, "FAIL record %d: %s\n", p.Seq, p.What)
						case "item":
							fmt.Fprintf(e.stdout, "FAIL item %s: %s\n", p.Item, p.What)
						case "checkpoint":
							fmt.Fprintf(e.stdout, "FAIL checkpoint %s: %s\n", p.Object, p.What)
						case "object":
							fmt.Fprintf(e.stdout, "FAIL object %s (item %s): %s\n", p.Object, p.Item, p.What)
						default:
							fmt.Fprintf(e.stdout, "FAIL %s: %s\n", p.Kind, p.What)
						}
					}
					status := "OK"
					if !rep.OK {
						status = "INTEGRITY FAILURE"
					}
					for _, n := range rep.Notices {
						fmt.Fprintf(e.stdout, "note: %s\n", n.What)
					}
					fmt.Fprintf(e.stdout, "%s: %d events (%d signed), %d items, %d vault files, %d objects, %d anchored checkpoints checked, %d problem(s)\n",
						status, rep.Events, rep.Signed, rep.Items, rep.Vault, rep.Objects, rep.Checkpoints, len(rep.Problems))
				}
				if !rep.OK {
					return &exitError{code: exitIntegrity, err: errReported}
				}
				return nil
			}
		},
	}
}

func runVerify(ctx context.Context, e *env, remote bool) verifyReport {
	rep := verifyReport{Problems: []verifyProblem{}, Notices: []custody.Notice{}}
	add := func(p verifyProblem) { rep.Problems = append(rep.Problems, p) }
	if err := e.svc.Ledger.Check(); err != nil {
		add(verifyProblem{Kind: "ledger", What: "database consistency check: " + err.Error()})
	}
	stats, err := e.svc.Ledger.VerifyNotices(ctx, func(p custody.Problem) {
		switch {
		case p.Seq != 0:
			add(verifyProblem{Kind: "record", Seq: p.Seq, Item: p.Item, What: p.What})
		case p.Item == "":
			add(verifyProblem{Kind: "ledger", What: p.What})
		default:
			add(verifyProblem{Kind: "item", Item: p.Item, What: p.What})
		}
	}, func(n custody.Notice) {
		rep.Notices = append(rep.Notices, n)
	})
	if err != nil {
		add(verifyProblem{Kind: "ledger", What: "chain walk stopped: " + err.Error()})
	}
	rep.Events = int(stats.Events)
	rep.Signed = int(stats.Signed)
	if remote && e.svc.AnchorStore != nil {
		checkAnchors(ctx, e, &rep, add)
	}
	var items []custody.Item
	if err := e.svc.Ledger.Items(ctx, custody.Filter{}, func(it custody.Item) error {
		items = append(items, it)
		return nil
	}); err != nil {
		add(verifyProblem{Kind: "ledger", What: "list items: " + err.Error()})
	}
	rep.Items = len(items)
	for _, it := range items {
		if ctx.Err() != nil {
			add(verifyProblem{Kind: "ledger", What: "verification interrupted: " + ctx.Err().Error()})
			break
		}
		sum, n, err := e.svc.Vault.ReadBack(ctx, it.ID)
		switch {
		case it.VaultPath == "" && it.State == custody.StateVerified:
			// Released after vault.grace (VAULT_RELEASED): the object
			// store holds it; --remote checks that.
		case errors.Is(err, os.ErrNotExist):
			add(verifyProblem{Kind: "item", Item: it.ID, What: "vault copy is missing: " + e.svc.Vault.Path(it.ID)})
		case err != nil:
			add(verifyProblem{Kind: "item", Item: it.ID, What: "vault copy unreadable: " + err.Error()})
		case sum.Hex() != it.SHA256 || n != it.Size:
			add(verifyProblem{Kind: "item", Item: it.ID, What: fmt.Sprintf("vault copy %s hashes %s (%d bytes), recorded %s (%d bytes)",
				e.svc.Vault.Path(it.ID), sum.Hex(), n, it.SHA256, it.Size)})
		default:
			rep.Vault++
		}
		if !remote || it.State == custody.StateVaulted {
			continue
		}
		if e.svc.Store == nil {
			add(verifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey, What: "no object_store configured to check it against"})
			continue
		}
		_, _, err = upload.VerifyObject(ctx, e.svc.Store, e.svc.Vault, it, e.svc.Config)
		if errors.Is(err, objstore.ErrNotFound) {
			add(verifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey + "@" + it.VersionID,
				What: "the recorded version " + it.VersionID + " is gone from the store (deleted; with a governance retention bypass if it was still locked): " + err.Error()})
		} else if err != nil {
			add(verifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey + "@" + it.VersionID, What: err.Error()})
		}
		// The current version must be the recorded one: whoever fetches the
		// key without a version id gets the current version, so another one
		// on top (a PUT after ours, or after deleting ours) is a problem even
		// while the recorded version is intact.
		if cur := currentVersionProblem(ctx, e, it); cur != "" {
			add(verifyProblem{Kind: "object", Item: it.ID, Object: it.ObjectKey, What: cur})
			continue
		}
		if err != nil {
			continue
		}
		rep.Objects++
	}
	// Footage the ledger does not account for is a finding too (a ledger
	// replaced or lost beside a full vault).
	known := make(map[string]bool, len(items))
	for _, it := range items {
		known[it.ID] = true
	}
	stray, err := e.svc.Vault.Unclaimed(ctx, func(id string) bool { return known[id] })
	if err != nil {
		add(verifyProblem{Kind: "vault", What: err.Error()})
	}
	for _, p := range stray {
		add(verifyProblem{Kind: "vault", What: "file no item in the ledger claims: " + p})
	}
	if remote {
		pending := 0
		for _, it := range items {
			if it.State == custody.StateVaulted {
				pending++
			}
		}
		if pending > 0 {
			fmt.Fprintf(e.stderr, "note: %s item(s) are vaulted but not yet uploaded\n", strconv.Itoa(pending))
		}
	}
	rep.OK = len(rep.Problems) == 0
	return rep
}

// currentVersionProblem says what is wrong with the current (latest)
// version of it's object key, or "" when it is the recorded version.
func currentVersionProblem(ctx context.Context, e *env, it custody.Item) string {
	cur, err := e.svc.Store.Stat(ctx, it.ObjectKey, "")
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fmt.Sprintf("the key has no current version (deleted, or hidden by a delete marker): fetching it without the recorded version id %s finds nothing", it.VersionID)
	case err != nil:
		return "cannot stat the current version: " + err.Error()
	case cur.VersionID != it.VersionID:
		sha := cur.SHA256
		if sha == "" {
			sha = "none"
		}
		return fmt.Sprintf("version %s (%d bytes, sha256 metadata %s) is the current version, not the recorded version %s (%d bytes, sha256 %s): anyone fetching the key gets those bytes, not the evidence",
			cur.VersionID, cur.Size, sha, it.VersionID, it.Size, it.SHA256)
	}
	return ""
}

// checkAnchors replays every checkpoint this host anchored in the object
// store against the local ledger: a ledger rewritten, truncated, forked or
// restored from an older copy fails here even if every local hash and
// signature was recomputed, because the anchored checkpoints are locked
// (COMPLIANCE) where the host cannot change them.
func checkAnchors(ctx context.Context, e *env, rep *verifyReport, add func(verifyProblem)) {
	keys, err := e.svc.Ledger.Keys(ctx)
	if err != nil {
		add(verifyProblem{Kind: "ledger", What: "list host keys: " + err.Error()})
		return
	}
	var vs []note.Verifier
	for _, k := range keys {
		pub, err := signing.ParsePublicPEM([]byte(k.PublicPEM))
		if err != nil {
			add(verifyProblem{Kind: "ledger", What: fmt.Sprintf("host key %s: %v", k.KeyID, err)})
			continue
		}
		v, err := signing.NoteVerifier(e.svc.Config.HostID, pub)
		if err != nil {
			add(verifyProblem{Kind: "ledger", What: fmt.Sprintf("host key %s: %v", k.KeyID, err)})
			continue
		}
		vs = append(vs, v)
	}
	ar, err := anchor.CheckWith(ctx, e.svc.Ledger, e.svc.AnchorStore, e.svc.Config.HostID, anchor.CheckOptions{Verifiers: vs})
	if err != nil {
		add(verifyProblem{Kind: "checkpoint", Object: anchor.Prefix(e.svc.Config.HostID), What: "could not check the anchored checkpoints: " + err.Error()})
		return
	}
	rep.Checkpoints = ar.Checkpoints
	for _, n := range ar.Notices {
		rep.Notices = append(rep.Notices, custody.Notice{What: n})
	}
	for _, p := range ar.Problems {
		obj := p.Object
		if p.VersionID != "" {
			obj += "@" + p.VersionID
		}
		add(verifyProblem{Kind: "checkpoint", Object: obj, What: p.What})
	}
}
