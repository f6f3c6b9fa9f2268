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

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/service"
)

func getCommand() *command {
	return &command{
		name: "get", args: "ID", summary: "retrieve a recording, verified against its recorded SHA-256; the access is recorded",
		setup: func(fs *flag.FlagSet) runner {
			reason := fs.String("reason", "", "why it is retrieved (required; recorded in the custody ledger)")
			out := fs.String("out", "", "output file (must not exist), or - for standard output")
			return func(ctx context.Context, e *env) error {
				return e.svc.Get(ctx, e.caller(), service.GetOptions{ID: fs.Arg(0), Reason: *reason, Out: *out, InDaemon: e.inDaemon}, e.stdout, func(it custody.Item) {
					// The client checks what it received against these.
					e.meta("sha256", it.SHA256)
					e.meta("size", strconv.FormatInt(it.Size, 10))
				})
			}
		},
		client:   getToFile,
		required: []string{"reason", "out"},
	}
}

// getToFile is `get` as the user calls it: the bytes are written to a
// temporary file beside --out and hashed again on this side; only when the
// hash equals the ledger's does the file appear under its name, and an
// existing file is never overwritten.
func getToFile(ctx context.Context, inv *invocation) int {
	fs, stderr := inv.fs, inv.stderr
	outFlag := fs.Lookup("out")
	out := outFlag.Value.String()
	if out == "-" || out == "" {
		return inv.exec(ctx, inv.stdout, nil)
	}
	out, _ = filepath.Abs(out)
	if _, err := os.Lstat(out); err == nil {
		return report(stderr, usageErrorf("--out %s already exists; evidenced does not overwrite files", out))
	}
	if err := outDir("get", out); err != nil {
		return report(stderr, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".evidenced-get-*")
	if err != nil {
		return report(stderr, fmt.Errorf("get: cannot write %s: %w", out, pathCause(err)))
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
	if code := inv.exec(ctx, w, setMeta); code != exitOK {
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

// outDir checks that the directory --out goes into exists, so the user
// hears about that directory, not about a temporary file in it.
func outDir(cmd, out string) error {
	dir := filepath.Dir(out)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return usageErrorf("%s: --out %s: directory %s does not exist", cmd, out, dir)
	case err != nil:
		return fmt.Errorf("%s: --out %s: %w", cmd, out, pathCause(err))
	case !st.IsDir():
		return usageErrorf("%s: --out %s: %s is not a directory", cmd, out, dir)
	}
	return nil
}

// pathCause is the reason of a file-system error without the path it
// names (a temporary file's name means nothing to the user).
func pathCause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
