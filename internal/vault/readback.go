package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/digest"
)

// ReadBack re-reads the complete copy of id cold and returns its SHA-256 and
// length. Ingest compares them with what Store streamed before the item
// counts as vaulted; verify compares them with the ledger. A missing copy is
// an error wrapping fs.ErrNotExist.
//
// Cold means from the storage device, not from the page cache the copy just
// filled: otherwise the read-back would only re-hash the very memory that
// was written and prove nothing about the disk. Before reading, ReadBack
// fdatasyncs the file (DONTNEED cannot drop dirty pages) and then asks the
// kernel to drop its cached pages (posix_fadvise DONTNEED), then reads with
// SEQUENTIAL and NOREUSE advice, and drops the pages again afterwards so that
// footage does not crowd the cache.
//
// Why that is enough: on local block file systems (ext4, XFS, btrfs) clean,
// unmapped page-cache pages of the file are dropped synchronously, so every
// read goes through the file system to the block device. That catches what
// the read-back is for: lost or misdirected writes, a file system or driver
// bug, a copy the kernel accepted but the device did not keep (the fsync
// reported it, or the data read now differs).
//
// Its limits, stated plainly: pages that another process has mapped or
// locked stay cached; ZFS keeps its own cache (ARC) that fadvise does not
// reach; a device-mapper cache (dm-cache, bcache), a RAID controller or the
// drive's own DRAM may answer the read without touching the medium; network
// file systems drop the client's cache only. ReadBack checks the outcome
// with mincore and logs (once at warn, then at debug) when pages were still
// resident, so a vault on such a file system is noticed; it does not fail,
// because the copy is still verified against the stream either way.
func (v *Vault) ReadBack(ctx context.Context, id string) (digest.Sum, int64, error) {
	whole, n, _, err := v.ReadBackParts(ctx, id, 0)
	return whole, n, err
}

// ReadBackParts is ReadBack that also returns the SHA-256 of each part of
// partSize bytes (the last one shorter), computed from the same cold reads
// as the whole: the sums are of the bytes on the device, and the whole
// proves them to be the recording's once it equals what was streamed. With
// partSize 0 no part is hashed and sums is nil.
func (v *Vault) ReadBackParts(ctx context.Context, id string, partSize int64) (whole digest.Sum, n int64, sums []digest.Sum, err error) {
	if err := checkID("read back", id); err != nil {
		return digest.Sum{}, 0, nil, err
	}
	if partSize < 0 {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: negative part size %d", id, partSize)
	}
	f, err := os.OpenFile(v.Path(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: %w", id, err)
	}
	if !fi.Mode().IsRegular() {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: %s is not a regular file (%s)", id, f.Name(), fi.Mode().Type())
	}
	fd := int(f.Fd())
	resident, err := dropCache(fd, fi.Size())
	if err != nil {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: %w", id, err)
	}
	if resident != 0 {
		log := v.log.Debug
		if v.warnedWarm.CompareAndSwap(false, true) {
			log = v.log.Warn
		}
		log("vault read-back not fully cold: pages still cached after dropping them",
			"vault", v.dir, "item", id, "resident_pages", resident, "pages", pages(fi.Size()))
	}
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL)
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_NOREUSE)
	defer unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)

	// One buffer for the whole read-back, taken from the budget once: a
	// buffer per read would queue every 1 MiB of the read-back behind the
	// copies' read-aheads when many cameras share the budget (measured: 16
	// cameras at once ran 30% slower in one round), and the disk reads the
	// read-back makes are what the cameras' SAFE TO UNDOCK waits for.
	bp, err := v.bufs.Get(ctx)
	if err != nil {
		return digest.Sum{}, 0, nil, fmt.Errorf("vault read back %s: %w", id, err)
	}
	defer v.bufs.Put(bp)
	h := digest.New()
	ph := newPartHasher(partSize)
	pw := startPartWorker(ph)
	defer pw.stop()
	for {
		if err := ctx.Err(); err != nil {
			return digest.Sum{}, n, nil, fmt.Errorf("vault read back %s: %w", id, err)
		}
		m, err := f.Read(*bp)
		pw.hashBoth(h, (*bp)[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return digest.Sum{}, n, nil, fmt.Errorf("vault read back %s: %w", id, err)
		}
	}
	return digest.FromHash(h), n, ph.finish(), nil
}

// partWorker hashes the parts of one read-back on a goroutine of its own,
// started once per read-back (not once per read), while the reading
// goroutine hashes the whole: hashed one after the other on the reading
// goroutine, the second SHA-256 made the read-back 2.5× slower
// (BenchmarkReadBack, docs/BENCHMARKS.md), and the read-back is what SAFE
// TO UNDOCK waits for. nil when there are no parts to hash.
type partWorker struct {
	in   chan []byte   // the next read, for the part hasher
	done chan struct{} // the part hasher is done with it
}

// startPartWorker starts the worker for ph (nil, and no goroutine, when ph
// hashes no parts). stop must be called once the read-back is over.
func startPartWorker(ph *partHasher) *partWorker {
	if ph.size == 0 {
		return nil
	}
	w := &partWorker{in: make(chan []byte), done: make(chan struct{})}
	go func() {
		for b := range w.in {
			ph.write(b)
			w.done <- struct{}{}
		}
	}()
	return w
}

// hashBoth feeds b to the whole's hash h and to the part hasher, the two
// at once, and returns when both have taken every byte of it: the caller
// reads the next bytes into the same buffer, and finishes the part hasher
// (on its own goroutine) only after the last hashBoth.
func (w *partWorker) hashBoth(h io.Writer, b []byte) {
	if w == nil || len(b) == 0 {
		h.Write(b)
		return
	}
	w.in <- b
	h.Write(b)
	<-w.done
}

// stop ends the worker's goroutine.
func (w *partWorker) stop() {
	if w != nil {
		close(w.in)
	}
}

// dropCache makes fd's data durable and drops its pages from the page cache,
// then reports how many of its pages are still resident (-1: could not
// tell).
func dropCache(fd int, size int64) (int64, error) {
	for {
		err := unix.Fdatasync(fd)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("fdatasync: %w", err)
		}
		break
	}
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	return residentPages(fd, size), nil
}

func pages(size int64) int64 {
	ps := int64(os.Getpagesize())
	return (size + ps - 1) / ps
}

// residentPages counts the pages of fd's first size bytes that are in the
// page cache, mapping the file (without touching it, so nothing is read) a
// window at a time and asking mincore. -1 if the kernel would not say.
func residentPages(fd int, size int64) int64 {
	const window = 1 << 30
	ps := int64(os.Getpagesize())
	var resident int64
	vec := make([]byte, pages(min(size, window)))
	for off := int64(0); off < size; off += window {
		length := min(size-off, window)
		m, err := unix.Mmap(fd, off, int(length), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return -1
		}
		np := (length + ps - 1) / ps
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(length), uintptr(unsafe.Pointer(&vec[0])))
		unix.Munmap(m)
		if errno != 0 {
			return -1
		}
		for _, b := range vec[:np] {
			resident += int64(b & 1)
		}
	}
	return resident
}
