package export

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Sink receives the package's files as Build writes them.
//
// Put writes the file name (a slash-separated relative path, parents
// implied) with exactly size bytes read from r; it never replaces a file
// already written. After an error the sink's output is incomplete and must
// be discarded.
type Sink interface {
	Put(name string, size int64, r io.Reader) error
}

// TarSink streams the package as a tar archive: the form the daemon sends a
// CLI client, which extracts it with Extract into the directory it owns (so
// the daemon never writes outside its state directory).
type TarSink struct {
	tw    *tar.Writer
	mtime time.Time
}

var _ Sink = (*TarSink)(nil)

// NewTarSink writes to w; entries carry mtime. Close ends the archive.
func NewTarSink(w io.Writer, mtime time.Time) *TarSink {
	return &TarSink{tw: tar.NewWriter(w), mtime: mtime}
}

// Put implements Sink.
func (s *TarSink) Put(name string, size int64, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: packageFileMode, ModTime: s.mtime, Format: tar.FormatPAX}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	n, err := io.Copy(s.tw, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("export %s: %w: %d bytes, want %d", name, ErrIntegrity, n, size)
	}
	return nil
}

// Close writes the end of the archive.
func (s *TarSink) Close() error { return s.tw.Close() }

// DirSink writes the package's files under a directory.
type DirSink struct{ root string }

var _ Sink = DirSink{}

// NewDirSink writes under root, which must exist.
func NewDirSink(root string) DirSink { return DirSink{root: root} }

// Put implements Sink.
func (s DirSink) Put(name string, size int64, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	return writeFile(filepath.Join(s.root, filepath.FromSlash(name)), size, r)
}

// packageFileMode is every package file's mode, the same rule as `get`'s
// output: read-only, and not readable by others whatever the umask (a
// package holds footage and personal data).
const packageFileMode = 0o440

func writeFile(p string, size int64, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, packageFileMode)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%w: %d bytes, want %d", ErrIntegrity, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", p, err)
	}
	return nil
}

// checkName accepts only the clean relative paths Build writes.
func checkName(name string) error {
	if name == "" || !fs.ValidPath(name) || path.Clean(name) != name || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("export: %w: file name %q", ErrLayout, name)
	}
	return nil
}

// Extract reads a tar stream from TarSink into dir (which must exist and
// be empty): regular files only, clean relative names, no name twice. It
// trusts nothing about the stream: what it writes is then checked by Verify.
func Extract(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract export package: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("extract export package: %w: %s is not a regular file", ErrLayout, hdr.Name)
		}
		if err := checkName(hdr.Name); err != nil {
			return fmt.Errorf("extract export package: %w", err)
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(hdr.Name)), hdr.Size, tr); err != nil {
			return err
		}
	}
}
