package custody

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/signing"
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
//
// With key, the ledger is signed (HOST_KEY first, a signature per record).
func buildLedger(b *testing.B, n int, key Signer) *fixture {
	b.Helper()
	f := newFixture(b)
	if key != nil {
		f.close()
		f.open(Options{Signer: key})
	}
	f.l.chunk = defaultChunk
	fill(b, f.l, n, key != nil)
	return f
}

// fill appends about n events to l as buildLedger describes. appendAll is
// the code Append runs (Append is appendAll of one event): the records,
// signatures, stored nodes and indexes are the ones n Appends write, and
// the signed tree head is the one the last Append would write;
// TestBatchedBuildIsAppends checks that byte for byte.
func fill(b testing.TB, l *Ledger, n int, signed bool) {
	b.Helper()
	ctx := context.Background()
	var batch []pending
	flush := func() {
		if _, err := l.appendAll(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	seq, _, err := l.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if signed && seq == 0 {
		seq = 1 // the HOST_KEY record the first append writes
	}
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
}

// benchEvents is the ledger size of BenchmarkVerify: 100k by default,
// EVIDENCED_BENCH_EVENTS to change it (the figure is 1,000,000).
func benchEvents(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("EVIDENCED_BENCH_EVENTS"); s != "" {
		n = benchEventsFrom(b, s)
	}
	return n
}

func benchEventsFrom(t testing.TB, s string) int {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("EVIDENCED_BENCH_EVENTS=%q is not a positive integer", s)
	}
	return v
}

// BenchmarkVerify re-walks a ledger of benchEvents events: chain, items and
// indexes, unsigned and signed (signatures and the Merkle tree too), and
// recomputes the root for VerifyAgainst.
func BenchmarkVerify(b *testing.B) {
	n := benchEvents(b)
	key, err := signing.Generate(testHost)
	if err != nil {
		b.Fatal(err)
	}
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("signed=%t", signed), func(b *testing.B) {
			var k Signer
			if signed {
				k = key
			}
			f := buildLedger(b, n, k)
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
		})
	}
}

// BenchmarkVerifyAgainst recomputes the Merkle root of a benchEvents ledger
// from its records and checks it against a signed checkpoint.
func BenchmarkVerifyAgainst(b *testing.B) {
	key, err := signing.Generate(testHost)
	if err != nil {
		b.Fatal(err)
	}
	f := buildLedger(b, benchEvents(b), key)
	ctx := context.Background()
	cp, err := f.l.Checkpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); err != nil {
			b.Fatal(err)
		}
	}
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

// TestBenchLedgerBuild writes the ledger scripts/bench-ledger.sh measures:
// EVIDENCED_BENCH_EVENTS (default 1,000,000) signed records at
// EVIDENCED_BENCH_LEDGER, with its host key beside it (.key). An existing
// file is kept, so one build serves many runs. Skipped without the
// variable.
func TestBenchLedgerBuild(t *testing.T) {
	path := os.Getenv("EVIDENCED_BENCH_LEDGER")
	if path == "" {
		t.Skip("EVIDENCED_BENCH_LEDGER not set")
	}
	if _, err := os.Stat(path); err == nil {
		t.Logf("%s exists; kept", path)
		return
	}
	n := 1_000_000
	if s := os.Getenv("EVIDENCED_BENCH_EVENTS"); s != "" {
		n = benchEventsFrom(t, s)
	}
	key, _, err := signing.LoadOrCreate(path+".key", testHost)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".partial"
	_ = os.Remove(tmp)
	l, err := Open(tmp, Options{Host: testHost, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fill(t, l, n, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d records at %s in %v", n, path, time.Since(start))
}

// BenchmarkVerifyFile verifies the ledger at EVIDENCED_BENCH_LEDGER, to
// profile Verify on a large ledger without rebuilding it.
func BenchmarkVerifyFile(b *testing.B) {
	path := os.Getenv("EVIDENCED_BENCH_LEDGER")
	if path == "" {
		b.Skip("EVIDENCED_BENCH_LEDGER not set")
	}
	l, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	var st VerifyStats
	for b.Loop() {
		if st, err = l.Verify(context.Background(), func(p Problem) { b.Errorf("problem: %+v", p) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(st.Events), "ns/event")
}

// TestBatchedBuildIsAppends: the large ledgers the benchmarks measure are
// built with appendAll in batches of thousands of events; the file is the
// one the same events appended one Append at a time would give, byte for
// byte in every bucket (records, signatures, stored nodes, signed head,
// items and indexes), so what the benchmarks measure is what real appends
// produce.
func TestBatchedBuildIsAppends(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	var evs []pending
	dock := uint64(2) // after HOST_KEY
	evs = append(evs, pending{ev: Event{Type: Docked, Actor: "evidenced", Camera: "BWC-1"}})
	for i := range 30 {
		it := newItem(fmt.Sprintf("item-%02d", i), "BWC-1", "officer-1", t0.Add(time.Duration(i)*time.Minute), dock)
		evs = append(evs, pending{ev: Event{Type: Copied, Actor: "ingest", Item: it.ID, Camera: "BWC-1", SHA256: it.SHA256}})
		v := *it
		v.IngestedAt = t0
		evs = append(evs, pending{ev: Event{Type: Vaulted, Actor: "ingest", Camera: "BWC-1"}, item: &v})
	}
	for i := range evs {
		evs[i].ev.At = t0.Add(time.Duration(i) * time.Second)
	}
	// The first append writes HOST_KEY, stamped with the time of day: both
	// builds start from the same file holding it and the first event.
	base := newFixture(t)
	base.close()
	rawUpdate(t, base.path, func(b bkts) error { return b.meta.Put(metaCreatedAt, []byte("2026-01-01T00:00:00Z")) })
	base.open(Options{Signer: key})
	if _, err := base.l.appendAll(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	base.close()
	build := func(batch int) []byte {
		f := newFixture(t)
		f.close()
		copyFile(t, base.path, f.path)
		f.open(Options{Signer: key})
		rest := evs[1:]
		for i := 0; i < len(rest); i += batch {
			if _, err := f.l.appendAll(ctx, rest[i:min(i+batch, len(rest))]); err != nil {
				t.Fatal(err)
			}
		}
		f.close()
		d, err := logicalDump(f.path)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	one, batched := build(1), build(25)
	if !bytes.Equal(one, batched) {
		t.Fatalf("a batched build differs from one Append per event: %s", firstDiff(one, batched, nil))
	}
}
