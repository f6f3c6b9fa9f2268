package catalog_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/signing"
)

// twoAnchors is dock-01 with two recordings of BWC-1, anchored one at a
// time (checkpoints 6 and 11).
func twoAnchors(t *testing.T) (*memstore.Store, *dock) {
	t.Helper()
	s := memstore.New()
	d := newDock(t, "dock-01")
	d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
	d.anchor(t, s)
	d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
	d.anchor(t, s)
	return s, d
}

// clearRefused asserts that Clear refuses host as still broken, without
// calling record, and leaves the flag (Fleet still shows it).
func clearRefused(t *testing.T, c *catalog.Catalog, host string) {
	t.Helper()
	called := false
	_, err := c.Clear(context.Background(), host, func(catalog.Cleared) error { called = true; return nil })
	var still *catalog.StillBrokenError
	if !errors.As(err, &still) || !errors.Is(err, anchor.ErrBroken) || len(still.Problems) == 0 || called {
		t.Fatalf("clear of %s, whose history does not verify: %v (recorded %v), want a StillBrokenError and nothing recorded", host, err, called)
	}
	f, _ := c.Fleet(context.Background(), time.Now(), catalog.FleetOptions{})
	for _, h := range f.Hosts {
		if h.ID == host && !h.Broken && !h.Withheld {
			t.Errorf("%s's flag was lifted by a refused clear: %+v", host, h)
		}
	}
}

// A flag is lifted only when the host's whole history verifies again: a
// history broken in a later anchor (an altered record, a fork) is refused
// however far the index had followed it, so is a host the audit withheld
// while the object that does not belong is still there; a host that is not
// flagged, or not listed, is an error of its own. A host flagged for the
// wrong key is cleared once the right one is configured, with what was
// accepted recorded before the flag goes, and is served again.
func TestClearOnlyWhenTheHistoryVerifies(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"altered record", "fork"} {
		t.Run(name, func(t *testing.T) {
			s, d := twoAnchors(t)
			switch name {
			case "altered record":
				key := anchor.RecordsKey(d.id, 7, 11)
				put(t, s, key, []byte(string(read(t, s, key))+"\n"))
			case "fork":
				put(t, s, anchor.RecordsKey(d.id, 7, 8), []byte("x\n"))
				put(t, s, anchor.CheckpointKey(d.id, 8), read(t, s, anchor.CheckpointKey(d.id, 6)))
			}
			c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
			if p := sync(t, c); len(p.Broken) != 1 {
				t.Fatalf("not broken: %+v", p)
			}
			clearRefused(t, c, "dock-01")
		})
	}

	t.Run("withheld", func(t *testing.T) {
		s := memstore.New()
		a, b := newDock(t, "dock-01"), newDock(t, "dock-02")
		a.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
		a.anchor(t, s)
		b.ingest(t, "BWC-2", "officer-2", "B.MP4", 1)
		b.anchor(t, s)
		c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, a.trusted(), b.trusted())
		sync(t, c)
		put(t, s, anchor.CheckpointKey("dock-01", 9), []byte("not the checkpoint\n"))
		if breaks, err := c.Audit(ctx); err != nil || len(breaks) != 1 {
			t.Fatalf("audit: %+v %v", breaks, err)
		}
		clearRefused(t, c, "dock-01")
		if _, err := c.Clear(ctx, "dock-02", func(catalog.Cleared) error { return nil }); !errors.Is(err, catalog.ErrNotFlagged) {
			t.Errorf("clear of a sound host: %v, want ErrNotFlagged", err)
		}
		if _, err := c.Clear(ctx, "dock-09", func(catalog.Cleared) error { return nil }); !errors.Is(err, catalog.ErrNotTrusted) {
			t.Errorf("clear of an unlisted host: %v, want ErrNotTrusted", err)
		}
	})

	t.Run("wrong key, then the right one", func(t *testing.T) {
		s, d := twoAnchors(t)
		other, err := signing.Generate("dock-01")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "catalog.db")
		c := openCatalog(t, path, s, catalog.Trusted{ID: "dock-01", Key: other.Public()})
		sync(t, c)
		clearRefused(t, c, "dock-01")
		c.Close()

		c = openCatalog(t, path, s, d.trusted())
		var recorded catalog.Cleared
		cl, err := c.Clear(ctx, "dock-01", func(cl catalog.Cleared) error {
			recorded = cl
			// Recorded before the flag is lifted: the index still says broken.
			f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
			if !f.Hosts[0].Broken {
				t.Error("the flag was lifted before the clearance was recorded")
			}
			return nil
		})
		if err != nil || cl.Size != 11 || cl.Object != anchor.CheckpointKey("dock-01", 11) || cl.IndexedSize != 0 ||
			len(cl.Was) == 0 || recorded.Size != cl.Size || recorded.Root != cl.Root || len(cl.Root) != 64 {
			t.Fatalf("clear after the right key: %+v %v (recorded %+v)", cl, err, recorded)
		}
		f, _ := c.Fleet(ctx, time.Now(), catalog.FleetOptions{})
		if f.Hosts[0].Broken || f.Hosts[0].Withheld {
			t.Errorf("still flagged after the clear: %+v", f.Hosts[0])
		}
		sync(t, c)
		if items, _ := c.Find(ctx, catalog.Filter{Host: "dock-01"}); len(items) != 2 {
			t.Errorf("served after the clear: %d items, want 2", len(items))
		}
		if _, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil }); !errors.Is(err, catalog.ErrNotFlagged) {
			t.Errorf("second clear: %v, want ErrNotFlagged", err)
		}
	})
}

