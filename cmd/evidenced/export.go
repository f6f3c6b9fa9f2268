package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/control"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/service"
)

func exportCommand() *command {
	return &command{
		name: "export", args: "ID...",
		summary: "write a court export package (custody, signatures, proofs, keys, report, optionally footage) to a new directory; the access is recorded",
		setup: func(fs *flag.FlagSet) runner {
			reason := fs.String("reason", "", "why the items are exported (required; recorded in the custody ledger)")
			out := fs.String("out", "", "directory to create (must not exist, or be empty)")
			footage := fs.Bool("footage", false, "include the recordings, verified against their SHA-256")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() == 0 || *reason == "" || *out == "" {
					return usageErrorf("export needs item IDs, --reason and --out")
				}
				return exportPackage(ctx, e, fs.Args(), *reason, *out, *footage)
			}
		},
	}
}

// exportPackage is the side that holds the ledger (the daemon, or this
// process when none runs): it records one ACCESSED event per item, then
// streams the package as a tar archive to e.stdout, which the client
// extracts (exportToDir). The daemon so never writes outside its state
// directory, and the package's files belong to whoever asked for it.
func exportPackage(ctx context.Context, e *env, ids []string, reason, out string, footage bool) error {
	var uniq []string
	for _, id := range ids {
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	ids = uniq
	items := make([]custody.Item, 0, len(ids))
	for _, id := range ids {
		it, err := e.svc.Ledger.Item(ctx, id)
		if errors.Is(err, custody.ErrNotFound) {
			return fmt.Errorf("item %q: not in the ledger", id)
		}
		if err != nil {
			return err
		}
		items = append(items, it)
	}
	// Every item's export is custody, recorded before anything leaves, so
	// the package carries the record of its own making.
	for i := range items {
		if err := recordAccess(ctx, e, "export", reason, &items[i], map[string]string{
			"out": out, "footage": strconv.FormatBool(footage), "items": strconv.Itoa(len(items)),
		}); err != nil {
			return err
		}
	}
	if err := e.svc.AnchorBeforeRelease(ctx, e.inDaemon); err != nil {
		return fmt.Errorf("the export is recorded but could not be anchored off the host, so nothing is released: %w", err)
	}
	opts := export.Options{
		IDs: ids, Footage: footage, ExportedBy: e.actor, Reason: reason, Tool: "evidenced " + service.Version,
	}
	// The checkpoints anchored off the host go into the package, with the
	// TSA's CA the host trusts to check their time-stamps.
	if e.svc.AnchorStore != nil {
		opts.Anchors = anchoredFrom{store: e.svc.AnchorStore, host: e.svc.Config.HostID}
		if p := e.svc.Config.Custody.TSACA; p != "" {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("custody.tsa_ca: %w", err)
			}
			opts.TSACA = b
		}
	}
	// The client checks the package against the keys of this ledger (it
	// trusts this process: the control socket's peer is checked), never
	// against the keys the package carries.
	keys, err := e.svc.Ledger.Keys(ctx)
	if err != nil {
		return err
	}
	keyIDs := make([]string, len(keys))
	for i, k := range keys {
		keyIDs[i] = k.KeyID
	}
	e.meta("host_key_ids", strings.Join(keyIDs, ","))
	ts := export.NewTarSink(e.stdout, time.Now())
	sum, err := export.Build(ctx, e.svc.Ledger, footageFrom{e.svc}, ts, opts)
	if errors.Is(err, export.ErrIntegrity) {
		return integrityErrorf("%w", err)
	}
	if err != nil {
		return err
	}
	if err := ts.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	e.meta("records", strconv.Itoa(sum.Records))
	return nil
}

// anchoredFrom reads the checkpoints anchored in the object store.
type anchoredFrom struct {
	store anchor.Store
	host  string
}

var _ export.Anchors = anchoredFrom{}

func (a anchoredFrom) Latest(ctx context.Context, maxSize uint64) (export.Anchored, bool, error) {
	got, found, err := anchor.Latest(ctx, a.store, a.host, maxSize)
	if err != nil || !found {
		return export.Anchored{}, found, err
	}
	return export.Anchored{Object: got.Object, Size: got.Size, Note: got.Note, Timestamp: got.Timestamp}, true, nil
}

// footageFrom reads footage from the vault, or from the object store when
// the vault no longer holds it.
type footageFrom struct{ svc *service.Service }

