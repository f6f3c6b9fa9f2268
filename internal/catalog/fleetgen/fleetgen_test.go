package fleetgen_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/benchstat"
)

var start = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// A generated fleet is what real dock hosts anchor: the dock's own check
// of the anchored objects passes, and the console indexes every item of
// every host without a flag.
func TestGeneratedFleetChecksOut(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	hosts, err := fleetgen.Generate(ctx, s, fleetgen.Options{Hosts: 3, ItemsPerHost: 40, ItemsPerAnchor: 7, CamerasPerHost: 4, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		v, err := signing.NoteVerifier(h.ID, h.Key)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := anchor.CheckWith(ctx, nil, s, h.ID, anchor.CheckOptions{Verifiers: []note.Verifier{v}})
		if err != nil || !rep.OK() || rep.Records != 201 || rep.Signatures != 201 || rep.Valid != 6 {
			t.Fatalf("%s: anchor check %+v %v", h.ID, rep, err)
		}
	}
	c, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"), s, hosts, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.Sync(ctx)
	if err != nil || len(p.Broken) != 0 || p.New["dock-02"] != 201 {
		t.Fatalf("sync: %+v %v", p, err)
	}
	items, err := c.Find(ctx, catalog.Filter{Filter: custody.Filter{AssignedTo: "officer-02001"}})
	if err != nil || len(items) != 10 || items[0].State != custody.StateVerified {
		t.Fatalf("find: %d items %v", len(items), err)
	}

	// find --assigned-to and --camera go through their indexes; each
	// selects exactly what a scan of every item with the same filter
	// selects.
	all, err := c.Find(ctx, catalog.Filter{})
	if err != nil || len(all) != 120 {
		t.Fatalf("find all: %d %v", len(all), err)
	}
	for _, f := range []catalog.Filter{
		{Filter: custody.Filter{AssignedTo: "officer-01002", Since: start.Add(-50 * time.Minute), Until: start.Add(-30 * time.Minute)}},
		{Filter: custody.Filter{AssignedTo: "officer-03000", Since: start.Add(-time.Hour)}},
		{Filter: custody.Filter{AssignedTo: "officer-03000", Until: start.Add(-time.Hour)}},
		{Filter: custody.Filter{AssignedTo: "officer-02003", Camera: "BWC-02003"}, Host: "dock-02"},
		{Filter: custody.Filter{AssignedTo: "officer-02003"}, Host: "dock-01"},
		{Filter: custody.Filter{AssignedTo: "nobody"}},
		{Filter: custody.Filter{Camera: "BWC-01002"}},
		{Filter: custody.Filter{Camera: "BWC-03000", Since: start.Add(-50 * time.Minute), Until: start.Add(-30 * time.Minute)}},
		{Filter: custody.Filter{Camera: "BWC-02003", States: []custody.State{custody.StateVerified}}, Host: "dock-02"},
		{Filter: custody.Filter{Camera: "BWC-02003"}, Host: "dock-01"},
		{Filter: custody.Filter{Camera: "nope"}},
	} {
		got, err := c.Find(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, it := range all {
			if f.Filter.Matches(it) && (f.Host == "" || it.Host == f.Host) {
				want[it.Host+"/"+it.ID] = true
			}
		}
		if len(got) != len(want) {
			t.Errorf("%+v: %d items through the index, %d by a scan", f, len(got), len(want))
		}
		for _, it := range got {
			if !want[it.Host+"/"+it.ID] {
				t.Errorf("%+v: %s/%s through the index only", f, it.Host, it.ID)
			}
		}
	}
}

// A catalog indexed before the index by camera existed gets it from its
// items when it is opened: a search by camera then finds every recording
// of the camera, without reading the store again.
func TestCameraIndexFilledOnOpen(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	hosts, err := fleetgen.Generate(ctx, s, fleetgen.Options{Hosts: 2, ItemsPerHost: 30, ItemsPerAnchor: 10, CamerasPerHost: 3, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := catalog.Open(path, s, hosts, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The index as an earlier version left it: no by_camera bucket.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("by_camera")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Reopened on an empty store: what it finds comes from the index.
	c, err = catalog.Open(path, memstore.New(), hosts, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	items, err := c.Find(ctx, catalog.Filter{Filter: custody.Filter{Camera: "BWC-02001"}})
	if err != nil || len(items) != 10 {
		t.Fatalf("find --camera BWC-02001 after reopening: %d items, %v; want 10", len(items), err)
	}
	for _, it := range items {
		if it.Camera != "BWC-02001" || it.Host != "dock-02" {
			t.Errorf("found %s of %s on %s", it.ID, it.Host, it.Camera)
		}
	}
}

// BenchmarkIndex measures indexing a generated fleet from scratch (the
// rebuild case), checking the key records' and the checkpoints' signatures
// (the default) and every record's, side by side in one run, then the p99
// of 200 searches by officer through the index. Size it with
// FLEETGEN_HOSTS and FLEETGEN_ITEMS (per host); docs/BENCHMARKS.md has the
// numbers. CPU time is reported beside wall time: on a shared machine the
// wall time measures the other tenants as much as the index.
func BenchmarkIndex(b *testing.B) {
	ctx := context.Background()
	hostsN, itemsN := benchstat.EnvInt("FLEETGEN_HOSTS", 20), benchstat.EnvInt("FLEETGEN_ITEMS", 500)
	s := memstore.New()
	t0 := time.Now()
	hosts, err := fleetgen.Generate(ctx, s, fleetgen.Options{Hosts: hostsN, ItemsPerHost: itemsN, ItemsPerAnchor: 100, CamerasPerHost: 20, Start: start})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d hosts × %d items in %s", hostsN, itemsN, time.Since(t0))
	n := hostsN * itemsN
	b.ResetTimer()
	for range b.N {
		for _, all := range []bool{false, true} {
			c, err := catalog.Open(filepath.Join(b.TempDir(), "catalog.db"), s, hosts, catalog.Options{AllSignatures: all})
			if err != nil {
				b.Fatal(err)
			}
			t1, cpu1 := time.Now(), benchstat.CPU()
			if _, err := c.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			idx, cpu := time.Since(t1), benchstat.CPU()-cpu1
			var lat []time.Duration
			for q := range 200 {
				t2 := time.Now()
				items, err := c.Find(ctx, catalog.Filter{Filter: custody.Filter{AssignedTo: fmt.Sprintf("officer-%02d%03d", q%hostsN+1, q%20)}})
				lat = append(lat, time.Since(t2))
				if err != nil || len(items) == 0 {
					b.Fatalf("find: %d %v", len(items), err)
				}
			}
			slices.Sort(lat)
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			b.Logf("all signatures %v: indexed %d items in %s wall, %s CPU (%.0f items per CPU-second); find --assigned-to p99 %s; heap in use %d MiB",
				all, n, idx, cpu, float64(n)/cpu.Seconds(), lat[len(lat)*99/100], m.HeapInuse>>20)
			c.Close()
		}
	}
}
