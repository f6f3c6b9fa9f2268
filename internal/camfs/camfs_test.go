package camfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hostileTree builds a camera-like tree with names and entry types a real
// card could hold, plus a directory outside root that links point to. It
// returns root, the regular files (rel → content) and the refusals expected
// (rel → reason).
func hostileTree(t *testing.T) (root string, files map[string]string, refused map[string]string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "cam")
	outside := filepath.Join(base, "outside")
	mustMkdir(t, root, outside, filepath.Join(root, "DCIM", "100MEDIA"), filepath.Join(root, "DCIM", "EMPTY"))
	mustWrite(t, filepath.Join(outside, "secret.txt"), "host file, never to be read")

	files = map[string]string{
		"with space.MP4":                  "spaces",
		"ünïcødé.mp4":                     "unicode",
		"bad\xff\xfename.bin":             "invalid utf-8",
		strings.Repeat("a", 251) + ".MP4": "255-byte name",
		"-leading-dash":                   "dash",
		"new\nline":                       "newline",
		".hidden":                         "hidden",
		`back\slash`:                      "backslash",
		"DCIM/100MEDIA/VID_0001.MP4":      strings.Repeat("video", 1000),
		"DCIM/100MEDIA/VID_0001.NMEA":     "$GPGGA",
	}
	for rel, content := range files {
		mustWrite(t, filepath.Join(root, rel), content)
	}
	refused = map[string]string{
		"link-out-file":      "symbolic link (not followed)",
		"link-out-dir":       "symbolic link (not followed)",
		"DCIM/link-in":       "symbolic link (not followed)",
		"DCIM/100MEDIA/fifo": "FIFO",
		"sock":               "socket",
	}
	must(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "link-out-file")))
	must(t, os.Symlink(outside, filepath.Join(root, "link-out-dir")))
	must(t, os.Symlink("100MEDIA/VID_0001.MP4", filepath.Join(root, "DCIM", "link-in")))
	must(t, syscall.Mkfifo(filepath.Join(root, "DCIM", "100MEDIA", "fifo"), 0o644))
	bindSocket(t, filepath.Join(root, "sock"))
	// A device node needs CAP_MKNOD; where we have it, /dev/null's numbers
	// make one whose open would at least be harmless.
	if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err == nil {
		refused["null"] = "device"
	} else {
		t.Logf("no device node in the tree (mknod: %v)", err)
	}
	return root, files, refused
}

func bindSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	defer unix.Close(fd)
	// Binding creates the socket file; it stays after the descriptor closes.
	must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: path}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		must(t, os.MkdirAll(d, 0o755))
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(content), 0o644))
}

// walkAll runs Walk and collects what it gave.
func walkAll(t *testing.T, root string) ([]Entry, []Refusal) {
	t.Helper()
	var entries []Entry
	var refusals []Refusal
	err := Walk(context.Background(), root, func(e Entry) error {
		entries = append(entries, e)
		return nil
	}, func(r Refusal) { refusals = append(refusals, r) })
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return entries, refusals
}

// dfsOrder is the order Walk promises: depth first, names sorted bytewise
// within each directory, which is component-wise lexical order of the paths.
func dfsOrder(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}

