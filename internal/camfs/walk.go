package camfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is one regular file found by Walk.
type Entry struct {
	// Rel is the path relative to the walk's root, '/'-separated, in the raw
	// bytes the file system gave (it may not be valid UTF-8; see DisplayPath).
	Rel string
	// Size and ModTime are from the listing (fstatat, not following links).
	// Open records them again; a difference means the file changed.
	Size    int64
	ModTime time.Time
}

// Refusal is an entry Walk did not take: anything that is not a regular file
// or a directory it could descend into.
type Refusal struct {
	// Rel is the raw relative path, as in Entry.
	Rel string
	// Reason is a short sentence for the ledger and for people, e.g.
	// "symbolic link (not followed)", "FIFO", "socket", "device",
	// "unreadable directory: permission denied".
	Reason string
	// Err is nil when the entry was refused for what it is (a link, a FIFO, a
	// socket, a device: never recordings). It is the cause when the entry
	// could not be examined (an unreadable directory, an entry that vanished
	// or changed during the walk, a directory loop or one nested too deep):
	// then recordings may be hiding behind it, and the camera should not be
	// called fully taken.
	Err error
}

// MaxDepth is how many directory levels below root Walk descends. Cameras
// use two or three (DCIM/100MEDIA); the limit bounds the descriptors a walk
// holds open (one per level) against a hostile or corrupt file system.
const MaxDepth = 64

// Refusal reasons that are not plain file types.
var (
	errLoop    = errors.New("directory is its own ancestor")
	errTooDeep = errors.New("directory nested too deep")
)

// Walk visits every regular file under root, depth-first, in lexical (byte)
// order of the names within each directory, without ever following a
// symbolic link.
//
// It opens each directory itself with openat(O_RDONLY|O_DIRECTORY|O_NOFOLLOW)
// relative to its parent's descriptor, so nothing can resolve outside root.
// Entries that are not regular files or directories are passed to refuse (if
// not nil) and never opened; so are directories that cannot be opened, that
// vanished or changed type during the walk, that repeat an ancestor (a loop,
// as a corrupt FAT can produce) or lie deeper than MaxDepth. Hidden files are
// included: the caller decides what to skip.
//
// Walk stops and returns the error if visit returns one (unwrapped), if ctx
// is cancelled, if root cannot be opened or read, or if the medium reports
// that it is failing or gone (EIO, ENODEV, ENXIO, ...): a walk of a failing
// card is stopped rather than hammered, and what was visited so far stands.
func Walk(ctx context.Context, root string, visit func(Entry) error, refuse func(Refusal)) error {
	return WalkDepth(ctx, root, MaxDepth, visit, refuse)
}

// WalkDepth is Walk descending at most maxDepth levels below root (at most
// MaxDepth; less than 1 means MaxDepth): sources.max_depth.
func WalkDepth(ctx context.Context, root string, maxDepth int, visit func(Entry) error, refuse func(Refusal)) error {
	if maxDepth < 1 || maxDepth > MaxDepth {
		maxDepth = MaxDepth
	}
	if root == "" {
		return fmt.Errorf("camfs walk: empty root")
	}
	if refuse == nil {
		refuse = func(Refusal) {}
	}
	// root is the caller's path (a mount point or a configured folder), so it
	// is resolved normally; only what lies below it is camera content.
	fd, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("camfs walk %s: open root: %w", DisplayPath(root), err)
	}
	defer closeFD(fd)
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return fmt.Errorf("camfs walk %s: stat root: %w", DisplayPath(root), err)
	}
	w := &walker{ctx: ctx, root: root, visit: visit, refuse: refuse, ancestors: []fileID{{st.Dev, st.Ino}}, maxDepth: maxDepth}
	return w.dir(fd, "")
}

type fileID struct{ dev, ino uint64 }

type walker struct {
	ctx       context.Context
	root      string
	visit     func(Entry) error
	refuse    func(Refusal)
	ancestors []fileID // of the directories currently open, root first
	maxDepth  int
}

