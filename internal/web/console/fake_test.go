package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/testutil/oidcprovider"
)

// fakeBackend stands in for the service in the unit tests: it counts what
// it is asked and answers with one item whose bytes it holds.
type fakeBackend struct {
	mu      sync.Mutex
	calls   map[string]int
	records []map[string]string // RecordAccess details, with "action"
	finds   []service.FindOptions
	item    custody.Item
	data    []byte
	// list, when set, is what a search by item fields finds (else item).
	list []custody.Item
	// inv is the inventory "in the store" (nil: none published), and
	// published what each edit published, with its caller: the store
	// and the ledger as far as the inventory routes reach them.
	inv       *service.InventoryView
	published []fakePublication
}

// fakePublication is one inventory edit the fake published.
type fakePublication struct {
	Caller service.Caller
	Change map[string]string
}

func newFake() *fakeBackend {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	sum := sha256.Sum256(data)
	return &fakeBackend{calls: map[string]int{}, data: data, item: custody.Item{
		ID: "item-01", Camera: "CAM-1", AssignedTo: "officer-4711", SourcePath: "DCIM/100MEDIA/clip.mp4",
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), State: custody.StateVerified, Host: "dock-01",
		RecordedAt: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC),
	}}
}

func (f *fakeBackend) called(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
}

func (f *fakeBackend) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeBackend) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// FindPage answers a search by item fields with the item (or list), and
// one by plate or place with the item matched through a fact of a sidecar
// file (a plate read, or a GPS fix), as the service does; it keeps the
// options asked and cuts the page they ask for.
func (f *fakeBackend) FindPage(_ context.Context, _ service.Caller, o service.FindOptions) (service.FoundPage, error) {
	f.called("Find")
	f.mu.Lock()
	f.finds = append(f.finds, o)
	f.mu.Unlock()
	var all []service.Found
	switch {
	case o.Plate != "":
		all = []service.Found{{Item: f.item, Match: &service.Hit{Kind: service.HitPlateRead, Time: f.item.RecordedAt.Add(time.Minute),
			Source: sidecarSource("ANPR/READS.CSV"), Line: 2, Recording: f.item.ID, Distance: 0.25,
			Plate: &facts.PlateFact{AsRead: "CA 123-456", Plate: "CA123456", Confidence: 0.93, HasPos: true, Lat: -33.9249, Lon: 18.4241}}}}
	case o.Near != nil:
		all = []service.Found{{Item: f.item, Match: &service.Hit{Kind: service.HitGPSFix, Time: f.item.RecordedAt.Add(2 * time.Minute),
			Source: sidecarSource("GPS/TRACK.NMEA"), Line: 3, Recording: f.item.ID, Lat: -33.9251, Lon: 18.4241, Metres: 22, Fixes: 4}}}
	case f.list != nil:
		for _, it := range f.list {
			all = append(all, service.Found{Item: it})
		}
	default:
		all = []service.Found{{Item: f.item}}
	}
	// The fake's cursor is "at-N": the next page starts at N. The
	// service's own is opaque and checked (its tests).
	if o.After != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(o.After, "at-"))
		if err != nil || !strings.HasPrefix(o.After, "at-") {
			return service.FoundPage{}, fmt.Errorf("the next page's cursor (--after): the cursor is damaged or was altered: %w", service.ErrInvalid)
		}
		o.Offset = n
	}
	lo := min(o.Offset, len(all))
	hi := len(all)
	if o.Limit > 0 {
		hi = min(lo+o.Limit, hi)
	}
	p := service.FoundPage{Items: all[lo:hi], Total: len(all), Offset: lo}
	if o.Limit > 0 && hi < len(all) {
		p.Next = fmt.Sprintf("at-%d", hi)
	}
	return p, nil
}

// sidecarSource is a sidecar file of the fake's camera.
func sidecarSource(path string) facts.Source {
	sum := sha256.Sum256([]byte(path))
	return facts.Source{Item: "sidecar-" + strings.ToLower(strings.NewReplacer("/", "-", ".", "-").Replace(path)), Camera: "CAM-1", SourcePath: path, SHA256: hex.EncodeToString(sum[:])}
}

func (f *fakeBackend) View(_ context.Context, c service.Caller, id, _ string) (service.ItemView, error) {
	f.called("View")
	if id != f.item.ID {
		return service.ItemView{}, service.ErrNotFound
	}
	return service.ItemView{Items: []custody.Item{f.item}, Events: []custody.Event{
		{Seq: 1, Type: custody.Docked, Host: "dock-01", Actor: "evidenced@dock-01", Item: id},
		{Seq: 7, Type: custody.Accessed, Host: "hq-console", Actor: c.Actor, Item: id, Details: map[string]string{"action": "custody"}},
	}, Holds: []string{"2026-114"}}, nil
}

type fakeFootage struct{ f *fakeBackend }

