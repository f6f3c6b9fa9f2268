package custody

import (
	"testing"
	"time"
)

func TestItemIDIsStableAndDistinct(t *testing.T) {
	mt := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	a := ItemID("BWC-0001", "DCIM/A.MP4", 10, mt)
	if a != ItemID("BWC-0001", "DCIM/A.MP4", 10, mt) {
		t.Error("ItemID is not deterministic")
	}
	for _, other := range []string{
		ItemID("BWC-0002", "DCIM/A.MP4", 10, mt),
		ItemID("BWC-0001", "DCIM/B.MP4", 10, mt),
		ItemID("BWC-0001", "DCIM/A.MP4", 11, mt),
		ItemID("BWC-0001", "DCIM/A.MP4", 10, mt.Add(time.Nanosecond)),
	} {
		if other == a {
			t.Errorf("ItemID collision for a different identity: %s", a)
		}
	}
}
