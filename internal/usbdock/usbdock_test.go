package usbdock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
)

// fakeEnum is an Enumerator whose device list the test sets.
type fakeEnum struct {
	mu   sync.Mutex
	devs []Device
	err  error
	poll chan struct{} // one value per call, when the test listens
}

func (f *fakeEnum) Devices(ctx context.Context) ([]Device, error) {
	f.mu.Lock()
	devs, err := slices.Clone(f.devs), f.err
	f.mu.Unlock()
	select {
	case f.poll <- struct{}{}:
	default:
	}
	return devs, err
}

func (f *fakeEnum) set(devs ...Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs = devs
}

func (f *fakeEnum) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// polled waits until the source has listed devices twice more, so
// whatever the test changed before was seen.
func (f *fakeEnum) polled(t *testing.T) {
	t.Helper()
	for range 2 {
		select {
		case <-f.poll:
		case <-time.After(10 * time.Second):
			t.Fatal("the source stopped polling")
		}
	}
}

// fakeStorage records attaches and detaches.
type fakeStorage struct {
	mu       sync.Mutex
	failFor  map[string]error // serial → Attach error
	slow     map[string]bool  // serial → Attach waits until its ctx ends (no volume yet)
	attached []string
	detached []string
}

func (s *fakeStorage) Attach(ctx context.Context, d Device, p config.Profile) (Volume, error) {
	s.mu.Lock()
	slow := s.slow[d.Serial]
	s.mu.Unlock()
	if slow {
		<-ctx.Done()
		return Volume{}, fmt.Errorf("wait for the volume of %s: %w", d.Serial, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failFor[d.Serial]; err != nil {
		return Volume{}, err
	}
	s.attached = append(s.attached, d.Serial)
	return Volume{Path: "/mnt/" + d.Serial, Source: "/dev/sdx1", FS: "vfat", Ours: true}, nil
}

func (s *fakeStorage) Detach(v Volume) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.detached = append(s.detached, v.Path)
	return nil
}

func (s *fakeStorage) snapshot() (a, d []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attached), slices.Clone(s.detached)
}

// recorder is a Handler logging every call; Settled blocks until the test
// releases it (or the dock's context ends) when hold is set.
type recorder struct {
	known   []string // serials Arrived admits; nil admits every one
	mu      sync.Mutex
	events  []string
	hold    map[string]chan struct{}
	running map[string]bool // bus → a Settled call is running
	overlap []string        // buses that saw two Settled at once
	ch      chan string
	pending []string // received by next but not matched yet (test goroutine only)
}

func newRecorder() *recorder {
	return &recorder{hold: map[string]chan struct{}{}, running: map[string]bool{}, ch: make(chan string, 100)}
}

func (r *recorder) log(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.ch <- e
}

func (r *recorder) Arrived(_ context.Context, d Dock) bool {
	r.log(fmt.Sprintf("arrived %s bay=%s", d.Serial, d.Bay()))
	return r.known == nil || slices.Contains(r.known, d.Serial)
}

func (r *recorder) Settled(ctx context.Context, d Dock) {
	r.mu.Lock()
	if r.running[d.Bus()] {
		r.overlap = append(r.overlap, d.Bus())
	}
	r.running[d.Bus()] = true
	h := r.hold[d.Serial]
	r.mu.Unlock()
	r.log(fmt.Sprintf("settled %s path=%s bay=%s bus=%s", d.Serial, d.Path, d.Bay(), d.Bus()))
	if h != nil {
		select {
		case <-h:
			r.log("released " + d.Serial)
		case <-ctx.Done():
			r.log("cancelled " + d.Serial)
		}
	}
	r.mu.Lock()
	r.running[d.Bus()] = false
	r.mu.Unlock()
}

func (r *recorder) setHold(serial string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.hold[serial] = ch
	return ch
}

func (r *recorder) Failed(d Dock, err error) { r.log(fmt.Sprintf("failed %s: %v", d.Serial, err)) }
func (r *recorder) Removed(d Dock)           { r.log("removed " + d.Serial) }