// flagInIndex closes c and marks host flagged in the index at path, as an
// index that met a problem since gone looks, after edit (when set) has
// changed the index's copy of what it followed; then reopens it.
func flagInIndex(t *testing.T, c *catalog.Catalog, path string, s anchor.Store, host string, edit func(tx *bolt.Tx, hs *catalog.HostState), hosts ...catalog.Trusted) *catalog.Catalog {
	t.Helper()
	c.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("hosts"))
		var hs catalog.HostState
		if err := json.Unmarshal(b.Get([]byte(host)), &hs); err != nil {
			return err
		}
		hs.Broken = []anchor.Problem{{Object: anchor.CheckpointKey(host, hs.Tail.Size+1), What: "a problem since gone"}}
		if edit != nil {
			edit(tx, &hs)
		}
		v, err := json.Marshal(hs)
		if err != nil {
			return err
		}
		return b.Put([]byte(host), v)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return openCatalog(t, path, s, hosts...)
}

// A clear re-checks from the checkpoint the index had followed, not from
// the host's first record: the stored records up to it are not read
// again, the ones after it are followed from the store, and the whole
// prefix is audited. What the index holds up to its tail must still hash
// to the tail's root, the root of the checkpoint the store holds: an index
// whose records or root no longer match is refused, naming that
// checkpoint.
func TestClearReChecksFromTheIndexTail(t *testing.T) {
	ctx := context.Background()
	t.Run("from the tail", func(t *testing.T) {
		s := memstore.New()
		d := newDock(t, "dock-01")
		d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
		d.anchor(t, s)
		path := filepath.Join(t.TempDir(), "catalog.db")
		c := openCatalog(t, path, s, d.trusted())
		sync(t, c)
		d.ingest(t, "BWC-1", "officer-1", "B.MP4", 2)
		d.anchor(t, s)
		c = flagInIndex(t, c, path, s, "dock-01", nil, d.trusted())
		var opened []string
		s.SetHook(func(op, key string) error {
			if op == "open" {
				opened = append(opened, key)
			}
			return nil
		})
		cl, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil })
		s.SetHook(nil)
		if err != nil || cl.IndexedSize != 6 || cl.Size != 11 || cl.Object != anchor.CheckpointKey("dock-01", 11) {
			t.Fatalf("clear: %+v %v", cl, err)
		}
		read := strings.Join(opened, " ")
		if strings.Contains(read, anchor.RecordsKey("dock-01", 1, 6)) || !strings.Contains(read, anchor.RecordsKey("dock-01", 7, 11)) {
			t.Errorf("the clear read %s; want the records after the index's tail only", read)
		}
		if items, _ := c.Find(ctx, catalog.Filter{}); len(items) != 1 {
			t.Errorf("served after the clear: %d items", len(items))
		}
		if p := sync(t, c); p.New["dock-01"] != 5 {
			t.Errorf("the sync after the clear: %+v", p)
		}
	})

	// A read of the store that failed for a reason that may pass (a 503,
	// a timeout) while re-checking from the tail is not a finding: the
	// clear returns the error (exit 1, "could not check"), not a
	// StillBrokenError (exit 3), records nothing, keeps the flag, and the
	// next try clears.
	for _, fail := range []struct{ op, key string }{
		{"open", anchor.CheckpointKey("dock-01", 6)},
		{"list", anchor.Prefix("dock-01") + "records/"},
	} {
		t.Run("a "+fail.op+" of "+fail.key+" that failed for now", func(t *testing.T) {
			s := memstore.New()
			d := newDock(t, "dock-01")
			d.ingest(t, "BWC-1", "officer-1", "A.MP4", 1)
			d.anchor(t, s)
			path := filepath.Join(t.TempDir(), "catalog.db")
			c := openCatalog(t, path, s, d.trusted())
			sync(t, c)
			c = flagInIndex(t, c, path, s, "dock-01", nil, d.trusted())
			errSlow := errors.New("503 slow down")
			s.SetHook(func(op, key string) error {
				if op == fail.op && key == fail.key {
					return errSlow
				}
				return nil
			})
			called := false
			_, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { called = true; return nil })
			s.SetHook(nil)
			var still *catalog.StillBrokenError
			if !errors.Is(err, errSlow) || errors.As(err, &still) || called {
				t.Fatalf("clear with a %s that failed for now: %v (recorded %v); want its error, not a StillBrokenError, and nothing recorded", fail.op, err, called)
			}
			// Still flagged (else ErrNotFlagged), and cleared now.
			if _, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil }); err != nil {
				t.Errorf("clear once the store answers: %v", err)
			}
		})
	}

	// The same host key signed another history of the same size, which the
	// store now holds: each is sound on its own, but what the index serves
	// is not a prefix of what is in the store.
	t.Run("another history in the store", func(t *testing.T) {
		s, d := twoAnchors(t)
		path := filepath.Join(t.TempDir(), "catalog.db")
		c := openCatalog(t, path, s, d.trusted())
		sync(t, c)
		l, err := custody.Open(filepath.Join(t.TempDir(), "ledger.db"), custody.Options{Host: d.id, Signer: d.key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		other, s2 := &dock{id: d.id, key: d.key, l: l}, memstore.New()
		other.ingest(t, "BWC-1", "officer-1", "C.MP4", 1)
		other.ingest(t, "BWC-1", "officer-1", "D.MP4", 2)
		other.anchor(t, s2)
		c = flagInIndex(t, c, path, s2, "dock-01", nil, d.trusted())
		clearRefused(t, c, "dock-01")
	})

	// A version of an indexed records file (or of its signatures) added
	// behind the tail: the audit reads only checkpoints, and a follow from
	// the tail does not list what is before it, so the clear itself must
	// see it, as a follow from the first record did; else the flag is
	// lifted over a store whose newest copy of the records is not what
	// was checked (and an export from the store would not verify).
	for _, key := range []string{anchor.RecordsKey("dock-01", 1, 6), anchor.SigsKey("dock-01", 1, 6)} {
		t.Run("a second version of "+key, func(t *testing.T) {
			s, d := twoAnchors(t)
			path := filepath.Join(t.TempDir(), "catalog.db")
			c := openCatalog(t, path, s, d.trusted())
			sync(t, c)
			c = flagInIndex(t, c, path, s, "dock-01", nil, d.trusted())
			b := read(t, s, key)
			put(t, s, key, append(b, '\n'))
			clearRefused(t, c, "dock-01")
			_, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil })
			if !strings.Contains(err.Error(), key) {
				t.Errorf("refused as %v; want %s named", err, key)
			}
		})
	}

	// An anchor interrupted before its checkpoint leaves its records
	// behind, locked, and may leave them twice (tried again over the same
	// range): nothing follows them, and the clear, like a follow from the
	// first record, is not stopped by them.
	t.Run("an interrupted anchor's records behind the tail", func(t *testing.T) {
		s, d := twoAnchors(t)
		path := filepath.Join(t.TempDir(), "catalog.db")
		c := openCatalog(t, path, s, d.trusted())
		sync(t, c)
		c = flagInIndex(t, c, path, s, "dock-01", nil, d.trusted())
		left := anchor.RecordsKey("dock-01", 7, 9)
		put(t, s, left, []byte("{}\n"))
		put(t, s, left, []byte("{} \n"))
		if n := s.Versions(left); n != 2 {
			t.Fatalf("%s has %d versions", left, n)
		}
		if _, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil }); err != nil {
			t.Errorf("clear with %s left twice by interrupted anchors: %v", left, err)
		}
	})

	for _, name := range []string{"an indexed record changed", "the tail's root changed"} {
		t.Run(name, func(t *testing.T) {
			s, d := twoAnchors(t)
			path := filepath.Join(t.TempDir(), "catalog.db")
			c := openCatalog(t, path, s, d.trusted())
			sync(t, c)
			c = flagInIndex(t, c, path, s, "dock-01", func(tx *bolt.Tx, hs *catalog.HostState) {
				if name == "the tail's root changed" {
					hs.Tail.Root[0] ^= 1
					return
				}
				b := tx.Bucket([]byte("records"))
				k := binary.BigEndian.AppendUint64([]byte("dock-01\x00"), 3)
				v := bytes.Clone(b.Get(k))
				v[len(v)-2] ^= 1 // one byte of the record the host signed
				if err := b.Put(k, v); err != nil {
					t.Fatal(err)
				}
			}, d.trusted())
			clearRefused(t, c, "dock-01")
			_, err := c.Clear(ctx, "dock-01", func(catalog.Cleared) error { return nil })
			if !strings.Contains(err.Error(), anchor.CheckpointKey("dock-01", 11)) {
				t.Errorf("the refusal does not name the checkpoint the index followed: %v", err)
			}
		})
	}
}

