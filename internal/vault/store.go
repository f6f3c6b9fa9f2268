package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/iobuf"
)

const (
	partialSuffix = ".partial"

	// nbuf is the most buffers (of iobuf.Size, 1 MiB: one read from the
	// source) one Store has in flight: while the caller's goroutine hashes
	// and writes one, the reader fills the others, so camera reads overlap
	// vault writes. They come from the vault's iobuf budget, shared by every
	// copy and read-back, so a Store may have fewer when many run at once.
	nbuf = 4
	// bufSize is one read from the source: the size of an iobuf buffer.
	bufSize = iobuf.Size

	// writeback is how much written data is handed to the kernel for
	// writeback at a time (sync_file_range), and the window kept dirty: data
	// two windows back is waited for and dropped from the page cache. This
	// bounds the dirty memory a 30 GB copy creates, keeps the ledger's own
	// fsyncs from queueing behind gigabytes of footage, and makes the final
	// fsync short.
	writeback = 16 << 20

	// progressEvery is the minimum interval between progress calls.
	progressEvery = 100 * time.Millisecond
	// maxEmptyReads is how many (0, nil) reads in a row count as a source
	// that makes no progress (io.ErrNoProgress).
	maxEmptyReads = 100
)

// Stored describes a complete copy in the vault.
type Stored struct {
	Path   string     // the final path, items/<id[0:2]>/<id>
	Size   int64      // bytes copied, equal to the size asked for
	SHA256 digest.Sum // of exactly the bytes read from the source and written
}

// Store copies src into the vault as item id in one pass.
//
// Every byte is read from src exactly once; the same buffer is hashed
// (digest.New) and written to a partial file in tmp/. src is read until it
// returns io.EOF, even after size bytes, so a reader that checks something at
// end of file (ingest re-stats the camera file there) gets to do so, and a
// source longer than size is caught (ErrLongCopy, stopped as soon as it
// shows) as well as a shorter one (ErrShortCopy). Then the partial is made
// read-only (0440), fsynced, renamed into items/ and its directory fsynced;
// only then does Store return. The mode is set before the fsync so that one
// fsync makes both the bytes and the read-only mode durable.
//
// Before anything is written Store checks the file system has size +
// Options.Reserve bytes free and fails fast with ErrNoSpace naming the
// numbers; it then reserves the space (fallocate) where supported. ENOSPC or
// EDQUOT during the copy is reported as ErrNoSpace too.
//
// progress, if not nil, is called from the calling goroutine with the bytes
// copied so far, at most about ten times a second and once more at the end.
//
// On any error the partial is removed and nothing under items/ changes. If
// items/ already holds id (a crash after the rename but before the ledger
// recorded it), it is replaced by the new copy only once that is complete:
// the rename is atomic.
//
// Cancelling ctx aborts the copy with ctx's error. A Read blocked in the
// kernel cannot be interrupted: Store returns once it comes back, and never
// while src is still being read, so the caller may close src afterwards.
func (v *Vault) Store(ctx context.Context, id string, src io.Reader, size int64, progress func(int64)) (Stored, error) {
	return v.StoreRecorded(ctx, id, src, size, progress, nil)
}