// dir lists the directory open at fd (whose path is rel, "" for root) and
// visits its entries in order. fd stays owned by the caller.
func (w *walker) dir(fd int, rel string) error {
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("camfs walk %s: read directory %s: %w", DisplayPath(w.root), displayDir(rel), err)
	}
	slices.Sort(names) // Go strings compare bytewise: lexical order of the raw names
	for _, name := range names {
		if err := w.ctx.Err(); err != nil {
			return fmt.Errorf("camfs walk %s: %w", DisplayPath(w.root), err)
		}
		child := name
		if rel != "" {
			child = rel + "/" + name
		}
		var st unix.Stat_t
		if err := lstatat(fd, name, &st); err != nil {
			if mediumGone(err) {
				return fmt.Errorf("camfs walk %s: stat %s: %w", DisplayPath(w.root), DisplayPath(child), err)
			}
			reason := "cannot be examined: " + errText(err)
			if errors.Is(err, unix.ENOENT) {
				reason = "vanished during the walk"
			}
			w.refuse(Refusal{Rel: child, Reason: reason, Err: err})
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if st.Nlink > 1 {
				w.refuse(Refusal{Rel: child, Reason: hardLinkReason(uint64(st.Nlink)), Err: ErrHardLinked})
				continue
			}
			if err := w.visit(Entry{Rel: child, Size: st.Size, ModTime: mtime(&st)}); err != nil {
				return err
			}
		case unix.S_IFDIR:
			if err := w.descend(fd, name, child); err != nil {
				return err
			}
		default:
			w.refuse(Refusal{Rel: child, Reason: typeName(st.Mode)})
		}
	}
	return nil
}

// descend opens the subdirectory name of fd without following links and
// walks it, refusing it instead when it cannot be taken.
func (w *walker) descend(parent int, name, rel string) error {
	if len(w.ancestors) > w.maxDepth {
		w.refuse(Refusal{Rel: rel, Reason: "nested deeper than " + strconv.Itoa(w.maxDepth) + " directories (not descended)", Err: errTooDeep})
		return nil
	}
	fd, err := openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		switch {
		case mediumGone(err):
			return fmt.Errorf("camfs walk %s: open directory %s: %w", DisplayPath(w.root), DisplayPath(rel), err)
		case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
			// Swapped for a link or something else between the listing and
			// the open (the kernel says ENOTDIR for a link under O_DIRECTORY).
			what, errno := notDir(parent, name, err)
			w.refuse(Refusal{Rel: rel, Reason: "changed during the walk: now " + what, Err: errno})
		case errors.Is(err, unix.ENOENT):
			w.refuse(Refusal{Rel: rel, Reason: "vanished during the walk", Err: err})
		default:
			w.refuse(Refusal{Rel: rel, Reason: "unreadable directory: " + errText(err), Err: err})
		}
		return nil
	}
	defer closeFD(fd)
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		return fmt.Errorf("camfs walk %s: stat directory %s: %w", DisplayPath(w.root), DisplayPath(rel), err)
	}
	id := fileID{st.Dev, st.Ino}
	if slices.Contains(w.ancestors, id) {
		w.refuse(Refusal{Rel: rel, Reason: "directory loop (corrupt file system?)", Err: errLoop})
		return nil
	}
	w.ancestors = append(w.ancestors, id)
	defer func() { w.ancestors = w.ancestors[:len(w.ancestors)-1] }()
	return w.dir(fd, rel)
}

// readNames returns the names in the directory open at fd, without "." and
// "..". getdents reads from the descriptor's offset, which is 0 for a
// directory we just opened.
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// mediumGone reports errors that mean the card or device is failing or has
// been pulled: continuing would only produce a refusal per entry.
func mediumGone(err error) bool {
	for _, e := range []unix.Errno{unix.EIO, unix.ENODEV, unix.ENXIO, unix.ENOTCONN, unix.ESHUTDOWN, unix.ESTALE, unix.ENOMEDIUM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// errText is the kernel's message for an errno ("permission denied"), or the
// error's own text.
func errText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

func displayDir(rel string) string {
	if rel == "" {
		return "."
	}
	return DisplayPath(rel)
}
