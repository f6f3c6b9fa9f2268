package custody

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestPageWalkerStructure runs checkStructure's page walk over hand-made
// page images: a sound tree passes, and a page reached twice (directly, as
// the overflow of another page in either order, or through a cycle) or a
// page id outside the file fails with ErrCorrupt naming the page. The
// walker reads each page once into a per-depth buffer and tracks pages in a
// bitmap; these are what that bookkeeping must still catch.
func TestPageWalkerStructure(t *testing.T) {
	const ps = 4096
	type pg struct {
		id       uint64
		branch   bool
		overflow uint32
		children []uint64 // branch elements
	}
	image := func(pages ...pg) []byte {
		img := make([]byte, 8*ps)
		for _, p := range pages {
			b := img[p.id*ps:]
			binary.LittleEndian.PutUint64(b, p.id)
			flags := uint16(leafPageFlag)
			if p.branch {
				flags = branchPageFlag
			}
			binary.LittleEndian.PutUint16(b[8:], flags)
			binary.LittleEndian.PutUint16(b[10:], uint16(len(p.children)))
			binary.LittleEndian.PutUint32(b[12:], p.overflow)
			for i, c := range p.children {
				binary.LittleEndian.PutUint64(b[pageHeaderSize+i*elemSize+8:], c)
			}
		}
		return img
	}
	leaves := []pg{{id: 3}, {id: 4, overflow: 1}, {id: 5}, {id: 6}}
	for _, c := range []struct {
		name string
		root pg
		more []pg
		want string // "" for sound; else the page and what the error says
	}{
		{"sound", pg{id: 2, branch: true, children: []uint64{3, 4, 6}}, nil, ""},
		{"same child twice", pg{id: 2, branch: true, children: []uint64{3, 3}}, nil, "page 3: referenced twice"},
		{"overflow page referenced after its page", pg{id: 2, branch: true, children: []uint64{4, 5}}, nil, "page 5: referenced twice"},
		{"overflow page referenced before its page", pg{id: 2, branch: true, children: []uint64{5, 4}}, nil, "page 5: referenced twice"},
		{"cycle", pg{id: 2, branch: true, children: []uint64{7}}, []pg{{id: 7, branch: true, children: []uint64{2}}}, "page 2: referenced twice"},
		{"outside the file", pg{id: 2, branch: true, children: []uint64{3, 9}}, nil, "page 9: id outside the file's 8 pages"},
	} {
		img := image(append(append([]pg{c.root}, leaves...), c.more...)...)
		w := &pageWalker{f: bytes.NewReader(img), pageSize: ps, hwm: 8, seen: make(pageSet, 1)}
		err := w.bucket(2, nil, 0)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want ErrCorrupt saying %q", c.name, err, c.want)
		}
	}
}
