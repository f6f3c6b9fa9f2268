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

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/control"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
)

func getCommand() *command {
	return &command{
		name: "get", args: "ID", summary: "retrieve a recording, verified against its recorded SHA-256; the access is recorded",
		setup: func(fs *flag.FlagSet) runner {
			reason := fs.String("reason", "", "why it is retrieved (required; recorded in the custody ledger)")
			out := fs.String("out", "", "output file (must not exist), or - for standard output")
			return func(ctx context.Context, e *env) error {
				if fs.NArg() != 1 || *reason == "" || *out == "" {
					return usageErrorf("get needs one item ID, --reason and --out")
				}
				return streamItem(ctx, e, fs.Arg(0), *reason, *out)
			}
		},
	}
}

// streamItem records the access, then streams the item to e.stdout from the
// vault (or the object store when the vault no longer holds it), hashing as
// it goes. A mismatch at the end is an integrity failure (exit 3): the caller
// that writes a file then throws the file away.
func streamItem(ctx context.Context, e *env, id, reason, out string) error {
	it, err := e.svc.Ledger.Item(ctx, id)
	if errors.Is(err, custody.ErrNotFound) {
		return fmt.Errorf("item %q: not in the ledger", id)
	}
	if err != nil {
		return err
	}
	var src io.ReadCloser
	from := "vault"
	if f, err := e.svc.Vault.Open(id); err == nil {
		src = f
	} else if e.svc.Store != nil && it.ObjectKey != "" {
		from = "object store"
		if src, err = e.svc.Store.Open(ctx, it.ObjectKey, it.VersionID); err != nil {
			return fmt.Errorf("open %s in the object store: %w", it.ObjectKey, err)
		}
	} else {
		return fmt.Errorf("item %s: not in the vault (%v) and not in an object store", id, err)
	}
	defer src.Close()
	details := map[string]string{"reason": reason, "action": "retrieve", "from": from, "out": out}
	if e.peer != "" {
		details["peer"] = e.peer
	}
	if _, err := e.svc.Ledger.Append(ctx, custody.Event{
		Type: custody.Accessed, Actor: e.actor, Camera: it.Camera, Item: id, SHA256: it.SHA256, Details: e.withBehalf(details),
	}, nil); err != nil {
		return fmt.Errorf("record access to %s: %w", id, err)
	}
	if err := e.svc.AnchorBeforeRelease(ctx, e.inDaemon); err != nil {
		return fmt.Errorf("the retrieval of %s is recorded but could not be anchored off the host, so nothing is released: %w", id, err)
	}
	e.meta("sha256", it.SHA256)
	e.meta("size", strconv.FormatInt(it.Size, 10))
	h := digest.New()
	n, err := io.CopyBuffer(io.MultiWriter(e.stdout, h), src, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s from the %s: %w", id, from, err)
	}
	if got := digest.FromHash(h).Hex(); got != it.SHA256 || n != it.Size {
		return integrityErrorf("item %s from the %s hashes %s (%d bytes), recorded %s (%d bytes)", id, from, got, n, it.SHA256, it.Size)
	}
	return nil
}

// getToFile is `get` as the user calls it: the bytes are written to a
// temporary file beside --out and hashed again on this side; only when the
// hash equals the ledger's does the file appear under its name, and an
// existing file is never overwritten.
func getToFile(ctx context.Context, cfg *config.Config, c *command, fs *flag.FlagSet, run runner, actor string, stdout, stderr io.Writer) int {
	outFlag := fs.Lookup("out")
	out := outFlag.Value.String()
	if out == "-" || out == "" {
		code, err := viaDaemon(ctx, cfg, c, fs, actor, stdout, stderr, nil)
		if errors.Is(err, control.ErrNoDaemon) {
			return report(stderr, runLocal(ctx, cfg, run, false, actor, stdout, stderr, nil))
		}
		if err != nil {
			return report(stderr, err)
		}
		return code
	}
	out, _ = filepath.Abs(out)
	if _, err := os.Lstat(out); err == nil {
		return report(stderr, usageErrorf("--out %s already exists; evidenced does not overwrite files", out))
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".evidenced-get-*")
	if err != nil {
		return report(stderr, fmt.Errorf("create output beside %s: %w", out, err))
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := digest.New()
	w := io.MultiWriter(tmp, h)
	meta := map[string]string{}
	setMeta := func(k, v string) { meta[k] = v }
	// The streaming side always writes to "standard output": here, the file.
	if err := outFlag.Value.Set(out); err != nil {
		return report(stderr, err)
	}
	code, err := viaDaemon(ctx, cfg, c, fs, actor, w, stderr, setMeta)
	if errors.Is(err, control.ErrNoDaemon) {
		code = report(stderr, runLocal(ctx, cfg, run, false, actor, w, stderr, setMeta))
	} else if err != nil {
		return report(stderr, err)
	}
	if code != exitOK {
		return code
	}
	got := digest.FromHash(h).Hex()
	if got != meta["sha256"] {
		return report(stderr, integrityErrorf("received %s for item %s, the ledger records %q; output discarded", got, fs.Arg(0), meta["sha256"]))
	}
	if err := tmp.Sync(); err != nil {
		return report(stderr, fmt.Errorf("sync %s: %w", tmp.Name(), err))
	}
	if err := tmp.Chmod(0o440); err != nil {
		return report(stderr, err)
	}
	// Link, not rename: it fails if out appeared meanwhile instead of replacing it.
	if err := os.Link(tmp.Name(), out); err != nil {
		return report(stderr, fmt.Errorf("place %s: %w", out, err))
	}
	fmt.Fprintf(stderr, "%s: sha256 %s verified\n", out, got)
	return exitOK
}
