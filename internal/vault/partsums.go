package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/digest"
)

// Part sums: the SHA-256 of each upload part of a vault copy, computed once
// by the ingest's cold read-back and kept beside the copy, in
// <dir>/parts/<id[0:2]>/<id>, so that the upload need not hash the copy
// again. The file is a cache, never evidence: the signed VAULTED record
// holds their composite (part size, part count, SHA-256 of the
// concatenated sums), and the upload trusts a sums file only when it
// reproduces that composite. A file left by an attempt whose VAULTED was
// never recorded (a crash between the two), or changed since, reproduces
// no recorded composite and is ignored; a later ingest of the same id
// replaces it.

// partSumsMagic starts every part sums file (version 1).
var partSumsMagic = []byte("evidenced part sums v1\n")

// PartSumsComposite is what the VAULTED record keeps of the part sums: the
// SHA-256 of the 32-byte sums concatenated in part order.
func PartSumsComposite(sums []digest.Sum) digest.Sum {
	h := digest.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	return digest.FromHash(h)
}

// partHasher hashes a stream in parts of size bytes (none if size is 0).
type partHasher struct {
	size int64
	in   int64 // bytes of the current part hashed so far
	cur  interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
		Reset()
	}
	sums []digest.Sum
}

func newPartHasher(size int64) *partHasher {
	p := &partHasher{size: size}
	if size > 0 {
		p.cur = digest.New()
	}
	return p
}

func (p *partHasher) write(b []byte) {
	if p.size == 0 {
		return
	}
	for len(b) > 0 {
		k := min(int64(len(b)), p.size-p.in)
		p.cur.Write(b[:k])
		p.in += k
		b = b[k:]
		if p.in == p.size {
			p.cut()
		}
	}
}

func (p *partHasher) cut() {
	var s digest.Sum
	copy(s[:], p.cur.Sum(nil))
	p.sums = append(p.sums, s)
	p.cur.Reset()
	p.in = 0
}

// finish returns the sums: a last shorter part is cut; an empty stream is
// one empty part, as an upload of zero bytes is one part.
func (p *partHasher) finish() []digest.Sum {
	if p.size == 0 {
		return nil
	}
	if p.in > 0 || len(p.sums) == 0 {
		p.cut()
	}
	return p.sums
}

// partSumsPath is where the part sums of id are kept.
func (v *Vault) partSumsPath(id string) string {
	return filepath.Join(v.dir, "parts", id[:2], id)
}