// StoreRecorded is Store with a step between the durable partial and its
// publication: record, if not nil, is called with the copy's size and
// SHA-256 once the partial is complete, read-only and fsynced, and before it
// is renamed into items/. Ingest records COPIED there, so a file under
// items/ is always named by the ledger: a crash (or a power cut) between the
// rename and VAULTED leaves a copy that COPIED accounts for, never one that
// only a restored or replaced ledger would fail to name. If record fails,
// the partial is removed, nothing is published and its error is returned
// (wrapped).
func (v *Vault) StoreRecorded(ctx context.Context, id string, src io.Reader, size int64, progress func(int64), record func(Stored) error) (Stored, error) {
	if err := checkID("store", id); err != nil {
		return Stored{}, err
	}
	if size < 0 {
		return Stored{}, fmt.Errorf("vault store %s: negative size %d", id, size)
	}
	if err := ctx.Err(); err != nil {
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	free, err := v.free()
	if err != nil {
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	if need := uint64(size) + uint64(v.reserve); free < need {
		return Stored{}, fmt.Errorf("vault store %s: %w: need %d bytes (%d to copy + %d reserve), %d free in %s",
			id, ErrNoSpace, need, size, v.reserve, free, v.dir)
	}

	start := time.Now()
	f, tmp, err := v.createPartial(id)
	if err != nil {
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	st, err := v.fill(ctx, f, id, src, size, progress)
	if err == nil {
		err = v.finish(f)
	} else {
		f.Close()
	}
	if err == nil && record != nil {
		err = record(st)
	}
	if err != nil {
		os.Remove(tmp)
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	final, err := v.publish(tmp, id)
	if err != nil {
		return Stored{}, fmt.Errorf("vault store %s: %w", id, err)
	}
	st.Path = final
	elapsed := time.Since(start)
	v.log.Debug("vault stored", "item", id, "bytes", st.Size, "seconds", elapsed.Seconds(),
		"mb_per_s", float64(st.Size)/1e6/max(elapsed.Seconds(), 1e-9))
	return st, nil
}

// createPartial creates tmp/<id>.<random>.partial, exclusively.
func (v *Vault) createPartial(id string) (*os.File, string, error) {
	for range 10 {
		name := filepath.Join(v.tmp, id+"."+strconv.FormatUint(rand.Uint64(), 36)+partialSuffix)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", noSpace(err)
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("create partial copy in %s: no free name after 10 tries", v.tmp)
}

// fill reserves space, then copies src into f, hashing, and checks the length.
// It does not close f.
func (v *Vault) fill(ctx context.Context, f *os.File, id string, src io.Reader, size int64, progress func(int64)) (Stored, error) {
	fd := int(f.Fd())
	if v.preallocate && size > 0 {
		if err := fallocate(fd, size); err != nil {
			return Stored{}, err
		}
	}
	h := digest.New()
	var (
		total           int64 // bytes written
		kicked          int64 // bytes handed to writeback
		settled         int64 // bytes known written and dropped from the cache
		reported        int64 = -1
		lastReport      time.Time
		errCopy         error
		chunks, release = readAhead(ctx, v.bufs, src)
		// held is the buffer this goroutine has taken from chunks and not yet
		// returned; the deferred Put returns it on every way out of the loop,
		// a panic in the hash or the write included.
		held *[]byte
	)
	defer release()
	defer func() { v.bufs.Put(held) }()
	for c := range chunks {
		held = c.buf
		if c.n > 0 {
			if total+int64(c.n) > size {
				errCopy = fmt.Errorf("%w: more than %d bytes", ErrLongCopy, size)
				break
			}
			b := (*c.buf)[:c.n]
			h.Write(b)
			if _, err := f.Write(b); err != nil {
				errCopy = noSpace(fmt.Errorf("write %s: %w", f.Name(), err))
				break
			}
			total += int64(c.n)
		}
		// Hashed and written: the buffer goes back to the budget now, not
		// after the writeback wait or the progress call below.
		v.bufs.Put(held)
		held = nil
		if total-kicked >= writeback {
			startWriteback(fd, kicked, total-kicked)
			settle(fd, settled, kicked-settled)
			settled, kicked = kicked, total
		}
		if c.n > 0 && progress != nil && time.Since(lastReport) >= progressEvery {
			progress(total)
			reported, lastReport = total, time.Now()
		}
		if errors.Is(c.err, io.EOF) {
			break
		}
		if c.err != nil {
			errCopy = fmt.Errorf("read source: %w", c.err)
			break
		}
		if err := ctx.Err(); err != nil {
			errCopy = err
			break
		}
	}
	if errCopy != nil {
		return Stored{}, errCopy
	}
	if err := ctx.Err(); err != nil {
		return Stored{}, err
	}
	if total != size {
		return Stored{}, fmt.Errorf("%w: %d of %d bytes", ErrShortCopy, total, size)
	}
	if progress != nil && reported != total {
		progress(total)
	}
	return Stored{Size: total, SHA256: digest.FromHash(h)}, nil
}

// finish makes the complete partial read-only and durable, and closes it.
func (v *Vault) finish(f *os.File) error {
	if err := f.Chmod(0o440); err != nil {
		f.Close()
		return err
	}
	if err := v.syncFile(f); err != nil {
		f.Close()
		return noSpace(fmt.Errorf("fsync %s: %w", f.Name(), err))
	}
	if err := f.Close(); err != nil {
		return noSpace(err)
	}
	return nil
}

// publish renames the finished partial into items/ and makes the rename
// durable. If that last step fails the final file is removed again: a copy
// whose directory entry may not survive a crash is not a copy.
func (v *Vault) publish(tmp, id string) (string, error) {
	shard := filepath.Join(v.items, id[:2])
	if _, err := v.mkdirSynced(shard); err != nil {
		os.Remove(tmp)
		return "", err
	}
	final := filepath.Join(shard, id)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := v.syncDir(shard); err != nil {
		os.Remove(final)
		return "", err
	}
	return final, nil
}

// mkdirSynced makes dir (0750) and any missing parent, as os.MkdirAll
// does, and fsyncs the parent of each directory it makes, before it
// returns: a new directory's entry lives in its parent, and until the
// parent is fsynced a power cut may lose the entry and with it every file
// made durable inside. made reports whether dir itself was missing. A
// directory found in place is taken as is (Open fsyncs the vault's own
// directory at each start); one another caller made between this one's
// Stat and Mkdir is fsynced here too, as this caller cannot know the
// other's fsync is done. One made whose parent's fsync fails is removed
// again (if still empty), so that it is never found in place unsynced.
func (v *Vault) mkdirSynced(dir string) (made bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return false, nil
	case err == nil:
		return false, &fs.PathError{Op: "mkdir", Path: dir, Err: unix.ENOTDIR}
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if _, err := v.mkdirSynced(parent); err != nil {
			return false, err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	if err := v.syncDir(parent); err != nil {
		// Taken away again (while still empty), so that the next caller
		// makes it and fsyncs its parent: one left in place would be found
		// and trusted, its entry never made durable.
		os.Remove(dir)
		return false, err
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// fallocate reserves size bytes for fd without changing its length, so the
// copy cannot run out of space half way (and the file is laid out in few
// extents). File systems without it copy anyway: the free-space check
// already ran.
func fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, size)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT):
			return fmt.Errorf("%w: reserving %d bytes: %w", ErrNoSpace, size, err)
		}
		return nil // EOPNOTSUPP and the like: the reservation is an optimisation
	}
}

// startWriteback hands [off, off+n) to the kernel for writeback without
// waiting. Errors are ignored here and below: the final fsync reports any
// write error.
func startWriteback(fd int, off, n int64) {
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// settle waits until [off, off+n), handed to writeback one window earlier,
// is written and drops it from the page cache: it is on disk, and ReadBack
// wants to read it from there anyway.
func settle(fd int, off, n int64) {
	if n <= 0 {
		return
	}
	_ = unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
}

// noSpace marks ENOSPC and EDQUOT as ErrNoSpace, keeping the original error.
func noSpace(err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

// readAhead reads src on its own goroutine into buffers from pool and
// delivers each read (bytes and error) in order on the returned channel,
// which is closed after the first error (io.EOF included), or when ctx ends
// while the reader waits for a buffer (the caller sees ctx's error). At most
// nbuf buffers are in flight: one being read into, nbuf-2 waiting in the
// channel, one with the consumer, who returns it to pool. The reader takes a
// buffer only for the read it is about to make, so a camera stuck in a read
// holds that one buffer and no more. release stops the reader, waits until
// it has returned and gives back every buffer still in the channel: once
// release returns no Read of src is running or will start, and only the
// consumer's own buffer is still out of the pool.
func readAhead(ctx context.Context, pool *iobuf.Pool, src io.Reader) (<-chan chunk, func()) {
	ctx, stop := context.WithCancel(ctx)
	out := make(chan chunk, nbuf-2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			buf, err := pool.Get(ctx)
			if err != nil {
				return
			}
			var n int
			for empty := 0; n == 0 && err == nil; empty++ {
				if ctx.Err() != nil {
					pool.Put(buf)
					return
				}
				if empty == maxEmptyReads {
					err = io.ErrNoProgress
					break
				}
				n, err = src.Read(*buf)
			}
			select {
			case out <- chunk{buf, n, err}:
			case <-ctx.Done():
				pool.Put(buf)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			stop()
			<-done
			for c := range out {
				pool.Put(c.buf)
			}
		})
	}
}