func (ff fakeFootage) Item() custody.Item { return ff.f.item }
func (ff fakeFootage) OpenRange(_ context.Context, off, n int64) (io.ReadCloser, error) {
	ff.f.called("OpenRange")
	end := min(off+n, int64(len(ff.f.data)))
	return io.NopCloser(bytes.NewReader(ff.f.data[off:end])), nil
}

func (f *fakeBackend) Play(_ context.Context, _ service.Caller, id, _ string) (footage, error) {
	f.called("Play")
	if id != f.item.ID {
		return nil, service.ErrNotFound
	}
	return fakeFootage{f}, nil
}

func (f *fakeBackend) Get(_ context.Context, _ service.Caller, o service.GetOptions, w io.Writer, started func(custody.Item)) error {
	f.called("Get")
	started(f.item)
	_, err := w.Write(f.data)
	return err
}

func (f *fakeBackend) Export(_ context.Context, _ service.Caller, _ service.ExportOptions, w io.Writer) (service.ExportSummary, error) {
	f.called("Export")
	_, err := w.Write([]byte("tar"))
	return service.ExportSummary{}, err
}

func (f *fakeBackend) ClearHost(_ context.Context, _ service.Caller, o service.ClearHostOptions) (service.HostClearance, error) {
	f.called("ClearHost")
	if o.Host != "dock-02" {
		return service.HostClearance{}, fmt.Errorf("%s: %w", o.Host, service.ErrIntegrity)
	}
	return service.HostClearance{Host: o.Host, Checkpoint: 11}, nil
}

func (f *fakeBackend) Hold(_ context.Context, _ service.Caller, o service.HoldOptions) (service.HoldResult, error) {
	f.called("Hold")
	return service.HoldResult{ID: o.ID, Case: o.Case, HeldBy: []string{o.Case}}, nil
}

func (f *fakeBackend) Release(_ context.Context, _ service.Caller, o service.HoldOptions) (service.HoldResult, error) {
	f.called("Release")
	return service.HoldResult{ID: o.ID, Case: o.Case}, nil
}

func (f *fakeBackend) Classify(_ context.Context, _ service.Caller, o service.ClassifyOptions) (service.ClassifyResult, error) {
	f.called("Classify")
	return service.ClassifyResult{ID: o.ID, Class: o.Class}, nil
}

func (f *fakeBackend) Verify(context.Context, service.Caller, service.VerifyOptions) (service.VerifyReport, error) {
	f.called("Verify")
	return service.VerifyReport{OK: true, Events: 3}, nil
}

func (f *fakeBackend) Accesses(context.Context, service.Caller, service.AccessFilter) ([]custody.Event, error) {
	f.called("Accesses")
	return []custody.Event{{Seq: 2, Type: custody.Accessed, Actor: "oidc:ann", Item: f.item.ID,
		Details: map[string]string{"action": "play", "reason": "=cmd()"}}}, nil
}

func (f *fakeBackend) Fleet(context.Context, service.Caller, service.FleetOptions) (service.FleetHealth, error) {
	f.called("Fleet")
	days := 3
	// One camera of each kind of row: docked (with its days) and never
	// docked (no dock, listed since), so the page renders both.
	return service.FleetHealth{Hosts: []service.HostHealth{{ID: "dock-01", Trusted: true}, {ID: "dock-02", Trusted: true, Broken: true, Flags: []string{"broken: x"}}},
		Cameras: []catalog.CameraHealth{
			{Serial: "BWC-1", Host: "dock-01", State: catalog.CameraDocked, LastDockedAt: time.Unix(1.7e9, 0), DaysSinceDock: &days},
			{Serial: "BWC-9", AssignedTo: "officer-9", State: catalog.CameraNeverDocked, ListedSince: time.Unix(1.7e9, 0)},
		}}, nil
}

func (f *fakeBackend) RecordAccess(_ context.Context, _ service.Caller, action, _ string, _ *custody.Item, d map[string]string) error {
	f.called("RecordAccess")
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := map[string]string{"action": action}
	for k, v := range d {
		rec[k] = v
	}
	f.records = append(f.records, rec)
	return nil
}

// The fake's inventory edits: serial "CONFLICT" meets another
// publication, "BROKEN" a store that fails, any other serial not in inv
// is unknown; an effective time not after the camera's last entry is
// refused, as the service does.
func (f *fakeBackend) ShowInventory(context.Context) (service.InventoryView, error) {
	f.called("ShowInventory")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inv == nil {
		return service.InventoryView{}, fmt.Errorf("no inventory published at _inventory/hq: %w", service.ErrNotFound)
	}
	v := *f.inv
	v.Cameras = slices.Clone(v.Cameras)
	return v, nil
}

func (f *fakeBackend) AssignInventory(_ context.Context, c service.Caller, serial, who string, eff time.Time) (service.InventoryPublication, error) {
	f.called("AssignInventory")
	return f.edit(c, serial, eff, func(cam *config.InventoryCamera, eff time.Time) map[string]string {
		cam.Assignments = append(cam.Assignments, config.Assignment{To: who, From: eff})
		cam.AssignedTo = who
		return map[string]string{"change": "assign", "serial": cam.Serial, "to": who}
	})
}

