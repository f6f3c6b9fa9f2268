package fleetgen_test

// The indexing benchmark of scripts/bench-index.sh: a generated fleet is
// written once to a directory (TestBenchIndexBuild) and each measurement
// (TestBenchIndexMeasure) indexes it in a process of its own, so that the
// peak RSS it reports is indexing's alone, not the generator's. This file
// uses only what the base tree's packages also export (catalog.Open,
// Sync, Find; fleetgen.Generate): the script copies it into the base tree
// to measure both side by side.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/benchstat"
)

// dirStore is an object store on a local directory, one file per key and
// one version per object: enough for anchored custody, which is written
// once. Unlike the in-memory store it costs the measured process no
// memory for the fleet, and it outlives the process that generated it.
type dirStore struct{ root string }

func (d dirStore) path(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

func (d dirStore) Put(_ context.Context, req objstore.PutRequest) (objstore.PutResult, error) {
	b, err := io.ReadAll(io.NewSectionReader(req.Body, 0, req.Size))
	if err != nil {
		return objstore.PutResult{}, err
	}
	p := d.path(req.Key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return objstore.PutResult{}, err
	}
	return objstore.PutResult{VersionID: "v1"}, os.WriteFile(p, b, 0o644)
}

func (d dirStore) Stat(_ context.Context, key, _ string) (objstore.ObjectInfo, error) {
	fi, err := os.Stat(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return objstore.ObjectInfo{}, objstore.ErrNotFound
	}
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	return objstore.ObjectInfo{Key: key, VersionID: "v1", Size: fi.Size()}, nil
}

func (d dirStore) Open(_ context.Context, key, _ string) (io.ReadCloser, error) {
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, objstore.ErrNotFound
	}
	return f, err
}

// ListVersions walks the directory the prefix names and keeps the keys
// that start with it, in key order.
func (d dirStore) ListVersions(_ context.Context, prefix string) ([]objstore.Version, error) {
	dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	var out []objstore.Version
	err := filepath.WalkDir(d.path(dir), func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) {
			out = append(out, objstore.Version{Key: key, VersionID: "v1", IsLatest: true})
		}
		return nil
	})
	return out, err
}

