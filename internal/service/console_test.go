package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// openHost opens a Service for a host on the shared bucket; extra is
// appended to its config.
func openHost(t *testing.T, srv *s3srv.Server, bucket, dir, yml string) *Service {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`state_dir: %s
object_store: {endpoint: %q, bucket: %s, region: %s, path_style: true}
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 1, mode: GOVERNANCE}
    - {name: complaint, days: 30, mode: GOVERNANCE}
    - {name: serious, days: 60, mode: COMPLIANCE}
vault_reserve: 0
%s`, filepath.Join(dir, "state"), srv.Endpoint, bucket, s3srv.Region, yml)), filepath.Join(dir, "evidenced.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A console on the bucket two dock hosts anchor in finds each host's
// recordings with the host named, serves their custody as signed by that
// host merged with its own records of the viewing, shows the fleet, and
// records every search and view in its own ledger; a dock host refuses
// fleet operations.
func TestConsoleServesTheFleet(t *testing.T) {
	ctx := context.Background()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	who := Caller{Actor: "investigator-1"}

	root := t.TempDir()
	keys := map[string]string{}
	ids := map[string]string{}
	bodies := map[string][]byte{}
	for i, host := range []string{"dock-01", "dock-02", "dock-03"} {
		dir := filepath.Join(root, host)
		serial := fmt.Sprintf("BWC-%04d", i+1)
		d := openHost(t, srv, bucket, dir, fmt.Sprintf("host_id: %s\ncameras:\n  - {serial: %s, kind: body, assigned_to: officer-%d}\n", host, serial, i+1))
		cam := filepath.Join(dir, "cam")
		os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
		bodies[host] = bytes.Repeat([]byte(host), 1000)
		if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), bodies[host], 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := d.Ingest(ctx, who, IngestOptions{Camera: serial, From: cam})
		if err != nil || len(rep.Recorded) != 1 {
			t.Fatalf("%s ingest: %+v %v", host, rep, err)
		}
		ids[host] = rep.Recorded[0].ID
		if err := d.AnchorNow(ctx, false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Fleet(ctx, who, FleetOptions{}); !errors.Is(err, ErrNotConsole) || !errors.Is(err, ErrInvalid) {
			t.Errorf("fleet on a dock host: %v, want ErrNotConsole", err)
		}
		keys[host] = filepath.Join(root, host+".pem")
		pem := d.HostKey().PublicPEM()
		if host == "dock-03" {
			// The console is given a key that is not dock-03's.
			other, err := signing.Generate(host)
			if err != nil {
				t.Fatal(err)
			}
			pem = other.PublicPEM()
		}
		if err := os.WriteFile(keys[host], pem, 0o644); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}

	c := openHost(t, srv, bucket, filepath.Join(root, "hq"), fmt.Sprintf(`role: console
host_id: hq
console:
  hosts:
    - {id: dock-01, public_key_file: %s}
    - {id: dock-02, public_key_file: %s}
    - {id: dock-03, public_key_file: %s}
`, keys["dock-01"], keys["dock-02"], keys["dock-03"]))
	items, err := c.Find(ctx, who, FindOptions{Reason: "complaint 7"})
	if err != nil || len(items) != 2 {
		t.Fatalf("fleet find: %+v %v", items, err)
	}
	for _, it := range items {
		if ids[it.Host] != it.ID {
			t.Errorf("item %s served as %s's; that host ingested %s", it.ID, it.Host, ids[it.Host])
		}
	}
	two, err := c.Find(ctx, who, FindOptions{Host: "dock-02"})
	if err != nil || len(two) != 1 || two[0].Host != "dock-02" || two[0].AssignedTo != "officer-2" {
		t.Fatalf("find --host dock-02: %+v %v", two, err)
	}
	// A page of the search: the second of two, with the total; the access
	// is recorded with the total and the page shown.
	page, err := c.FindPage(ctx, who, FindOptions{Offset: 1, Limit: 1, Reason: "page 2"})
	if err != nil || page.Total != 2 || len(page.Items) != 1 || page.Items[0].ID != items[1].ID || page.Items[0].Host != items[1].Host {
		t.Fatalf("find, second page of one: %+v %v; the whole search found %+v", page, err, items)
	}
	if acc, err := c.Accesses(ctx, who, AccessFilter{}); err != nil || len(acc) == 0 ||
		acc[len(acc)-1].Details["reason"] != "page 2" || acc[len(acc)-1].Details["results"] != "2" ||
		acc[len(acc)-1].Details["offset"] != "1" || acc[len(acc)-1].Details["limit"] != "1" {
		t.Errorf("the paged search is recorded as %+v (%v)", acc, err)
	}
	if _, err := c.FindPage(ctx, who, FindOptions{Limit: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a negative limit: %v, want ErrInvalid", err)
	}
	// The same pages through the cursor: the first page's Next asks for
	// the second, which says the total and where it starts and has no
	// Next; its access is recorded with the offset it stands for.
	first, err := c.FindPage(ctx, who, FindOptions{Limit: 1})
	if err != nil || first.Total != 2 || len(first.Items) != 1 || first.Items[0].ID != items[0].ID || first.Next == "" {
		t.Fatalf("find, first page of one: %+v %v", first, err)
	}
	second, err := c.FindPage(ctx, who, FindOptions{Limit: 1, After: first.Next, Reason: "cursor"})
	if err != nil || second.Total != 2 || second.Offset != 1 || len(second.Items) != 1 || second.Items[0].ID != page.Items[0].ID ||
		second.Items[0].Host != page.Items[0].Host || second.Next != "" {
		t.Fatalf("find after the first page's cursor: %+v %v; by offset: %+v", second, err, page)
	}
	if acc, err := c.Accesses(ctx, who, AccessFilter{}); err != nil || acc[len(acc)-1].Details["reason"] != "cursor" || acc[len(acc)-1].Details["offset"] != "1" {
		t.Errorf("the search after a cursor is recorded as %+v (%v)", acc[len(acc)-1], err)
	}
	// A cursor altered (one character), another search's, or sent with
	// --offset is refused, saying what to do.
	tampered := []byte(first.Next)
	// One character changed to another of the cursor's alphabet.
	tampered[len(tampered)/2] = map[bool]byte{true: 'B', false: 'A'}[tampered[len(tampered)/2] == 'A']
	// One whose total was raised and its checksum made again without
	// the host's key: the total would go into the access record.
	raw, err := base64.RawURLEncoding.DecodeString(first.Next)
	if err != nil {
		t.Fatal(err)
	}
	body := raw[:len(raw)-cursorSum]
	forged := findCursor{offset: 1, total: 1000, pos: nil}
	if fc, err := decodeCursor(c.findCursorKey(), "after", first.Next, FindOptions{Limit: 1}); err == nil {
		forged.pos = fc.pos
	}
	fb := append([]byte{}, body[:1+cursorDigest]...)
	fb = binary.AppendUvarint(fb, uint64(forged.offset))
	fb = binary.AppendUvarint(fb, uint64(forged.total))
	fb = append(fb, forged.pos...)
	sum := sha256.Sum256(fb)
	resummed := base64.RawURLEncoding.EncodeToString(append(fb, sum[:cursorSum]...))
	// And one whose MAC was made with no key (what anyone can compute).
	keyless := base64.RawURLEncoding.EncodeToString(append(fb, cursorMAC(nil, fb)...))
	for _, tc := range []struct {
		o    FindOptions
		want string
	}{
		{FindOptions{Limit: 1, After: string(tampered)}, "damaged or was altered"},
		{FindOptions{Limit: 1, After: resummed}, "damaged or was altered"},
		{FindOptions{Limit: 1, After: keyless}, "damaged or was altered"},
		{FindOptions{Limit: 1, After: first.Next[:len(first.Next)-4]}, "damaged or was altered"},
		{FindOptions{Limit: 1, After: "not a cursor!"}, "not a cursor this console gave"},
		{FindOptions{Limit: 1, After: first.Next, Host: "dock-01"}, "belongs to another search"},
		{FindOptions{Limit: 1, After: first.Next, Offset: 1}, "--after and --offset"},
		// A search that would read every item for its state, past the
		// bound the web console sets.
		{FindOptions{Filter: custody.Filter{States: []custody.State{custody.StateVerified}}, MaxScan: 1}, "more than 1 recordings"},
	} {
		if p, err := c.FindPage(ctx, who, tc.o); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("find %+v: %+v %v, want ErrInvalid saying %q", tc.o, p, err, tc.want)
		}
	}
	// The search refused as too broad was asked for: it is in the access
	// log, as failed, with why.
	if acc, err := c.Accesses(ctx, who, AccessFilter{}); err != nil || acc[len(acc)-1].Details["action"] != "find" ||
		acc[len(acc)-1].Details["outcome"] != "failed" || !strings.Contains(acc[len(acc)-1].Details["error"], "too broad") {
		t.Errorf("the search refused as too broad is recorded as %+v (%v); want a failed find saying why", acc[len(acc)-1], err)
	}
	evs, err := c.Custody(ctx, who, ids["dock-01"], "complaint 7")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ev := range evs {
		seen = append(seen, ev.Host+":"+string(ev.Type))
	}
	got := strings.Join(seen, " ")
	if !strings.HasPrefix(got, "dock-01:DOCKED dock-01:COPIED dock-01:VAULTED") || !strings.HasSuffix(got, "hq:ACCESSED") || strings.Contains(got, "dock-02") {
		t.Errorf("custody at the console: %s", got)
	}
	if _, err := c.Custody(ctx, who, "no-such-item", "r"); !errors.Is(err, ErrNotFound) {
		t.Errorf("custody of an unknown item: %v, want ErrNotFound", err)
	}
	f, err := c.Fleet(ctx, who, FleetOptions{Orphans: true})
	fleet := f.Hosts
	if err != nil || len(fleet) != 3 || fleet[0].Checkpoint == 0 || fleet[1].Items != 1 || fleet[2].Items != 0 || len(fleet[2].Flags) == 0 {
		t.Fatalf("fleet: %+v %v", fleet, err)
	}
	// dock-03's upload is named by no trusted host's records (its history
	// is not trusted here).
	if len(f.Orphans) != 1 || f.Orphans[0].Key != objectOf(t, ctx, c, ids["dock-03"]) {
		t.Errorf("orphans: %+v", f.Orphans)
	}
	// The break is an alert in the console's own ledger, once.
	var alerts []custody.Event
	if err := c.ledger.Events(ctx, 1, func(ev custody.Event) error {
		if ev.Type == HostHistoryBroken {
			alerts = append(alerts, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Details["host"] != "dock-03" || !strings.Contains(alerts[0].Details["problem"], "not the key configured") {
		t.Errorf("alerts in the console's ledger: %+v", alerts)
	}

	// A retrieval at the console reads the store by the recorded version
	// and checks it.
	var retrieved bytes.Buffer
	if err := c.Get(ctx, who, GetOptions{ID: ids["dock-02"], Reason: "complaint 7", Out: "-"}, &retrieved, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(retrieved.Bytes(), bodies["dock-02"]) {
		t.Errorf("get at the console: %d bytes, want dock-02's %d", retrieved.Len(), len(bodies["dock-02"]))
	}

	// Scrub: one day's slice (2 objects over 90 days: one a day), then the
	// next; --all re-reads both; a store that returns other bytes than
	// recorded is a failure naming the object, and an alert record.
	for i := range 2 {
		rep, err := c.Scrub(ctx, who, ScrubOptions{})
		if err != nil || rep.Total != 2 || rep.Checked != 1 || !rep.OK() {
			t.Fatalf("scrub %d: %+v %v", i, rep, err)
		}
	}
	var scrubbed []string
	c.ledger.Events(ctx, 1, func(ev custody.Event) error {
		if ev.Type == Scrubbed {
			scrubbed = append(scrubbed, ev.Details["host"]+"/"+ev.Item)
		}
		return nil
	})
	if len(scrubbed) != 2 || scrubbed[0] == scrubbed[1] {
		t.Errorf("two daily slices re-read %v, want both objects once", scrubbed)
	}
	real := c.store
	c.store = flippingStore{real}
	rep, err := c.Scrub(ctx, who, ScrubOptions{All: true})
	c.store = real
	if err != nil || rep.Checked != 2 || len(rep.Failures) != 2 || rep.Failures[0].Object == "" {
		t.Fatalf("scrub of changed objects: %+v %v", rep, err)
	}
	failed := 0
	c.ledger.Events(ctx, 1, func(ev custody.Event) error {
		if ev.Type == ScrubFailed && ev.Details["key"] != "" && ev.Details["problem"] != "" {
			failed++
		}
		return nil
	})
	if failed != 2 {
		t.Errorf("%d SCRUB_FAILED records, want 2", failed)
	}
	// The same, and dock-03's break, are the console's metrics: counted
	// from its ledger and read from the index.
	got = fleetScrape(t, c, "evidenced_fleet_scrubbed_objects_total", "evidenced_fleet_scrub_failures_total", "evidenced_fleet_host_broken")
	want := `evidenced_fleet_host_broken{host="dock-01"} 0
evidenced_fleet_host_broken{host="dock-02"} 0
evidenced_fleet_host_broken{host="dock-03"} 1
evidenced_fleet_scrub_failures_total{} 2
evidenced_fleet_scrubbed_objects_total{} 2`
	if got != want {
		t.Errorf("console metrics:\n%s\nwant:\n%s", got, want)
	}

	// The console's ledger holds each search and view, in order.
	acc, err := c.Accesses(ctx, who, AccessFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range acc {
		trail = append(trail, ev.Details["action"]+":"+ev.Item)
	}
	// (Pages by offset and by cursor, each an access; the cursors refused
	// none: nothing was searched; the search refused as too broad one,
	// failed: it read the index up to its bound.)
	want = fmt.Sprintf("[find: find: find: access: find: find: access: find: access: custody:%s fleet: retrieve:%s]", ids["dock-01"], ids["dock-02"])
	if fmt.Sprint(trail) != want {
		t.Errorf("console access trail %v, want %s", trail, want)
	}
	if acc[1].Details["host"] != "dock-02" {
		t.Errorf("find --host not recorded: %v", acc[1].Details)
	}

	// verify --remote at the console re-reads what it serves (dock-01's
	// and dock-02's recordings) and names the host whose history broke;
	// a store that no longer holds the recorded bytes fails each object,
	// naming the host that recorded it.
	vr, err := c.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || vr.OK || vr.Items != 2 || vr.Objects != 2 || vr.ObjectsFailed != 0 || len(vr.Problems) != 1 ||
		vr.Problems[0].Kind != "host" || vr.Problems[0].Host != "dock-03" {
		t.Errorf("verify --remote at the console: %+v %v", vr, err)
	}
	c.store = flippingStore{real}
	vr, err = c.Verify(ctx, who, VerifyOptions{Remote: true})
	c.store = real
	var failedBy []string
	for _, p := range vr.Problems {
		if p.Kind == "object" && strings.Contains(p.What, "recorded") && ids[p.Host] == p.Item {
			failedBy = append(failedBy, p.Host)
		}
	}
	if err != nil || vr.Objects != 2 || vr.ObjectsFailed != 2 || fmt.Sprint(failedBy) != "[dock-01 dock-02]" {
		t.Errorf("verify --remote of changed objects at the console: %v %+v %v", failedBy, vr, err)
	}
}

// flippingStore returns every object with its first byte changed: a store
// that no longer holds what it was given.
type flippingStore struct{ objstore.Store }

func (f flippingStore) Open(ctx context.Context, key, version string) (io.ReadCloser, error) {
	rc, err := f.Store.Open(ctx, key, version)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("flip %s: %v", key, err)
	}
	b[0] ^= 1
	return io.NopCloser(bytes.NewReader(b)), nil
}

// objectOf is the key an item was uploaded under, as its own host's
// anchored records say (read with no trust, for the test's expectation).
func objectOf(t *testing.T, ctx context.Context, s *Service, id string) string {
	t.Helper()
	vs, err := s.anchorStore.ListVersions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if strings.Contains(v.Key, id) && !strings.HasPrefix(v.Key, "_custody/") {
			return v.Key
		}
	}
	t.Fatalf("no object for %s", id)
	return ""
}

// fleetScrape collects the console's fleet metrics as text: `name{labels}
// value` lines for the names asked, as a Prometheus scrape shows them.
func fleetScrape(t *testing.T, c *Service, names ...string) string {
	t.Helper()
	return scrapeOf(t, &fleetMetrics{s: c, m: newMetrics(c)}, names...)
}

// scrapeOf gathers the named metrics of col, one line per series.
func scrapeOf(t *testing.T, col prometheus.Collector, names ...string) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			lines = append(lines, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), v))
		}
	}
	return strings.Join(lines, "\n")
}
