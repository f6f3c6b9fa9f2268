// Package facts is the dock host's index of what its sidecar files say: GPS
// fixes, number-plate reads and each recording's own span in time, each with
// the vaulted file (item id, SHA-256) and the offset and line it came from.
//
// The index (<state_dir>/facts.db, bbolt) is derived data, never evidence of
// its own: every fact in it is re-derived by parsing the vaulted file again
// (Step.Rebuild), and a rebuild from the same files with the same parser
// versions gives the same bytes in every bucket, because every key and value
// is a function of the file alone (keys carry the item id, the fact's time
// and its byte offset; nothing records when or in what order it was
// indexed). The custody of the parsing itself — parser, version, source
// SHA-256, counts, rejects — is in the custody ledger (PARSED, PARSE_FAILED).
//
// Layout (all keys big-endian, times as nanoseconds since 1970 offset by
// 2^63 so that they sort):
//
//	sources     item id → JSON Source: the parse of one file, written last, so a
//	            file's facts are visible only once all of them are in
//	plates      plate 0x00 time item(12) offset(8) → the read's other fields
//	            (binary, see encode.go; JSON in an index written before)
//	fuzzy       folded 0x00 plate → "" (one key per distinct plate, by its
//	            confusion-folded form: a fuzzy search looks up the query's
//	            folded form and every string one edit from it, a few hundred
//	            point look-ups, instead of a scan; an index written before
//	            also holds each folded form's one-character deletions here,
//	            which such a search passes over as candidates that
//	            PlateDistance rejects, until a reindex drops them)
//	fixes       cell(8) time item(12) offset(8) → lat, lon (float64 bits), line
//	            (a cell is 0.01° × 0.01° of latitude and longitude)
//	recordings  camera 0x00 start item(12) → end (a recording's span from its
//	            MP4 header: creation time + duration)
//
// Two more buckets are the step's bookkeeping, not facts (Dump leaves them
// out; a rebuild empties them too):
//
//	progress    "position" → how far the step has read the ledger's journal
//	            (opaque to the index; see Journal), written only after every
//	            item before it was parsed or put in pending
//	pending     item id → "": items whose held copy was not available when
//	            the journal named them, tried again at each catch-up
package facts

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/sidecar"
)

var (
	bktSources    = []byte("sources")
	bktPlates     = []byte("plates")
	bktFuzzy      = []byte("fuzzy")
	bktFixes      = []byte("fixes")
	bktRecordings = []byte("recordings")
	allBuckets    = [][]byte{bktSources, bktPlates, bktFuzzy, bktFixes, bktRecordings}

	bktProgress  = []byte("progress")
	bktPending   = []byte("pending")
	stateBuckets = [][]byte{bktProgress, bktPending}
	keyPosition  = []byte("position")
	keyRules     = []byte("rules")
	// keySpans says every source of the index has its span of facts
	// (Source.First, Last), or has none to have (fillSpans).
	keySpans = []byte("spans")
)

// cellDeg is the side of a fixes cell in degrees (about 1.1 km of latitude):
// a search of a few hundred metres reads one to four cells.
const cellDeg = 0.01

// Index is the open facts index.
type Index struct {
	db   *bolt.DB
	path string
}

// Open opens (creating) the index at path.
func Open(path string) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("facts index %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("facts index %s: %w", path, err)
	}
	x := &Index{db: db, path: path}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := createAll(tx); err != nil {
			return err
		}
		return fillSpans(tx)
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("facts index %s: %w", path, err)
	}
	return x, nil
}

