package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// The console's fleet lists every camera of its published inventory: one
// a trusted dock host docked with its last dock, the others as "never
// docked" with how long the inventory has listed each without a break (a
// camera taken out of a version and put back counts from its return). The
// metrics say the same, and a document in the store that the console did
// not sign hides none of it.
func TestFleetListsCamerasThatNeverDocked(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	who := Caller{Actor: "custodian-1"}
	srv, bucket, hq, _ := consoleOfOne(t, root)
	// Before any inventory: the cameras the records dock, nothing more.
	f, err := hq.Fleet(ctx, who, FleetOptions{})
	if err != nil || len(f.Cameras) != 1 || f.Cameras[0].State != catalog.CameraDocked || f.InventoryVersion != 0 {
		t.Fatalf("fleet without an inventory: %+v %v", f, err)
	}
	// v1 lists BWC-1..3, v2 drops BWC-3, v3 lists it again with BWC-4.
	var before []time.Time
	for _, serials := range [][]string{{"BWC-1", "BWC-2", "BWC-3"}, {"BWC-1", "BWC-2"}, {"BWC-1", "BWC-2", "BWC-3", "BWC-4"}} {
		var b strings.Builder
		b.WriteString("cameras:\n")
		for _, s := range serials {
			fmt.Fprintf(&b, "  - {serial: %s, kind: body, assigned_to: officer-%s}\n", s, strings.TrimPrefix(s, "BWC-"))
		}
		file := filepath.Join(root, "inventory.yaml")
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		before = append(before, time.Now())
		time.Sleep(20 * time.Millisecond)
		if len(serials) == 2 {
			// An import keeps the cameras its file leaves out: a version
			// without BWC-3 is one an earlier release's import published,
			// the file as the whole inventory.
			cams, err := config.ParseInventory([]byte(b.String()), file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := hq.publishNext(ctx, who, func(*inventoryDoc) ([]config.InventoryCamera, map[string]string, error) {
				return cams, map[string]string{"change": "import"}, nil
			}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := hq.PublishInventory(ctx, who, file); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		t.Helper()
		f, err := hq.Fleet(ctx, who, FleetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var got []string
		for _, c := range f.Cameras {
			since := "-"
			switch {
			case c.ListedSince.After(before[2]):
				since = "v3"
			case c.ListedSince.After(before[0]) && c.ListedSince.Before(before[1]):
				since = "v1"
			case !c.ListedSince.IsZero():
				since = c.ListedSince.String()
			}
			days := "-"
			if c.DaysSinceDock != nil {
				days = fmt.Sprint(*c.DaysSinceDock)
			}
			got = append(got, fmt.Sprintf("%s:%s:%s:%s:%s:%s", c.Serial, c.State, c.Host, c.AssignedTo, days, since))
		}
		want := "[BWC-1:docked:dock-01:officer-1:0:- BWC-2:never docked::officer-2:-:v1 BWC-3:never docked::officer-3:-:v3 BWC-4:never docked::officer-4:-:v3]"
		if fmt.Sprint(got) != want || f.InventoryVersion != 3 {
			t.Errorf("%s: cameras %v (inventory version %d), want %s", what, got, f.InventoryVersion, want)
		}
		scrape := fleetScrape(t, hq, "evidenced_fleet_cameras", "evidenced_fleet_camera_never_docked_age_seconds", "evidenced_fleet_camera_last_dock_age_seconds")
		for _, line := range strings.Split(scrape, "\n") {
			name, v, _ := strings.Cut(line, " ")
			switch name {
			case `evidenced_fleet_cameras{state="docked"}`, `evidenced_fleet_cameras{state="never_docked"}`, `evidenced_fleet_cameras{state="not_docked"}`:
				want := map[string]string{"docked": "1", "never_docked": "3", "not_docked": "0"}[strings.Trim(strings.TrimPrefix(name, `evidenced_fleet_cameras{state=`), `"}`)]
				if v != want {
					t.Errorf("%s: %s = %s, want %s", what, name, v, want)
				}
			case `evidenced_fleet_camera_never_docked_age_seconds{camera="BWC-2"}`, `evidenced_fleet_camera_never_docked_age_seconds{camera="BWC-3"}`,
				`evidenced_fleet_camera_never_docked_age_seconds{camera="BWC-4"}`, `evidenced_fleet_camera_last_dock_age_seconds{camera="BWC-1",host="dock-01"}`:
			default:
				t.Errorf("%s: unexpected series %s", what, line)
			}
		}
		if strings.Count(scrape, "\n") != 6 {
			t.Errorf("%s: scrape:\n%s", what, scrape)
		}
	}
	check("three versions")
	// The console counts its reads of its own inventory as a dock host
	// does (evidenced_inventory_*): so far each found its newest document.
	reads := func() string {
		return scrapeOf(t, newMetrics(hq), "evidenced_inventory_refresh_failures_total")
	}
	const none = `evidenced_inventory_refresh_failures_total{reason="missing"} 0
evidenced_inventory_refresh_failures_total{reason="refused"} 0
evidenced_inventory_refresh_failures_total{reason="store"} 0`
	if got := reads(); got != none || hq.invReads.confirmed.Load() == 0 {
		t.Errorf("the console's reads of its inventory, all good: %s (confirmed at %d)", got, hq.invReads.confirmed.Load())
	}
	confirmed := hq.invReads.confirmed.Load()

	// Someone with write access puts an unsigned document over it: the
	// cameras of version 3 stay, with the problem named.
	putInventory(t, hq, []byte(`{"format":"evidenced-inventory/v1","console":"hq","version":9,"cameras":[{"serial":"BWC-1","kind":"body","assigned_to":"x"}]}`+"\n"))
	check("an unsigned document over it")
	f, err = hq.Fleet(ctx, who, FleetOptions{})
	if err != nil || !strings.Contains(f.InventoryProblem, "not this console's") {
		t.Errorf("inventory problem after an unsigned document: %q %v", f.InventoryProblem, err)
	}
	// Two reads (check's and this one) found it: two refused reads, and
	// the version in force no longer confirmed.
	if got := reads(); !strings.Contains(got, `{reason="refused"} 2`) || hq.invReads.confirmed.Load() != confirmed {
		t.Errorf("the console's reads with an unsigned document the newest: %s (confirmed again: %v)", got, hq.invReads.confirmed.Load() != confirmed)
	}

	// A delete marker over the document: the dock hosts find nothing, and
	// the console says so.
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(InventoryKey("hq"))}); err != nil {
		t.Fatal(err)
	}
	f, err = hq.Fleet(ctx, who, FleetOptions{})
	if err != nil || !strings.Contains(f.InventoryProblem, "is deleted") || f.InventoryVersion != 3 {
		t.Errorf("inventory problem after a delete marker: %q (version %d) %v", f.InventoryProblem, f.InventoryVersion, err)
	}
	if got := reads(); !strings.Contains(got, `{reason="missing"} 1`) {
		t.Errorf("the console's reads with the document deleted: %s", got)
	}
}

// consoleOfOne starts a store and a bucket, docks camera BWC-1 with one
// recording at dock-01 (anchoredDock) and opens console hq trusting it.
func consoleOfOne(t *testing.T, root string) (srv *s3srv.Server, bucket string, hq *Service, item string) {
	t.Helper()
	srv = s3srv.Start(t)
	bucket = srv.NewBucket(t)
	srv.SetEnv(t)
	pem, item := anchoredDock(t, srv, bucket, root, "dock-01", "BWC-1", false)
	hq = openHost(t, srv, bucket, filepath.Join(root, "hq"), "host_id: hq\nrole: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: "+pem+"}\n")
	return srv, bucket, hq, item
}

// anchoredDock opens dock host id on the bucket, docks camera serial with
// one recording (uploaded and verified, or with vaultOnly only vaulted:
// its upload not done yet), anchors, closes the host and returns the file
// of its public key (as a console is given it) and the recording's id.
func anchoredDock(t *testing.T, srv *s3srv.Server, bucket, root, id, serial string, vaultOnly bool) (pem, item string) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(root, id)
	d := openHost(t, srv, bucket, dir, fmt.Sprintf("host_id: %s\ncameras:\n  - {serial: %s, kind: body, assigned_to: officer-1}\n", id, serial))
	cam := filepath.Join(dir, "cam")
	os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), []byte("footage of "+id), 0o644); err != nil {
		t.Fatal(err)
	}
	if vaultOnly {
		d.uploader = nil
	}
	rep, err := d.Ingest(ctx, Caller{Actor: "officer"}, IngestOptions{Camera: serial, From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("%s ingest: %+v %v", id, rep, err)
	}
	if err := d.AnchorNow(ctx, false); err != nil {
		t.Fatal(err)
	}
	pem = filepath.Join(root, id+".pem")
	if err := os.WriteFile(pem, d.HostKey().PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Close()
	return pem, rep.Recorded[0].ID
}

// The console counts, per dock host, the recordings its anchored records
// show vaulted and not yet verified in the store, and how long the oldest
// has waited: a dock host's upload queue seen from HQ, for fleet and for
// the metrics.
func TestFleetCountsRecordingsNotVerified(t *testing.T) {
	ctx := context.Background()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	root := t.TempDir()
	pem1, _ := anchoredDock(t, srv, bucket, root, "dock-01", "BWC-1", false)
	pem2, _ := anchoredDock(t, srv, bucket, root, "dock-02", "BWC-2", true)
	hq := openHost(t, srv, bucket, filepath.Join(root, "hq"), "host_id: hq\nrole: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: "+pem1+"}\n    - {id: dock-02, public_key_file: "+pem2+"}\n")
	f, err := hq.Fleet(ctx, Caller{Actor: "custodian-1"}, FleetOptions{})
	if err != nil || f.Hosts[0].NotVerified != 0 || f.Hosts[1].NotVerified != 1 || f.Hosts[1].OldestNotVerifiedAt.IsZero() {
		t.Fatalf("fleet: %+v %v", f.Hosts, err)
	}
	got := fleetScrape(t, hq, "evidenced_fleet_host_unverified_items", "evidenced_fleet_host_unverified_oldest_age_seconds")
	lines := strings.Split(got, "\n")
	if len(lines) != 4 || lines[0] != `evidenced_fleet_host_unverified_items{host="dock-01"} 0` || lines[1] != `evidenced_fleet_host_unverified_items{host="dock-02"} 1` ||
		lines[2] != `evidenced_fleet_host_unverified_oldest_age_seconds{host="dock-01"} 0` ||
		!strings.HasPrefix(lines[3], `evidenced_fleet_host_unverified_oldest_age_seconds{host="dock-02"} `) {
		t.Fatalf("console metrics:\n%s", got)
	}
	var age float64
	if _, err := fmt.Sscan(strings.Fields(lines[3])[1], &age); err != nil || age <= 0 || age > 600 {
		t.Errorf("dock-02's oldest not verified: %v s (%v), want the seconds since it was vaulted", age, err)
	}
}

// A camera whose only dock is at a host the audit withheld is not "never
// docked" in fleet's JSON or the metrics: it is docked at that host with
// the host's flag, the host's recordings stay unserved, and the
// inventory's camera that truly never docked is still counted as such.
func TestFleetShowsADockAtAWithheldHost(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	who := Caller{Actor: "custodian-1"}
	_, _, hq, _ := consoleOfOne(t, root)
	file := filepath.Join(root, "inventory.yaml")
	if err := os.WriteFile(file, []byte("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-1}\n  - {serial: BWC-2, kind: body, assigned_to: officer-2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := hq.PublishInventory(ctx, who, file); err != nil {
		t.Fatal(err)
	}
	stray := []byte("not a checkpoint\n")
	sum := digest.Bytes(stray)
	if _, err := hq.store.Put(ctx, objstore.PutRequest{Key: anchor.CheckpointKey("dock-01", 99), Body: bytes.NewReader(stray),
		Size: int64(len(stray)), SHA256: sum, Metadata: map[string]string{"sha256": sum.Hex()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := hq.Verify(ctx, who, VerifyOptions{Remote: true}); err != nil {
		t.Fatal(err)
	}
	if items, _ := hq.Find(ctx, who, FindOptions{}); len(items) != 0 {
		t.Fatalf("a withheld host's recordings are served: %+v", items)
	}
	f, err := hq.Fleet(ctx, who, FleetOptions{})
	if err != nil || !f.Hosts[0].Withheld {
		t.Fatalf("fleet: %+v %v", f.Hosts, err)
	}
	b, err := json.Marshal(f.Cameras)
	if err != nil {
		t.Fatal(err)
	}
	var cams []map[string]any
	if err := json.Unmarshal(b, &cams); err != nil {
		t.Fatal(err)
	}
	if len(cams) != 2 || cams[0]["serial"] != "BWC-1" || cams[0]["state"] != "docked" || cams[0]["host"] != "dock-01" ||
		!strings.HasPrefix(fmt.Sprint(cams[0]["host_flag"]), "withheld (audit): ") || cams[0]["days_since_dock"] != 0.0 ||
		cams[1]["serial"] != "BWC-2" || cams[1]["state"] != "never docked" {
		t.Fatalf("fleet's cameras: %s", b)
	}
	scrape := fleetScrape(t, hq, "evidenced_fleet_cameras", "evidenced_fleet_camera_last_dock_age_seconds", "evidenced_fleet_camera_never_docked_age_seconds")
	for _, want := range []string{`evidenced_fleet_cameras{state="docked"} 1`, `evidenced_fleet_cameras{state="never_docked"} 1`,
		`evidenced_fleet_camera_last_dock_age_seconds{camera="BWC-1",host="dock-01"} `, `evidenced_fleet_camera_never_docked_age_seconds{camera="BWC-2"} `} {
		if !strings.Contains(scrape, want) {
			t.Errorf("scrape lacks %q:\n%s", want, scrape)
		}
	}
	if strings.Contains(scrape, `never_docked_age_seconds{camera="BWC-1"}`) {
		t.Errorf("BWC-1 counted as never docked:\n%s", scrape)
	}
}

// The console reads its own inventory on its own timer (console.poll),
// not after each catalog pass: a first build of a large fleet's index
// takes hours, and evidenced_inventory_read_age_seconds must not grow
// with it (EvidencedInventoryNotConfirmed would fire with nothing wrong).
// Here the catalog's first pass never ends (every read of the hosts'
// custody in the store waits), and the inventory is read, confirmed and
// read again all the same.
func TestConsoleReadsInventoryWhileIndexing(t *testing.T) {
	root := t.TempDir()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	pem, _ := anchoredDock(t, srv, bucket, root, "dock-01", "BWC-1", false)
	hq := openHost(t, srv, bucket, filepath.Join(root, "hq"), "host_id: hq\nrole: console\nconsole:\n  poll: 1s\n  hosts:\n    - {id: dock-01, public_key_file: "+pem+"}\n")
	file := filepath.Join(root, "inventory.yaml")
	if err := os.WriteFile(file, []byte("cameras:\n  - {serial: BWC-1, kind: body, assigned_to: officer-1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := hq.PublishInventory(context.Background(), Caller{Actor: "custodian-1"}, file); err != nil {
		t.Fatal(err)
	}
	// The catalog again, over a store where all but the inventory waits.
	if err := hq.catalog.Close(); err != nil {
		t.Fatal(err)
	}
	g := &indexingStore{Store: hq.anchorStore}
	hq.anchorStore = g
	if err := hq.openConsole(); err != nil {
		t.Fatal(err)
	}

	m := newMetrics(hq) // as the daemon does: before Run
	intake, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hq.Run(intake, context.Background(), nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	confirmedAfter := func(after int64, what string) int64 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c := hq.invReads.confirmed.Load(); c > after {
				return c
			}
		}
		t.Fatalf("%s: no confirmed read of the console's inventory in 10s (catalog reads waiting: %d)", what, g.waiting.Load())
		return 0
	}
	first := confirmedAfter(0, "the first read")
	confirmedAfter(first, "the read a poll later")
	select {
	case <-hq.synced:
		t.Fatal("the catalog finished a pass: the test proves nothing")
	default:
	}
	if g.waiting.Load() == 0 {
		t.Fatal("no read of the catalog is waiting: the test proves nothing")
	}
	scrape := scrapeOf(t, m, "evidenced_inventory_read_age_seconds", "evidenced_inventory_refresh_failures_total")
	if strings.Count(scrape, "\n") != 3 {
		t.Errorf("scrape, want the age and three reasons:\n%s", scrape)
	}
	for _, line := range strings.Split(scrape, "\n") {
		series, v, _ := strings.Cut(line, " ")
		name, _, _ := strings.Cut(series, "{")
		var n float64
		fmt.Sscan(v, &n)
		if name == "evidenced_inventory_read_age_seconds" && n >= 2 || name != "evidenced_inventory_read_age_seconds" && n != 0 {
			t.Errorf("while the catalog indexes: %s", line)
		}
	}
}

// indexingStore is a store whose reads, but the console's inventory's,
// wait until the caller gives up: a catalog pass that does not end.
type indexingStore struct {
	anchor.Store
	waiting atomic.Int64
}

func (s *indexingStore) wait(ctx context.Context, key string) error {
	if strings.HasPrefix(key, "_inventory/") {
		return nil
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	<-ctx.Done()
	return ctx.Err()
}

func (s *indexingStore) Stat(ctx context.Context, key, versionID string) (objstore.ObjectInfo, error) {
	if err := s.wait(ctx, key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return s.Store.Stat(ctx, key, versionID)
}

func (s *indexingStore) Open(ctx context.Context, key, versionID string) (io.ReadCloser, error) {
	if err := s.wait(ctx, key); err != nil {
		return nil, err
	}
	return s.Store.Open(ctx, key, versionID)
}

func (s *indexingStore) ListVersions(ctx context.Context, prefix string) ([]objstore.Version, error) {
	if err := s.wait(ctx, prefix); err != nil {
		return nil, err
	}
	return s.Store.ListVersions(ctx, prefix)
}
