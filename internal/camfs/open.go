package camfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrNotRegular: the path does not lead to a regular file: its last
	// component is a link, FIFO, socket, device or directory, or an
	// intermediate component is a link or not a directory. The kernel's errno
	// (ELOOP, ENOTDIR), when there is one, is wrapped as well.
	ErrNotRegular = errors.New("not a regular file")
	// ErrEscapes: rel is not a clean relative path below root (absolute,
	// empty, with "." or ".." or empty components, or a NUL byte).
	ErrEscapes = errors.New("path is not a clean relative path below the root")
	// ErrHardLinked: the file has more than one name (hard link). Camera
	// file systems (FAT, exFAT) have no hard links; on a folder source a
	// second name is how a file from outside the camera (the host key, a
	// vault file) would be slipped in, so it is refused by name, never read.
	ErrHardLinked = errors.New("file has more than one hard link")
)

func hardLinkReason(n uint64) string {
	return "has " + strconv.FormatUint(n, 10) + " hard links: another name for a file that may lie outside the camera (not taken)"
}

// File is a camera file open read-only for one sequential pass. It is not
// safe for concurrent use.
type File struct {
	f     *os.File
	size  int64
	mtime unix.Timespec
}

var _ io.ReadCloser = (*File)(nil)

// Open opens root/rel read-only for a single sequential pass.
//
// Each intermediate component is opened with openat(O_RDONLY|O_DIRECTORY|
// O_NOFOLLOW) relative to the previous one, so a link anywhere in the path is
// refused (ErrNotRegular wrapping ELOOP) and nothing resolves outside root.
// The last component is first checked with fstatat without following it: a
// FIFO, socket or device is refused before any open, because opening some
// devices has side effects. It is then opened with O_RDONLY|O_NOFOLLOW|
// O_NONBLOCK|O_NOCTTY (and O_NOATIME when allowed), so an entry swapped for a
// FIFO in between never blocks, and fstat must again say regular file, else
// ErrNotRegular. O_NONBLOCK is then cleared (it means nothing for a regular
// file on a local file system but a FUSE bridge may pass it on) and the
// kernel is advised of sequential access, which widens its read-ahead.
//
// The File records the size and modification time fstat gave at open; see
// Unchanged.
func Open(root, rel string) (*File, error) {
	parts, err := splitRel(rel)
	if err != nil {
		return nil, fmt.Errorf("camfs open %s: %w", DisplayPath(rel), err)
	}
	dirfd, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("camfs open %s: root %s: %w", DisplayPath(rel), DisplayPath(root), err)
	}
	for _, p := range parts[:len(parts)-1] {
		next, err := openat(dirfd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				// With O_DIRECTORY the kernel says ENOTDIR for a link too;
				// say which it is, and wrap ELOOP for a link.
				what, errno := notDir(dirfd, p, err)
				closeFD(dirfd)
				return nil, fmt.Errorf("camfs open %s: component %s (%s): %w: %w", DisplayPath(rel), DisplayPath(p), what, ErrNotRegular, errno)
			}
			closeFD(dirfd)
			return nil, fmt.Errorf("camfs open %s: directory %s: %w", DisplayPath(rel), DisplayPath(p), err)
		}
		closeFD(dirfd)
		dirfd = next
	}
	defer closeFD(dirfd)

	last := parts[len(parts)-1]
	var st unix.Stat_t
	if err := lstatat(dirfd, last, &st); err != nil {
		return nil, fmt.Errorf("camfs open %s: %w", DisplayPath(rel), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("camfs open %s: %w: %s", DisplayPath(rel), ErrNotRegular, typeName(st.Mode))
	}
	if st.Nlink > 1 {
		return nil, fmt.Errorf("camfs open %s: %w: %s", DisplayPath(rel), ErrHardLinked, hardLinkReason(uint64(st.Nlink)))
	}
	f, err := openRegular(dirfd, last, DisplayPath(rel))
	if err != nil {
		return nil, fmt.Errorf("camfs open %s: %w", DisplayPath(rel), err)
	}
	return f, nil
}

// openRegular opens name in dirfd for reading and returns it only if fstat
// says it is a regular file. The flags make the open itself safe whatever the
// entry has become since it was listed: O_NOFOLLOW (a link fails with
// ELOOP), O_NONBLOCK (a FIFO without a writer does not block the open),
// O_NOCTTY (a terminal device does not become ours).
func openRegular(dirfd int, name, display string) (*File, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) {
			// Swapped for a link (ELOOP) or a socket (ENXIO) since it was listed.
			return nil, fmt.Errorf("%w: %w", ErrNotRegular, err)
		}
		return nil, err
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		closeFD(fd)
		return nil, fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		closeFD(fd)
		return nil, fmt.Errorf("%w: %s", ErrNotRegular, typeName(st.Mode))
	}
	if st.Nlink > 1 { // linked since the listing
		closeFD(fd)
		return nil, fmt.Errorf("%w: %s", ErrHardLinked, hardLinkReason(uint64(st.Nlink)))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		closeFD(fd)
		return nil, fmt.Errorf("clear O_NONBLOCK: %w", err)
	}
	// Advice only: a file system that ignores it reads just as correctly.
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL)
	return &File{f: os.NewFile(uintptr(fd), display), size: st.Size, mtime: st.Mtim}, nil
}

// notDir describes name in dirfd after an O_DIRECTORY|O_NOFOLLOW open of it
// failed with err (ENOTDIR or ELOOP): what it is, and ELOOP if it is a
// symbolic link, else err.
func notDir(dirfd int, name string, err error) (string, error) {
	var st unix.Stat_t
	if lstatat(dirfd, name, &st) != nil {
		return "not a directory", err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return typeName(st.Mode), unix.ELOOP
	}
	return typeName(st.Mode), err
}

// splitRel checks rel is a clean relative path and returns its components.
// Walk's Rel values always pass.
func splitRel(rel string) ([]string, error) {
	if rel == "" || strings.IndexByte(rel, 0) >= 0 {
		return nil, ErrEscapes
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." { // "" also catches a leading '/' (absolute) and "//"
			return nil, ErrEscapes
		}
	}
	return parts, nil
}

// Read reads the next bytes of the file (io.Reader).
func (f *File) Read(p []byte) (int, error) { return f.f.Read(p) }

// Close closes the file. Camera files are only read, so there is nothing to
// flush and the error matters little; it is returned anyway.
func (f *File) Close() error { return f.f.Close() }

// Size is the file's size according to fstat at open.
func (f *File) Size() int64 { return f.size }

// ModTime is the file's modification time according to fstat at open.
func (f *File) ModTime() time.Time { return time.Unix(f.mtime.Sec, f.mtime.Nsec) }

// Unchanged re-fstats the open file and reports whether its size and
// modification time still equal the values recorded at open. Ingest calls it
// after the copy: a file that changed while it was being copied (a camera
// still recording, a device that lies about its size) is not vaulted.
//
// It compares only size and mtime, to the nanosecond the file system keeps:
// change time (ctime) is left out because its meaning varies across FAT,
// exFAT and FUSE/MTP bridges, and a false "changed" would keep a recording
// from ever being taken.
func (f *File) Unchanged() (bool, error) {
	var st unix.Stat_t
	if err := fstat(int(f.f.Fd()), &st); err != nil {
		return false, fmt.Errorf("camfs re-stat %s: %w", f.f.Name(), err)
	}
	return st.Size == f.size && st.Mtim == f.mtime, nil
}