func TestWalkHostileTree(t *testing.T) {
	root, files, refused := hostileTree(t)
	entries, refusals := walkAll(t, root)

	var want []string
	for rel := range files {
		want = append(want, rel)
	}
	slices.SortFunc(want, dfsOrder)
	var got []string
	for _, e := range entries {
		got = append(got, e.Rel)
		content, ok := files[e.Rel]
		if !ok {
			continue
		}
		if e.Size != int64(len(content)) {
			t.Errorf("%q: size %d, want %d", e.Rel, e.Size, len(content))
		}
		fi, err := os.Lstat(filepath.Join(root, e.Rel))
		must(t, err)
		if !e.ModTime.Equal(fi.ModTime()) {
			t.Errorf("%q: mtime %v, want %v", e.Rel, e.ModTime, fi.ModTime())
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Walk visited\n%q\nwant (in this order)\n%q", got, want)
	}

	gotRefused := map[string]string{}
	for _, r := range refusals {
		if _, dup := gotRefused[r.Rel]; dup {
			t.Errorf("%q refused twice", r.Rel)
		}
		gotRefused[r.Rel] = r.Reason
		if r.Err != nil {
			t.Errorf("%q refused for its type (%s) but with an error %v", r.Rel, r.Reason, r.Err)
		}
	}
	for rel, reason := range refused {
		if gotRefused[rel] != reason {
			t.Errorf("%q: refused with %q, want %q", rel, gotRefused[rel], reason)
		}
	}
	if len(gotRefused) != len(refused) {
		t.Errorf("refusals %q, want exactly %q", gotRefused, refused)
	}
}

func TestWalkDepthLimit(t *testing.T) {
	root := t.TempDir()
	deep := root
	for range MaxDepth + 2 {
		deep = filepath.Join(deep, "d")
	}
	mustMkdir(t, deep)
	mustWrite(t, filepath.Join(deep, "too-deep.MP4"), "x")
	// The deepest file Walk may still take.
	ok := filepath.Join(root, strings.Repeat("d/", MaxDepth), "deepest.MP4")
	mustWrite(t, ok, "y")

	entries, refusals := walkAll(t, root)
	if len(entries) != 1 || entries[0].Rel != strings.Repeat("d/", MaxDepth)+"deepest.MP4" {
		t.Errorf("entries %+v, want only the file %d levels down", entries, MaxDepth)
	}
	wantRel := strings.TrimSuffix(strings.Repeat("d/", MaxDepth+1), "/")
	if len(refusals) != 1 || refusals[0].Rel != wantRel || !errors.Is(refusals[0].Err, errTooDeep) ||
		!strings.Contains(refusals[0].Reason, "nested deeper") {
		t.Errorf("refusals %+v, want one for %q (too deep)", refusals, wantRel)
	}
}

// A bind mount of a directory below itself is what a corrupt FAT looks like
// to the kernel: a directory that contains its own ancestor.
func TestWalkDirectoryLoop(t *testing.T) {
	root := t.TempDir()
	dcim := filepath.Join(root, "DCIM")
	loop := filepath.Join(dcim, "loop")
	mustMkdir(t, loop)
	mustWrite(t, filepath.Join(dcim, "A.MP4"), "a")
	if err := unix.Mount(dcim, loop, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount to build a directory loop (needs root with CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(loop, unix.MNT_DETACH) })

	entries, refusals := walkAll(t, root)
	if len(entries) != 1 || entries[0].Rel != "DCIM/A.MP4" {
		t.Errorf("entries %+v, want just DCIM/A.MP4", entries)
	}
	if len(refusals) != 1 || refusals[0].Rel != "DCIM/loop" || !errors.Is(refusals[0].Err, errLoop) {
		t.Errorf("refusals %+v, want DCIM/loop refused as a loop", refusals)
	}
}

func TestWalkUnreadableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permission bits do not stop root, so no directory is unreadable")
	}
	root := t.TempDir()
	locked := filepath.Join(root, "LOCKED")
	mustMkdir(t, locked)
	mustWrite(t, filepath.Join(locked, "A.MP4"), "a")
	mustWrite(t, filepath.Join(root, "B.MP4"), "b")
	must(t, os.Chmod(locked, 0))
	t.Cleanup(func() { _ = os.Chmod(locked, 0o755) })

	entries, refusals := walkAll(t, root)
	if len(entries) != 1 || entries[0].Rel != "B.MP4" {
		t.Errorf("entries %+v, want just B.MP4", entries)
	}
	if len(refusals) != 1 || refusals[0].Reason != "unreadable directory: permission denied" || !errors.Is(refusals[0].Err, os.ErrPermission) {
		t.Errorf("refusals %+v, want LOCKED as unreadable", refusals)
	}
}

