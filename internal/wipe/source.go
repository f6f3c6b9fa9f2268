package wipe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// identity is what pins "the file we copied" on the camera between the
// checks and the unlink.
type identity struct {
	Dev, Ino uint64
	Size     int64
	MtimeNS  int64
}

func (id identity) details(m map[string]string) {
	m["dev"] = strconv.FormatUint(id.Dev, 10)
	m["ino"] = strconv.FormatUint(id.Ino, 10)
	m["size"] = strconv.FormatInt(id.Size, 10)
	m["mtime_ns"] = strconv.FormatInt(id.MtimeNS, 10)
}

func identityFrom(m map[string]string) (identity, error) {
	var id identity
	var err error
	if id.Dev, err = strconv.ParseUint(m["dev"], 10, 64); err != nil {
		return id, fmt.Errorf("dev: %w", err)
	}
	if id.Ino, err = strconv.ParseUint(m["ino"], 10, 64); err != nil {
		return id, fmt.Errorf("ino: %w", err)
	}
	if id.Size, err = strconv.ParseInt(m["size"], 10, 64); err != nil {
		return id, fmt.Errorf("size: %w", err)
	}
	if id.MtimeNS, err = strconv.ParseInt(m["mtime_ns"], 10, 64); err != nil {
		return id, fmt.Errorf("mtime_ns: %w", err)
	}
	return id, nil
}

func identityOf(st *unix.Stat_t) identity {
	return identity{Dev: st.Dev, Ino: st.Ino, Size: st.Size, MtimeNS: st.Mtim.Nano()}
}

// errNotRegular: the entry is a link, directory, FIFO, device or socket.
var errNotRegular = errors.New("not a regular file")

// splitRel checks rel is a clean relative path and returns its components.
func splitRel(rel string) ([]string, error) {
	if rel == "" || strings.IndexByte(rel, 0) >= 0 {
		return nil, fmt.Errorf("%q is not a clean relative path", rel)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("%q is not a clean relative path", rel)
		}
	}
	return parts, nil
}

// openParent opens the directory holding rel below root: root as the
// caller gave it (the dock folder, a mount point), every component below it
// with O_NOFOLLOW|O_DIRECTORY, so a link planted on the camera never leads
// the unlink anywhere else. The caller closes the returned descriptor.
func openParent(root, rel string) (int, string, error) {
	parts, err := splitRel(rel)
	if err != nil {
		return -1, "", err
	}
	fd, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", fmt.Errorf("open dock root: %w", err)
	}
	for _, p := range parts[:len(parts)-1] {
		next, err := openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		unix.Close(fd)
		if err != nil {
			return -1, "", fmt.Errorf("open directory component: %w", err)
		}
		fd = next
	}
	return fd, parts[len(parts)-1], nil
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

func lstatat(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// statSource returns the identity of root/rel without following any link.
// A missing file wraps unix.ENOENT (errors.Is(err, fs.ErrNotExist)).
func statSource(root, rel string) (identity, error) {
	dfd, name, err := openParent(root, rel)
	if err != nil {
		return identity{}, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := lstatat(dfd, name, &st); err != nil {
		return identity{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return identity{}, errNotRegular
	}
	return identityOf(&st), nil
}

// errIdentity: the entry at the path is no longer the file pinned at the
// start of the attempt.
var errIdentity = errors.New("the file at this path is not the one checked")

// unlinkSource removes root/rel if, and only if, it is still the regular
// file want describes, then fsyncs its directory so the removal is durable
// before WIPED is recorded. This is the only write evidenced makes to camera
// media.
func unlinkSource(root, rel string, want identity) error {
	dfd, name, err := openParent(root, rel)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := lstatat(dfd, name, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errNotRegular
	}
	if got := identityOf(&st); got != want {
		return fmt.Errorf("%w: now dev %d ino %d size %d mtime_ns %d, checked dev %d ino %d size %d mtime_ns %d",
			errIdentity, got.Dev, got.Ino, got.Size, got.MtimeNS, want.Dev, want.Ino, want.Size, want.MtimeNS)
	}
	for {
		err = unix.Unlinkat(dfd, name, 0)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("unlink: %w", err)
	}
	if err := unix.Fsync(dfd); err != nil && !errors.Is(err, unix.EINVAL) {
		// EINVAL: the file system (some FUSE bridges) cannot sync a
		// directory; the unlink itself succeeded.
		return fmt.Errorf("sync directory after unlink: %w", err)
	}
	return nil
}