// WritePartSums keeps the part sums of id (parts of partSize bytes) beside
// its copy, durably: written to a partial, fsynced, renamed over any older
// file and the directory fsynced, before it returns. The caller records
// their composite only after that, so a record never names sums that a
// crash could lose.
func (v *Vault) WritePartSums(id string, partSize int64, sums []digest.Sum) error {
	if err := checkID("write part sums", id); err != nil {
		return err
	}
	if partSize <= 0 || len(sums) == 0 {
		return fmt.Errorf("vault write part sums %s: part size %d, %d sums", id, partSize, len(sums))
	}
	b := make([]byte, 0, len(partSumsMagic)+8+len(sums)*digest.Size)
	b = append(b, partSumsMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(partSize))
	for _, s := range sums {
		b = append(b, s[:]...)
	}
	shard := filepath.Dir(v.partSumsPath(id))
	made, err := v.mkdirSynced(shard)
	if err != nil {
		return fmt.Errorf("vault write part sums %s: %w", id, err)
	}
	if !made {
		// A shard found in place has its entry in parts/ fsynced again:
		// whoever made it may have stopped before its fsync.
		if err := v.syncDir(filepath.Dir(shard)); err != nil {
			return fmt.Errorf("vault write part sums %s: %w", id, err)
		}
	}
	f, tmp, err := v.createPartial(id)
	if err != nil {
		return fmt.Errorf("vault write part sums %s: %w", id, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("vault write part sums %s: %w", id, noSpace(err))
	}
	if err := v.finish(f); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("vault write part sums %s: %w", id, err)
	}
	if err := os.Rename(tmp, v.partSumsPath(id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("vault write part sums %s: %w", id, err)
	}
	if err := v.syncDir(shard); err != nil {
		return fmt.Errorf("vault write part sums %s: %w", id, err)
	}
	return nil
}

// ErrNoPartSums: the vault keeps no (readable, well-formed) part sums of
// the item.
var ErrNoPartSums = errors.New("no part sums kept")

// PartSums reads the part sums kept for id. They are unchecked: the caller
// compares their composite with the signed record before using them.
func (v *Vault) PartSums(id string) (partSize int64, sums []digest.Sum, err error) {
	if err := checkID("read part sums", id); err != nil {
		return 0, nil, err
	}
	f, err := os.OpenFile(v.partSumsPath(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("vault read part sums %s: %w: %w", id, ErrNoPartSums, err)
	}
	defer f.Close()
	const limit = 1 << 20 // 10,000 parts of 32 bytes fit many times over
	b := make([]byte, limit+1)
	// A file shorter than the buffer is the normal case: io.ReadFull's
	// io.ErrUnexpectedEOF (or io.EOF, empty) only says it ended.
	m, err := io.ReadFull(f, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("vault read part sums %s: %w: %w", id, ErrNoPartSums, err)
	}
	b = b[:m]
	hdr := len(partSumsMagic) + 8
	if m > limit || m < hdr+digest.Size || !bytes.HasPrefix(b, partSumsMagic) || (m-hdr)%digest.Size != 0 {
		return 0, nil, fmt.Errorf("vault read part sums %s: %w: malformed file (%d bytes)", id, ErrNoPartSums, m)
	}
	partSize = int64(binary.BigEndian.Uint64(b[len(partSumsMagic):hdr]))
	for off := hdr; off < m; off += digest.Size {
		var s digest.Sum
		copy(s[:], b[off:])
		sums = append(sums, s)
	}
	return partSize, sums, nil
}

// The VAULTED record's details that hold the composite of the part sums.
const (
	DetailPartSize  = "part_size"
	DetailPartCount = "part_count"
	DetailPartSums  = "part_sums_sha256"
)

// PartSumsDetails are the details a VAULTED record keeps of part sums cut
// at partSize: the part size, the part count and their composite.
func PartSumsDetails(partSize int64, sums []digest.Sum) map[string]string {
	return map[string]string{
		DetailPartSize:  strconv.FormatInt(partSize, 10),
		DetailPartCount: strconv.Itoa(len(sums)),
		DetailPartSums:  PartSumsComposite(sums).Hex(),
	}
}

// RecordedPartSums returns the part sums of id for parts of partSize bytes
// if, and only if, details (a signed VAULTED record's) name part sums at
// that part size and the sums file kept beside the copy reproduces their
// composite and count. Anything else — an older record without them, a
// different part size, a missing, stale or altered file — is an error
// wrapping ErrNoPartSums, and the caller hashes the copy itself.
func (v *Vault) RecordedPartSums(id string, details map[string]string, partSize int64) ([]digest.Sum, error) {
	ps, err1 := strconv.ParseInt(details[DetailPartSize], 10, 64)
	count, err2 := strconv.Atoi(details[DetailPartCount])
	composite, err3 := digest.ParseHex(details[DetailPartSums])
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("vault part sums of %s: %w: the record names none (%w)", id, ErrNoPartSums, err)
	}
	if ps != partSize {
		return nil, fmt.Errorf("vault part sums of %s: %w: recorded for parts of %d bytes, not %d", id, ErrNoPartSums, ps, partSize)
	}
	fps, sums, err := v.PartSums(id)
	if err != nil {
		return nil, err
	}
	if fps != ps || len(sums) != count || PartSumsComposite(sums) != composite {
		return nil, fmt.Errorf("vault part sums of %s: %w: the file kept (%d sums of %d-byte parts) does not reproduce the recorded composite", id, ErrNoPartSums, len(sums), fps)
	}
	return sums, nil
}
