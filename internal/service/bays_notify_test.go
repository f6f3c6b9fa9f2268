package service

import (
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/ingest"
)

// Every kind of bay change is announced; a subscriber that never reads
// does not hold up the tracker; a cancelled one is told nothing more.
func TestBaysSubscribe(t *testing.T) {
	b := NewBays()
	changed, cancel := b.Subscribe()
	// Never read. Not cancelled by defer: after a step that blocked, the
	// tracker's lock is held for good and a deferred cancel would hang.
	stalled, cancelStalled := b.Subscribe()
	told := func(what string) {
		t.Helper()
		select {
		case <-changed:
		default:
			t.Errorf("%s: no change announced", what)
		}
	}
	steps := []struct {
		what string
		do   func()
	}{
		{"watched", func() { b.Watched("BWC-0001", "/media") }},
		{"arrived", func() { b.Arrived("BWC-0002", "1-1.2") }},
		{"start", func() { b.Start("BWC-0001", 3, 300) }},
		{"held", func() { b.Held("BWC-0001", 1, 100) }},
		{"file", func() { b.File("BWC-0001", "a.mp4", 50, 100) }},
		{"done", func() { b.Done("BWC-0001", ingest.Result{SafeToUndock: true}) }},
		{"unknown", func() { b.Unknown("XX-1", "1-1.3") }},
		{"problem", func() { b.Problem("BWC-0002", "unreadable") }},
		{"conflict", func() { b.Conflict("BWC-0002", "1-1.4", "REFUSED: duplicate") }},
		{"cleared", func() { b.Cleared("BWC-0002", "1-1.4") }},
		{"remove", func() { b.Remove("BWC-0001") }},
	}
	for _, s := range steps {
		done := make(chan struct{})
		go func() { s.do(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s blocked on a subscriber that does not read", s.what)
		}
		told(s.what)
	}
	if len(stalled) != 1 {
		t.Errorf("the stalled subscriber holds %d notices, want 1 (coalesced)", len(stalled))
	}
	cancel()
	cancelStalled()
	b.Problem("BWC-0002", "again")
	select {
	case <-changed:
		t.Error("told after cancel")
	default:
	}
}

// A re-docked camera that still holds vaulted footage shows that footage
// as done, and its speed (the ETA) counts only what is copied now.
func TestBaysHeldAndETA(t *testing.T) {
	b := NewBays()
	b.Watched("BWC-0001", "/media")
	if x := b.List()[0]; x.State != BayDocked || x.Folder != "/media" {
		t.Fatalf("watched: %+v", x)
	}
	b.Start("BWC-0001", 4, 1000)
	b.Held("BWC-0001", 2, 600)
	x := b.List()[0]
	if x.FilesDone != 2 || x.Done != 600 || x.Percent() != 60 {
		t.Fatalf("after held: files_done %d done %d (%v%%), want 2, 600, 60%%", x.FilesDone, x.Done, x.Percent())
	}
	b.File("BWC-0001", "c.mp4", 100, 200)
	b.File("BWC-0001", "d.mp4", 50, 200)
	x = b.List()[0]
	if x.FilesDone != 3 || x.Done != 850 {
		t.Errorf("after c done, d at 50: files_done %d done %d, want 3, 850", x.FilesDone, x.Done)
	}
	if _, ok := x.ETA(x.StartedAt.Add(time.Second)); ok {
		t.Error("an ETA after one second of copy")
	}
	// 250 bytes copied in 10 s; 150 left: 6 s.
	left, ok := x.ETA(x.StartedAt.Add(10 * time.Second))
	if !ok || left != 6*time.Second {
		t.Errorf("ETA %v %v, want 6s", left, ok)
	}
	b.Done("BWC-0001", ingest.Result{SafeToUndock: true})
	x = b.List()[0]
	if x.FilesDone != 4 || x.Done != 1000 {
		t.Errorf("safe: %+v", x)
	}
	if _, ok := x.ETA(time.Now()); ok {
		t.Error("an ETA once safe")
	}
}

// Subscribers come and go, each reading the bays when told, while ingest
// reports progress: no race (run under -race) and no report waits on them.
func TestBaysConcurrent(t *testing.T) {
	b := NewBays()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, cancel := b.Subscribe()
				select {
				case <-c:
					_ = b.List()
				case <-stop:
					cancel()
					return
				}
				cancel()
			}
		}()
	}
	reported := make(chan struct{})
	go func() {
		for i := 0; i < 2000; i++ {
			b.File("BWC-0001", "a.mp4", int64(i), 2000)
		}
		close(reported)
	}()
	select {
	case <-reported:
	case <-time.After(30 * time.Second):
		// Left running on purpose: a tracker that waits on its
		// subscribers is deadlocked here, and the test says so.
		t.Fatal("progress reports blocked on the subscribers")
	}
	close(stop)
	wg.Wait()
}