func (f *fakeBackend) RetireInventory(_ context.Context, c service.Caller, serial string, eff time.Time) (service.InventoryPublication, error) {
	f.called("RetireInventory")
	return f.edit(c, serial, eff, func(cam *config.InventoryCamera, eff time.Time) map[string]string {
		cam.Retired = &eff
		return map[string]string{"change": "retire", "serial": cam.Serial}
	})
}

// ImportInventoryData publishes the file's cameras as the next version,
// parsed as the service parses them.
func (f *fakeBackend) ImportInventoryData(_ context.Context, c service.Caller, name string, data []byte) (service.InventoryPublication, error) {
	f.called("ImportInventoryData")
	cams, err := config.ParseInventory(data, name)
	if err != nil {
		return service.InventoryPublication{}, fmt.Errorf("%w: %w", service.ErrInvalid, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := uint64(1)
	if f.inv != nil {
		v = f.inv.Version + 1
	}
	f.inv = &service.InventoryView{Console: "hq", Version: v, SHA256: fmt.Sprintf("%064d", v), Source: "_inventory/hq@v", Cameras: cams}
	ch := map[string]string{"change": "import", "file": name}
	f.published = append(f.published, fakePublication{Caller: c, Change: ch})
	return service.InventoryPublication{Version: v, Cameras: len(cams), Change: ch}, nil
}

func (f *fakeBackend) edit(c service.Caller, serial string, eff time.Time, change func(*config.InventoryCamera, time.Time) map[string]string) (service.InventoryPublication, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case serial == "CONFLICT":
		return service.InventoryPublication{}, fmt.Errorf("%w: version v9 is newer", service.ErrInventoryConflict)
	case serial == "BROKEN":
		return service.InventoryPublication{}, errors.New("store the inventory: connection reset by peer")
	case f.inv == nil:
		return service.InventoryPublication{}, fmt.Errorf("no inventory is published yet: %w", service.ErrInvalid)
	}
	if eff.IsZero() {
		eff = time.Now().UTC()
	}
	i := slices.IndexFunc(f.inv.Cameras, func(c config.InventoryCamera) bool { return c.Serial == serial })
	if i < 0 {
		return service.InventoryPublication{}, fmt.Errorf("camera %s is not in the inventory (version %d): %w", serial, f.inv.Version, service.ErrInvalid)
	}
	cams := slices.Clone(f.inv.Cameras)
	cam := &cams[i]
	if n := len(cam.Assignments); n > 0 && !eff.After(cam.Assignments[n-1].From) {
		return service.InventoryPublication{}, fmt.Errorf("camera %s: effective %s is not after its last assignment: %w", serial, eff.Format(time.RFC3339), service.ErrInvalid)
	}
	cam.Assignments = slices.Clone(cam.Assignments)
	ch := change(cam, eff)
	f.inv = &service.InventoryView{Console: f.inv.Console, Version: f.inv.Version + 1, SHA256: fmt.Sprintf("%064d", f.inv.Version+1), Source: f.inv.Source, Cameras: cams}
	f.published = append(f.published, fakePublication{Caller: c, Change: ch})
	return service.InventoryPublication{Version: f.inv.Version, Cameras: len(cams), Change: ch}, nil
}

func (f *fakeBackend) Classes() []string { return []string{"uncategorized", "evidence"} }

// testOIDC is a console's oidc section for a real in-process provider.
func testOIDC(t testing.TB, p *oidcprovider.Provider, redirect string) *config.OIDC {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(p.Config().ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &config.OIDC{Issuer: p.Issuer(), ClientID: p.Config().ClientID, ClientSecretFile: secret, RedirectURL: redirect,
		RolesClaim: "groups", SessionTTL: config.Duration{Duration: time.Hour},
		Roles: config.OIDCRoles{Investigator: []string{"inv"}, Custodian: []string{"cust"}, Auditor: []string{"aud"}}}
}

// accounts are the provider's test accounts, one per role and one with
// no role.
var accounts = map[string][]string{"ivy": {"inv"}, "cora": {"cust"}, "abe": {"aud"}, "nemo": {"staff"}}

// newTestHandler is a console handler on the fake backend, signing in at
// a real provider.
func newTestHandler(t testing.TB, opts Options) (*Handler, *fakeBackend, *oidcprovider.Provider) {
	t.Helper()
	p := oidcprovider.Start(t, accounts)
	fb := newFake()
	if opts.LoginsPerMinute == 0 {
		opts.LoginsPerMinute = 1 << 20
	}
	h, err := newHandler(context.Background(), fb, testOIDC(t, p, "http://127.0.0.1:1/auth/callback"), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	return h, fb, p
}

// sessionCookieFor signs someone in with roles directly (the sign-in
// itself is tested through the provider in auth_test.go).
func sessionCookieFor(h *Handler, roles Role) (*http.Cookie, *session) {
	s := h.sessions.create("oidc:test-"+roles.String(), "Test "+roles.String(), roles)
	return &http.Cookie{Name: sessionCookie, Value: s.id}, s
}
