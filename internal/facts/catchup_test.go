package facts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/sidecar"
)

// journaled is the fixture's custody ledger as a Journal, its positions
// the ledger's sequence numbers (as the catalog's are each host's). It
// counts the full walks (Items) and the items Changed named, and can fail
// the next parse record (a crash mid catch-up).
type journaled struct {
	*custody.Ledger
	walks, named int
	failAppend   bool
	// withheld items are not found, as the catalog hides a withheld
	// host's items.
	withheld map[string]bool
}

func (j *journaled) Item(ctx context.Context, id string) (custody.Item, error) {
	if j.withheld[id] {
		return custody.Item{}, fmt.Errorf("item %s: %w", id, custody.ErrNotFound)
	}
	return j.Ledger.Item(ctx, id)
}

func (j *journaled) Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error {
	j.walks++
	return j.Ledger.Items(ctx, f, fn)
}

func (j *journaled) Append(ctx context.Context, ev custody.Event, it *custody.Item) (custody.Event, error) {
	if j.failAppend {
		return custody.Event{}, errors.New("the ledger's disk went away")
	}
	return j.Ledger.Append(ctx, ev, it)
}

func (j *journaled) Position(ctx context.Context) ([]byte, error) {
	seq, _, err := j.Head(ctx)
	return strconv.AppendUint(nil, seq+1, 10), err
}

func (j *journaled) Changed(ctx context.Context, from []byte) ([]string, []byte, error) {
	var next uint64
	if len(from) > 0 {
		n, err := strconv.ParseUint(string(from), 10, 64)
		if err != nil {
			return nil, nil, err
		}
		next = n
	}
	var ids []string
	seen := map[string]bool{}
	err := j.Events(ctx, next, func(ev custody.Event) error {
		next = ev.Seq + 1
		if ev.Item != "" && !seen[ev.Item] {
			seen[ev.Item] = true
			ids = append(ids, ev.Item)
		}
		return nil
	})
	j.named += len(ids)
	return ids, strconv.AppendUint(nil, next, 10), err
}

// journal gives the fixture a journaled ledger and returns it.
func (f *fixture) journal() *journaled {
	j := &journaled{Ledger: f.l}
	f.step.Ledger = j
	return j
}

// restart is a new step over the same index and ledger: what a console
// start has.
func (f *fixture) restart(j *journaled) *Step {
	s := f.step
	f.step = &Step{Index: s.Index, Ledger: j, Profile: s.Profile, Actor: s.Actor, Open: s.Open}
	return f.step
}

// caughtUpCar is the fixture's car and body camera, caught up once
// through the journal (the position written).
func caughtUpCar(t *testing.T) (*fixture, *journaled) {
	t.Helper()
	f := newFixture(t)
	j := f.journal()
	f.car(t)
	f.parseAll(t)
	return f, j
}

func parsed(outs []Outcome) int {
	n := 0
	for _, o := range outs {
		if !o.Skipped {
			n++
		}
	}
	return n
}

// A restart looks only at what was indexed since the last catch-up: a
// sidecar vaulted while the step was not running is parsed, and with
// nothing new nothing is listed; a rebuild still parses every file.
func TestRestartLooksOnlyAtWhatIsNew(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	j := f.journal()
	f.car(t)
	if outs := f.parseAll(t); parsed(outs) != 4 || j.walks != 1 {
		t.Fatalf("first catch-up (no position yet): %d parsed, %d walks", parsed(outs), j.walks)
	}

	f.restart(j)
	id := f.vault(t, "BWC-0001", "body", map[string][]byte{"GPS/late.nmea": nmeaLog()})[0]
	outs := f.parseAll(t)
	if parsed(outs) != 1 || outs[0].Item != id || j.walks != 1 {
		t.Fatalf("restart after a sidecar came in: %+v, %d walks", outs, j.walks)
	}
	if _, have, err := f.x.Source(id); !have || err != nil {
		t.Fatalf("the sidecar vaulted while down is not indexed: %v", err)
	}

	// (The fixture's parse records share the journal, so the first
	// restart after a parse is named the file it parsed; a console's go to
	// its own ledger, not the catalog.)
	f.restart(j).CatchUp(ctx)
	f.restart(j)
	j.named = 0
	if outs := f.parseAll(t); len(outs) != 0 || j.walks != 1 || j.named != 0 {
		t.Errorf("restart with nothing new: %+v, %d walks, %d items named", outs, j.walks, j.named)
	}

	rep, err := f.step.Rebuild(ctx, "custodian", nil)
	if err != nil || rep.Files != 5 {
		t.Errorf("rebuild after positions were kept: %+v %v", rep, err)
	}
}

// A catch-up that stops part-way (the ledger could not record) keeps the
// old position: the next one parses every file after it, and what it had
// already parsed is neither parsed nor recorded twice.
func TestCatchUpStoppedPartWayLosesNothing(t *testing.T) {
	f, j := caughtUpCar(t)

	ids := f.vault(t, "BWC-0001", "body", map[string][]byte{"GPS/a.nmea": nmeaLog(), "GPS/b.nmea": nmeaLog()})
	j.failAppend = true
	if _, err := f.restart(j).CatchUp(context.Background()); err == nil {
		t.Fatal("a catch-up whose records fail reports no error")
	}
	j.failAppend = false
	f.restart(j)
	outs := f.parseAll(t)
	if parsed(outs) != 2 {
		t.Fatalf("after the stop: %+v", outs)
	}
	for _, id := range ids {
		if _, have, _ := f.x.Source(id); !have || len(f.custodyOf(t, id, custody.Parsed)) != 1 {
			t.Errorf("%s: not indexed once with one PARSED", f.items[id].SourcePath)
		}
	}
}

