package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
				sum, err := e.svc.Export(ctx, e.caller(), service.ExportOptions{
					IDs: fs.Args(), Reason: *reason, Out: *out, Footage: *footage, InDaemon: e.inDaemon,
				}, e.stdout)
				if err != nil {
					return err
				}
				// The client checks the package against the keys of this
				// ledger (it trusts this process: the control socket's
				// peer is checked), never against the keys the package
				// carries.
				ids, err := e.svc.HostKeyIDs(ctx)
				if err != nil {
					return err
				}
				e.meta("host_key_ids", strings.Join(ids, ","))
				// The client extracts the package from the tar stream
				// on stdout (exportToDir): the daemon never writes
				// outside its state directory.
				e.meta("records", strconv.Itoa(sum.Records))
				return nil
			}
		},
		client:   exportToDir,
		required: []string{"reason", "out"},
	}
}

// exportToDir is `export` as the user calls it: the package arrives as a
// tar stream, is extracted into a temporary directory beside --out, is
// checked with the standalone verifier, and only then takes the name
// --out. A failed or tampered export leaves nothing behind.
func exportToDir(ctx context.Context, inv *invocation) int {
	fs, stderr, stdout := inv.fs, inv.stderr, inv.stdout
	outFlag := fs.Lookup("out")
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
	if err := outDir("export", out); err != nil {
		return report(stderr, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".evidenced-export-*")
	if err != nil {
		return report(stderr, fmt.Errorf("export: cannot write %s: %w", out, pathCause(err)))
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	pr, pw := io.Pipe()
	extracted := make(chan error, 1)
	go func() {
		err := service.ExtractExport(pr, tmp)
		pr.CloseWithError(err) // unblocks the writer if extraction stopped early
		extracted <- err
	}()
	var keyIDs []string
	meta := func(k, v string) {
		if k == "host_key_ids" && v != "" {
			keyIDs = strings.Split(v, ",")
		}
	}
	code := inv.exec(ctx, pw, meta)
	pw.Close()
	xerr := <-extracted
	if code != exitOK {
		return code
	}
	if xerr != nil {
		return report(stderr, xerr)
	}
	res, err := service.VerifyExport(ctx, tmp, service.ExportTrust{KeyIDs: keyIDs, TSACAFile: inv.cfg.Custody.TSACA})
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
	if res.Facts > 0 {
		fmt.Fprintf(stderr, "%s: %d plate read(s) / GPS fix(es) in facts.jsonl, each re-read from its file (%d sidecar file(s) and crop image(s) included)\n",
			out, res.Facts, res.Carried)
	}
	for _, n := range res.Notices {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	fmt.Fprintf(stdout, "%s\nMANIFEST.sha256 sha256 %s\n", out, res.ManifestSHA256)
	return exitOK
}