// The record objects behind the tail are listed a page at a time (a
// host's prefix grows for years): with pages of two keys, the checkpoints
// and records of four anchors span several pages, and a second version of
// a records object listed in the last page is still found, by the audit
// and by a clear.
func TestRecordVersionsCheckedAcrossListingPages(t *testing.T) {
	ctx := context.Background()
	s, d := anchors(t, 4)
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"), s, d.trusted())
	sync(t, c)
	s.PageKeys = 2
	records := anchor.Prefix("dock-01") + "records/"
	pages := 0
	s.SetHook(func(op, key string) error {
		if op == "list" && key == records {
			pages++
		}
		return nil
	})
	// The records object whose key sorts last (records/7-11 after 1-6,
	// 12-16 and 17-21): in the last page.
	vs, err := s.ListVersions(ctx, records)
	if err != nil || len(vs) != 8 {
		t.Fatalf("the records of four anchors: %+v %v", vs, err)
	}
	key := ""
	for _, v := range vs {
		if strings.HasSuffix(v.Key, ".jsonl") && v.Key > key {
			key = v.Key
		}
	}
	pages = 0
	put(t, s, key, append(read(t, s, key), '\n'))
	breaks, err := c.Audit(ctx)
	if err != nil || len(breaks) != 1 || breaks[0].Problems[0].Object != key {
		t.Fatalf("audit with a second version of %s in the last page: %+v %v", key, breaks, err)
	}
	if pages < 4 {
		t.Errorf("the records were listed in %d calls, want a page of two keys a call (4 or more)", pages)
	}
	clearRefused(t, c, "dock-01")
}
