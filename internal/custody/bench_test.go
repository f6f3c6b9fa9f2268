package custody

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkAppend measures one synced custody step: the cost every copied
// file pays at least twice (COPIED, VAULTED). It is dominated by fsync.
func BenchmarkAppend(b *testing.B) {
	for _, withItem := range []bool{false, true} {
		b.Run(fmt.Sprintf("item=%t", withItem), func(b *testing.B) {
			f := newFixture(b)
			f.l.chunk = defaultChunk
			ctx := context.Background()
			dock := f.append(Event{Type: Docked, Camera: "BWC-1"}, nil)
			i := 0
			for b.Loop() {
				i++
				var err error
				if withItem {
					it := newItem(fmt.Sprintf("item-%08d", i), "BWC-1", "officer-1", t0.Add(time.Duration(i)*time.Second), dock.Seq)
					_, err = f.l.Append(ctx, Event{Type: Vaulted, Actor: "ingest"}, it)
				} else {
					_, err = f.l.Append(ctx, Event{Type: Accessed, Actor: "investigator", Item: "item-1",
						Details: map[string]string{"reason": "complaint 42"}}, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// buildLedger appends about n events in large transactions (appendAll, the
// same code path as Append without an fsync per event): 25 items per dock,
// each COPIED, VAULTED, UPLOADED and VERIFIED.
func buildLedger(b *testing.B, n int) *fixture {
	b.Helper()
	f := newFixture(b)
	f.l.chunk = defaultChunk
	ctx := context.Background()
	var batch []pending
	flush := func() {
		if _, err := f.l.appendAll(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	seq := uint64(0)
	var dockSeq uint64
	for i := 0; int(seq) < n; i++ {
		cam := fmt.Sprintf("BWC-%03d", i/25%450)
		if i%25 == 0 {
			batch = append(batch, pending{ev: Event{Type: Docked, Actor: "evidenced", Camera: cam}})
			seq++
			dockSeq = seq
		}
		it := newItem(fmt.Sprintf("item-%08d", i), cam, fmt.Sprintf("officer-%03d", i/25%400), t0.Add(time.Duration(i)*time.Minute), dockSeq)
		batch = append(batch, pending{ev: Event{Type: Copied, Actor: "ingest", Item: it.ID, Camera: cam, SHA256: it.SHA256}})
		v := *it
		batch = append(batch, pending{ev: Event{Type: Vaulted, Actor: "ingest", Camera: cam}, item: &v})
		u := *it
		u.State, u.ObjectKey, u.VersionID = StateUploaded, "bwc/"+it.ID, "v1"
		batch = append(batch, pending{ev: Event{Type: Uploaded, Actor: "uploader", SHA256: it.SHA256}, item: &u})
		w := u
		w.State = StateVerified
		batch = append(batch, pending{ev: Event{Type: Verified, Actor: "uploader", SHA256: it.SHA256}, item: &w})
		seq += 4
		if len(batch) >= 5000 {
			flush()
		}
	}
	flush()
	return f
}

// BenchmarkVerify re-walks a 100k-event ledger: chain, items and indexes.
func BenchmarkVerify(b *testing.B) {
	f := buildLedger(b, 100_000)
	ctx := context.Background()
	var st VerifyStats
	for b.Loop() {
		var err error
		st, err = f.l.Verify(ctx, func(p Problem) { b.Errorf("problem: %+v", p) })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Events), "events")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(st.Events), "ns/event")
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec := []byte(docExample)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := DecodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
}
