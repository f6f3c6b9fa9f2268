package service

import (
	"testing"

	"github.com/evidenced/evidenced/internal/ingest"
)

// The bay status is what an officer reads before walking away: it must say
// "safe" only after the dock said so, and report a problem otherwise.
func TestBaysLifecycle(t *testing.T) {
	b := NewBays()
	b.Start("BWC-0001", 2, 300)
	b.File("BWC-0001", "a.mp4", 100, 100)
	b.File("BWC-0001", "b.mp4", 50, 200)
	bays := b.List()
	if len(bays) != 1 || bays[0].State != BayCopying {
		t.Fatalf("while copying: %+v", bays)
	}
	if got := bays[0].Percent(); got != 50 {
		t.Errorf("percent %v after 150 of 300 bytes, want 50", got)
	}
	b.Done("BWC-0001", ingest.Result{SafeToUndock: false, Failed: []ingest.FileError{{Rel: "b.mp4", Reason: "yanked"}}})
	if x := b.List()[0]; x.State != BayProblem || x.Problem == "" {
		t.Errorf("after a failed file: %+v, want problem", x)
	}
	b.Start("BWC-0001", 2, 300)
	b.Done("BWC-0001", ingest.Result{SafeToUndock: true})
	x := b.List()[0]
	if x.State != BaySafe || x.Problem != "" || x.Percent() != 100 {
		t.Errorf("after a clean re-dock: %+v, want safe at 100%%", x)
	}
	b.Start("CAR-0001", 0, 0)
	if l := b.List(); len(l) != 2 || l[0].Camera != "BWC-0001" || l[1].Camera != "CAR-0001" {
		t.Errorf("List not sorted by camera: %+v", l)
	}
	if last := b.Remove("BWC-0001"); last.State != BaySafe {
		t.Errorf("Remove returned %+v", last)
	}
	if l := b.List(); len(l) != 1 {
		t.Errorf("after Remove: %+v", l)
	}
}

// A camera on record but not yet copying (its volume or its bus slot is not
// ready) is never "safe", and leaving in that state is not a clean undock.
func TestBaysArrivedIsNotSafe(t *testing.T) {
	b := NewBays()
	b.Problem("BWC-0002", "an earlier problem")
	b.Arrived("BWC-0002", "2-1.4")
	x := b.List()[0]
	if x.State != BayDocked || x.Problem != "" || x.Bay != "2-1.4" {
		t.Errorf("after Arrived: %+v, want %q and no problem", x, BayDocked)
	}
	if last := b.Remove("BWC-0002"); last.State == BaySafe {
		t.Errorf("a camera removed before its copy began was %q", last.State)
	}
}

// Finding 10: a second device presenting a docked camera's serial is shown
// as a problem on both bays, and the conflict outlives the genuine
// camera's own copy finishing cleanly.
func TestBaysConflictOnBothBays(t *testing.T) {
	b := NewBays()
	b.Arrived("BWC-0008", "1-1")
	b.Start("BWC-0008", 1, 10)
	b.Conflict("BWC-0008", "1-2", "REFUSED: serial already docked in another bay")
	b.Done("BWC-0008", ingest.Result{SafeToUndock: true})
	l := b.List()
	if len(l) != 2 || l[0].Bay != "1-1" || l[1].Bay != "1-2" {
		t.Fatalf("bays %+v, want both bays listed", l)
	}
	for _, x := range l {
		if x.State != BayProblem || x.Camera != "BWC-0008" || x.Problem == "" {
			t.Errorf("bay %s: %+v, want a problem", x.Bay, x)
		}
	}
	b.Cleared("BWC-0008", "1-2")
	if l := b.List(); len(l) != 1 || l[0].Bay != "1-1" || l[0].State != BayProblem {
		t.Errorf("after the refused device left: %+v", l)
	}
}
