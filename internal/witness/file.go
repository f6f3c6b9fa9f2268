package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// File is a witness in an append-only file of JSON lines, one head each:
// for hosts without journald, and for tests. It must live outside
// state_dir (config validation refuses otherwise); making it append-only
// for the daemon's user (chattr +a, or a directory only root can change)
// is what keeps someone who can rewrite state_dir from rewriting it too.
type File struct {
	Path string
}

// tail is how much of the end of the file Recent reads: thousands of heads,
// far more than the appends that can finish out of order.
const tail = 256 << 10

// Write appends h as one line and syncs it.
func (f File) Write(h Head) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("witness %s: encode head %d: %w", f.Path, h.Size, err)
	}
	fd, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("witness %s: %w", f.Path, err)
	}
	if _, err := fd.Write(append(b, '\n')); err != nil {
		fd.Close()
		return fmt.Errorf("witness %s: write head %d: %w", f.Path, h.Size, err)
	}
	if err := fd.Sync(); err != nil {
		fd.Close()
		return fmt.Errorf("witness %s: sync head %d: %w", f.Path, h.Size, err)
	}
	return fd.Close()
}

// Recent reads the heads in the file's last 256 KiB. A missing file is no
// heads (nothing witnessed yet); a line that does not parse (a torn last
// write) is skipped.
func (f File) Recent(_ context.Context, host string) ([]Head, error) {
	fd, err := os.Open(f.Path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-tail, 0)
	b := make([]byte, st.Size()-off)
	if _, err := fd.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, err
	}
	if off > 0 { // the first line is cut: start after it
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	var out []Head
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		var h Head
		if len(line) == 0 || json.Unmarshal(line, &h) != nil || h.Host != host {
			continue
		}
		out = append(out, h)
	}
	return out, nil
}

func (f File) String() string { return "witness file " + f.Path }
