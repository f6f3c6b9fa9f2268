package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait for something the watcher must do. It is
// generous on purpose: the tests check what happens, never how fast.
const patience = 30 * time.Second

// call is one handler invocation as the recorder saw it.
type call struct {
	kind  string // "settled" or "removed"
	dock  Dock
	files []string // for settled: the files in the folder at the start of the call
	start time.Time
	ctx   context.Context
}

// recorder is a Handler that records calls, checks that calls for one folder
// never overlap, and can hold a call open (hold) to test what happens
// meanwhile.
type recorder struct {
	t     *testing.T
	calls chan call

	mu       sync.Mutex
	log      []call
	inflight map[string]int
	overlaps []string
	hold     func(c call) // called inside Settled, if set
	ended    map[string]int
}

func newRecorder(t *testing.T) *recorder {
	return &recorder{t: t, calls: make(chan call, 1000), inflight: map[string]int{}, ended: map[string]int{}}
}

func (r *recorder) enter(c call) func() {
	r.mu.Lock()
	r.inflight[c.dock.Path]++
	if r.inflight[c.dock.Path] > 1 {
		r.overlaps = append(r.overlaps, fmt.Sprintf("%s during another call for %s", c.kind, c.dock.Path))
	}
	r.log = append(r.log, c)
	hold := r.hold
	r.mu.Unlock()
	r.calls <- c
	if hold != nil && c.kind == "settled" {
		hold(c)
	}
	return func() {
		r.mu.Lock()
		r.inflight[c.dock.Path]--
		r.ended[c.kind]++
		r.mu.Unlock()
	}
}

func (r *recorder) Settled(ctx context.Context, d Dock) {
	defer r.enter(call{kind: "settled", dock: d, files: listFiles(d.Path), start: time.Now(), ctx: ctx})()
}

func (r *recorder) Removed(d Dock) {
	defer r.enter(call{kind: "removed", dock: d, start: time.Now()})()
}

var _ Handler = (*recorder)(nil)

func (r *recorder) setHold(f func(c call)) {
	r.mu.Lock()
	r.hold = f
	r.mu.Unlock()
}

// next waits for the next call, which must be of kind for serial.
func (r *recorder) next(kind, serial string) call {
	r.t.Helper()
	select {
	case c := <-r.calls:
		if c.kind != kind || c.dock.Serial != serial {
			r.t.Fatalf("next call = %s %s, want %s %s", c.kind, c.dock.Serial, kind, serial)
		}
		return c
	case <-time.After(patience):
		r.t.Fatalf("no %s call for %s", kind, serial)
	}
	return call{}
}

// until waits for a settled call for serial that saw file (relative to the
// folder), skipping earlier settled calls for it.
func (r *recorder) until(serial, file string) call {
	r.t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case c := <-r.calls:
			if c.kind == "settled" && c.dock.Serial == serial && slices.Contains(c.files, file) {
				return c
			}
			if c.kind != "settled" || c.dock.Serial != serial {
				r.t.Fatalf("unexpected call %s %s while waiting for %s to see %s", c.kind, c.dock.Serial, serial, file)
			}
		case <-deadline:
			r.t.Fatalf("no settled call for %s that saw %s", serial, file)
		}
	}
}

// record returns every call so far; call it after Run returned for a
// complete list.
func (r *recorder) record() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.overlaps) > 0 {
		r.t.Errorf("overlapping calls: %v", r.overlaps)
	}
	return slices.Clone(r.log)
}

func listFiles(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned; err is then set
	err    error
	ready  chan struct{} // closed once Run watches everything
}

// waitReady returns once Run has its watches in place and finished the
// initial scan, so what the test does next reaches it as events.
func (rn *running) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-rn.ready:
	case <-rn.done:
		t.Fatalf("Run returned before it was ready: %v", rn.err)
	case <-time.After(patience):
		t.Fatal("Run never became ready")
	}
}

// stop cancels Run and returns what it returned.
func (rn *running) stop(t *testing.T) error {
	t.Helper()
	rn.cancel()
	select {
	case <-rn.done:
		return rn.err
	case <-time.After(patience):
		t.Fatal("Run did not return after cancel")
	}
	return nil
}

