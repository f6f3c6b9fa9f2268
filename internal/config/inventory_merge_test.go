package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An import merges into the document in force: histories and
// retirements are kept, a changed holder is a hand-over at the import's
// time, cameras the file leaves out are kept and named; what would
// rewrite history, un-retire or re-kind a camera is refused naming it.
func TestMergeInventory(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	at := t0.Add(48 * time.Hour)
	retired := t0.Add(time.Hour)
	prev := []InventoryCamera{
		{Serial: "BWC-1", Kind: "body", AssignedTo: "pc-2", Assignments: []Assignment{{To: "pc-1"}, {To: "pc-2", From: t0}}},
		{Serial: "BWC-2", Kind: "body", AssignedTo: "pc-7", Retired: &retired},
		{Serial: "BWC-3", Kind: "body", AssignedTo: "pc-3"},
		{Serial: "CAR-1", Kind: "vehicle", AssignedTo: "car-1"},
	}
	csv := func(rows ...string) []InventoryCamera {
		t.Helper()
		for i, r := range rows {
			if strings.Count(r, ",") == 2 {
				rows[i] += ","
			}
		}
		cams, err := ParseInventoryCSV([]byte("serial,kind,assigned_to,retired\n"+strings.Join(rows, "\n")+"\n"), "register.csv")
		if err != nil {
			t.Fatal(err)
		}
		return cams
	}

	// The same register as yesterday's (it knows nothing of histories or
	// retirements): nothing changes but the order of the kept camera.
	got, m, err := MergeInventory(prev, csv("bwc-1,body,pc-2", "BWC-2,body,pc-7", "BWC-3,body,pc-3", "BWC-9,body,pc-9"), at)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m) != "{[BWC-9] [] [] [CAR-1]}" || len(got) != 5 {
		t.Errorf("merge of the same register: %+v, %d cameras", m, len(got))
	}
	if c := got[0]; c.Serial != "BWC-1" || len(c.Assignments) != 2 || c.AssignedTo != "pc-2" {
		t.Errorf("BWC-1 lost its history: %+v", c)
	}
	if who, _ := got[0].AssignedAt(t0.Add(-time.Minute)); who != "pc-1" {
		t.Errorf("a recording before the hand-over resolves to %s, want pc-1", who)
	}
	if c := got[1]; c.Retired == nil || !c.Retired.Equal(retired) || !c.RetiredAt(at) {
		t.Errorf("BWC-2 un-retired by a register that has no retired column value: %+v", c)
	}
	if c := got[4]; c.Serial != "CAR-1" || c.AssignedTo != "car-1" {
		t.Errorf("the camera the file leaves out: %+v", c)
	}
	if err := CheckInventory(got, "merged"); err != nil {
		t.Errorf("the merge does not check: %v", err)
	}

	// A changed holder is a dated hand-over at the import; a camera
	// without a history first gets its holder as the undated entry; a
	// retired time retires.
	got, m, err = MergeInventory(prev, csv("BWC-1,body,pc-4", "BWC-3,body,pc-5,"+at.Add(time.Hour).Format(time.RFC3339)), at)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m) != "{[] [BWC-1 BWC-3] [BWC-3] [BWC-2 CAR-1]}" {
		t.Errorf("merge: %+v", m)
	}
	if c := got[0]; c.AssignedTo != "pc-4" || len(c.Assignments) != 3 || !c.Assignments[2].From.Equal(at) || c.Assignments[2].To != "pc-4" {
		t.Errorf("BWC-1 handed over: %+v", c)
	}
	if c := got[1]; fmt.Sprint(c.Assignments) != fmt.Sprint([]Assignment{{To: "pc-3"}, {To: "pc-5", From: at}}) || c.Retired == nil {
		t.Errorf("BWC-3: %+v", c)
	}
	if who, _ := got[1].AssignedAt(at.Add(-time.Second)); who != "pc-3" {
		t.Errorf("BWC-3 before the import: %s, want pc-3", who)
	}
	if err := CheckInventory(got, "merged"); err != nil {
		t.Errorf("the merge does not check: %v", err)
	}

	// A YAML file whose history extends the one in force is taken.
	ext := []InventoryCamera{{Serial: "BWC-1", Kind: "body", AssignedTo: "pc-6",
		Assignments: []Assignment{{To: "pc-1"}, {To: "pc-2", From: t0}, {To: "pc-6", From: t0.Add(24 * time.Hour)}}}}
	if got, _, err := MergeInventory(prev, ext, at); err != nil || got[0].AssignedTo != "pc-6" || len(got[0].Assignments) != 3 {
		t.Errorf("an extending history: %+v %v", got, err)
	}

	for name, file := range map[string][]InventoryCamera{
		"un-retire to another holder":  csv("BWC-2,body,pc-8"),
		"retire again at another time": csv("BWC-2,body,pc-7," + at.Format(time.RFC3339)),
		"change the kind":              csv("CAR-1,body,car-1"),
		"rewrite the history": {{Serial: "BWC-1", Kind: "body", AssignedTo: "pc-2",
			Assignments: []Assignment{{To: "pc-9"}, {To: "pc-2", From: t0}}}},
		"hand over before the last hand-over": csv("BWC-1,body,pc-4"),
	} {
		when := at
		if name == "hand over before the last hand-over" {
			when = t0.Add(-time.Hour)
		}
		serial := file[0].Serial
		if _, _, err := MergeInventory(prev, file, when); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), serial) {
			t.Errorf("%s: %v, want refused naming %s", name, err, serial)
		}
	}
}
