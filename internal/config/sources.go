package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrSourceNotAllowed: an `ingest --from` path is outside every configured
// source, or inside a place the daemon keeps for itself.
var ErrSourceNotAllowed = errors.New("not a configured source")

// manual checks sources.manual: absolute, and clear of state_dir and the
// config's own directory, the places ResolveIngestSource never reads.
func (v *validator) manual(c *Config) {
	for i, m := range c.Sources.Manual {
		key := fmt.Sprintf("sources.manual[%d]", i)
		if !v.absPath(key, m) {
			continue
		}
		for _, p := range c.private() {
			if p.overlaps(m) {
				v.add(key, "%s overlaps %s %s: ingest --from must never read it", m, p.what, p.dir)
			}
		}
	}
}

// privateDir is a directory ingest never reads: nothing at or above it
// (a walk would include it), and nothing below it when below is set.
type privateDir struct {
	what, dir string
	below     bool
}

func (p privateDir) overlaps(path string) bool {
	return within(p.dir, path) || (p.below && within(path, p.dir))
}

// private are the directories the daemon never ingests from: its state
// (ledger, vault, host key) and the host key's directory, with all below
// them, and the config's directory itself (the files beside the config,
// such as credentials; a source configured in a subdirectory of it is
// still a source).
func (c *Config) private() []privateDir {
	var out []privateDir
	if c.StateDir != "" {
		out = append(out, privateDir{"state_dir", c.StateDir, true})
	}
	if c.Custody.KeyFile != "" {
		out = append(out, privateDir{"the host key's directory", filepath.Dir(c.Custody.KeyFile), true})
	}
	if c.Path != "" && filepath.IsAbs(c.Path) {
		out = append(out, privateDir{"the config's directory", filepath.Dir(c.Path), false})
	}
	return out
}

// ResolveIngestSource returns the real path (symbolic links resolved) of
// an `ingest --from` directory the daemon may read: at or below a watched
// directory, the USB mount directory or a sources.manual directory, and
// not at, below or above state_dir, the host key's directory or the
// config's directory. The daemon reads with its own rights, which include
// the host key; without this a client could have it vault and upload any
// file the daemon can read. The caller ingests the returned path.
func (c *Config) ResolveIngestSource(from string) (string, error) {
	real, err := filepath.EvalSymlinks(from)
	if err != nil {
		return "", fmt.Errorf("ingest source %s: %w", from, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", fmt.Errorf("ingest source %s: %w", from, err)
	}
	for _, p := range c.private() {
		p.dir = resolved(p.dir)
		if p.overlaps(real) {
			return "", fmt.Errorf("ingest source %s: %w: it overlaps %s %s", from, ErrSourceNotAllowed, p.what, p.dir)
		}
	}
	var roots []string
	roots = append(roots, c.Sources.Watch...)
	if c.Sources.USB.MountDir != "" {
		roots = append(roots, c.Sources.USB.MountDir)
	}
	roots = append(roots, c.Sources.Manual...)
	for _, r := range roots {
		if within(real, resolved(r)) {
			return real, nil
		}
	}
	return "", fmt.Errorf("ingest source %s: %w: the daemon reads only under sources.watch, sources.usb.mount_dir and sources.manual (%s)",
		from, ErrSourceNotAllowed, strings.Join(roots, ", "))
}

// resolved is dir with symbolic links resolved, or dir itself when it does
// not exist (nothing below it can exist either).
func resolved(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return dir
}
