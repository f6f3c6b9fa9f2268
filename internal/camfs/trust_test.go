package camfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 3: a hard link to the host key in a camera folder was ingested.
// A regular file with more than one name is refused by name, as something
// that may not be camera content, and Open refuses it too (a link made
// after the listing).
func TestHardLinksRefused(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "cam")
	mustMkdir(t, filepath.Join(root, "DCIM"))
	secret := filepath.Join(base, "host.key")
	mustWrite(t, secret, "private key")
	must(t, os.Link(secret, filepath.Join(root, "DCIM", "VID_0002.MP4")))
	mustWrite(t, filepath.Join(root, "DCIM", "VID_0001.MP4"), "video")

	entries, refusals := walkAll(t, root)
	if len(entries) != 1 || entries[0].Rel != "DCIM/VID_0001.MP4" {
		t.Errorf("entries %+v, want only the file with one name", entries)
	}
	if len(refusals) != 1 || refusals[0].Rel != "DCIM/VID_0002.MP4" || !errors.Is(refusals[0].Err, ErrHardLinked) ||
		!strings.Contains(refusals[0].Reason, "2 hard links") {
		t.Errorf("refusals %+v, want the hard link refused by name", refusals)
	}
	if f, err := Open(root, "DCIM/VID_0002.MP4"); !errors.Is(err, ErrHardLinked) {
		if f != nil {
			f.Close()
		}
		t.Errorf("Open of a hard link: %v, want ErrHardLinked", err)
	}
	// Linked between the check by name and the open: the fstat refuses it.
	one := filepath.Join(root, "DCIM", "VID_0001.MP4")
	must(t, os.Link(one, filepath.Join(base, "elsewhere")))
	dirfd, err := openat(-100, filepath.Join(root, "DCIM"), 0)
	must(t, err)
	defer closeFD(dirfd)
	if f, err := openRegular(dirfd, "VID_0001.MP4", "x"); !errors.Is(err, ErrHardLinked) {
		if f != nil {
			f.Close()
		}
		t.Errorf("openRegular of a file linked since: %v, want ErrHardLinked", err)
	}
}

// sources.max_depth: WalkDepth descends at most that many levels and
// refuses the next directory by name.
func TestWalkDepthConfigured(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "a", "b", "c"))
	mustWrite(t, filepath.Join(root, "a", "b", "ok.MP4"), "x")
	mustWrite(t, filepath.Join(root, "a", "b", "c", "deep.MP4"), "y")
	var entries []Entry
	var refusals []Refusal
	err := WalkDepth(context.Background(), root, 2, func(e Entry) error { entries = append(entries, e); return nil },
		func(r Refusal) { refusals = append(refusals, r) })
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Rel != "a/b/ok.MP4" {
		t.Errorf("entries %+v", entries)
	}
	if len(refusals) != 1 || refusals[0].Rel != "a/b/c" || !errors.Is(refusals[0].Err, errTooDeep) || !strings.Contains(refusals[0].Reason, "deeper than 2") {
		t.Errorf("refusals %+v, want a/b/c refused as too deep", refusals)
	}
}
