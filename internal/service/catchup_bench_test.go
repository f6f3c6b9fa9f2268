package service

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/sidecar"
	"github.com/evidenced/evidenced/internal/testutil/benchstat"
)

// walkOnly is the console's ledger without the journal: the step walks
// every served item, as every catch-up did before positions were kept.
type walkOnly struct{ facts.Ledger }

// BenchmarkConsoleCatchUp measures a console restart with nothing new at
// fleet scale, side by side in one run: the catch-up that lists every
// catalog item (before) and the one from the kept position (after). The
// profile names GPS logs, which the generated fleet does not have, so both
// sides measure finding what to parse, not parsing. Size it with
// FLEETGEN_HOSTS and FLEETGEN_ITEMS (per host); docs/BENCHMARKS.md has
// the numbers.
func BenchmarkConsoleCatchUp(b *testing.B) {
	ctx := context.Background()
	hostsN, itemsN := benchstat.EnvInt("FLEETGEN_HOSTS", 20), benchstat.EnvInt("FLEETGEN_ITEMS", 500)
	st := memstore.New()
	t0 := time.Now()
	hosts, err := fleetgen.Generate(ctx, st, fleetgen.Options{Hosts: hostsN, ItemsPerHost: itemsN, ItemsPerAnchor: 100, CamerasPerHost: 20,
		Start: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	c, err := catalog.Open(filepath.Join(dir, "catalog.db"), st, hosts, catalog.Options{Self: "hq"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated and indexed %d hosts × %d items in %s", hostsN, itemsN, time.Since(t0))
	x, err := facts.Open(filepath.Join(dir, "facts.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	s := &Service{catalog: c}
	profile := func(string) sidecar.Profile {
		return sidecar.Profile{Rules: []sidecar.Rule{{Glob: "GPS/*.nmea", Kind: sidecar.KindNMEA}}}
	}
	step := func(l facts.Ledger) *facts.Step {
		return &facts.Step{Index: x, Ledger: l, Profile: profile, Open: s.openStored}
	}
	// The first catch-up of a new index walks every item and keeps the
	// catalog's end as its position.
	if _, err := step(consoleLedger{s}).CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		for _, side := range []struct {
			name string
			l    facts.Ledger
		}{{"before: every item listed", walkOnly{consoleLedger{s}}}, {"after: from the kept position", consoleLedger{s}}} {
			listed := 0
			counting := countingLedger{Ledger: side.l, n: &listed}
			var l facts.Ledger = counting
			if j, ok := side.l.(facts.Journal); ok {
				l = countingJournal{countingLedger: counting, Journal: j}
			}
			t1, cpu1 := time.Now(), benchstat.CPU()
			outs, err := step(l).CatchUp(ctx)
			if err != nil || len(outs) != 0 {
				b.Fatalf("%s: %+v %v", side.name, outs, err)
			}
			b.Logf("%s: %d items, restart catch-up %s wall, %s CPU, %d items looked at", side.name, hostsN*itemsN,
				time.Since(t1), benchstat.CPU()-cpu1, listed)
		}
	}
}

// countingLedger counts the items a catch-up lists (looks at).
type countingLedger struct {
	facts.Ledger
	n *int
}

func (c countingLedger) Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error {
	return c.Ledger.Items(ctx, f, func(it custody.Item) error {
		*c.n++
		return fn(it)
	})
}

// countingJournal counts the items the catalog names as changed.
type countingJournal struct {
	countingLedger
	facts.Journal
}

func (c countingJournal) Changed(ctx context.Context, from []byte) ([]string, []byte, error) {
	ids, next, err := c.Journal.Changed(ctx, from)
	*c.n += len(ids)
	return ids, next, err
}
