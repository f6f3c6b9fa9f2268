package ingest

import (
	"context"
	"testing"
)

// heldRecorder is a Progress that also takes HeldProgress's report.
type heldRecorder struct {
	files, heldFiles int
	bytes, heldBytes int64
	heldCalls        int
}

func (h *heldRecorder) Start(_ string, files int, bytes int64) { h.files, h.bytes = files, bytes }
func (h *heldRecorder) File(_, _ string, _, _ int64)           {}
func (h *heldRecorder) Done(string, Result)                    {}
func (h *heldRecorder) Held(_ string, files int, bytes int64) {
	h.heldCalls++
	h.heldFiles, h.heldBytes = files, bytes
}

// A camera re-docked with footage already vaulted: its progress is told,
// after Start, which of the listed files and bytes are held and will not
// be copied again, so the dock page neither starts it at 0 % nor counts the
// held bytes as copy speed.
func TestHeldProgressReportsWhatIsVaulted(t *testing.T) {
	f := newFixture(t)
	f.write(t, "DCIM/A.MP4", []byte("0123456789"))
	f.write(t, "DCIM/B.MP4", []byte("abcdefg"))
	first := &heldRecorder{}
	if res, err := f.dock(t, first); err != nil || !res.SafeToUndock {
		t.Fatalf("first dock: %+v, %v", res, err)
	}
	if first.heldCalls != 1 || first.heldFiles != 0 || first.heldBytes != 0 {
		t.Errorf("first dock: held reported %d time(s) as %d files, %d bytes; want once, 0, 0", first.heldCalls, first.heldFiles, first.heldBytes)
	}
	f.write(t, "DCIM/C.MP4", []byte("new"))
	again := &heldRecorder{}
	res, err := f.in.Dock(context.Background(), Request{Serial: "BWC-0001", Root: f.cam, Actor: "t", Via: "test"}, again)
	if err != nil || res.AlreadyHeld != 2 || res.Vaulted != 1 {
		t.Fatalf("re-dock: %+v, %v", res, err)
	}
	if again.files != 3 || again.bytes != 20 {
		t.Errorf("re-dock Start: %d files, %d bytes; want 3, 20", again.files, again.bytes)
	}
	if again.heldCalls != 1 || again.heldFiles != 2 || again.heldBytes != 17 {
		t.Errorf("re-dock: held reported %d time(s) as %d files, %d bytes; want once, 2, 17", again.heldCalls, again.heldFiles, again.heldBytes)
	}
}
