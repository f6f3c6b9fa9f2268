package fleetgen_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// named lists a memstore with each item's object under the version id its
// records name (memstore chooses its own ids): a store in which every
// recording is vouched for, as in a fleet with no orphans.
type named struct {
	*memstore.Store
	vids map[string]string
}

func (n *named) ListVersionsPage(ctx context.Context, prefix, after string, max int) ([]objstore.Version, string, error) {
	vs, next, err := n.Store.ListVersionsPage(ctx, prefix, after, max)
	for i := range vs {
		if id, ok := n.vids[vs[i].Key]; ok {
			vs[i].VersionID = id
		}
	}
	return vs, next, err
}

// TestBenchAuditAndOrphans measures, at a small scale, what the console's
// daily audit and fleet --orphans cost (docs/BENCHMARKS.md, "Listing the
// store"): EVIDENCED_BENCH_AUDIT_ITEMS recordings over two hosts, a
// checkpoint per recording. It prints the checkpoint objects read and
// the listing calls of a first audit and of the next day's (one anchor
// more per host), and the orphans' time, allocation, and what a set of
// every item's object (the orphans before by_object) held.
func TestBenchAuditAndOrphans(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EVIDENCED_BENCH_AUDIT_ITEMS"))
	if n == 0 {
		t.Skip("set EVIDENCED_BENCH_AUDIT_ITEMS")
	}
	ctx := context.Background()
	s := memstore.New()
	hosts, err := fleetgen.Generate(ctx, s, fleetgen.Options{Hosts: 2, ItemsPerHost: n / 2, ItemsPerAnchor: 1, CamerasPerHost: 4, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	st := &named{Store: s, vids: map[string]string{}}
	c, err := catalog.Open(filepath.Join(t.TempDir(), "catalog.db"), st, hosts, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p, err := c.Sync(ctx); err != nil || len(p.Broken) != 0 {
		t.Fatalf("sync: %+v %v", p, err)
	}
	var opens, lists atomic.Int64
	s.SetHook(func(op, key string) error {
		switch {
		case op == "open" && strings.Contains(key, "/checkpoints/"):
			opens.Add(1)
		case op == "list":
			lists.Add(1)
		}
		return nil
	})
	audit := func(day string) {
		opens.Store(0)
		lists.Store(0)
		t0 := time.Now()
		if b, err := c.Audit(ctx); err != nil || len(b) != 0 {
			t.Fatalf("%s: %+v %v", day, b, err)
		}
		t.Logf("audit, %s: %d checkpoint objects read, %d listing calls, %v", day, opens.Load(), lists.Load(), time.Since(t0).Round(time.Millisecond))
	}
	audit("first")
	audit("next day, nothing new")

	// The orphans: every recording stored, named by its item.
	items, err := c.Find(ctx, catalog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	keyBytes := 0 // of by_object: key 0 version 0 host 0 id
	for _, it := range items {
		keyBytes += len(it.ObjectKey) + len(it.VersionID) + len(it.Host) + len(it.ID) + 3
		b := []byte(it.ID)
		sum := digest.Bytes(b)
		if _, err := s.Put(ctx, objstore.PutRequest{Key: it.ObjectKey, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum}); err != nil {
			t.Fatal(err)
		}
		st.vids[it.ObjectKey] = it.VersionID
	}
	// Each entry's strings its own, as when decoded from the index.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	set := map[[2]string]bool{}
	for _, it := range items {
		set[[2]string{strings.Clone(it.ObjectKey), strings.Clone(it.VersionID)}] = true
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("a set of every item's object (before by_object): %d entries, %d bytes each live",
		len(set), (int64(after.HeapAlloc)-int64(before.HeapAlloc))/int64(len(set)))
	runtime.KeepAlive(items)
	set, items = nil, []custody.Item{}
	runtime.GC()
	runtime.ReadMemStats(&before)
	lists.Store(0)
	t0 := time.Now()
	o, err := c.Orphans(ctx)
	d := time.Since(t0)
	calls := lists.Load()
	runtime.ReadMemStats(&after)
	if err != nil || len(o) != 0 {
		t.Fatalf("orphans: %d %v", len(o), err)
	}
	// The in-memory store's paging sorts its keys at every page: the
	// listing alone, timed apart, is most of it.
	t0 = time.Now()
	if err := objstore.EachVersionPage(ctx, st, "", func([]objstore.Version) error { return nil }); err != nil {
		t.Fatal(err)
	}
	listing := time.Since(t0)
	t.Logf("orphans by merge: %d recordings listed in %d calls, %v (the same listing alone: %v); %d bytes allocated in all; a by_object key is %d bytes on average (+16 of bbolt's per element)",
		n, calls, d.Round(time.Millisecond), listing.Round(time.Millisecond), after.TotalAlloc-before.TotalAlloc, keyBytes/max(1, n))
}
