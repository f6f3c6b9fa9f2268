package catalog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// An item is stored in the index in a compact binary form: a version byte
// (itemV1), then its fields in a fixed order, each string and time
// length-prefixed (uvarint), the numbers as varints. An index written
// before it holds JSON objects (their first byte is '{'); decodeItem reads
// both, so such an index is served as it is and its items are rewritten
// in the binary form as records move them on.
//
// Why: encoding/json was most of the CPU of writing an item at indexing
// and of reading one in a search (each search by officer over a month
// decodes thousands); the binary form costs a fraction of either, and one
// allocation for all of an item's strings.
const itemV1 = 1

// errItemEncoding: an item value in no encoding this version reads.
var errItemEncoding = errors.New("unknown item encoding")

// encodeItem is it in the index's binary form.
func encodeItem(it custody.Item) ([]byte, error) {
	b := make([]byte, 1, 256)
	b[0] = itemV1
	for _, s := range []string{it.ID, it.Camera, it.Kind, it.AssignedTo, it.SourcePath, it.SHA256, string(it.State),
		it.VaultPath, it.ObjectKey, it.VersionID, it.RetentionClass, it.Host, it.LastError} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, t := range []time.Time{it.RecordedAt, it.IngestedAt, it.RetainUntil} {
		tb, err := t.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode item %s: %w", it.ID, err)
		}
		b = binary.AppendUvarint(b, uint64(len(tb)))
		b = append(b, tb...)
	}
	b = binary.AppendVarint(b, it.Size)
	b = binary.AppendUvarint(b, it.DockSeq)
	return binary.AppendVarint(b, int64(it.UploadAttempts)), nil
}

// decodeItem reads an item value of the index: the binary form, or the
// JSON an earlier version wrote.
func decodeItem(v []byte, it *custody.Item) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, it)
	}
	if len(v) == 0 || v[0] != itemV1 {
		return errItemEncoding
	}
	d := itemDecoder{b: v[1:]}
	// One string holds every string field; each field is a slice of it.
	d.s = string(d.b)
	state := ""
	for _, p := range []*string{&it.ID, &it.Camera, &it.Kind, &it.AssignedTo, &it.SourcePath, &it.SHA256, &state,
		&it.VaultPath, &it.ObjectKey, &it.VersionID, &it.RetentionClass, &it.Host, &it.LastError} {
		*p = d.str()
	}
	it.State = custody.State(state)
	for _, p := range []*time.Time{&it.RecordedAt, &it.IngestedAt, &it.RetainUntil} {
		if tb := d.bytes(); d.err == nil {
			if err := p.UnmarshalBinary(tb); err != nil {
				return fmt.Errorf("decode item: %w", err)
			}
		}
	}
	it.Size = d.varint()
	it.DockSeq = d.uvarint()
	it.UploadAttempts = int(d.varint())
	if d.err == nil && d.off != len(d.b) {
		d.err = fmt.Errorf("%d bytes after the item", len(d.b)-d.off)
	}
	if d.err != nil {
		return fmt.Errorf("decode item: %w", d.err)
	}
	return nil
}

// itemDecoder reads encodeItem's fields in turn; the first error sticks.
type itemDecoder struct {
	b   []byte
	s   string // b as a string
	off int
	err error
}

func (d *itemDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, w := binary.Uvarint(d.b[d.off:])
	if w <= 0 {
		d.err = errors.New("truncated")
		return 0
	}
	d.off += w
	return n
}

// varint is binary.Varint's zig-zag decoding of the next uvarint.
func (d *itemDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// span is the next length-prefixed field's bounds.
func (d *itemDecoder) span() (int, int) {
	n := d.uvarint()
	if d.err != nil {
		return 0, 0
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = errors.New("truncated")
		return 0, 0
	}
	from := d.off
	d.off += int(n)
	return from, d.off
}

func (d *itemDecoder) str() string {
	from, to := d.span()
	return d.s[from:to]
}

func (d *itemDecoder) bytes() []byte {
	from, to := d.span()
	return d.b[from:to]
}
