package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// HostHealth is one host of the fleet as `evidenced fleet` shows it.
type HostHealth = catalog.HostHealth

// FleetHealth is what `evidenced fleet` shows: the hosts and the cameras.
type FleetHealth = catalog.Fleet

// ErrNotConsole: a fleet operation on a host whose role is dock.
var ErrNotConsole = errors.New("not a console: fleet operations need role: console")

// openConsole opens the console's catalog with the hosts' pinned keys.
// The keys come from files an operator copied from each dock host: the
// store is never asked which key a host has.
func (s *Service) openConsole() error {
	var hosts []catalog.Trusted
	for i, h := range s.config.Console.Hosts {
		pem, err := os.ReadFile(h.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("console.hosts[%d] %s: public_key_file: %w", i, h.ID, err)
		}
		pub, err := signing.ParsePublicPEM(pem)
		if err != nil {
			return fmt.Errorf("console.hosts[%d] %s: public_key_file %s: %w", i, h.ID, h.PublicKeyFile, err)
		}
		hosts = append(hosts, catalog.Trusted{ID: h.ID, Key: ed25519.PublicKey(pub)})
	}
	if s.anchorStore == nil {
		return errors.New("console: no object store")
	}
	c, err := catalog.Open(s.config.CatalogPath(), s.anchorStore, hosts, catalog.Options{Self: s.config.HostID, Logger: s.log})
	if err != nil {
		return err
	}
	s.catalog = c
	s.synced = make(chan struct{})
	return nil
}

// runCatalog is the console's indexing loop (inside Run).
func (s *Service) runCatalog(ctx context.Context) error {
	s.catalogLive.Store(true)
	defer s.catalogLive.Store(false)
	_ = s.catalog.Run(ctx, s.config.Console.Poll.Duration, func(p catalog.Progress, err error) {
		s.lastSyncTook.Store(int64(p.Took))
		if err == nil {
			s.lastSync.Store(time.Now().UnixNano())
		}
		s.recordBreaks(ctx, p)
		// A sidecar is parsed from the store once its upload is known,
		// by the parse loop, never in the catalog's way; woken at every
		// sync, even with nothing new, so that a sidecar the store did not
		// serve is tried again within a poll. The loop reads which items
		// are new from the catalog's records after its position (the
		// catalog is its facts.Journal), so it is handed no ids.
		if s.parser != nil {
			s.parser.Queue(nil)
		}
		s.firstSync.Do(func() { close(s.synced) })
	})
	return nil
}

// HostHistoryBroken is the console's alert record: a trusted dock host's
// anchored history stopped checking out (Details: host, after_checkpoint,
// object, problem, problems). It is signed and anchored with the console's
// other records, so when a custodian learned of the break is on record.
const HostHistoryBroken custody.EventType = "HOST_HISTORY_BROKEN"

// recordBreaks writes one alert record per host a sync found newly
// broken. A failure to record is logged: the flag is in the index all the
// same, and fleet shows it.
func (s *Service) recordBreaks(ctx context.Context, p catalog.Progress) {
	for _, b := range p.NewlyBroken {
		first := b.Problems[0]
		d := map[string]string{
			"host": b.Host, "after_checkpoint": strconv.FormatUint(b.After, 10),
			"object": first.Object, "problem": first.What, "problems": strconv.Itoa(len(b.Problems)),
			"found_by": "follow",
		}
		if b.ByAudit {
			d["found_by"], d["withheld"] = "audit", "true"
			delete(d, "after_checkpoint")
		}
		if _, err := s.ledger.Append(context.WithoutCancel(ctx), custody.Event{Type: HostHistoryBroken, Actor: s.DaemonActor(), Details: d}, nil); err != nil {
			s.log.Error("record a broken host history in the console's ledger", "host", b.Host, "err", err)
		}
	}
}

// freshCatalog brings the index up to date when no console daemon keeps
// it so (a command run in its own process): what it shows is then what
// the store holds now.
func (s *Service) freshCatalog(ctx context.Context) error {
	if s.catalog == nil {
		return &kindError{kind: ErrInvalid, err: ErrNotConsole}
	}
	if s.catalogLive.Load() {
		return nil
	}
	p, err := s.catalog.Sync(ctx)
	s.recordBreaks(ctx, p)
	if err != nil {
		return fmt.Errorf("read the fleet's custody from the store: %w", err)
	}
	return nil
}

