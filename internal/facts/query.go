package facts

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/sidecar"
)

// Hit kinds.
const (
	HitPlateRead = "plate_read"
	HitGPSFix    = "gps_fix"
)

// Hit is one fact that answers a search, with where it came from and the
// recordings it is linked to: those of the same docked camera whose span
// (MP4 creation time + duration) covers the fact's time.
type Hit struct {
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	Source Source    `json:"source"`
	Offset int64     `json:"offset"`
	Line   int64     `json:"line,omitempty"`
	// Plate and Distance (weighted edits from the plate asked for; 0 is an
	// exact match) for a plate read.
	Plate    *PlateFact `json:"plate,omitempty"`
	Distance float64    `json:"distance"`
	// Lat, Lon and Metres (from the point asked about) for a GPS fix; Fixes
	// is how many fixes of the same file and recording were inside the
	// radius and window (the hit is the nearest of them).
	Lat    float64 `json:"lat,omitempty"`
	Lon    float64 `json:"lon,omitempty"`
	Metres float64 `json:"metres,omitempty"`
	Fixes  int     `json:"fixes,omitempty"`
	// Recording is the linked recording's item id; "" when no recording of
	// that camera covers the fact's time (the hit is then the file alone).
	Recording string `json:"recording,omitempty"`
}

// PlateQuery asks for the reads of one plate.
type PlateQuery struct {
	Plate sidecar.Plate
	// Fuzzy also finds plates within one edit (an arbitrary substitution,
	// insertion or deletion), or any number of OCR confusions costing no
	// more (0/O/D, 1/I, 8/B, 5/S, 2/Z: a quarter each).
	Fuzzy        bool
	Since, Until time.Time // zero: open; Until exclusive
	// Limit caps the hits (0: DefaultLimit).
	Limit int
}

// DefaultLimit caps a search's hits unless the query says otherwise.
const DefaultLimit = 1000

// fuzzyReach is the distance a fuzzy search reaches (in edits).
const fuzzyReach = 1

