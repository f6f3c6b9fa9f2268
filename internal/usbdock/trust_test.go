package usbdock

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func (r *recorder) Refused(d Dock, others []Dock, err error) {
	var bays []string
	for _, o := range others {
		bays = append(bays, o.Bay())
	}
	r.log(fmt.Sprintf("refused %s bay=%s others=%v: %v", d.Serial, d.Bay(), bays, err))
}

func (r *recorder) RefusedGone(d Dock) {
	r.log(fmt.Sprintf("refused-gone %s bay=%s", d.Serial, d.Bay()))
}

// startPinned is start with an inventory pin.
func startPinned(t *testing.T, pinned func(string) (uint16, uint16, bool)) *rig {
	t.Helper()
	r := &rig{en: &fakeEnum{poll: make(chan struct{})}, st: &fakeStorage{failFor: map[string]error{}, slow: map[string]bool{}}, rec: newRecorder()}
	src, err := New(Options{Profiles: append(slices.Clone(profiles), profiles[0]), Poll: time.Millisecond, Enumerator: r.en, Storage: r.st, Pinned: pinned})
	if err != nil {
		t.Fatal(err)
	}
	src.o.Profiles[1].Name, src.o.Profiles[1].ProductID = "other-model", 0x0002
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, r.rec) }()
	r.stop = func() { cancel(); <-done }
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	r.en.polled(t)
	return r
}

// Finding 10: with BWC-0008 docked in one bay, a second device presenting
// serial BWC-0008 in another bay was docked, mounted and its recording
// vaulted as BWC-0008's. It is now refused naming both bays, never
// reported to Arrived nor mounted, and the handler hears of the bay already
// holding the serial.
func TestDuplicateSerialRefused(t *testing.T) {
	r := start(t, 2, "BWC-0008")
	hold := r.rec.setHold("BWC-0008")
	genuine := cam("BWC-0008", 1, 1, 4)
	r.en.set(genuine)
	r.rec.next(t, "settled BWC-0008")
	liar := cam("bwc-0008", 1, 2, 9) // case differs: the same folder on FAT
	r.en.set(genuine, liar)
	e := r.rec.next(t, "refused")
	if !strings.Contains(e, "bay=1-2 others=[1-1]") || !strings.Contains(e, "arrived on bay 1-2 while also on bay 1-1") {
		t.Errorf("refusal %q: want the second bay refused naming the first", e)
	}
	r.en.polled(t)
	r.en.set(genuine)
	if e := r.rec.next(t, "refused-gone"); e != "refused-gone bwc-0008 bay=1-2" {
		t.Errorf("got %q, want the refused device's departure", e)
	}
	close(hold)
	r.rec.next(t, "released BWC-0008")
	r.en.set()
	r.rec.next(t, "removed BWC-0008")
	r.stop()
	attached, _ := r.st.snapshot()
	if len(attached) != 1 {
		t.Errorf("mounted %v: want only the first device's volume", attached)
	}
	for _, ev := range r.rec.all() {
		if strings.Contains(ev, "bwc-0008") && !strings.HasPrefix(ev, "refused") {
			t.Errorf("the lying device reached the handler: %s", ev)
		}
	}
}

// Two devices presenting one serial in the same listing: both refused.
func TestDuplicateSerialSameListing(t *testing.T) {
	r := start(t, 2, "BWC-0008")
	r.en.set(cam("BWC-0008", 1, 1, 4), cam("BWC-0008", 2, 1, 5))
	a, b := r.rec.next(t, "refused"), r.rec.next(t, "refused")
	if !strings.Contains(a+b, "bay=1-1") || !strings.Contains(a+b, "bay=2-1") || !strings.Contains(a, ErrDuplicateSerial.Error()) {
		t.Errorf("refusals %q %q: want both bays refused", a, b)
	}
	r.en.polled(t)
	r.stop()
	if attached, _ := r.st.snapshot(); len(attached) != 0 {
		t.Errorf("mounted %v", attached)
	}
	for _, ev := range r.rec.all() {
		if strings.HasPrefix(ev, "arrived") {
			t.Errorf("a refused device was reported to Arrived: %s", ev)
		}
	}
}

// A known serial arriving as another model than the inventory pins it to
// is refused; the pinned model is admitted.
func TestPinnedModel(t *testing.T) {
	r := startPinned(t, func(serial string) (uint16, uint16, bool) { return 0x1209, 0x0001, serial == "BWC-0008" })
	wrong := cam("BWC-0008", 1, 1, 4)
	wrong.ProductID = 0x0002
	r.en.set(wrong)
	if e := r.rec.next(t, "refused"); !strings.Contains(e, "is 1209:0001 in the inventory") || !strings.Contains(e, "1209:0002") || !strings.Contains(e, "bay 1-1") {
		t.Errorf("refusal %q", e)
	}
	r.en.set()
	r.en.polled(t)
	r.en.set(cam("BWC-0008", 1, 1, 5))
	r.rec.next(t, "settled BWC-0008")
	r.stop()
	if attached, _ := r.st.snapshot(); !slices.Equal(attached, []string{"BWC-0008"}) {
		t.Errorf("mounted %v: want only the pinned model", attached)
	}
}

// A camera moved to another bay between two listings is not its own
// duplicate: the departure is seen first.
func TestMovedCameraIsNotADuplicate(t *testing.T) {
	r := start(t, 2, "BWC-0008")
	r.en.set(cam("BWC-0008", 1, 1, 4))
	r.rec.next(t, "settled BWC-0008")
	r.en.set(cam("BWC-0008", 1, 2, 7)) // unplugged from 1-1, plugged into 1-2
	if e := r.rec.next(t, "arrived BWC-0008 bay=1-2"); e != "arrived BWC-0008 bay=1-2" {
		t.Errorf("got %q", e)
	}
	r.rec.next(t, "settled BWC-0008 path=/mnt/BWC-0008 bay=1-2")
	r.stop()
	for _, ev := range r.rec.all() {
		if strings.HasPrefix(ev, "refused") {
			t.Errorf("the moved camera was refused: %s", ev)
		}
	}
}