// fillSpans gives every source that has facts but no span (Source.First,
// Last: written by the parse since the index kept them, so missing only in
// an index written before) the span of its plate reads and fixes, found by
// one walk of those two buckets, and marks the index as done (keySpans):
// an export then reads only the sidecar files whose span meets its
// recording's, without a reindex. It runs once, in Open's transaction; an
// index already done costs one look-up. The spans are the ones a parse
// would give: the earliest and latest time among the file's indexed plate
// reads and fixes.
func fillSpans(tx *bolt.Tx) error {
	prog := tx.Bucket(bktProgress)
	if prog.Get(keySpans) != nil {
		return nil
	}
	need := map[string]*Source{} // by raw item id
	err := tx.Bucket(bktSources).ForEach(func(_, v []byte) error {
		var s Source
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if s.Failed != "" || s.Facts == 0 || !s.First.IsZero() && !s.Last.IsZero() {
			return nil
		}
		raw, err := itemBytes(s.Item)
		if err != nil {
			return nil // not a file the step could have indexed facts of
		}
		s.First, s.Last = time.Time{}, time.Time{}
		need[string(raw)] = &s
		return nil
	})
	if err != nil {
		return fmt.Errorf("fill the spans of older sources: %w", err)
	}
	if len(need) > 0 {
		// The fact's time and item are at a fixed place from the key's
		// end: plates (… 0x00 time item offset), fixes (cell time item
		// offset).
		for _, b := range []struct {
			name  []byte
			fixed int
		}{{bktPlates, 0}, {bktFixes, 36}} {
			err := tx.Bucket(b.name).ForEach(func(k, _ []byte) error {
				if len(k) < 28 || b.fixed != 0 && len(k) != b.fixed {
					return fmt.Errorf("%s key %x has the wrong length", b.name, k)
				}
				rest := k[len(k)-28:]
				s := need[string(rest[8:20])]
				if s == nil {
					return nil
				}
				t := keyTime(binary.BigEndian.Uint64(rest))
				if s.First.IsZero() || t.Before(s.First) {
					s.First = t
				}
				if s.Last.IsZero() || t.After(s.Last) {
					s.Last = t
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("fill the spans of older sources: %w", err)
			}
		}
		for _, s := range need {
			if s.First.IsZero() {
				continue // facts, but none with a time (a recording's own)
			}
			v, err := json.Marshal(s)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bktSources).Put([]byte(s.Item), v); err != nil {
				return err
			}
		}
	}
	return prog.Put(keySpans, []byte{1})
}

func createAll(tx *bolt.Tx) error {
	for _, b := range append(slices.Clone(allBuckets), stateBuckets...) {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the index.
func (x *Index) Close() error { return x.db.Close() }

// Path is the index's file.
func (x *Index) Path() string { return x.path }

// clear empties every bucket (before a rebuild): every source written from
// now on has its span.
func (x *Index) clear() error {
	return x.db.Update(func(tx *bolt.Tx) error {
		for _, b := range append(slices.Clone(allBuckets), stateBuckets...) {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		if err := createAll(tx); err != nil {
			return err
		}
		return tx.Bucket(bktProgress).Put(keySpans, []byte{1})
	})
}

// Source is one parsed file as the index knows it.
type Source struct {
	Item       string `json:"item"`
	Camera     string `json:"camera"`
	SourcePath string `json:"source_path"`
	SHA256     string `json:"sha256"`
	Parser     string `json:"parser"`
	Version    string `json:"parser_version"`
	Facts      int64  `json:"facts"`
	Rejected   int64  `json:"rejected"`
	// Failed says why the file yielded no facts (its PARSE_FAILED reason).
	Failed string `json:"failed,omitempty"`
	// First and Last are the times of the file's earliest and latest
	// indexed plate read or GPS fix: what lets an export skip the files
	// none of whose facts can lie in a recording's span (MayHold). Zero
	// for a file without such facts; for a file indexed before the index
	// kept them, Open fills them in once (fillSpans).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
}

// MayHold reports whether some of the file's facts may lie in from..to
// (both inclusive): false only when the index knows when its facts are
// and none of them is in the window.
func (s Source) MayHold(from, to time.Time) bool {
	if s.First.IsZero() || s.Last.IsZero() {
		return true
	}
	return !s.Last.Before(from) && !s.First.After(to)
}

// PlateFact is a plate read as indexed.
type PlateFact struct {
	AsRead     string  `json:"as_read"`
	Plate      string  `json:"plate"`
	Confidence float64 `json:"confidence"`
	Region     string  `json:"region,omitempty"`
	Lat        float64 `json:"lat,omitempty"`
	Lon        float64 `json:"lon,omitempty"`
	HasPos     bool    `json:"has_position,omitempty"`
	Heading    float64 `json:"heading,omitempty"`
	ANPRCamera string  `json:"anpr_camera,omitempty"`
	Crop       string  `json:"crop,omitempty"`
	Line       int64   `json:"line"`
}

func timeKey(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

func keyTime(k uint64) time.Time { return time.Unix(0, int64(k^(1<<63))).UTC() }

func itemBytes(id string) ([]byte, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 12 {
		return nil, fmt.Errorf("item id %q is not 24 hex digits", id)
	}
	return b, nil
}

func cellOf(lat, lon float64) (int32, int32) {
	return int32(math.Floor((lat + 90) / cellDeg)), int32(math.Floor((lon + 180) / cellDeg))
}

func cellKey(la, lo int32) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint32(k, uint32(la))
	binary.BigEndian.PutUint32(k[4:], uint32(lo))
	return k
}

// foldedKey is the plate's fuzzy key: its confusion-folded form, then 0x00
// and the plate.
func foldedKey(dst []byte, p sidecar.Plate) []byte {
	return append(append(append(dst, sidecar.FoldConfusions(p)...), 0), p...)
}

// foldedAlphabet is every character a normalised plate's folded form can
// hold (A-Z and 0-9, each confusion class as one).
var foldedAlphabet = func() []byte {
	var out []byte
	for _, c := range []byte("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		if f := sidecar.FoldConfusions(sidecar.Plate([]byte{c}))[0]; !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}()

// foldedNeighbours are f and every string one edit from it (a deletion, or
// a substitution or insertion of a folded character), each once, sorted:
// the folded keys a fuzzy search looks up. A plate within one edit of the
// query (PlateDistance ≤ 1) has a folded form among them, because an
// OCR confusion folds away and what is left is at most one edit.
func foldedNeighbours(f string) []string {
	set := map[string]struct{}{f: {}}
	for i := range len(f) + 1 {
		if i < len(f) {
			set[f[:i]+f[i+1:]] = struct{}{}
		}
		for _, c := range foldedAlphabet {
			set[f[:i]+string(c)+f[i:]] = struct{}{}
			if i < len(f) && c != f[i] {
				set[f[:i]+string(c)+f[i+1:]] = struct{}{}
			}
		}
	}
	out := slices.Collect(maps.Keys(set))
	slices.Sort(out)
	return out
}

// Buckets a batch writes, in the order of their names (the order a
// transaction's sorted puts take).
const (
	bFixes = iota
	bFuzzy
	bPlates
	bRecordings
)

var batchBuckets = [...][]byte{bFixes: bktFixes, bFuzzy: bktFuzzy, bPlates: bktPlates, bRecordings: bktRecordings}

// batch collects one file's facts for a write transaction. first and
// last span the whole file's plate reads and fixes (they outlive a flush).
//
// Keys and values are appended to arena chunks, not allocated one by one,
// and the fuzzy key is not collected per read: plates holds each distinct
// plate once, and the flush writes a plate's fuzzy key only when the index
// does not hold it yet (a plate read a thousand times has it written once,
// at the cost of one look-up per batch it appears in).
type batch struct {
	item        []byte
	puts        []kv
	plates      map[sidecar.Plate]struct{}
	arena       [][]byte
	count       int
	first, last time.Time
	// media is the recording's span as its header gives it (the first
	// MediaInfo that gives one): the PARSED record carries it, so an
	// export without the footage can still check a fact's link by time.
	media *[2]time.Time
}

// saw widens the file's span of facts to t.
func (b *batch) saw(t time.Time) {
	if b.first.IsZero() || t.Before(b.first) {
		b.first = t
	}
	if b.last.IsZero() || t.After(b.last) {
		b.last = t
	}
}

type kv struct {
	bkt  uint8
	k, v []byte
}

// fixesFill is the fixes bucket's page fill on a split.
const fixesFill = 0.9

// arenaChunk is the size of one arena chunk.
const arenaChunk = 1 << 20

// alloc returns n bytes of arena (length 0, capacity n) that stay valid
// until the batch is reset.
func (b *batch) alloc(n int) []byte {
	if len(b.arena) > 0 {
		last := b.arena[len(b.arena)-1]
		if cap(last)-len(last) >= n {
			b.arena[len(b.arena)-1] = last[:len(last)+n]
			return last[len(last) : len(last) : len(last)+n]
		}
	}
	c := make([]byte, n, max(n, arenaChunk))
	b.arena = append(b.arena, c)
	return c[:0:n]
}

// keep copies p into the arena.
func (b *batch) keep(p []byte) []byte { return append(b.alloc(len(p)), p...) }

func (b *batch) add(bkt uint8, k, v []byte) { b.puts = append(b.puts, kv{bkt, k, v}) }

// reset empties the batch, keeping its first arena chunk for the next.
func (b *batch) reset() {
	b.puts = b.puts[:0]
	clear(b.plates)
	if len(b.arena) > 0 {
		b.arena = b.arena[:1]
		b.arena[0] = b.arena[0][:0]
	}
	b.count = 0
}

// addFact turns one parsed fact into index entries. camera is the docked
// camera the file came from (the recording link is per docked camera).
func (b *batch) addFact(camera string, f sidecar.Fact) error {
	at := f.Prov()
	var scratch [256]byte
	switch f := f.(type) {
	case *sidecar.PlateRead:
		if f.PlateIssue != "" || f.Plate == "" || f.Time.IsZero() {
			return nil // kept un-normalised by the parser: nothing to look it up by
		}
		k := append(scratch[:0], f.Plate...)
		k = append(k, 0)
		k = binary.BigEndian.AppendUint64(k, timeKey(f.Time))
		k = append(k, b.item...)
		k = binary.BigEndian.AppendUint64(k, uint64(at.Offset))
		k = b.keep(k)
		v := b.keep(appendPlate(scratch[:0], &PlateFact{AsRead: f.AsRead, Confidence: f.Confidence, Region: f.Region,
			Lat: f.Lat, Lon: f.Lon, HasPos: f.HasPos, Heading: f.Heading, ANPRCamera: f.Camera, Crop: f.Crop, Line: at.Line}))
		b.add(bPlates, k, v)
		b.saw(f.Time)
		if b.plates == nil {
			b.plates = map[sidecar.Plate]struct{}{}
		}
		b.plates[f.Plate] = struct{}{}
		b.count++
	case *sidecar.Fix:
		la, lo := cellOf(f.Lat, f.Lon)
		k := b.alloc(36)
		k = binary.BigEndian.AppendUint32(k, uint32(la))
		k = binary.BigEndian.AppendUint32(k, uint32(lo))
		k = binary.BigEndian.AppendUint64(k, timeKey(f.Time))
		k = append(k, b.item...)
		k = binary.BigEndian.AppendUint64(k, uint64(at.Offset))
		v := b.alloc(24)
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(f.Lat))
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(f.Lon))
		v = binary.BigEndian.AppendUint64(v, uint64(at.Line))
		b.add(bFixes, k, v)
		b.saw(f.Time)
		b.count++
	case *sidecar.MediaInfo:
		from, to, ok := f.Span()
		if !ok {
			return nil // a recording that does not say when it began cannot be placed in time
		}
		if b.media == nil {
			b.media = &[2]time.Time{from, to}
		}
		k := append([]byte(camera), 0)
		k = binary.BigEndian.AppendUint64(k, timeKey(from))
		k = append(k, b.item...)
		b.add(bRecordings, k, binary.BigEndian.AppendUint64(nil, timeKey(to)))
		b.count++
	}
	return nil
}

// flush writes the batch in one transaction and empties it.
func (x *Index) flush(b *batch) error { return x.commit(b, nil) }

// commit writes the batch and, when src is not nil, the file's source
// record, in one transaction, and empties the batch: with the source, the
// file's facts become visible.
func (x *Index) commit(b *batch, src *Source) error {
	var sv []byte
	if src != nil {
		var err error
		if sv, err = json.Marshal(src); err != nil {
			return fmt.Errorf("facts index: source %s: %w", src.Item, err)
		}
	}
	if len(b.puts) == 0 && len(b.plates) == 0 && src == nil {
		return nil
	}
	err := x.db.Update(func(tx *bolt.Tx) error {
		// One fuzzy key per distinct plate: one already there is not
		// written again (a put would dirty its page for nothing).
		fz := tx.Bucket(bktFuzzy)
		var buf []byte
		for p := range b.plates {
			if buf = foldedKey(buf[:0], p); fz.Get(buf) == nil {
				b.add(bFuzzy, b.keep(buf), []byte{})
			}
		}
		// Sorted puts fill bbolt pages in order: far fewer splits.
		slices.SortFunc(b.puts, func(a, c kv) int {
			if a.bkt != c.bkt {
				return int(a.bkt) - int(c.bkt)
			}
			return bytes.Compare(a.k, c.k)
		})
		var bkt *bolt.Bucket
		for i, p := range b.puts {
			if i == 0 || p.bkt != b.puts[i-1].bkt {
				bkt = tx.Bucket(batchBuckets[p.bkt])
				if p.bkt == bFixes {
					// A track's fixes come in time order and land at
					// the end of each cell's range: pages split full
					// rather than half empty. (The plates and fuzzy
					// keys land anywhere: bbolt's half-full split
					// suits them.)
					bkt.FillPercent = fixesFill
				}
			}
			if err := bkt.Put(p.k, p.v); err != nil {
				return err
			}
		}
		if src != nil {
			return tx.Bucket(bktSources).Put([]byte(src.Item), sv)
		}
		return nil
	})
	b.reset()
	if err != nil {
		return fmt.Errorf("facts index: write: %w", err)
	}
	return nil
}

// Source returns the index's record of the file item, if it has one.
func (x *Index) Source(id string) (Source, bool, error) {
	var s Source
	var ok bool
	err := x.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktSources).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &s)
	})
	return s, ok, err
}

