package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
)

// Finding 8: 2,000 empty files grew the ledger by 8 MiB, never deletable.
// A camera with more entries than sources.max_files_per_dock is REFUSED by
// name with its counts, and nothing of it is ingested, not even in part.
func TestTooManyFilesRefusedWhole(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		files int
		over  bool
	}{{3, false}, {4, true}} {
		t.Run(fmt.Sprint(c.files), func(t *testing.T) {
			f := newFixture(t)
			f.in.cfg.Sources.MaxFilesPerDock = 3
			for i := range c.files {
				f.write(t, fmt.Sprintf("DCIM/V%d.MP4", i), []byte(fmt.Sprint("recording ", i)))
			}
			res, err := f.in.Dock(ctx, Request{Serial: "BWC-0001", Root: f.cam, Actor: "daemon", Via: "watch"}, nil)
			counts := map[custody.EventType]int{}
			var refused custody.Event
			f.ledger.Events(ctx, 0, func(e custody.Event) error {
				counts[e.Type]++
				if e.Type == custody.Refused {
					refused = e
				}
				return nil
			})
			if !c.over {
				if err != nil || res.Vaulted != 3 || counts[custody.Refused] != 0 {
					t.Fatalf("at the cap: %+v, %v, %v", res, err, counts)
				}
				return
			}
			if !errors.Is(err, ErrTooManyFiles) || !errors.Is(err, ErrIncomplete) || res.SafeToUndock || res.Vaulted != 0 {
				t.Fatalf("over the cap: %+v, %v; want ErrTooManyFiles and nothing vaulted", res, err)
			}
			if counts[custody.Copied] != 0 || counts[custody.Vaulted] != 0 || counts[custody.SafeToUndock] != 0 || counts[custody.Refused] != 1 {
				t.Errorf("ledger %v: want one REFUSED and nothing copied", counts)
			}
			if d := refused.Details; refused.Camera != "BWC-0001" || d["files"] != "4" || d["max_files_per_dock"] != "3" || d["reason"] == "" {
				t.Errorf("REFUSED record %+v: want the camera and its counts", refused)
			}
			if len(res.Refused) != 1 || res.Files != 4 {
				t.Errorf("result %+v", res)
			}
		})
	}
}
