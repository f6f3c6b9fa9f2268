package custody

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// bbolt page layout (format version 2, little-endian hosts), as far as
// checkStructure needs it.
const (
	pageHeaderSize  = 16 // id u64, flags u16, count u16, overflow u32
	elemSize        = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	branchPageFlag  = 0x01
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
	bucketHeaderLen = 16 // root pgid u64, sequence u64
	boltMagic       = 0xED0CDAED
	maxTreeDepth    = 64
)

// checkStructure walks every B+tree page of a read transaction's snapshot,
// read from the file rather than through bbolt, and fails (wrapping
// ErrCorrupt, naming the page) on a page id outside the file, a page
// referenced twice (which includes a cycle), an unknown page type, or an
// element pointing outside its page. bbolt trusts these: a damaged page can
// send its cursors into an endless loop or read outside the mapped file, so
// Verify and Check run this first. Pages reachable from the transaction's
// meta are never rewritten while it is open, so a concurrent writer does
// not disturb the walk.
func (l *Ledger) checkStructure() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("check structure of %s: %w", l.path, err)
	}
	defer func() { _ = f.Close() }()
	for attempt := 0; ; attempt++ {
		err := l.db.View(func(tx *bolt.Tx) error {
			w := &pageWalker{f: f, pageSize: tx.DB().Info().PageSize}
			root, hwm, ok, err := w.meta(uint64(tx.ID()))
			if err != nil || !ok {
				if err == nil {
					err = errRetry
				}
				return err
			}
			// Pages past the end of the file are outside it whatever the
			// meta says: that bounds the bitmap of pages seen by the file.
			if fi, err := f.Stat(); err == nil {
				hwm = min(hwm, uint64(fi.Size())/uint64(w.pageSize))
			}
			w.hwm = hwm
			w.seen = make(pageSet, (hwm+63)/64)
			return w.bucket(root, nil, 0)
		})
		if errors.Is(err, errRetry) && attempt < 3 {
			continue // a writer reused the meta page of our snapshot; take a new one
		}
		if errors.Is(err, errRetry) {
			return fmt.Errorf("%w: no meta page matches the current transaction", ErrCorrupt)
		}
		return err
	}
}

var errRetry = errors.New("retry")

// pageWalker reads a bbolt file's pages itself. It reads each page once
// into a buffer of its depth in the tree, reused for the next page at that
// depth (the walk is depth first, so a page's buffer is free again once its
// subtree is done), and keeps the pages seen in a bitmap: a million-record
// ledger has some 400,000 pages, and a map and two reads per page were a
// sixth of a verify's CPU time.
type pageWalker struct {
	f        io.ReaderAt
	pageSize int
	hwm      uint64
	seen     pageSet
	bufs     [][]byte // by depth
}

// pageSet is a bitmap of page ids below the high water mark.
type pageSet []uint64

func (s pageSet) has(id uint64) bool { return s[id/64]&(1<<(id%64)) != 0 }
func (s pageSet) add(id uint64)      { s[id/64] |= 1 << (id % 64) }

// meta finds the meta page of transaction txid: its root bucket page and
// high water mark.
func (w *pageWalker) meta(txid uint64) (root, hwm uint64, ok bool, err error) {
	for i := range 2 {
		buf := make([]byte, 80)
		if _, err := w.f.ReadAt(buf, int64(i*w.pageSize)); err != nil {
			continue
		}
		m := buf[pageHeaderSize:]
		if binary.LittleEndian.Uint32(m[0:]) != boltMagic || binary.LittleEndian.Uint64(m[48:]) != txid {
			continue
		}
		return binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[40:]), true, nil
	}
	return 0, 0, false, nil
}

func (w *pageWalker) corrupt(id uint64, format string, args ...any) error {
	where := fmt.Sprintf("page %d", id)
	if id == 0 {
		where = "an inline bucket"
	}
	return fmt.Errorf("%w: the database file is damaged: %s: %s", ErrCorrupt, where, fmt.Sprintf(format, args...))
}