// Dump calls fn for every key and value of every bucket, in order: two
// indexes with the same dump hold the same facts (a rebuild is checked
// this way).
func (x *Index) Dump(fn func(bucket string, k, v []byte) error) error {
	return x.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if err := tx.Bucket(name).ForEach(func(k, v []byte) error { return fn(string(name), k, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats counts the entries of each bucket.
func (x *Index) Stats() (map[string]int, error) {
	out := map[string]int{}
	err := x.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			out[string(name)] = tx.Bucket(name).Stats().KeyN
		}
		return nil
	})
	return out, err
}

// checkCtx is how often a long walk looks at its context.
const checkCtx = 4096

func ctxEvery(ctx context.Context, n int) error {
	if n%checkCtx == 0 {
		return ctx.Err()
	}
	return nil
}

// position is the journal position the last catch-up reached, and false
// when none was written (a new or rebuilt index: everything is looked at).
func (x *Index) position() ([]byte, []string, bool, error) {
	var pos []byte
	var pending []string
	err := x.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktProgress).Get(keyPosition); v != nil {
			pos = bytes.Clone(v)
		}
		return tx.Bucket(bktPending).ForEach(func(k, _ []byte) error {
			pending = append(pending, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("facts index: read the catch-up position: %w", err)
	}
	return pos, pending, pos != nil, nil
}

// positionRules is the RulesKey the stored position was reached under
// ("" for a position from before rules were kept, or none).
func (x *Index) positionRules() (string, error) {
	var rules string
	err := x.db.View(func(tx *bolt.Tx) error {
		rules = string(tx.Bucket(bktProgress).Get(keyRules))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("facts index: read the catch-up rules: %w", err)
	}
	return rules, nil
}

// advance writes the new position and the items still pending in one
// transaction, replacing the old pending set.
//
// rules is the Step's RulesKey in force for the catch-up that ends there.
func (x *Index) advance(pos []byte, pending []string, rules string) error {
	err := x.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bktPending); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bktPending)
		if err != nil {
			return err
		}
		for _, id := range pending {
			if err := b.Put([]byte(id), []byte{}); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bktProgress).Put(keyRules, []byte(rules)); err != nil {
			return err
		}
		return tx.Bucket(bktProgress).Put(keyPosition, pos)
	})
	if err != nil {
		return fmt.Errorf("facts index: write the catch-up position: %w", err)
	}
	return nil
}