func (d dirStore) ListDirectories(_ context.Context, prefix string) ([]string, error) {
	es, err := os.ReadDir(d.path(prefix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, err
}

// benchHost is a generated host as hosts.json keeps it.
type benchHost struct {
	ID  string `json:"id"`
	Key string `json:"key"` // raw Ed25519, base64
}

// TestBenchIndexBuild generates EVIDENCED_BENCH_ITEMS recordings (20
// hosts, 20 cameras each, anchored every 500 recordings, every record
// signed) under EVIDENCED_BENCH_FLEET/store, the hosts' keys in
// hosts.json (written last: its presence says the fleet is complete).
func TestBenchIndexBuild(t *testing.T) {
	dir := os.Getenv("EVIDENCED_BENCH_FLEET")
	if dir == "" {
		t.Skip("EVIDENCED_BENCH_FLEET not set (scripts/bench-index.sh)")
	}
	items := benchstat.EnvInt("EVIDENCED_BENCH_ITEMS", 1_000_000)
	t0, cpu0 := time.Now(), benchstat.CPU()
	trusted, err := fleetgen.Generate(context.Background(), dirStore{filepath.Join(dir, "store")},
		fleetgen.Options{Hosts: 20, ItemsPerHost: items / 20, ItemsPerAnchor: 500, CamerasPerHost: 20, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	var hs []benchHost
	for _, h := range trusted {
		hs = append(hs, benchHost{ID: h.ID, Key: base64.StdEncoding.EncodeToString(h.Key)})
	}
	b, err := json.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("generated %d items in %s wall, %s CPU\n", items, time.Since(t0).Round(time.Second), (benchstat.CPU() - cpu0).Round(time.Second))
}

// memPeak samples the process's memory until stopped: the peak heap in
// use (Go's own accounting), and the peaks of the resident anonymous
// memory (heap, stacks, runtime) and of the resident file-backed memory
// (the index's bbolt file, mapped) as /proc/self/status counts them.
type memPeak struct {
	heap, anon, file uint64 // bytes
	profile          string // when set, a heap profile at the peak is written there
	stop             chan struct{}
	done             sync.WaitGroup
}

func startMemPeak(every time.Duration, profile string) *memPeak {
	m := &memPeak{stop: make(chan struct{}), profile: profile}
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.stop:
				m.sample()
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memPeak) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > m.heap && m.profile != "" {
		// What was live at the last collection before the peak.
		if f, err := os.Create(m.profile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	m.heap = max(m.heap, ms.HeapInuse)
	st := procStatus()
	m.anon, m.file = max(m.anon, st["RssAnon"]), max(m.file, st["RssFile"])
}

func (m *memPeak) end() { close(m.stop); m.done.Wait() }

// procStatus is /proc/self/status's memory lines, in bytes.
func procStatus() map[string]uint64 {
	out := map[string]uint64{}
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok || !bytes.HasSuffix(v, []byte(" kB")) {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(bytes.TrimSuffix(v, []byte(" kB")))), 10, 64)
		if err == nil {
			out[string(k)] = n << 10
		}
	}
	return out
}

// TestBenchIndexMeasure indexes the fleet under EVIDENCED_BENCH_FLEET from
// scratch (a rebuild: the console's worst case) into a new index file,
// then runs 200 searches by officer over one month, and prints one line:
// items per second (wall and CPU), the peaks of memory, the index's size
// and the search's percentiles.
func TestBenchIndexMeasure(t *testing.T) {
	dir := os.Getenv("EVIDENCED_BENCH_FLEET")
	if dir == "" || os.Getenv("EVIDENCED_BENCH_MEASURE") == "" {
		t.Skip("EVIDENCED_BENCH_FLEET/EVIDENCED_BENCH_MEASURE not set (scripts/bench-index.sh)")
	}
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(dir, "hosts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hs []benchHost
	if err := json.Unmarshal(b, &hs); err != nil {
		t.Fatal(err)
	}
	var trusted []catalog.Trusted
	for _, h := range hs {
		k, err := base64.StdEncoding.DecodeString(h.Key)
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, catalog.Trusted{ID: h.ID, Key: k})
	}
	idx := filepath.Join(t.TempDir(), "catalog.db")
	c, err := catalog.Open(idx, dirStore{filepath.Join(dir, "store")}, trusted, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mp := startMemPeak(50*time.Millisecond, os.Getenv("EVIDENCED_BENCH_HEAPPROFILE"))
	t0, cpu0 := time.Now(), benchstat.CPU()
	p, err := c.Sync(ctx)
	wall, cpu := time.Since(t0), benchstat.CPU()-cpu0
	mp.end()
	if err != nil || len(p.Broken) > 0 {
		t.Fatalf("sync: %v, broken %v", err, p.Broken)
	}
	var records uint64
	for _, n := range p.New {
		records += n
	}
	items := (records - uint64(len(hs))) / 5 // a HOST_KEY record per host, five per recording
	fi, err := os.Stat(idx)
	if err != nil {
		t.Fatal(err)
	}
	hwm := procStatus()["VmHWM"]

	// find --assigned-to X over one month: the fleet's first 30 days of
	// one officer's recordings (one camera's, 1 of 20 at its host).
	var lat []time.Duration
	found := 0
	for q := range 200 {
		f := catalog.Filter{Filter: custody.Filter{AssignedTo: fmt.Sprintf("officer-%02d%03d", q%len(hs)+1, q%20),
			Since: start.Add(-2 * time.Hour), Until: start.Add(30*24*time.Hour - 2*time.Hour)}}
		t1 := time.Now()
		got, err := c.Find(ctx, f)
		lat = append(lat, time.Since(t1))
		if err != nil || len(got) == 0 {
			t.Fatalf("find %+v: %d items, %v", f, len(got), err)
		}
		found += len(got)
	}
	mib := func(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
	fmt.Printf("indexed %d items (%d records) in %s wall, %s CPU: %.0f items/s wall, %.0f items per CPU-second\n",
		items, records, wall.Round(100*time.Millisecond), cpu.Round(100*time.Millisecond), float64(items)/wall.Seconds(), float64(items)/cpu.Seconds())
	fmt.Printf("memory while indexing: VmHWM %s; peaks: heap in use %s, RssAnon %s, RssFile %s; index file %s (%.0f bytes per item)\n",
		mib(hwm), mib(mp.heap), mib(mp.anon), mib(mp.file), mib(uint64(fi.Size())), float64(fi.Size())/float64(items))
	fmt.Printf("find --assigned-to over one month (%d items each): %s\n", found/200, benchstat.Percentiles(lat))

	// The console's start-up walk (a new facts index walks every served
	// item) over this index, reopened as a starting console opens it: a
	// new map, the peak reset (clear_refs 5) so that VmHWM is the walk's.
	// Only a tree whose catalog has EachItem walks.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = catalog.Open(idx, dirStore{filepath.Join(dir, "store")}, trusted, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := any(c).(interface {
		EachItem(context.Context, func(custody.Item) error) error
	}); ok {
		runtime.GC()
		debug.FreeOSMemory()
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		mw := startMemPeak(50*time.Millisecond, "")
		t2, n := time.Now(), 0
		err := w.EachItem(ctx, func(custody.Item) error { n++; return nil })
		took := time.Since(t2)
		mw.end()
		if err != nil || uint64(n) != items {
			t.Fatalf("walk: %d items, %v", n, err)
		}
		fmt.Printf("walk of every item (EachItem, the console's start-up walk; index reopened): %d items in %s; VmHWM since the open %s; peaks: heap in use %s, RssAnon %s, RssFile %s\n",
			n, took.Round(100*time.Millisecond), mib(procStatus()["VmHWM"]), mib(mw.heap), mib(mw.anon), mib(mw.file))
	}

	// Where the index's bytes go: per bucket, keys and the bytes its
	// pages hold, per item.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(idx, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		line := "index by bucket (keys, bytes in pages per item):"
		var total int
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			n := st.LeafInuse + st.BranchInuse
			total += n
			line += fmt.Sprintf(" %s %d %.0f;", name, st.KeyN, float64(n)/float64(items))
			return nil
		})
		fmt.Printf("%s in use %.0f of %.0f bytes per item\n", line, float64(total)/float64(items), float64(fi.Size())/float64(items))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
