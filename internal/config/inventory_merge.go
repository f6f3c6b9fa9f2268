package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// InventoryMerge says what MergeInventory changed: the serials added,
// handed over (a holder the file names that differs from the one in
// force), newly retired, and kept though the file does not list them.
type InventoryMerge struct {
	Added, HandedOver, Retired, KeptAbsent []string
}

// MergeInventory is the inventory an import of file publishes over prev,
// the document in force, at time at. An import is a routine refresh from
// the asset register (a CSV carries no history at all), so it never
// rewrites what prev already says happened:
//
//   - a camera in both keeps prev's history; a holder in the file other
//     than prev's holder at at becomes a hand-over effective at at
//     (refused, naming the serial, when prev already dates a hand-over at
//     or after at: the history would go back in time). A file that carries
//     its own history for the camera must extend prev's (prev's entries a
//     prefix of it), else it is refused naming the serial;
//   - retirement is final: a camera retired in prev stays retired with
//     prev's time whatever the file says; a file row that dates it
//     otherwise or hands it to someone new is refused naming the serial.
//     A retired time in the file retires a camera not yet retired;
//   - a kind change for an existing serial is refused naming it: a body
//     camera does not become a vehicle camera, a new serial is a new
//     camera;
//   - a camera in prev that the file does not list is kept as it was and
//     named in KeptAbsent. A register export is often partial (one depot,
//     a filtered sheet), and dropping a camera would make it "not in the
//     inventory": its footage stays on it undocked, and its history and
//     retirement are lost if it is listed again. Taking a camera out of
//     service is `inventory retire`, which is on record.
//
// Serials match as editCamera matches them (case-insensitively); the
// result lists the file's cameras in its order, then those kept absent.
func MergeInventory(prev, file []InventoryCamera, at time.Time) ([]InventoryCamera, InventoryMerge, error) {
	at = at.UTC()
	var m InventoryMerge
	byKey := make(map[string]int, len(prev))
	for i, c := range prev {
		byKey[strings.ToLower(c.Serial)] = i
	}
	seen := make([]bool, len(prev))
	out := make([]InventoryCamera, 0, len(file)+len(prev))
	for _, f := range file {
		i, ok := byKey[strings.ToLower(f.Serial)]
		if !ok {
			out = append(out, f)
			m.Added = append(m.Added, f.Serial)
			continue
		}
		seen[i] = true
		cam, handed, retired, err := mergeCamera(prev[i], f, at)
		if err != nil {
			return nil, InventoryMerge{}, fmt.Errorf("%w: camera %s: %v", ErrInvalid, prev[i].Serial, err)
		}
		if handed {
			m.HandedOver = append(m.HandedOver, cam.Serial)
		}
		if retired {
			m.Retired = append(m.Retired, cam.Serial)
		}
		out = append(out, cam)
	}
	for i, c := range prev {
		if !seen[i] {
			out = append(out, c)
			m.KeptAbsent = append(m.KeptAbsent, c.Serial)
		}
	}
	return out, m, nil
}

// mergeCamera is prev's camera as the file's row f updates it at at (see
// MergeInventory): whether it was handed over and newly retired.
func mergeCamera(prev, f InventoryCamera, at time.Time) (cam InventoryCamera, handed, retired bool, err error) {
	if f.Kind != prev.Kind {
		return cam, false, false, fmt.Errorf("kind %s in the file, %s in the inventory: an import does not change a camera's kind", f.Kind, prev.Kind)
	}
	cam = prev
	cam.Assignments = slices.Clone(prev.Assignments)
	if len(f.Assignments) > 0 {
		// The history prev implies: none is one undated entry, its holder.
		base := prev.Assignments
		if len(base) == 0 {
			base = []Assignment{{To: prev.AssignedTo}}
		}
		if len(f.Assignments) < len(base) || !slices.EqualFunc(base, f.Assignments[:len(base)], sameAssignment) {
			return cam, false, false, fmt.Errorf("the file's assignments do not extend the camera's history in the inventory (%d entries): an import adds to a history, it cannot rewrite it", len(base))
		}
		cam.Assignments = slices.Clone(f.Assignments)
		cam.AssignedTo, _ = cam.AssignedAt(at)
	}
	switch {
	case prev.Retired != nil:
		if f.Retired != nil && !f.Retired.Equal(*prev.Retired) {
			return cam, false, false, fmt.Errorf("retired %s in the file, but retired since %s in the inventory: a retirement is final", f.Retired.Format(time.RFC3339), prev.Retired.Format(time.RFC3339))
		}
	case f.Retired != nil:
		r := f.Retired.UTC()
		cam.Retired, retired = &r, true
	}
	now, _ := cam.AssignedAt(at)
	if f.AssignedTo == now {
		return cam, false, retired, nil
	}
	if cam.RetiredAt(at) {
		return cam, false, false, fmt.Errorf("retired since %s: not handed to %s (it stays with %s)", cam.Retired.Format(time.RFC3339), f.AssignedTo, now)
	}
	if n := len(cam.Assignments); n > 0 && !at.After(cam.Assignments[n-1].From) {
		last := cam.Assignments[n-1]
		return cam, false, false, fmt.Errorf("handed to %s at the import (%s), not after its last hand-over (%s to %s): hand it over with inventory assign",
			f.AssignedTo, at.Format(time.RFC3339), last.From.Format(time.RFC3339), last.To)
	}
	if len(cam.Assignments) == 0 {
		cam.Assignments = []Assignment{{To: now}}
	}
	cam.Assignments = append(cam.Assignments, Assignment{To: f.AssignedTo, From: at})
	cam.AssignedTo = f.AssignedTo
	return cam, true, retired, nil
}

func sameAssignment(a, b Assignment) bool { return a.To == b.To && a.From.Equal(b.From) }