func start(t *testing.T, dirs []string, settle time.Duration, h Handler) *running {
	t.Helper()
	w, err := New(dirs, settle, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	w.ready = func() { close(rn.ready) }
	go func() {
		rn.err = w.Run(ctx, h)
		close(rn.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rn.done:
		case <-time.After(patience):
			t.Error("Run did not return at cleanup")
		}
	})
	return rn
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(parts...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Folders present at start are reported once settled; files, symlinks,
// hidden folders and lost+found in the watched directory are not cameras.
func TestPresentAtStart(t *testing.T) {
	root, root2 := t.TempDir(), t.TempDir()
	media := mkdir(t, root, "BWC-0001", "DCIM", "100MEDIA")
	write(t, filepath.Join(media, "VID_0001.MP4"), "video")
	mkdir(t, root2, "CAR-0001")
	write(t, filepath.Join(root, "README.txt"), "not a camera")
	mkdir(t, root, ".staging-BWC-0002")
	mkdir(t, root, "lost+found")
	other := mkdir(t, t.TempDir(), "elsewhere")
	if err := os.Symlink(other, filepath.Join(root, "LINK-0001")); err != nil {
		t.Fatal(err)
	}

	r := newRecorder(t)
	rn := start(t, []string{root, root2}, 50*time.Millisecond, r)
	got := map[string]call{}
	for range 2 {
		c := <-r.calls
		got[c.dock.Serial] = c
	}
	if c := got["BWC-0001"]; c.dock.Path != filepath.Join(root, "BWC-0001") || !slices.Equal(c.files, []string{"DCIM/100MEDIA/VID_0001.MP4"}) {
		t.Errorf("BWC-0001: %+v", c)
	}
	if c := got["CAR-0001"]; c.dock.Path != filepath.Join(root2, "CAR-0001") {
		t.Errorf("CAR-0001: %+v", c)
	}
	// Everything present at start became due at the same time, so any call
	// for a non-camera entry would have started by now; Run waits for it.
	if err := rn.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if rec := r.record(); len(rec) != 2 {
		t.Errorf("calls = %v, want exactly the two camera folders", rec)
	}
}

// A folder that appears and is written to over time is reported only once
// nothing changed for the settle period, and the call sees everything.
func TestSettledAfterQuiet(t *testing.T) {
	root := t.TempDir()
	// The writes span several settle periods, so only a quiet period that
	// restarts at every change keeps the folder from settling early.
	const settle = 200 * time.Millisecond
	r := newRecorder(t)
	rn := start(t, []string{root}, settle, r)
	rn.waitReady(t)

	cam := mkdir(t, root, "BWC-0001")
	const n = 40
	var maxGap time.Duration
	last := time.Now()
	for i := range n {
		if i == 3 {
			mkdir(t, cam, "DCIM", "100MEDIA")
		}
		dir := cam
		if i >= 3 {
			dir = filepath.Join(cam, "DCIM", "100MEDIA")
		}
		write(t, filepath.Join(dir, fmt.Sprintf("VID_%04d.MP4", i)), "frame")
		time.Sleep(20 * time.Millisecond)
		if gap := time.Since(last); gap > maxGap {
			maxGap = gap
		}
		last = time.Now()
	}
	finished := time.Now()
	c := r.until("BWC-0001", fmt.Sprintf("DCIM/100MEDIA/VID_%04d.MP4", n-1))
	if len(c.files) != n {
		t.Errorf("settled call saw %d files, want %d", len(c.files), n)
	}
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	// The writer never paused for a settle period, so no call may have
	// started before it finished. (If this machine stalled the writer that
	// long, an early call was legitimate and the check says nothing.)
	if maxGap < settle/4 {
		for _, c := range r.record() {
			if c.start.Before(finished) {
				t.Errorf("Settled started %v before the writes stopped", finished.Sub(c.start))
			}
		}
	} else {
		t.Logf("writer stalled %v (settle %v): early-call check skipped", maxGap, settle)
	}
}

// Changes deep in the tree after a folder settled, including in
// directories created after it was first seen, are noticed: fsnotify is not
// recursive, so this checks the watcher adds watches as directories appear.
func TestNestedChanges(t *testing.T) {
	root := t.TempDir()
	media := mkdir(t, root, "BWC-0001", "DCIM", "100MEDIA")
	r := newRecorder(t)
	start(t, []string{root}, 50*time.Millisecond, r)
	r.next("settled", "BWC-0001")

	write(t, filepath.Join(media, "VID_0001.MP4"), "a")
	r.until("BWC-0001", "DCIM/100MEDIA/VID_0001.MP4")

	newDir := mkdir(t, root, "BWC-0001", "DCIM", "101MEDIA", "GPS")
	r.next("settled", "BWC-0001")
	// Only a watch on the new, nested directory reports this write.
	write(t, filepath.Join(newDir, "TRK_0001.NMEA"), "$GPRMC")
	r.until("BWC-0001", "DCIM/101MEDIA/GPS/TRK_0001.NMEA")
}

// Changes while Settled runs lead to another call after it returns, never
// to an overlapping one.
func TestChangeDuringSettled(t *testing.T) {
	root := t.TempDir()
	cam := mkdir(t, root, "BWC-0001")
	const settle = 50 * time.Millisecond
	r := newRecorder(t)
	release := make(chan struct{})
	held := make(chan call, 1)
	var once sync.Once
	r.setHold(func(c call) {
		once.Do(func() {
			held <- c
			<-release
		})
	})
	rn := start(t, []string{root}, settle, r)

	first := r.next("settled", "BWC-0001")
	<-held
	write(t, filepath.Join(cam, "VID_0002.MP4"), "late")
	// Give a broken watcher ample quiet periods to start an overlapping
	// call; the recorder reports any overlap.
	time.Sleep(10 * settle)
	if first.ctx.Err() != nil {
		t.Error("Settled's context cancelled while the folder is still there")
	}
	close(release)
	second := r.until("BWC-0001", "VID_0002.MP4")
	if second.start.Before(first.start) {
		t.Error("calls out of order")
	}
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	r.record() // reports overlaps
}

// Removing or renaming a folder away reports Removed with the same Dock;
// a camera docked again is reported again.
func TestRemoved(t *testing.T) {
	root := t.TempDir()
	away := t.TempDir()
	mkdir(t, root, "BWC-0001", "DCIM", "100MEDIA")
	mkdir(t, root, "CAR-0001", "DCIM")
	r := newRecorder(t)
	start(t, []string{root}, 50*time.Millisecond, r)
	got := map[string]Dock{}
	for range 2 {
		c := <-r.calls
		got[c.dock.Serial] = c.dock
	}

	if err := os.RemoveAll(filepath.Join(root, "BWC-0001")); err != nil {
		t.Fatal(err)
	}
	if c := r.next("removed", "BWC-0001"); c.dock != got["BWC-0001"] {
		t.Errorf("Removed(%+v), want %+v", c.dock, got["BWC-0001"])
	}

	if err := os.Rename(filepath.Join(root, "CAR-0001"), filepath.Join(away, "CAR-0001")); err != nil {
		t.Fatal(err)
	}
	if c := r.next("removed", "CAR-0001"); c.dock != got["CAR-0001"] {
		t.Errorf("Removed(%+v), want %+v", c.dock, got["CAR-0001"])
	}
	// The folder now lives elsewhere: writes there are not ours. Then dock
	// BWC-0001 again (moved in whole, as the demo does).
	write(t, filepath.Join(away, "CAR-0001", "DCIM", "after.MP4"), "x")
	staged := mkdir(t, away, "BWC-0001", "DCIM", "100MEDIA")
	write(t, filepath.Join(staged, "VID_0009.MP4"), "again")
	if err := os.Rename(filepath.Join(away, "BWC-0001"), filepath.Join(root, "BWC-0001")); err != nil {
		t.Fatal(err)
	}
	r.until("BWC-0001", "DCIM/100MEDIA/VID_0009.MP4")
	// And it is watched in full again.
	write(t, filepath.Join(root, "BWC-0001", "DCIM", "100MEDIA", "VID_0010.MP4"), "more")
	r.until("BWC-0001", "DCIM/100MEDIA/VID_0010.MP4")
}

// Undocking while Settled runs cancels that call's context, and Removed
// follows only after Settled returned.
func TestRemovedDuringSettled(t *testing.T) {
	root := t.TempDir()
	mkdir(t, root, "BWC-0001", "DCIM")
	r := newRecorder(t)
	cancelled := make(chan bool, 1)
	r.setHold(func(c call) {
		select {
		case <-c.ctx.Done():
			cancelled <- true
		case <-time.After(patience):
			cancelled <- false
		}
	})
	start(t, []string{root}, 50*time.Millisecond, r)
	r.next("settled", "BWC-0001")
	if err := os.RemoveAll(filepath.Join(root, "BWC-0001")); err != nil {
		t.Fatal(err)
	}
	if !<-cancelled {
		t.Fatal("Settled's context was not cancelled when the folder disappeared")
	}
	r.next("removed", "BWC-0001")
	r.mu.Lock()
	settledEnded := r.ended["settled"]
	r.mu.Unlock()
	if settledEnded != 1 {
		t.Errorf("Removed started before Settled returned")
	}
	r.record()
}

// Entries that appear later and are not camera folders are ignored.
func TestNonDirectoriesIgnored(t *testing.T) {
	root := t.TempDir()
	r := newRecorder(t)
	rn := start(t, []string{root}, 50*time.Millisecond, r)
	rn.waitReady(t)
	write(t, filepath.Join(root, "notes.txt"), "x")
	mkdir(t, root, ".partial")
	write(t, filepath.Join(root, ".partial", "VID.MP4"), "x")
	if err := os.Symlink(t.TempDir(), filepath.Join(root, "LINK")); err != nil {
		t.Fatal(err)
	}
	mkdir(t, root, "BWC-0001")
	r.next("settled", "BWC-0001")
	// Events are handled in order, so anything the entries above had
	// scheduled was due no later than BWC-0001 and has started by now.
	if err := rn.stop(t); err != nil {
		t.Fatal(err)
	}
	if rec := r.record(); len(rec) != 1 {
		t.Errorf("calls = %+v, want only BWC-0001", rec)
	}
}

// Cancelling Run waits for handlers in progress and leaks no goroutines.
func TestStopWaitsForHandlers(t *testing.T) {
	before := runtime.NumGoroutine()
	root := t.TempDir()
	mkdir(t, root, "BWC-0001")
	r := newRecorder(t)
	var finished sync.WaitGroup
	finished.Add(1)
	returned := make(chan struct{})
	r.setHold(func(c call) {
		<-c.ctx.Done() // Run's context is cancelled
		time.Sleep(100 * time.Millisecond)
		close(returned)
		finished.Done()
	})
	w, err := New([]string{root}, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, r) }()
	r.next("settled", "BWC-0001")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return")
	}
	select {
	case <-returned:
	default:
		t.Fatal("Run returned before the handler did")
	}
	if err := w.Run(context.Background(), r); err == nil {
		t.Error("second Run succeeded")
	}
	deadline := time.Now().Add(patience)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A watched directory that disappears stops Run with ErrDirGone.
func TestWatchedDirRemoved(t *testing.T) {
	root := mkdir(t, t.TempDir(), "media")
	rn := start(t, []string{root}, 50*time.Millisecond, newRecorder(t))
	rn.waitReady(t)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rn.done:
		if !errors.Is(rn.err, ErrDirGone) || !strings.Contains(rn.err.Error(), root) {
			t.Fatalf("Run = %v, want ErrDirGone naming %s", rn.err, root)
		}
	case <-time.After(patience):
		t.Fatal("Run did not notice the watched directory was removed")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	write(t, file, "x")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		dirs   []string
		settle time.Duration
		is     error
		want   string
	}{
		{"missing", []string{missing}, time.Second, fs.ErrNotExist, missing},
		{"not a directory", []string{file}, time.Second, ErrNotDir, file},
		{"none", nil, time.Second, nil, "no directories"},
		{"zero settle", []string{dir}, 0, nil, "settle"},
		{"overlap", []string{dir, filepath.Join(dir)}, time.Second, nil, ""},
	}
	mkdir(t, dir, "sub")
	tests[4].dirs = []string{dir, filepath.Join(dir, "sub")}
	tests[4].want = "overlap"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.dirs, tt.settle, nil)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
	// The same directory twice is one watch, not an error.
	if _, err := New([]string{dir, dir + "/"}, time.Second, nil); err != nil {
		t.Errorf("duplicate dir: %v", err)
	}
}
