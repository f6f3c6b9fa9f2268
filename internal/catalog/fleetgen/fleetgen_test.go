package fleetgen_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/signing"
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
}

// BenchmarkIndex measures indexing a generated fleet from scratch (the
// rebuild case) and one search. Size it with FLEETGEN_HOSTS and
// FLEETGEN_ITEMS (per host); docs/BENCHMARKS.md has the numbers.
func BenchmarkIndex(b *testing.B) {
	ctx := context.Background()
	hostsN, itemsN := envInt("FLEETGEN_HOSTS", 20), envInt("FLEETGEN_ITEMS", 500)
	s := memstore.New()
	t0 := time.Now()
	hosts, err := fleetgen.Generate(ctx, s, fleetgen.Options{Hosts: hostsN, ItemsPerHost: itemsN, ItemsPerAnchor: 100, CamerasPerHost: 20, Start: start})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d hosts × %d items in %s", hostsN, itemsN, time.Since(t0))
	b.ResetTimer()
	for range b.N {
		dir := b.TempDir()
		c, err := catalog.Open(filepath.Join(dir, "catalog.db"), s, hosts, catalog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1, cpu1 := time.Now(), cpuTime()
		if _, err := c.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		idx, cpu := time.Since(t1), cpuTime()-cpu1
		t2 := time.Now()
		items, err := c.Find(ctx, catalog.Filter{Filter: custody.Filter{AssignedTo: "officer-01001"}})
		if err != nil || len(items) == 0 {
			b.Fatalf("find: %d %v", len(items), err)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		n := hostsN * itemsN
		b.ReportMetric(float64(n)/idx.Seconds(), "items/s")
		b.ReportMetric(float64(n)/cpu.Seconds(), "items/cpu-s")
		b.ReportMetric(float64(time.Since(t2).Microseconds())/1000, "find-ms")
		b.Logf("indexed %d items in %s wall, %s CPU (%.0f items/s, %.0f items per CPU-second); find --assigned-to over all: %s; heap in use %d MiB",
			n, idx, cpu, float64(n)/idx.Seconds(), float64(n)/cpu.Seconds(), time.Since(t2), m.HeapInuse>>20)
		c.Close()
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTime is the process's user+system CPU time: on a shared machine the
// wall time measures the other tenants as much as the index.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
