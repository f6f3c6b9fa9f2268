package camfs

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// openat opens name relative to dirfd, retrying on EINTR (FUSE file systems,
// such as an MTP bridge, can be interrupted). It asks for O_NOATIME first so
// reading the camera leaves its access times alone, and falls back without it
// when the kernel says EPERM (O_NOATIME needs ownership or CAP_FOWNER). The
// caller's flags must already carry O_NOFOLLOW where it matters.
func openat(dirfd int, name string, flags int) (int, error) {
	noatime := unix.O_NOATIME
	for {
		fd, err := unix.Openat(dirfd, name, flags|noatime|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EPERM) && noatime != 0:
			noatime = 0
			continue
		}
		return -1, err
	}
}

// lstatat is fstatat(AT_SYMLINK_NOFOLLOW): the entry itself, never a target.
func lstatat(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func closeFD(fd int) { _ = unix.Close(fd) }

// typeName names a non-regular, non-directory file type the way a Refusal
// reason or an ErrNotRegular error states it.
func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link (not followed)"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "device"
	}
	return "unknown file type"
}

func mtime(st *unix.Stat_t) time.Time {
	return time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
}