// page reads page id (with its overflow pages) into the buffer of depth.
func (w *pageWalker) page(id uint64, depth int) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, w.corrupt(id, "id outside the file's %d pages", w.hwm)
	}
	if w.seen.has(id) {
		return nil, w.corrupt(id, "referenced twice (or a cycle)")
	}
	w.seen.add(id)
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.pageSize))
	}
	buf := w.bufs[depth][:w.pageSize]
	if _, err := w.f.ReadAt(buf, int64(id)*int64(w.pageSize)); err != nil {
		return nil, w.corrupt(id, "read: %v", err)
	}
	if got := binary.LittleEndian.Uint64(buf); got != id {
		return nil, w.corrupt(id, "header says page %d", got)
	}
	overflow := uint64(binary.LittleEndian.Uint32(buf[12:]))
	if overflow == 0 {
		return buf, nil
	}
	if overflow >= w.hwm-id {
		return nil, w.corrupt(id, "%d overflow pages run past the end of the file", overflow)
	}
	n := (overflow + 1) * uint64(w.pageSize)
	if uint64(cap(buf)) < n {
		buf = append(buf, make([]byte, n-uint64(len(buf)))...)
		w.bufs[depth] = buf
	}
	buf = buf[:n]
	if _, err := w.f.ReadAt(buf[w.pageSize:], int64(id+1)*int64(w.pageSize)); err != nil {
		return nil, w.corrupt(id, "read: %v", err)
	}
	for o := uint64(1); o <= overflow; o++ {
		if w.seen.has(id + o) {
			return nil, w.corrupt(id+o, "referenced twice (or a cycle)")
		}
		w.seen.add(id + o)
	}
	return buf, nil
}

// bucket walks the tree of a bucket: from page root, or the inline page
// when root is 0.
func (w *pageWalker) bucket(root uint64, inline []byte, depth int) error {
	if depth > maxTreeDepth {
		return w.corrupt(root, "buckets nested deeper than %d", maxTreeDepth)
	}
	if root == 0 {
		return w.node(0, inline, depth, true)
	}
	p, err := w.page(root, depth)
	if err != nil {
		return err
	}
	return w.node(root, p, depth, false)
}

// node checks one branch or leaf page and descends.
func (w *pageWalker) node(id uint64, p []byte, depth int, inline bool) error {
	if depth > maxTreeDepth {
		return w.corrupt(id, "tree deeper than %d", maxTreeDepth)
	}
	if len(p) < pageHeaderSize {
		return w.corrupt(id, "inline bucket shorter than a page header")
	}
	flags := binary.LittleEndian.Uint16(p[8:])
	count := int(binary.LittleEndian.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return w.corrupt(id, "%d elements do not fit in the page", count)
	}
	// bbolt tells page types by equality, and follows an inline bucket's
	// page as a branch if it says so (looping on child page 0).
	switch {
	case flags == leafPageFlag:
	case flags == branchPageFlag && !inline:
		if count == 0 {
			return w.corrupt(id, "branch page without elements")
		}
	case inline:
		return w.corrupt(id, "inline bucket page type %#x is not a leaf", flags)
	default:
		return w.corrupt(id, "page type %#x is neither branch nor leaf", flags)
	}
	for i := range count {
		e := pageHeaderSize + i*elemSize
		el := p[e : e+elemSize]
		switch {
		case flags == branchPageFlag:
			pos, ksize := uint64(binary.LittleEndian.Uint32(el[0:])), uint64(binary.LittleEndian.Uint32(el[4:]))
			if uint64(e)+pos+ksize > uint64(len(p)) {
				return w.corrupt(id, "element %d's key lies outside the page", i)
			}
			child := binary.LittleEndian.Uint64(el[8:])
			cp, err := w.page(child, depth+1)
			if err != nil {
				return err
			}
			if err := w.node(child, cp, depth+1, false); err != nil {
				return err
			}
		default:
			eflags := binary.LittleEndian.Uint32(el[0:])
			pos, ksize, vsize := uint64(binary.LittleEndian.Uint32(el[4:])), uint64(binary.LittleEndian.Uint32(el[8:])), uint64(binary.LittleEndian.Uint32(el[12:]))
			start := uint64(e) + pos
			if start+ksize+vsize > uint64(len(p)) {
				return w.corrupt(id, "element %d's key or value lies outside the page", i)
			}
			if eflags&bucketLeafFlag == 0 {
				continue
			}
			v := p[start+ksize : start+ksize+vsize]
			if len(v) < bucketHeaderLen {
				return w.corrupt(id, "element %d is a bucket with a %d-byte header", i, len(v))
			}
			if err := w.bucket(binary.LittleEndian.Uint64(v), v[bucketHeaderLen:], depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
