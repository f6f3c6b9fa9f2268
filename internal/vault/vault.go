// Package vault owns the durable local copy of every recording: the files a
// docking host keeps until (and after) they are in the object store.
//
// # Layout
//
//	<dir>/                        0750, flock'ed by every open Vault (see Open)
//	├── items/                    0750
//	│   └── <id[0:2]>/            0750, one shard per first two id characters
//	│       └── <id>              0440, the complete copy: final, never rewritten
//	├── parts/                    0750
//	│   └── <id[0:2]>/<id>        0440, the upload part sums of the read-back
//	│                             (see WritePartSums; a cache the VAULTED
//	│                             record's composite vouches for, never evidence)
//	└── tmp/                      0750
//	    └── <id>.<random>.partial 0600 while a Store (or WritePartSums) writes
//
// Ids are chosen by the caller (ingest derives them from a hash) and must
// match [a-z0-9_-]{2,128}; anything else is refused with ErrBadID before it
// touches a path. The random part of a partial's name lets two Stores of the
// same id (two processes, say) each finish their own copy.
//
// # Invariants
//
//   - A file under items/ is always a complete, fsynced copy whose length was
//     checked against the expected size and whose bytes were hashed as they
//     were written: it appears there only by an atomic rename of the fsynced,
//     read-only partial, followed by an fsync of its directory. A crash at any
//     point leaves either the old state or the new one, never a torn file.
//   - A directory the vault makes (its own, items/, tmp/, a shard, parts/)
//     has its parent fsynced before anything is kept in it (mkdirSynced),
//     so a power cut cannot take a directory's entry and its durable files
//     with it.
//   - A Store that fails for any reason (short or long source, read or write
//     error, no space, cancellation) removes its partial and leaves items/ as
//     it was.
//   - Every byte of the source is read exactly once and that same buffer is
//     both hashed and written, so the hash is of what was written, not of a
//     second read of the camera.
//   - A copy never starts if it cannot finish: free space is checked against
//     size plus Options.Reserve first, and the space is then reserved with
//     fallocate where the file system supports it.
//   - Memory per Store is bounded (a few 1 MiB buffers) whatever the size.
//   - ReadBack reads a copy cold, from the device rather than from the page
//     cache the copy left behind (see ReadBack for how far that goes).
//
// The vault never deletes an item: removal belongs to a later retention step.
// Linux only (flock, fallocate, sync_file_range, posix_fadvise, mincore).
package vault

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/iobuf"
)

// DefaultReserve is the free space the daemon keeps on the vault's file
// system unless configured otherwise: enough that a full vault disk still
// leaves room for the ledger, logs and the operating system.
const DefaultReserve int64 = 1 << 30

// Options tune a Vault. The zero value is valid: no reserve (tests and the
// harness use it). The daemon passes the configured reserve, which defaults
// to DefaultReserve.
type Options struct {
	// Reserve is how many bytes must remain free on the vault's file system
	// after a Store: a Store of size bytes starts only when at least
	// size + Reserve bytes are available to us. Negative is refused.
	Reserve int64
	// Buffers is the budget every Store and ReadBack draws its 1 MiB I/O
	// buffers from (package iobuf). nil means iobuf.Default, the one pool of
	// the process, so that however many vaults and cameras a process has,
	// their buffers share one bound.
	Buffers *iobuf.Pool
}

// Errors a caller can act on; each is wrapped with the id and the numbers.
var (
	// ErrBadID: the id is not [a-z0-9_-]{2,128}.
	ErrBadID = errors.New("invalid vault item id")
	// ErrNoSpace: not enough free space to start the copy, or the file system
	// ran out during it (ENOSPC or EDQUOT, wrapped as well).
	ErrNoSpace = errors.New("not enough space in the vault")
	// ErrShortCopy: the source ended before the expected size.
	ErrShortCopy = errors.New("source ended before the expected size")
	// ErrLongCopy: the source gave more than the expected size.
	ErrLongCopy = errors.New("source is longer than the expected size")
)

// Vault is a directory of complete, read-only copies. Its methods are safe for
// concurrent use; Stores of different ids proceed in parallel.
type Vault struct {
	dir     string
	items   string
	tmp     string
	reserve int64
	log     *slog.Logger
	bufs    *iobuf.Pool // the I/O buffer budget (Options.Buffers)

	lockMu sync.Mutex
	lockFD int // dir, flock'ed shared while the Vault is open; -1 once closed

	warnedWarm atomic.Bool // ReadBack's "not cold" warning is given once

	// Seams for tests that cannot otherwise reach a real ENOSPC mid-copy.
	free        func() (uint64, error)
	preallocate bool

	// Durability seams: every fsync Store relies on goes through these, so
	// a test can see that each one happens, in order, and make one fail.
	// Open sets them to (*os.File).Sync and syncDir; nothing else does
	// outside tests.
	syncFile func(*os.File) error
	syncDir  func(dir string) error
}