// fleetFind is FindPage at a console: every trusted host's items, each
// with the host that ingested it; only the page is read from the index.
//
// After a cursor (cur) the page is read from the last one's position and
// the search stops at its end: the total is the one counted for the first
// page, or more when more were seen since.
func (s *Service) fleetFind(ctx context.Context, c Caller, o FindOptions, cur *findCursor) (FoundPage, error) {
	if err := s.freshCatalog(ctx); err != nil {
		return FoundPage{}, err
	}
	pg := catalog.Page{Offset: o.Offset, Limit: o.Limit, MaxScan: o.MaxScan}
	if cur != nil && len(cur.pos) > 0 {
		pg.After = cur.pos
	}
	p, err := s.catalog.FindPage(ctx, catalog.Filter{Filter: o.Filter, Host: o.Host}, pg)
	if errors.Is(err, catalog.ErrTooBroad) {
		err = &kindError{kind: ErrInvalid, err: err}
	}
	if err != nil {
		// The search was asked for and answered nothing: the access log
		// shows the attempt, as it shows a refused or failed retrieval.
		return FoundPage{}, s.RecordFailedAccess(ctx, c, "find", o.Reason, nil, o.accessDetails(0, true), err)
	}
	total := p.Total
	if pg.After != nil {
		total = max(cur.total, o.Offset+p.Total)
	}
	if err := s.RecordAccess(ctx, c, "find", o.Reason, nil, o.accessDetails(total, true)); err != nil {
		return FoundPage{}, err
	}
	out := FoundPage{Items: found(p.Items), Total: total, Offset: min(o.Offset, total)}
	if p.Next != nil {
		out.Next = findCursor{offset: o.Offset + len(p.Items), total: total, pos: p.Next}.encode(s.findCursorKey(), o)
	}
	return out, nil
}

// fleetCustody is Custody at a console: the dock hosts' records for the
// item (Host is the host whose signed history each came from), merged in
// time order with the console's own records about it, which start with
// this viewing.
func (s *Service) fleetCustody(ctx context.Context, c Caller, id, reason string) ([]custody.Event, error) {
	if err := s.freshCatalog(ctx); err != nil {
		return nil, err
	}
	items, err := s.catalog.Item(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, &kindError{kind: ErrNotFound, err: fmt.Errorf("item %q: no trusted host's anchored records name it", id)}
	}
	d := map[string]string{}
	for i, it := range items {
		d["host"+suffix(i)] = it.Host
	}
	if err := s.RecordAccess(ctx, c, "custody", reason, &items[0], d); err != nil {
		return nil, err
	}
	return s.mergedCustody(ctx, id)
}