func TestWalkStops(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"A", "B", "C"} {
		mustWrite(t, filepath.Join(root, n), n)
	}
	stop := errors.New("stop here")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		visit func(Entry) error
		want  error
	}{
		{"visit error", context.Background(), func(Entry) error { return stop }, stop},
		{"cancelled", ctx, func(Entry) error { cancel(); return nil }, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := Walk(tt.ctx, root, func(e Entry) error { n++; return tt.visit(e) }, nil)
			if !errors.Is(err, tt.want) || n != 1 {
				t.Errorf("Walk = %v after %d visits, want %v after 1", err, n, tt.want)
			}
		})
	}
	if err := Walk(context.Background(), filepath.Join(root, "missing"), func(Entry) error { return nil }, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Walk of a missing root = %v, want ErrNotExist", err)
	}
	if err := Walk(context.Background(), filepath.Join(root, "A"), func(Entry) error { return nil }, nil); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("Walk of a file as root = %v, want ENOTDIR", err)
	}
}

func TestOpenReadsRegularFiles(t *testing.T) {
	root, files, _ := hostileTree(t)
	entries, _ := walkAll(t, root)
	for _, e := range entries {
		f, err := Open(root, e.Rel)
		if err != nil {
			t.Errorf("Open(%q): %v", e.Rel, err)
			continue
		}
		got, err := io.ReadAll(f)
		must(t, err)
		must(t, f.Close())
		if string(got) != files[e.Rel] {
			t.Errorf("%q: read %q, want %q", e.Rel, got, files[e.Rel])
		}
		if f.Size() != e.Size || !f.ModTime().Equal(e.ModTime) {
			t.Errorf("%q: Open says %d bytes at %v, Walk said %d at %v", e.Rel, f.Size(), f.ModTime(), e.Size, e.ModTime)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	root, _, refused := hostileTree(t)
	tests := []struct {
		rel   string
		want  error
		errno error // also wrapped, when not nil
	}{
		{"link-out-file", ErrNotRegular, nil},
		{"DCIM/link-in", ErrNotRegular, nil},
		{"link-out-dir/secret.txt", ErrNotRegular, unix.ELOOP}, // intermediate link
		{"DCIM/100MEDIA/fifo", ErrNotRegular, nil},             // must not block
		{"sock", ErrNotRegular, nil},
		{"DCIM", ErrNotRegular, nil},
		{"with space.MP4/x", ErrNotRegular, unix.ENOTDIR},
		{"DCIM/missing.MP4", os.ErrNotExist, nil},
		{"../outside/secret.txt", ErrEscapes, nil},
		{"DCIM/../../outside/secret.txt", ErrEscapes, nil},
		{"/etc/passwd", ErrEscapes, nil},
		{"", ErrEscapes, nil},
		{".", ErrEscapes, nil},
		{"DCIM//100MEDIA/VID_0001.MP4", ErrEscapes, nil},
		{"DCIM/100MEDIA/", ErrEscapes, nil},
		{"DCIM/./100MEDIA/VID_0001.MP4", ErrEscapes, nil},
		{"a\x00b", ErrEscapes, nil},
	}
	if _, ok := refused["null"]; ok {
		tests = append(tests, struct {
			rel         string
			want, errno error
		}{"null", ErrNotRegular, nil})
	}
	for _, tt := range tests {
		f, err := Open(root, tt.rel)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, tt.want) || (tt.errno != nil && !errors.Is(err, tt.errno)) {
			t.Errorf("Open(%q) = %v, want %v (%v)", tt.rel, err, tt.want, tt.errno)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "camfs open ") {
			t.Errorf("Open(%q) error %q does not say what was being done", tt.rel, err)
		}
	}
}

// The fstatat before the open refuses a FIFO that is already there; this
// checks the open itself, which is what protects against one swapped in
// after that check: with no writer, a blocking open would hang the test.
func TestOpenRegularFIFODoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(dirfd)
	f, err := openRegular(dirfd, "fifo", "fifo")
	if err == nil {
		f.Close()
	}
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("openRegular(fifo) = %v, want ErrNotRegular naming the FIFO", err)
	}
	must(t, os.Symlink("fifo", filepath.Join(dir, "link")))
	if _, err := openRegular(dirfd, "link", "link"); !errors.Is(err, ErrNotRegular) || !errors.Is(err, unix.ELOOP) {
		t.Errorf("openRegular(link) = %v, want ErrNotRegular wrapping ELOOP", err)
	}
}