// Open opens the vault at dir, creating dir, items/ and tmp/ (0750) as
// needed, each one durably (its parent fsynced once it is made).
//
// Partial files in tmp/ are leftovers of a copy a crash interrupted: no
// ledger step ever names them, and the camera still holds the original. Open
// removes them and logs how many, but only when no other process has the
// vault open: every open Vault holds a shared flock on dir, and cleanup needs
// the exclusive lock for a moment, so a CLI command started next to the
// daemon never deletes a copy the daemon is writing. Close releases the lock.
func Open(dir string, log *slog.Logger, opts Options) (*Vault, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Reserve < 0 {
		return nil, fmt.Errorf("vault open %s: negative reserve %d", dir, opts.Reserve)
	}
	v := &Vault{
		dir: dir, items: filepath.Join(dir, "items"), tmp: filepath.Join(dir, "tmp"),
		reserve: opts.Reserve, log: log, lockFD: -1, preallocate: true,
		bufs: cmp.Or(opts.Buffers, iobuf.Default),
	}
	v.free = v.Free
	v.syncFile, v.syncDir = (*os.File).Sync, syncDir
	for _, d := range []string{dir, v.items, v.tmp} {
		if _, err := v.mkdirSynced(d); err != nil {
			return nil, fmt.Errorf("vault open %s: %w", dir, err)
		}
	}
	// The entries of items/, tmp/ and parts/ are fsynced at each start
	// too: a process stopped between making one and its fsync (a kill, a
	// crash) left it to the page cache, and nothing made after it is
	// durable until it is.
	if err := v.syncDir(dir); err != nil {
		return nil, fmt.Errorf("vault open %s: %w", dir, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vault open %s: %w", dir, err)
	}
	alone := flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil
	if alone {
		n, err := v.removePartials()
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("vault open %s: remove leftover partial copies: %w", dir, err)
		}
		if n > 0 {
			log.Info("removed leftover partial copies", "vault", dir, "count", n)
		}
	} else {
		log.Debug("vault in use by another process: leftover partial copies not checked", "vault", dir)
	}
	// Converting EX to SH, or waiting out another opener's short cleanup.
	if err := flock(fd, unix.LOCK_SH); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vault open %s: lock: %w", dir, err)
	}
	v.lockFD = fd
	return v, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// removePartials deletes tmp/*.partial and returns how many there were.
// Other files in tmp/ are not ours to judge and are left alone.
func (v *Vault) removePartials() (int, error) {
	entries, err := os.ReadDir(v.tmp)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), partialSuffix) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(v.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close releases the vault's lock. Stores still running are not affected,
// but the Vault must not be used afterwards.
func (v *Vault) Close() error {
	v.lockMu.Lock()
	defer v.lockMu.Unlock()
	if v.lockFD < 0 {
		return nil
	}
	err := unix.Close(v.lockFD)
	v.lockFD = -1
	if err != nil {
		return fmt.Errorf("vault close %s: %w", v.dir, err)
	}
	return nil
}

// Dir is the vault's directory.
func (v *Vault) Dir() string { return v.dir }

// ValidID reports whether id is acceptable as a vault item id:
// [a-z0-9_-]{2,128}. The limit keeps <id>.<random>.partial within NAME_MAX.
func ValidID(id string) bool {
	if len(id) < 2 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkID(op, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("vault %s %q: %w", op, id, ErrBadID)
	}
	return nil
}

// Path is where the complete copy of id lives (whether or not it exists
// yet), or "" for an invalid id.
func (v *Vault) Path(id string) string {
	if !ValidID(id) {
		return ""
	}
	return filepath.Join(v.items, id[:2], id)
}

// Open opens the complete copy of id for reading (an upload, a retrieval).
// It never follows a link planted in its place. A missing copy is an error
// wrapping fs.ErrNotExist.
func (v *Vault) Open(id string) (*os.File, error) {
	if err := checkID("open", id); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(v.Path(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("vault open %s: %w", id, err)
	}
	if err := checkRegular(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("vault open %s: %w", id, err)
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	return f, nil
}

func checkRegular(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	return nil
}

// Exists reports whether a complete copy of id is in the vault. Anything but
// a regular file at its path is an error, not a copy.
func (v *Vault) Exists(id string) (bool, error) {
	if err := checkID("exists", id); err != nil {
		return false, err
	}
	fi, err := os.Lstat(v.Path(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("vault exists %s: %w", id, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("vault exists %s: %s is not a regular file (%s)", id, v.Path(id), fi.Mode().Type())
	}
	return true, nil
}

// Free is the space available to us (not to root's reserved blocks) on the
// vault's file system, in bytes.
func (v *Vault) Free() (uint64, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(v.dir, &st)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("vault free space %s: %w", v.dir, err)
		}
		break
	}
	bsize := uint64(st.Frsize)
	if bsize == 0 {
		bsize = uint64(st.Bsize)
	}
	return st.Bavail * bsize, nil
}
