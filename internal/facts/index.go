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
//	plates      plate 0x00 time item(12) offset(8) → JSON PlateFact
//	fuzzy       variant 0x00 plate → "" (the plate's confusion-folded key and its
//	            one-character deletions: a symmetric-deletion index, so every
//	            plate within one edit of a query, plus any OCR confusions, is
//	            found with a few point look-ups instead of a scan)
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
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
	if err := db.Update(func(tx *bolt.Tx) error { return createAll(tx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("facts index %s: %w", path, err)
	}
	return x, nil
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

// clear empties every bucket (before a rebuild).
func (x *Index) clear() error {
	return x.db.Update(func(tx *bolt.Tx) error {
		for _, b := range append(slices.Clone(allBuckets), stateBuckets...) {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		return createAll(tx)
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
	// for a file without such facts, or indexed before the index kept
	// them (a reindex writes them).
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

// fuzzyKeys are the plate's folded key and each of its one-character
// deletions.
func fuzzyKeys(p sidecar.Plate) []string {
	f := sidecar.FoldConfusions(p)
	out := []string{f}
	for i := range len(f) {
		out = append(out, f[:i]+f[i+1:])
	}
	return out
}

// batch collects one file's facts for a write transaction. first and
// last span the whole file's plate reads and fixes (they outlive a flush).
type batch struct {
	item        []byte
	puts        []kv
	count       int
	first, last time.Time
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
	bkt  []byte
	k, v []byte
}

func (b *batch) add(bkt, k, v []byte) { b.puts = append(b.puts, kv{bkt, k, v}) }

// addFact turns one parsed fact into index entries. camera is the docked
// camera the file came from (the recording link is per docked camera).
func (b *batch) addFact(camera string, f sidecar.Fact) error {
	at := f.Prov()
	switch f := f.(type) {
	case *sidecar.PlateRead:
		if f.PlateIssue != "" || f.Plate == "" || f.Time.IsZero() {
			return nil // kept un-normalised by the parser: nothing to look it up by
		}
		k := make([]byte, 0, len(f.Plate)+1+8+12+8)
		k = append(k, f.Plate...)
		k = append(k, 0)
		k = binary.BigEndian.AppendUint64(k, timeKey(f.Time))
		k = append(k, b.item...)
		k = binary.BigEndian.AppendUint64(k, uint64(at.Offset))
		v, err := json.Marshal(PlateFact{AsRead: f.AsRead, Plate: string(f.Plate), Confidence: f.Confidence, Region: f.Region,
			Lat: f.Lat, Lon: f.Lon, HasPos: f.HasPos, Heading: f.Heading, ANPRCamera: f.Camera, Crop: f.Crop, Line: at.Line})
		if err != nil {
			return err
		}
		b.add(bktPlates, k, v)
		b.saw(f.Time)
		for _, fk := range fuzzyKeys(f.Plate) {
			b.add(bktFuzzy, append(append([]byte(fk), 0), f.Plate...), []byte{})
		}
		b.count++
	case *sidecar.Fix:
		la, lo := cellOf(f.Lat, f.Lon)
		k := cellKey(la, lo)
		k = binary.BigEndian.AppendUint64(k, timeKey(f.Time))
		k = append(k, b.item...)
		k = binary.BigEndian.AppendUint64(k, uint64(at.Offset))
		v := binary.BigEndian.AppendUint64(nil, math.Float64bits(f.Lat))
		v = binary.BigEndian.AppendUint64(v, math.Float64bits(f.Lon))
		v = binary.BigEndian.AppendUint64(v, uint64(at.Line))
		b.add(bktFixes, k, v)
		b.saw(f.Time)
		b.count++
	case *sidecar.MediaInfo:
		from, to, ok := f.Span()
		if !ok {
			return nil // a recording that does not say when it began cannot be placed in time
		}
		k := append([]byte(camera), 0)
		k = binary.BigEndian.AppendUint64(k, timeKey(from))
		k = append(k, b.item...)
		b.add(bktRecordings, k, binary.BigEndian.AppendUint64(nil, timeKey(to)))
		b.count++
	}
	return nil
}

// flush writes the batch in one transaction and empties it.
func (x *Index) flush(b *batch) error {
	if len(b.puts) == 0 {
		return nil
	}
	// Sorted puts fill bbolt pages in order: far fewer splits.
	sort.Slice(b.puts, func(i, j int) bool {
		if c := bytes.Compare(b.puts[i].bkt, b.puts[j].bkt); c != 0 {
			return c < 0
		}
		return bytes.Compare(b.puts[i].k, b.puts[j].k) < 0
	})
	err := x.db.Update(func(tx *bolt.Tx) error {
		for i, p := range b.puts {
			bkt := tx.Bucket(p.bkt)
			if bytes.Equal(p.bkt, bktFuzzy) {
				// A plate read a thousand times has its fuzzy keys
				// written once: a look-up is far cheaper than
				// dirtying the page again.
				if i > 0 && bytes.Equal(b.puts[i-1].k, p.k) && bytes.Equal(b.puts[i-1].bkt, p.bkt) || bkt.Get(p.k) != nil {
					continue
				}
			}
			if err := bkt.Put(p.k, p.v); err != nil {
				return err
			}
		}
		return nil
	})
	b.puts = b.puts[:0]
	b.count = 0
	if err != nil {
		return fmt.Errorf("facts index: write: %w", err)
	}
	return nil
}

// putSource records one file's parse; its facts become visible.
func (x *Index) putSource(s Source) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return x.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bktSources).Put([]byte(s.Item), v) })
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
