package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/sidecar"
)

// plateSet is a generated index of plate reads written through the index's
// own write path (batch, commit), and the distinct plates it holds: plates
// and their neighbours by an OCR confusion, a substitution, an insertion,
// a deletion and a swap of two characters, so that every kind of near
// miss is there to be found, or not.
func plateSet(t *testing.T) (*Index, []sidecar.Plate) {
	t.Helper()
	x, err := Open(filepath.Join(t.TempDir(), "facts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	rng := rand.New(rand.NewPCG(6, 17))
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	confuse := map[byte]byte{'0': 'O', 'O': 'D', 'D': '0', '1': 'I', 'I': '1', '8': 'B', 'B': '8', '5': 'S', 'S': '5', '2': 'Z', 'Z': '2'}
	seen := map[sidecar.Plate]bool{}
	var plates []sidecar.Plate
	addPlate := func(s string) {
		if p := sidecar.Plate(s); len(p) > 0 && len(p) <= sidecar.MaxPlateLen && !seen[p] {
			seen[p] = true
			plates = append(plates, p)
		}
	}
	for range 150 {
		p := []byte(fmt.Sprintf("%s%03d%03d", []string{"CA", "ND", "GP", "CAW"}[rng.IntN(4)], rng.IntN(1000), rng.IntN(1000)))
		addPlate(string(p))
		i := rng.IntN(len(p))
		for j := range p {
			if c, ok := confuse[p[j]]; ok {
				addPlate(string(p[:j]) + string(c) + string(p[j+1:]))
				break
			}
		}
		addPlate(string(p[:i]) + string(chars[rng.IntN(len(chars))]) + string(p[i+1:]))
		addPlate(string(p[:i]) + string(chars[rng.IntN(len(chars))]) + string(p[i:]))
		addPlate(string(p[:i]) + string(p[i+1:]))
		if i+1 < len(p) {
			addPlate(string(p[:i]) + string(p[i+1]) + string(p[i]) + string(p[i+2:]))
		}
	}
	// Three files, each plate read one to three times, in a random order.
	day := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	for f := range 3 {
		item := fmt.Sprintf("%024x", f+1)
		raw, _ := itemBytes(item)
		b := &batch{item: raw}
		line := int64(1)
		for _, p := range plates {
			for range rng.IntN(2) + f%2 {
				line++
				r := &sidecar.PlateRead{At: sidecar.Provenance{Offset: line * 40, Line: line}, Time: day.Add(time.Duration(rng.IntN(86400)) * time.Second),
					AsRead: string(p), Plate: p, Confidence: float64(rng.IntN(100)) / 100, Region: "ZA-WC", Camera: "VEH-017"}
				if rng.IntN(2) == 0 {
					r.Lat, r.Lon, r.HasPos, r.Heading = -33.9+rng.Float64()/10, 18.4+rng.Float64()/10, true, float64(rng.IntN(360))
				}
				if rng.IntN(3) == 0 {
					r.Crop = "crops/" + string(p) + ".jpg"
				}
				if err := b.addFact("CAR-0001", r); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := x.commit(b, &Source{Item: item, Camera: "CAR-0001", Parser: "anpr-csv", Facts: int64(line)}); err != nil {
			t.Fatal(err)
		}
	}
	return x, plates
}

// A fuzzy search finds exactly the plates a scan of every indexed plate
// with PlateDistance finds within one edit, at the same distances: the
// folded forms it looks up miss none.
func TestFuzzyFindsWhatAScanFinds(t *testing.T) {
	x, plates := plateSet(t)
	cands := make([]sidecar.PlateCandidate, len(plates))
	for i, p := range plates {
		cands[i] = sidecar.PlateCandidate{Plate: p}
	}
	queries := append(slices.Clone(plates), "CA", "C", "CA1234567890", "XYZ")
	found := 0
	for _, q := range queries {
		want := map[sidecar.Plate]float64{}
		for _, m := range sidecar.MatchPlates(q, cands, fuzzyReach) {
			want[plates[m.Index]] = m.Distance
		}
		hits, err := x.FindPlate(context.Background(), PlateQuery{Plate: q, Fuzzy: true, Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		got := map[sidecar.Plate]float64{}
		for _, h := range hits {
			got[sidecar.Plate(h.Plate.Plate)] = h.Distance
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fuzzy %s: found %v, a scan finds %v", q, got, want)
		}
		found += len(want)
	}
	if found <= len(plates) {
		t.Fatalf("the generated set has no near misses (%d matches for %d plates)", found, len(plates))
	}
}

// An index written before the binary values and the one-key fuzzy index
// (JSON values; each folded form's deletions in the fuzzy bucket) answers
// every search as the index written now does, without a reindex.
func TestOldIndexAnswersTheSame(t *testing.T) {
	x, plates := plateSet(t)
	ctx := context.Background()
	answers := func() string {
		var out bytes.Buffer
		for _, p := range append(slices.Clone(plates), "CA") {
			for _, fuzzy := range []bool{false, true} {
				hits, err := x.FindPlate(ctx, PlateQuery{Plate: p, Fuzzy: fuzzy, Limit: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				j, _ := json.Marshal(hits)
				fmt.Fprintf(&out, "%s %v %s\n", p, fuzzy, j)
			}
		}
		return out.String()
	}
	now := answers()
	// Write the index as the code before wrote it.
	old := 0
	err := x.db.Update(func(tx *bolt.Tx) error {
		pb, fz := tx.Bucket(bktPlates), tx.Bucket(bktFuzzy)
		type kv struct{ k, v []byte }
		var rewrite []kv
		err := pb.ForEach(func(k, v []byte) error {
			plate := sidecar.Plate(k[:bytes.IndexByte(k, 0)])
			pf, err := decodePlate(v, plate)
			if err != nil {
				return err
			}
			j, err := json.Marshal(pf)
			rewrite = append(rewrite, kv{bytes.Clone(k), j})
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range rewrite {
			if err := pb.Put(r.k, r.v); err != nil {
				return err
			}
			old++
		}
		for _, p := range plates {
			f := sidecar.FoldConfusions(p)
			for i := range len(f) {
				if err := fz.Put(append([]byte(f[:i]+f[i+1:]+"\x00"), p...), []byte{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil || old == 0 {
		t.Fatalf("write the old index: %v (%d values)", err, old)
	}
	if then := answers(); then != now {
		t.Errorf("the old index answers otherwise:\n%s\nwant\n%s", then, now)
	}
}

// A value that is cut short or altered is an error, never a panic or a
// read with fields taken from the wrong bytes.
func TestPlateValueRoundTripsAndRejectsDamage(t *testing.T) {
	pf := PlateFact{AsRead: "CA 123-456", Plate: "CA123456", Confidence: 0.93, Region: "ZA-WC", Lat: -33.9249, Lon: 18.4241,
		HasPos: true, Heading: 271.5, ANPRCamera: "VEH-017", Crop: "crops/a.jpg", Line: 123456}
	v := appendPlate(nil, &pf)
	got, err := decodePlate(v, "CA123456")
	if err != nil || got != pf {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, pf)
	}
	for n := range len(v) {
		if _, err := decodePlate(v[:n], "CA123456"); err == nil {
			t.Errorf("cut to %d of %d bytes: no error", n, len(v))
		}
	}
	if _, err := decodePlate(append(slices.Clone(v), 0), "CA123456"); err == nil {
		t.Error("a byte too many: no error")
	}
	bad := slices.Clone(v)
	bad[1] |= 0x80
	if _, err := decodePlate(bad, "CA123456"); err == nil {
		t.Error("an unknown flag: no error")
	}
}