// next returns the first event with prefix not returned before, waiting
// for it if need be. Events skipped on the way stay for later calls.
func (r *recorder) next(t *testing.T, prefix string) string {
	t.Helper()
	for i, e := range r.pending {
		if strings.HasPrefix(e, prefix) {
			r.pending = slices.Delete(r.pending, i, i+1)
			return e
		}
	}
	for {
		select {
		case e := <-r.ch:
			if strings.HasPrefix(e, prefix) {
				return e
			}
			r.pending = append(r.pending, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q event; have %q", prefix, r.all())
		}
	}
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

var profiles = []config.Profile{{Name: "bodycam", VendorID: 0x1209, ProductID: 0x0001, Recordings: []string{"DCIM"}}}

func cam(serial string, bus, port, addr int) Device {
	return Device{VendorID: 0x1209, ProductID: 0x0001, Serial: serial, Bus: bus, Address: addr, PortPath: []int{port}}
}

type rig struct {
	en   *fakeEnum
	st   *fakeStorage
	rec  *recorder
	stop func()
}

func start(t *testing.T, perBus int, known ...string) *rig {
	t.Helper()
	r := &rig{en: &fakeEnum{poll: make(chan struct{})}, st: &fakeStorage{failFor: map[string]error{}, slow: map[string]bool{}}, rec: newRecorder()}
	r.rec.known = append([]string{}, known...)
	src, err := New(Options{
		Profiles: profiles, Poll: time.Millisecond, PerBus: perBus, Enumerator: r.en, Storage: r.st,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, r.rec) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	r.en.polled(t)
	return r
}

func TestDockLifecycle(t *testing.T) {
	r := start(t, 1, "BWC-1")
	other := Device{VendorID: 0x046d, ProductID: 0xc52b, Serial: "MOUSE", Bus: 1, Address: 3, PortPath: []int{2}}
	r.en.set(other, cam("BWC-1", 2, 1, 5))
	if e := r.rec.next(t, "arrived"); e != "arrived BWC-1 bay=2-1" {
		t.Errorf("got %q", e)
	}
	if e := r.rec.next(t, "settled"); e != "settled BWC-1 path=/mnt/BWC-1 bay=2-1 bus=usb2" {
		t.Errorf("got %q", e)
	}
	r.en.polled(t)
	a, d := r.st.snapshot()
	if !slices.Equal(a, []string{"BWC-1"}) || !slices.Equal(d, []string{"/mnt/BWC-1"}) {
		t.Errorf("attached %v detached %v: want the camera mounted once and unmounted after Settled returned (the mouse never)", a, d)
	}
	r.en.set(other)
	r.rec.next(t, "removed BWC-1")
	r.stop()
	for _, e := range r.rec.all() {
		if strings.Contains(e, "MOUSE") {
			t.Errorf("a device of no camera model reached the handler: %s", e)
		}
	}
}

func TestUnknownSerialNotMounted(t *testing.T) {
	r := start(t, 1, "BWC-1")
	r.en.set(cam("STRANGER", 2, 1, 5))
	r.rec.next(t, "arrived STRANGER")
	r.en.set()
	r.rec.next(t, "removed STRANGER")
	if a, _ := r.st.snapshot(); len(a) != 0 {
		t.Errorf("an unknown camera was mounted: %v", a)
	}
	for _, e := range r.rec.all() {
		if strings.HasPrefix(e, "settled") || strings.HasPrefix(e, "failed") {
			t.Errorf("a camera Arrived did not admit reached %q", e)
		}
	}
}

// A camera is on record at once, even when its volume never shows up; a
// yank then still ends its session with Removed.
func TestArrivedBeforeVolume(t *testing.T) {
	r := start(t, 1, "BWC-1")
	r.st.mu.Lock()
	r.st.slow["BWC-1"] = true
	r.st.mu.Unlock()
	r.en.set(cam("BWC-1", 2, 1, 5))
	r.rec.next(t, "arrived BWC-1")
	r.en.polled(t)
	r.en.set()
	r.rec.next(t, "removed BWC-1")
	if got := r.rec.all(); len(got) != 2 {
		t.Errorf("events %q: want only arrived and removed (no volume: not settled, not failed)", got)
	}
}

func TestStorageFailure(t *testing.T) {
	r := start(t, 1, "BWC-1", "BWC-2")
	r.st.mu.Lock()
	r.st.failFor["BWC-1"] = fmt.Errorf("mount /dev/sda: %w: invalid argument", ErrMount)
	r.st.mu.Unlock()
	release := r.rec.setHold("BWC-2")
	r.en.set(cam("BWC-1", 2, 1, 5), cam("BWC-2", 3, 1, 2))
	if e := r.rec.next(t, "failed"); !strings.Contains(e, "BWC-1") || !strings.Contains(e, "cannot mount") {
		t.Errorf("got %q", e)
	}
	// The other bay is served regardless.
	r.rec.next(t, "settled BWC-2")
	close(release)
	r.en.set(cam("BWC-2", 3, 1, 2))
	r.rec.next(t, "removed BWC-1")
	for _, e := range r.rec.all() {
		if strings.HasPrefix(e, "settled BWC-1") {
			t.Errorf("Settled after a failed attach: %s", e)
		}
	}
}

func TestYankCancelsAndRemovesAfterSettled(t *testing.T) {
	r := start(t, 1, "BWC-1")
	r.rec.setHold("BWC-1")
	r.en.set(cam("BWC-1", 2, 1, 5))
	r.rec.next(t, "settled BWC-1")
	r.en.set()
	r.rec.next(t, "cancelled BWC-1")
	r.rec.next(t, "removed BWC-1")
	if _, d := r.st.snapshot(); len(d) != 1 {
		t.Errorf("detached %v, want the yanked volume unmounted once", d)
	}
	// Re-docked in the same bay: a new attachment (new address), a new session.
	r.rec.mu.Lock()
	delete(r.rec.hold, "BWC-1")
	r.rec.mu.Unlock()
	r.en.set(cam("BWC-1", 2, 1, 6))
	r.rec.next(t, "settled BWC-1")
}

func TestPerBusSerialises(t *testing.T) {
	r := start(t, 1, "A", "B", "C")
	holds := map[string]chan struct{}{}
	for _, s := range []string{"A", "B", "C"} {
		holds[s] = r.rec.setHold(s)
	}
	r.en.set(cam("A", 2, 1, 2), cam("B", 2, 2, 3), cam("C", 3, 1, 2))
	// Every camera is on record at once, busy bus or not.
	for _, s := range []string{"A", "B", "C"} {
		r.rec.next(t, "arrived "+s)
	}
	first := r.rec.next(t, "settled")
	second := r.rec.next(t, "settled")
	// One of A/B and C run at once (separate buses); the other of A/B waits.
	got := []string{strings.Fields(first)[1], strings.Fields(second)[1]}
	slices.Sort(got)
	if got[1] != "C" {
		t.Fatalf("first two Settled calls %v, want one on usb2 and C on usb3", got)
	}
	r.en.polled(t)
	select {
	case e := <-r.rec.ch:
		t.Fatalf("a second camera on usb2 started while one was copying: %s", e)
	default:
	}
	close(holds[got[0]])
	r.rec.next(t, "released "+got[0])
	third := r.rec.next(t, "settled")
	if want := map[string]string{"A": "B", "B": "A"}[got[0]]; strings.Fields(third)[1] != want {
		t.Errorf("third Settled %q, want %s", third, want)
	}
	r.stop() // cancels the calls still held

	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	if len(r.rec.overlap) != 0 {
		t.Errorf("Settled calls overlapped on %v", r.rec.overlap)
	}
}

func TestEnumerationErrorKeepsDocks(t *testing.T) {
	r := start(t, 1, "BWC-1")
	r.rec.setHold("BWC-1")
	r.en.set(cam("BWC-1", 2, 1, 5))
	r.rec.next(t, "settled BWC-1")
	r.en.setErr(errors.New("libusb: busy"))
	r.en.set()
	r.en.polled(t)
	select {
	case e := <-r.rec.ch:
		t.Fatalf("a failed enumeration changed the docks: %s", e)
	default:
	}
	r.en.setErr(nil)
	r.rec.next(t, "cancelled BWC-1")
	r.rec.next(t, "removed BWC-1")
}

func TestStopDoesNotUndock(t *testing.T) {
	r := start(t, 1, "BWC-1")
	r.rec.setHold("BWC-1")
	r.en.set(cam("BWC-1", 2, 1, 5))
	r.rec.next(t, "settled BWC-1")
	r.stop() // returns only after Settled returned
	ev := r.rec.all()
	if ev[len(ev)-1] != "cancelled BWC-1" {
		t.Errorf("events %q: want Settled cancelled and no Removed (the camera was not undocked)", ev)
	}
}

// With a Work context, stopping Run stops polling but lets a copy in
// progress finish.
func TestStopDrainsWithWork(t *testing.T) {
	en := &fakeEnum{poll: make(chan struct{})}
	rec := newRecorder()
	release := rec.setHold("BWC-1")
	src, err := New(Options{Profiles: profiles, Poll: time.Millisecond, Enumerator: en, Storage: &fakeStorage{}, Work: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	en.set(cam("BWC-1", 2, 1, 5))
	rec.next(t, "settled BWC-1")
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a copy was still running", err)
	case <-en.poll: // Run may finish the poll it was in; wait for a second one
		select {
		case err := <-done:
			t.Fatalf("Run returned (%v) while a copy was still running", err)
		case <-en.poll:
			t.Fatal("still polling after Run's ctx ended")
		default:
		}
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rec.next(t, "released"); got != "released BWC-1" {
		t.Errorf("got %q: want the copy to have finished, not been cancelled", got)
	}
}

func TestRunOnce(t *testing.T) {
	src, err := New(Options{Enumerator: &fakeEnum{}, Storage: &fakeStorage{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Run(ctx, newRecorder()); err != nil {
		t.Fatal(err)
	}
	if err := src.Run(ctx, newRecorder()); err == nil {
		t.Error("second Run succeeded")
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without an Enumerator succeeded")
	}
}

func TestDeviceNames(t *testing.T) {
	d := Device{Bus: 3, PortPath: []int{1, 4, 2}, Address: 9}
	if d.Name() != "3-1.4.2" || d.key() != "3-1.4.2@9" {
		t.Errorf("Name %q key %q", d.Name(), d.key())
	}
	if (Device{Bus: 2}).Name() != "usb2" {
		t.Error("root hub name")
	}
	if k := (Dock{Device: d}).Bus(); k != "usb3" {
		t.Errorf("Bus() = %q", k)
	}
}

// With a Topology, the device list is read as soon as the fingerprint
// changes, not only every Poll: a camera is seen within about Poll/5.
func TestTopologyTriggersListing(t *testing.T) {
	en := &fakeEnum{poll: make(chan struct{}, 100)}
	var mu sync.Mutex
	topo := "usb1 usb2"
	rec := newRecorder()
	src, err := New(Options{
		Profiles: profiles, Poll: time.Hour, Enumerator: en, Storage: &fakeStorage{},
		Topology: func() string { mu.Lock(); defer mu.Unlock(); return topo },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	defer func() { cancel(); <-done }()
	<-en.poll // the first listing, at start
	// Unchanged topology, Poll far away: no second listing.
	select {
	case <-en.poll:
		t.Fatal("listed again with the topology unchanged and Poll an hour away")
	case <-time.After(100 * time.Millisecond):
	}
	en.set(cam("BWC-1", 2, 1, 5))
	mu.Lock()
	topo = "2-1 2-1:1.0 usb1 usb2"
	mu.Unlock()
	// Poll is an hour: only the topology change can list the camera
	// before next gives up.
	if e := rec.next(t, "arrived"); e != "arrived BWC-1 bay=2-1" {
		t.Errorf("got %q", e)
	}
}

func TestSysfsTopology(t *testing.T) {
	dir := t.TempDir()
	f := SysfsTopology(dir)
	a := f()
	must(t, os.Mkdir(filepath.Join(dir, "2-1"), 0o755))
	if b := f(); b == a || !strings.Contains(b, "2-1") {
		t.Errorf("fingerprint %q after a device appeared, was %q", b, a)
	}
	if e := SysfsTopology(filepath.Join(dir, "missing"))(); !strings.HasPrefix(e, "error: ") {
		t.Errorf("fingerprint of a missing directory %q", e)
	}
}