var _ export.Footage = footageFrom{}

func (f footageFrom) Open(ctx context.Context, it custody.Item) (io.ReadCloser, string, error) {
	v, verr := f.svc.Vault.Open(it.ID)
	if verr == nil {
		return v, "vault", nil
	}
	if f.svc.Store == nil || it.ObjectKey == "" {
		return nil, "", fmt.Errorf("item %s: not in the vault (%v) and not in an object store", it.ID, verr)
	}
	rc, err := f.svc.Store.Open(ctx, it.ObjectKey, it.VersionID)
	if err != nil {
		return nil, "", fmt.Errorf("open %s (version %s) in the object store: %w", it.ObjectKey, it.VersionID, err)
	}
	return rc, "object store", nil
}

// exportToDir is `export` as the user calls it: the package arrives as a
// tar stream, is extracted into a temporary directory beside --out, is
// checked with the standalone verifier, and only then takes the name
// --out. A failed or tampered export leaves nothing behind.
func exportToDir(ctx context.Context, cfg *config.Config, c *command, fs *flag.FlagSet, run runner, actor string, stdout, stderr io.Writer) int {
	outFlag := fs.Lookup("out")
	if fs.NArg() == 0 || outFlag.Value.String() == "" || fs.Lookup("reason").Value.String() == "" {
		return report(stderr, usageErrorf("export needs item IDs, --reason and --out"))
	}
	out, err := filepath.Abs(outFlag.Value.String())
	if err != nil {
		return report(stderr, usageErrorf("--out: %v", err))
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return report(stderr, usageErrorf("--out %s exists and is not empty; export writes a new directory", out))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return report(stderr, usageErrorf("--out %s: %v", out, err))
	}
	if err := outFlag.Value.Set(out); err != nil {
		return report(stderr, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".evidenced-export-*")
	if err != nil {
		return report(stderr, fmt.Errorf("create the package beside %s: %w", out, err))
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	pr, pw := io.Pipe()
	extracted := make(chan error, 1)
	go func() {
		err := export.Extract(pr, tmp)
		pr.CloseWithError(err) // unblocks the writer if extraction stopped early
		extracted <- err
	}()
	var keyIDs []string
	meta := func(k, v string) {
		if k == "host_key_ids" && v != "" {
			keyIDs = strings.Split(v, ",")
		}
	}
	code, err := viaDaemon(ctx, cfg, c, fs, actor, pw, stderr, meta)
	if errors.Is(err, control.ErrNoDaemon) {
		code = report(stderr, runLocal(ctx, cfg, run, false, actor, pw, stderr, meta))
	} else if err != nil {
		pw.CloseWithError(err)
		<-extracted
		return report(stderr, err)
	}
	pw.Close()
	xerr := <-extracted
	if code != exitOK {
		return code
	}
	if xerr != nil {
		return report(stderr, xerr)
	}
	trust := export.Trust{KeyIDs: keyIDs}
	if p := cfg.Custody.TSACA; p != "" {
		if b, err := os.ReadFile(p); err == nil {
			trust.TSACA = b
		}
	}
	res, err := export.Verify(ctx, tmp, trust)
	if err != nil {
		return report(stderr, err)
	}
	if !res.OK() {
		for _, p := range res.Problems {
			fmt.Fprintf(stderr, "FAILED %s\n", p)
		}
		return report(stderr, integrityErrorf("the exported package does not verify (%d problem(s)); nothing written to %s", len(res.Problems), out))
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return report(stderr, err)
	}
	// An existing --out is empty (checked above): rmdir refuses it otherwise,
	// and os.Rename never replaces a directory, so nothing is overwritten.
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return report(stderr, fmt.Errorf("place the package at %s: %w", out, err))
	}
	if err := os.Rename(tmp, out); err != nil {
		return report(stderr, fmt.Errorf("place the package at %s: %w", out, err))
	}
	fmt.Fprintf(stderr, "%s: %d item(s), %d record(s), %d signature(s), %d inclusion proof(s), %d footage file(s); verified\n",
		out, res.Items, res.Records, res.Signatures, res.Proofs, res.Footage)
	for _, n := range res.Notices {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	fmt.Fprintf(stdout, "%s\nMANIFEST.sha256 sha256 %s\n", out, res.ManifestSHA256)
	return exitOK
}