// mergedCustody is every record about item id the console serves: the
// trusted dock hosts' records (Host: the host that signed each) and the
// console's own (accesses, holds, retention changes), in time order.
func (s *Service) mergedCustody(ctx context.Context, id string) ([]custody.Event, error) {
	dockEvs, _, err := s.catalog.Custody(ctx, id)
	if err != nil {
		return nil, err
	}
	own, err := s.ledger.Custody(ctx, id)
	if err != nil && !errors.Is(err, custody.ErrNotFound) {
		return nil, fmt.Errorf("the console's own records of %s: %w", id, err)
	}
	out := make([]custody.Event, 0, len(dockEvs)+len(own))
	for _, ev := range dockEvs {
		out = append(out, ev.Event)
	}
	out = append(out, own...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// fleetItem is item id as a retention change at the console acts on it:
// as the first trusted host (in configuration order) that ingested it
// recorded it, Host kept, with the retention its records and the
// console's own RETENTION_CHANGED records gave it (a class raised at the
// console is recorded in the console's ledger, not in the dock host's),
// and the merged records the hold state is read from. copies are the
// other stored versions of the same recording: a camera docked at two
// hosts before it was wiped is ingested (same item id, same object key)
// and uploaded by both, and a legal hold must hold every copy.
func (s *Service) fleetItem(ctx context.Context, id string) (it custody.Item, copies []custody.Item, evs []custody.Event, err error) {
	if err := s.freshCatalog(ctx); err != nil {
		return it, nil, nil, err
	}
	items, err := s.catalog.Item(ctx, id)
	if err != nil {
		return it, nil, nil, err
	}
	if len(items) == 0 {
		return it, nil, nil, &kindError{kind: ErrNotFound, err: fmt.Errorf("item %q: no trusted host's anchored records name it", id)}
	}
	if evs, err = s.mergedCustody(ctx, id); err != nil {
		return it, nil, nil, err
	}
	seen := map[[2]string]bool{{items[0].ObjectKey, items[0].VersionID}: true}
	for _, c := range items[1:] {
		v := [2]string{c.ObjectKey, c.VersionID}
		if c.ObjectKey == "" || c.VersionID == "" || seen[v] {
			continue
		}
		seen[v] = true
		copies = append(copies, retentionAsRecorded(c, evs))
	}
	return retentionAsRecorded(items[0], evs), copies, evs, nil
}

// retentionAsRecorded is it with the class and retain-until of the
// RETENTION_CHANGED records among evs (time order) that extend it: a
// retention is only ever extended, so a record from a host that had not
// seen a later extension does not take it back.
func retentionAsRecorded(it custody.Item, evs []custody.Event) custody.Item {
	for _, ev := range evs {
		if ev.Type != custody.RetentionChanged || ev.Item != it.ID {
			continue
		}
		t, err := time.Parse(time.RFC3339, ev.Details["new_retain_until"])
		if err != nil || t.Before(it.RetainUntil) {
			continue
		}
		it.RetentionClass, it.RetainUntil = ev.Details["new_class"], t
	}
	return it
}

// suffix numbers the second and later hosts of one item ("", "_2", …).
func suffix(i int) string {
	if i == 0 {
		return ""
	}
	return "_" + strconv.Itoa(i+1)
}

// FleetOptions tune Fleet.
type FleetOptions struct {
	Reason string
	// Orphans also lists the stored versions no trusted host's records
	// name; it lists the whole store.
	Orphans bool
}

// Fleet is the health of every trusted dock host, the untrusted hosts
// seen in the store, and every camera's last dock, with the cameras of
// the console's published inventory that never docked. Looking is
// recorded like any search.
func (s *Service) Fleet(ctx context.Context, c Caller, o FleetOptions) (FleetHealth, error) {
	if err := s.freshCatalog(ctx); err != nil {
		return FleetHealth{}, err
	}
	f, err := s.catalog.Fleet(ctx, time.Now(), catalog.FleetOptions{UnverifiedAfter: s.config.Console.UnverifiedAfter.Duration})
	if err != nil {
		return FleetHealth{}, err
	}
	inv, err := s.readFleetInventory(ctx)
	if err != nil {
		return FleetHealth{}, s.storeErr(err)
	}
	withInventory(&f, inv)
	if o.Orphans {
		if f.Orphans, err = s.catalog.Orphans(ctx); err != nil {
			return FleetHealth{}, s.storeErr(err)
		}
	}
	d := map[string]string{"hosts": strconv.Itoa(len(f.Hosts))}
	if o.Orphans {
		d["orphans"] = strconv.Itoa(len(f.Orphans))
	}
	if err := s.RecordAccess(ctx, c, "fleet", o.Reason, nil, d); err != nil {
		return FleetHealth{}, err
	}
	return f, nil
}

// notAtConsole refuses, at a console, an operation that is built only on
// the dock host (it would act on the console's own ledger, which holds no
// recordings).
func notAtConsole(id string) error {
	return invalidf("item %q: this operation is not available at a console yet; run it on the dock host that ingested the item (evidenced find --json names it as host)", id)
}

// retrievable is the item a retrieval reads: on a dock host, from its
// ledger; at a console, as the first trusted host (in configuration order)
// that ingested it recorded it, read from the store by its recorded
// version id (the console has no vault copy).
func (s *Service) retrievable(ctx context.Context, id string) (custody.Item, error) {
	if s.catalog == nil {
		return s.item(ctx, id)
	}
	if err := s.freshCatalog(ctx); err != nil {
		return custody.Item{}, err
	}
	items, err := s.catalog.Item(ctx, id)
	if err != nil {
		return custody.Item{}, err
	}
	if len(items) == 0 {
		return custody.Item{}, &kindError{kind: ErrNotFound, err: fmt.Errorf("item %q: no trusted host's anchored records name it", id)}
	}
	it := items[0]
	if it.ObjectKey == "" || it.VersionID == "" {
		return it, invalidf("item %q: %s has not recorded it uploaded yet; it is only in that host's vault", id, it.Host)
	}
	return it, nil
}