// FindPlate returns the reads of q.Plate (and, fuzzy, of the plates near
// it), nearest plate first, then the more confident read, then by time.
func (x *Index) FindPlate(ctx context.Context, q PlateQuery) ([]Hit, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	var hits []Hit
	err := x.db.View(func(tx *bolt.Tx) error {
		plates := map[sidecar.Plate]float64{q.Plate: 0}
		if q.Fuzzy {
			if err := fuzzyCandidates(tx, q.Plate, plates); err != nil {
				return err
			}
		}
		v := newView(tx)
		n := 0
		for p, d := range plates {
			prefix := append([]byte(p), 0)
			c := tx.Bucket(bktPlates).Cursor()
			seek := prefix
			if !q.Since.IsZero() {
				seek = binary.BigEndian.AppendUint64(append([]byte{}, prefix...), timeKey(q.Since))
			}
			for k, val := c.Seek(seek); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
				n++
				if err := ctxEvery(ctx, n); err != nil {
					return err
				}
				rest := k[len(prefix):]
				if len(rest) != 28 {
					return fmt.Errorf("facts index: plates key %x has the wrong length", k)
				}
				at := keyTime(binary.BigEndian.Uint64(rest))
				if !q.Until.IsZero() && !at.Before(q.Until) {
					break
				}
				src, ok, err := v.source(rest[8:20])
				if err != nil {
					return err
				}
				if !ok {
					continue // a file whose parse never completed
				}
				pf, err := decodePlate(val, p)
				if err != nil {
					return fmt.Errorf("facts index: plate read %x: %w", k, err)
				}
				h := Hit{Kind: HitPlateRead, Time: at, Source: src, Offset: int64(binary.BigEndian.Uint64(rest[20:])),
					Line: pf.Line, Plate: &pf, Distance: d}
				recs, err := v.recordings(src.Camera, at)
				if err != nil {
					return err
				}
				hits = append(hits, linked(h, recs)...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find plate %s: %w", q.Plate, err)
	}
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		switch {
		case a.Distance != b.Distance:
			return a.Distance < b.Distance
		case a.Plate.Confidence != b.Plate.Confidence:
			return a.Plate.Confidence > b.Plate.Confidence
		case !a.Time.Equal(b.Time):
			return a.Time.Before(b.Time)
		}
		return a.Recording < b.Recording
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, nil
}

// fuzzyCandidates adds to plates every indexed plate within fuzzyReach of
// q, with its distance: the look-up of the folded forms one edit from q's
// finds each plate whose folded form is one of them (a superset of those
// within reach), and PlateDistance keeps the ones really within it.
func fuzzyCandidates(tx *bolt.Tx, q sidecar.Plate, plates map[sidecar.Plate]float64) error {
	c := tx.Bucket(bktFuzzy).Cursor()
	seen := map[sidecar.Plate]bool{}
	var cands []sidecar.PlateCandidate
	var prefix []byte
	for _, fk := range foldedNeighbours(sidecar.FoldConfusions(q)) {
		prefix = append(append(prefix[:0], fk...), 0)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			p := sidecar.Plate(k[len(prefix):])
			if !seen[p] {
				seen[p] = true
				cands = append(cands, sidecar.PlateCandidate{Plate: p})
			}
		}
	}
	for _, m := range sidecar.MatchPlates(q, cands, fuzzyReach) {
		plates[cands[m.Index].Plate] = m.Distance
	}
	return nil
}

// FindNear returns, for each recording (or, outside any recording, each GPS
// file) whose camera was within n.Radius metres of n.Lat, n.Lon at some
// time in [n.Since, n.Until], the nearest such fix, earliest first.
func (x *Index) FindNear(ctx context.Context, n sidecar.Near, limit int) ([]Hit, error) {
	if n.Since.IsZero() {
		n.Since = time.Unix(0, math.MinInt64)
	}
	if n.Until.IsZero() {
		n.Until = time.Unix(0, math.MaxInt64)
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	cells, err := cellsAround(n)
	if err != nil {
		return nil, err
	}
	type group struct{ item, rec string }
	best := map[group]*Hit{}
	err = x.db.View(func(tx *bolt.Tx) error {
		v := newView(tx)
		c := tx.Bucket(bktFixes).Cursor()
		count := 0
		for _, cell := range cells {
			from := binary.BigEndian.AppendUint64(append([]byte{}, cell...), timeKey(n.Since))
			for k, val := c.Seek(from); k != nil && bytes.HasPrefix(k, cell); k, val = c.Next() {
				count++
				if err := ctxEvery(ctx, count); err != nil {
					return err
				}
				if len(k) != 36 || len(val) != 24 {
					return fmt.Errorf("facts index: fixes entry %x has the wrong length", k)
				}
				at := keyTime(binary.BigEndian.Uint64(k[8:]))
				if at.After(n.Until) {
					break
				}
				lat := math.Float64frombits(binary.BigEndian.Uint64(val))
				lon := math.Float64frombits(binary.BigEndian.Uint64(val[8:]))
				m := sidecar.Haversine(n.Lat, n.Lon, lat, lon)
				if m > n.Radius {
					continue
				}
				src, ok, err := v.source(k[16:28])
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				h := Hit{Kind: HitGPSFix, Time: at, Source: src, Offset: int64(binary.BigEndian.Uint64(k[28:])),
					Line: int64(binary.BigEndian.Uint64(val[16:])), Lat: lat, Lon: lon, Metres: m}
				recs, err := v.recordings(src.Camera, at)
				if err != nil {
					return err
				}
				for _, lh := range linked(h, recs) {
					g := group{src.Item, lh.Recording}
					if b := best[g]; b == nil {
						lh.Fixes = 1
						best[g] = &lh
					} else {
						b.Fixes++
						if lh.Metres < b.Metres || (lh.Metres == b.Metres && lh.Time.Before(b.Time)) {
							lh.Fixes = b.Fixes
							*b = lh
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find near %.6f,%.6f: %w", n.Lat, n.Lon, err)
	}
	hits := make([]Hit, 0, len(best))
	for _, h := range best {
		hits = append(hits, *h)
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		switch {
		case !a.Time.Equal(b.Time):
			return a.Time.Before(b.Time)
		case a.Source.Item != b.Source.Item:
			return a.Source.Item < b.Source.Item
		}
		return a.Recording < b.Recording
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits, nil
}

// maxCells bounds a near search (about a 150 km radius at the equator):
// beyond it the question is not "near".
const maxCells = 40000

// cellsAround lists the cells the circle's bounding box touches.
func cellsAround(n sidecar.Near) ([][]byte, error) {
	const mPerDeg = 111320.0
	dLat := n.Radius / mPerDeg
	cos := math.Cos(n.Lat * math.Pi / 180)
	dLon := 180.0
	if cos > 1e-9 {
		dLon = math.Min(180, n.Radius/(mPerDeg*cos))
	}
	la0, lo0 := cellOf(math.Max(-90, n.Lat-dLat), math.Max(-180, n.Lon-dLon))
	la1, lo1 := cellOf(math.Min(90, n.Lat+dLat), math.Min(180, n.Lon+dLon))
	if int64(la1-la0+1)*int64(lo1-lo0+1) > maxCells {
		return nil, fmt.Errorf("near: a %.0f m radius is too large to search (at most about 150 km)", n.Radius)
	}
	var out [][]byte
	for la := la0; la <= la1; la++ {
		for lo := lo0; lo <= lo1; lo++ {
			out = append(out, cellKey(la, lo))
		}
	}
	return out, nil
}

// linked is h once per linked recording, or h alone when none covers it.
func linked(h Hit, recs []string) []Hit {
	if len(recs) == 0 {
		return []Hit{h}
	}
	out := make([]Hit, 0, len(recs))
	for _, r := range recs {
		c := h
		c.Recording = r
		out = append(out, c)
	}
	return out
}

// view caches, within one read transaction, the sources and each camera's
// recordings that a search touches.
type view struct {
	tx      *bolt.Tx
	sources map[string]*Source // by raw item id; nil: not complete
	spans   map[string][]span
}

type span struct {
	start, end time.Time
	item       string
}

func newView(tx *bolt.Tx) *view {
	return &view{tx: tx, sources: map[string]*Source{}, spans: map[string][]span{}}
}

func (v *view) source(raw []byte) (Source, bool, error) {
	if s, ok := v.sources[string(raw)]; ok {
		if s == nil {
			return Source{}, false, nil
		}
		return *s, true, nil
	}
	val := v.tx.Bucket(bktSources).Get([]byte(hex.EncodeToString(raw)))
	if val == nil {
		v.sources[string(raw)] = nil
		return Source{}, false, nil
	}
	var s Source
	if err := json.Unmarshal(val, &s); err != nil {
		return Source{}, false, fmt.Errorf("facts index: source %x: %w", raw, err)
	}
	if s.Failed != "" {
		v.sources[string(raw)] = nil
		return Source{}, false, nil
	}
	v.sources[string(raw)] = &s
	return s, true, nil
}

// recordings are the items of camera whose span covers t (bounds
// inclusive), only those whose parse completed.
func (v *view) recordings(camera string, t time.Time) ([]string, error) {
	spans, ok := v.spans[camera]
	if !ok {
		prefix := append([]byte(camera), 0)
		c := v.tx.Bucket(bktRecordings).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			rest := k[len(prefix):]
			if len(rest) != 20 || len(val) != 8 {
				return nil, fmt.Errorf("facts index: recordings key %x has the wrong length", k)
			}
			if _, ok, err := v.source(rest[8:]); err != nil || !ok {
				if err != nil {
					return nil, err
				}
				continue
			}
			spans = append(spans, span{start: keyTime(binary.BigEndian.Uint64(rest)), end: keyTime(binary.BigEndian.Uint64(val)), item: hex.EncodeToString(rest[8:])})
		}
		v.spans[camera] = spans
	}
	var out []string
	for _, s := range spans {
		if !t.Before(s.start) && !t.After(s.end) {
			out = append(out, s.item)
		}
	}
	return out, nil
}

// Link is what the index links to one recording: its camera and span
// (creation time + duration, from its own header), and the sidecar files of
// the same docked camera whose facts may fall in that span.
type Link struct {
	Camera     string
	Start, End time.Time
	// Sources are the camera's parsed sidecar files (every parser but the
	// recordings' own), in item order, each with the span of its facts.
	// Which of their facts lie in the recording's span is for the caller
	// to re-derive from the held copy (the index holds facts by plate and
	// by place, not by file); a file whose facts all lie outside it
	// (Source.MayHold) need not be read.
	Sources []Source
}

// Linked returns what the index links to the recording id; false when the
// index holds no span for it (not a recording, no creation time in its
// header, or not parsed yet).
func (x *Index) Linked(ctx context.Context, id string) (Link, bool, error) {
	raw, err := itemBytes(id)
	if err != nil {
		return Link{}, false, nil
	}
	var l Link
	var found bool
	err = x.db.View(func(tx *bolt.Tx) error {
		v := newView(tx)
		src, ok, err := v.source(raw)
		if err != nil || !ok {
			return err
		}
		prefix := append([]byte(src.Camera), 0)
		c := tx.Bucket(bktRecordings).Cursor()
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			rest := k[len(prefix):]
			if len(rest) != 20 || len(val) != 8 {
				return fmt.Errorf("facts index: recordings key %x has the wrong length", k)
			}
			if bytes.Equal(rest[8:], raw) {
				l = Link{Camera: src.Camera, Start: keyTime(binary.BigEndian.Uint64(rest)), End: keyTime(binary.BigEndian.Uint64(val))}
				found = true
				break
			}
		}
		if !found {
			return nil
		}
		n := 0
		return tx.Bucket(bktSources).ForEach(func(_, val []byte) error {
			n++
			if err := ctxEvery(ctx, n); err != nil {
				return err
			}
			var s Source
			if err := json.Unmarshal(val, &s); err != nil {
				return fmt.Errorf("facts index: source: %w", err)
			}
			if s.Camera == l.Camera && s.Failed == "" && s.Parser != (&sidecar.MP4{}).Name() && s.Facts > 0 {
				l.Sources = append(l.Sources, s)
			}
			return nil
		})
	})
	if err != nil {
		return Link{}, false, fmt.Errorf("facts linked to %s: %w", id, err)
	}
	return l, found, nil
}