func TestUnchanged(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "VID.MP4")
	old := time.Date(2024, 3, 1, 8, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name   string
		change func(t *testing.T)
		want   bool
	}{
		{"untouched", func(*testing.T) {}, true},
		{"appended", func(t *testing.T) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.WriteString("more")
			must(t, err)
			must(t, f.Close())
			must(t, os.Chtimes(path, old, old)) // a device that lies about mtime
		}, false},
		{"mtime changed", func(t *testing.T) {
			must(t, os.Chtimes(path, old, old.Add(time.Nanosecond)))
		}, false},
		{"rewritten in place, same size", func(t *testing.T) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("X"), 0)
			must(t, err)
			must(t, f.Close())
			must(t, os.Chtimes(path, old, old.Add(time.Second)))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustWrite(t, path, "recording")
			must(t, os.Chtimes(path, old, old))
			f, err := Open(root, "VID.MP4")
			must(t, err)
			defer f.Close()
			if _, err := io.Copy(io.Discard, f); err != nil {
				t.Fatal(err)
			}
			tt.change(t)
			same, err := f.Unchanged()
			if err != nil || same != tt.want {
				t.Errorf("Unchanged() = %v, %v; want %v", same, err, tt.want)
			}
		})
	}
}

// Reading the camera must not even change access times. relatime would
// update an atime that is older than the mtime, so this can fail.
func TestOpenKeepsAccessTime(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "VID.MP4")
	mustWrite(t, path, strings.Repeat("v", 4096))
	atime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, os.Chtimes(path, atime, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)))
	f, err := Open(root, "VID.MP4")
	must(t, err)
	got, err := io.ReadAll(f)
	must(t, err)
	must(t, f.Close())
	if len(got) != 4096 {
		t.Fatalf("read %d bytes", len(got))
	}
	var st unix.Stat_t
	must(t, unix.Stat(path, &st))
	if a := time.Unix(st.Atim.Sec, st.Atim.Nsec); !a.Equal(atime) {
		if os.Geteuid() != 0 && st.Uid != uint32(os.Geteuid()) {
			t.Skipf("O_NOATIME not permitted here (file owned by %d)", st.Uid)
		}
		t.Errorf("access time changed by reading: %v, was %v", a, atime)
	}
}

func TestOpenInvalidUTF8NameContent(t *testing.T) {
	root := t.TempDir()
	name := "\x80\xff VID.MP4"
	mustWrite(t, filepath.Join(root, name), "payload")
	f, err := Open(root, name)
	must(t, err)
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	must(t, err)
	if buf.String() != "payload" {
		t.Errorf("read %q", buf.String())
	}
}

// root is the caller's configured path and may itself be a link (a stable
// name for a mount point); only what lies below it is never followed.
func TestWalkRootMayBeALink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	mustMkdir(t, real)
	mustWrite(t, filepath.Join(real, "A.MP4"), "a")
	link := filepath.Join(base, "cam")
	must(t, os.Symlink(real, link))
	entries, _ := walkAll(t, link)
	if len(entries) != 1 || entries[0].Rel != "A.MP4" {
		t.Errorf("Walk through a linked root = %+v", entries)
	}
	f, err := Open(link, "A.MP4")
	must(t, err)
	f.Close()
}

// TestOpenRegularRefusesLinkToFile: an entry swapped for a link to a
// regular file after Open's fstatat (a file elsewhere on the host, with the
// size and mtime the listing saw) must fail in the open itself: the
// O_NOFOLLOW there is the only thing between the race and reading outside
// the camera.
func TestOpenRegularRefusesLinkToFile(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.txt")
	mustWrite(t, outside, "not on the camera")
	must(t, os.Symlink(outside, filepath.Join(dir, "VID.MP4")))
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(dirfd)
	f, err := openRegular(dirfd, "VID.MP4", "VID.MP4")
	if err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		t.Fatalf("openRegular followed the link and read %q", b)
	}
	if !errors.Is(err, ErrNotRegular) || !errors.Is(err, unix.ELOOP) {
		t.Errorf("openRegular(link to a file) = %v, want ErrNotRegular wrapping ELOOP", err)
	}
}