// A sidecar whose held copy was not available stays pending across a
// restart (its record is behind the position by then) and is parsed once
// it is.
func TestUnavailableIsPendingAcrossRestart(t *testing.T) {
	f, j := caughtUpCar(t)
	id := f.vault(t, "BWC-0001", "body", map[string][]byte{"GPS/c.nmea": nmeaLog()})[0]
	open := f.step.Open
	f.step.Open = func(ctx context.Context, it custody.Item) (io.ReadCloser, error) {
		return nil, fmt.Errorf("503: %w", ErrUnavailable)
	}
	if outs := f.parseAll(t); len(outs) != 1 || !outs[0].Unavailable {
		t.Fatalf("store down: %+v", outs)
	}
	f.restart(j).Open = open
	if outs := f.parseAll(t); parsed(outs) != 1 || outs[0].Item != id {
		t.Fatalf("after the restart, store back: %+v", outs)
	}
	if _, pending, _, err := f.x.position(); len(pending) != 0 || err != nil {
		t.Errorf("still pending once parsed: %v %v", pending, err)
	}
}

// Deleting the facts index starts again from the beginning: every file is
// parsed into a new index the same as the old, and custody gets no second
// PARSED.
func TestDeletedIndexStartsOver(t *testing.T) {
	f, j := caughtUpCar(t)
	before := dumpIndex(t, f.x)
	if err := f.x.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, "facts.db")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	f.x = x
	f.restart(j).Index = x
	outs := f.parseAll(t)
	if parsed(outs) != 4 {
		t.Fatalf("a deleted index caught up on %d files, want 4: %+v", parsed(outs), outs)
	}
	for _, o := range outs {
		if o.Recorded {
			t.Errorf("%s recorded twice", o.Item)
		}
	}
	if after := dumpIndex(t, x); after != before {
		t.Error("the index rebuilt after deletion differs from the one deleted")
	}
}

func dumpIndex(t *testing.T, x *Index) string {
	t.Helper()
	var b []byte
	if err := x.Dump(func(bkt string, k, v []byte) error {
		b = fmt.Appendf(b, "%s %x %x\n", bkt, k, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A catch-up under sidecar rules other than those its position was reached
// under looks at every item again: a GPS log vaulted while no rule named
// it was passed over as no sidecar, and is parsed once a rule names it,
// without a rebuild. Under the same rules again nothing is looked at.
func TestNewRuleLooksAtWhatWasPassedOver(t *testing.T) {
	f, j := caughtUpCar(t)
	noNMEA := func(kind string) sidecar.Profile {
		p := profile(kind)
		p.Rules = slices.DeleteFunc(p.Rules, func(r sidecar.Rule) bool { return r.Kind == sidecar.KindNMEA })
		return p
	}
	s := f.restart(j)
	s.Profile, s.RulesKey = noNMEA, func() string { return "without nmea" }
	id := f.vault(t, "BWC-0001", "body", map[string][]byte{"GPS/passed-over.nmea": nmeaLog()})[0]
	if outs := f.parseAll(t); parsed(outs) != 0 {
		t.Fatalf("without an nmea rule the log was parsed: %+v", outs)
	}
	s = f.restart(j)
	s.Profile, s.RulesKey = profile, func() string { return "with nmea" }
	if outs := f.parseAll(t); parsed(outs) != 1 || outs[0].Item != id {
		t.Fatalf("once a rule names it, the log passed over is not parsed: %+v", outs)
	}
	if _, have, err := f.x.Source(id); !have || err != nil {
		t.Fatalf("the log is not indexed: %v", err)
	}
	walks := j.walks
	s = f.restart(j)
	s.RulesKey = func() string { return "with nmea" }
	f.parseAll(t)
	if j.walks != walks {
		t.Errorf("the same rules again walked every item (%d walks, was %d)", j.walks, walks)
	}
}

// An item named after the position whose host is withheld by the time the
// catch-up looks it up (the catalog hides it) stays pending, since the
// position moves past the record naming it, and is parsed once its host
// is served again — not lost.
func TestWithheldMidCatchUpStaysPending(t *testing.T) {
	f, j := caughtUpCar(t)
	id := f.vault(t, "BWC-0001", "body", map[string][]byte{"GPS/withheld.nmea": nmeaLog()})[0]
	j.withheld = map[string]bool{id: true}
	if outs := f.parseAll(t); parsed(outs) != 0 {
		t.Fatalf("an item not found was parsed: %+v", outs)
	}
	if _, pending, _, err := f.x.position(); !slices.Contains(pending, id) || err != nil {
		t.Fatalf("the withheld item is not pending: %v %v", pending, err)
	}
	j.withheld = nil
	f.restart(j)
	if outs := f.parseAll(t); parsed(outs) != 1 || outs[0].Item != id {
		t.Fatalf("once served again the item is not parsed: %+v", outs)
	}
}
