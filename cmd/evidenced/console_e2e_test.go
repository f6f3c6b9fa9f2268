package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// fleetHost is one host of a fleet on a shared bucket, run through the
// built binary.
type fleetHost struct {
	t        *testing.T
	id       string
	dir, cfg string
	// logs are the daemon's, while it runs (daemon).
	logs *syncBuffer
}

func newFleetHost(t *testing.T, srv *s3srv.Server, bucket, id, extra string) *fleetHost {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &fleetHost{t: t, id: id, dir: dir, cfg: filepath.Join(dir, "evidenced.yaml")}
	yml := fmt.Sprintf(`host_id: %s
state_dir: %s
object_store: {endpoint: %q, bucket: %s, region: us-east-1, path_style: true}
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 1, mode: GOVERNANCE}
vault_reserve: 0
shutdown_timeout: 10s
%s`, id, filepath.Join(dir, "state"), srv.Endpoint, bucket, extra)
	if err := os.WriteFile(h.cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// must runs the binary with this host's config; it must exit 0.
func (h *fleetHost) must(args ...string) string {
	h.t.Helper()
	code, out, errs := run(h.t, nil, append([]string{args[0], "--config", h.cfg}, args[1:]...)...)
	if code != 0 {
		h.t.Fatalf("%s: evidenced %s: exit %d\n%s%s", h.id, strings.Join(args, " "), code, out, errs)
	}
	return out
}

// publicKey writes `evidenced key --public` to a file and returns its path.
// store-init first, as an installation does: it creates the host key and
// the ledger (a reading command never does) and checks the shared bucket.
func (h *fleetHost) publicKey() string {
	h.t.Helper()
	h.must("store-init")
	p := filepath.Join(h.dir, h.id+".pem")
	if err := os.WriteFile(p, []byte(h.must("key", "--public")), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *fleetHost) findJSON(args ...string) []custody.Item {
	h.t.Helper()
	var items []custody.Item
	if err := json.Unmarshal([]byte(h.must(append([]string{"find", "--json"}, args...)...)), &items); err != nil {
		h.t.Fatal(err)
	}
	return items
}

func (h *fleetHost) fleetJSON() []catalog.HostHealth {
	h.t.Helper()
	var f catalog.Fleet
	if err := json.Unmarshal([]byte(h.must("fleet", "--json")), &f); err != nil {
		h.t.Fatal(err)
	}
	return f.Hosts
}

// daemon runs `evidenced run` for the host until stopped (SIGTERM).
func (h *fleetHost) daemon() (stop func()) {
	h.t.Helper()
	cmd := exec.Command(binPath, "run", "--config", h.cfg)
	logs := &syncBuffer{}
	h.logs = logs
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	sock := filepath.Join(h.dir, "state", "evidenced.sock")
	waitFor(h.t, h.id+" daemon socket", 30*time.Second, func() bool {
		st, err := os.Stat(sock)
		return err == nil && st.Mode()&os.ModeSocket != 0
	})
	done := false
	stop = func() {
		if done {
			return
		}
		done = true
		cmd.Process.Signal(syscall.SIGTERM)
		var ee *exec.ExitError
		if err := cmd.Wait(); errors.As(err, &ee) {
			h.t.Errorf("%s daemon exited %d\n%s", h.id, ee.ExitCode(), logs.String())
		}
	}
	h.t.Cleanup(stop)
	return stop
}

func hostOf(hosts []catalog.HostHealth, id string) catalog.HostHealth {
	for _, h := range hosts {
		if h.ID == id {
			return h
		}
	}
	return catalog.HostHealth{}
}

// dumpCatalog reads a console's index file as it stands (the daemon
// stopped) and returns its contents in key order.
func dumpCatalog(t *testing.T, path string, hosts []catalog.Trusted) string {
	t.Helper()
	c, err := catalog.Open(path, memstore.New(), hosts, catalog.Options{Self: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b bytes.Buffer
	if err := c.Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Issue #13, first slice: three dock hosts and a console on one bucket.
// Cameras docked at each are findable at the console within the poll, with
// their host; custody shows the dock host's own signed records; a host the
// console does not list is shown untrusted and never served; a host whose
// checkpoints are signed by a key other than the configured one is flagged
// by name and not served; the index deleted and rebuilt is the same index.
func TestConsoleFleetE2E(t *testing.T) { consoleFleet(t, s3srv.Start(t)) }

// The same multi-host path on Ceph RGW, the store most municipal object
// storage runs (skipped when Ceph is not installed, unless
// EVIDENCED_REQUIRE_RGW is set, as scripts/test.sh does).
func TestConsoleFleetE2ERGW(t *testing.T) { consoleFleet(t, s3srv.RGW(t)) }

func consoleFleet(t *testing.T, srv *s3srv.Server) {
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	const poll = 2 * time.Second

	docks := map[string]*fleetHost{}
	for i, id := range []string{"dock-01", "dock-02", "dock-03", "dock-04"} {
		docks[id] = newFleetHost(t, srv, bucket, id, fmt.Sprintf("cameras:\n  - {serial: BWC-%04d, kind: body, assigned_to: officer-%d}\n", i+1, i+1))
	}
	// dock-03 is configured at the console with a key that is not its own
	// (another host's of the same name: a reinstalled host, or a forger);
	// dock-04 is not configured at all.
	impostor := newFleetHost(t, srv, bucket, "dock-03", "")
	keys := map[string]string{
		"dock-01": docks["dock-01"].publicKey(), "dock-02": docks["dock-02"].publicKey(), "dock-03": impostor.publicKey(),
	}
	docks["dock-03"].publicKey()
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf(`role: console
console:
  poll: %s
  hosts:
    - {id: dock-01, public_key_file: %s}
    - {id: dock-02, public_key_file: %s}
    - {id: dock-03, public_key_file: %s}
`, poll, keys["dock-01"], keys["dock-02"], keys["dock-03"]))
	stop := console.daemon()

	// Dock each host's camera; each ingest anchors when it ends.
	own := map[string][]custody.Item{}
	docked := map[string]time.Time{}
	footage := map[string][]byte{} // sha256 → bytes, of every camera file

	for i, id := range []string{"dock-01", "dock-02", "dock-03", "dock-04"} {
		d := docks[id]
		cam := filepath.Join(d.dir, "cam")
		for _, b := range writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 64 << 10, "DCIM/100MEDIA/VID_0002.MP4": 32 << 10}) {
			footage[digest.Bytes(b).Hex()] = b
		}
		d.must("ingest", "--camera", fmt.Sprintf("BWC-%04d", i+1), "--from", cam)
		docked[id] = time.Now()
		own[id] = d.findJSON()
		if len(own[id]) != 2 {
			t.Fatalf("%s has %d items", id, len(own[id]))
		}
	}

	// Every trusted host's items are findable at the console within the
	// poll (and a margin for the console's own work), each with its host.
	var found []custody.Item
	waitFor(t, "dock-01's and dock-02's items at the console", poll+10*time.Second, func() bool {
		found = console.findJSON()
		return len(found) == 4
	})
	if took := time.Since(docked["dock-02"]); took > poll+10*time.Second {
		t.Errorf("findable %s after the anchor; poll is %s", took, poll)
	}
	for _, it := range found {
		want := map[string]custody.Item{}
		for _, o := range own[it.Host] {
			want[o.ID] = o
		}
		o, ok := want[it.ID]
		if !ok || o.SHA256 != it.SHA256 || o.AssignedTo != it.AssignedTo || o.VersionID != it.VersionID || o.State != it.State {
			t.Errorf("console serves %s as %s's item %+v; that host has %+v", it.ID, it.Host, it, o)
		}
	}
	if only := console.findJSON("--host", "dock-02"); len(only) != 2 || only[0].Host != "dock-02" {
		t.Errorf("find --host dock-02: %+v", only)
	}
	// A page of three says the next page's cursor; the page after it is
	// the fourth item; an altered cursor is refused with exit 2.
	code, _, errs := run(t, nil, "find", "--config", console.cfg, "--json", "--limit", "3")
	m := regexp.MustCompile(`next page: --after (\S+)`).FindStringSubmatch(errs)
	if code != 0 || m == nil {
		t.Fatalf("find --limit 3: exit %d, no next page's cursor in %q", code, errs)
	}
	var rest []custody.Item
	if err := json.Unmarshal([]byte(console.must("find", "--json", "--limit", "3", "--after", m[1])), &rest); err != nil ||
		len(rest) != 1 || rest[0].ID != found[3].ID || rest[0].Host != found[3].Host {
		t.Errorf("find --after the first page's cursor: %+v (%v), want the fourth item %s of %s", rest, err, found[3].ID, found[3].Host)
	}
	altered := []byte(m[1])
	// One character changed to another of the cursor's alphabet.
	altered[len(altered)/2] = map[bool]byte{true: 'B', false: 'A'}[altered[len(altered)/2] == 'A']
	if code, _, errs := run(t, nil, "find", "--config", console.cfg, "--limit", "3", "--after", string(altered)); code != 2 || !strings.Contains(errs, "damaged or was altered") {
		t.Errorf("find --after an altered cursor: exit %d, %q; want exit 2 saying so", code, errs)
	}

	// Custody at the console: the dock host's own records, byte for byte
	// (same seq and hash as on that host), signed by it, then the
	// console's record of this viewing.
	id := own["dock-01"][0].ID
	var evs []custody.Event
	if err := json.Unmarshal([]byte(console.must("custody", id, "--json", "--reason", "complaint 7")), &evs); err != nil {
		t.Fatal(err)
	}
	var atDock []custody.Event
	if err := json.Unmarshal([]byte(docks["dock-01"].must("custody", id, "--json")), &atDock); err != nil {
		t.Fatal(err)
	}
	dockHash := map[uint64]string{}
	for _, ev := range atDock {
		dockHash[ev.Seq] = ev.Hash
	}
	var hosts []string
	for _, ev := range evs {
		hosts = append(hosts, ev.Host)
		if ev.Host == "dock-01" && dockHash[ev.Seq] != ev.Hash {
			t.Errorf("record %d served with hash %s; dock-01 has %s", ev.Seq, ev.Hash, dockHash[ev.Seq])
		}
	}
	if len(evs) < 5 || hosts[0] != "dock-01" || hosts[len(hosts)-1] != "hq" || evs[len(evs)-1].Type != custody.Accessed {
		t.Errorf("custody at the console: hosts %v types %v", hosts, eventTypes(evs))
	}

	// A retrieval at the console reads the store by the version the dock
	// host recorded and checks the SHA-256 before the file appears.
	got := filepath.Join(t.TempDir(), "clip.mp4")
	it := own["dock-02"][1]
	console.must("get", it.ID, "--reason", "complaint 7", "--out", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, footage[it.SHA256]) {
		t.Errorf("get at the console: %d bytes (%v), want the camera's %d", len(b), err, len(footage[it.SHA256]))
	}

	// Scrub: every stored recording of the trusted hosts re-read and
	// checked, each result a record in the console's ledger.
	if out := console.must("scrub", "--all"); !strings.Contains(out, "scrub: 4 of 4 stored recording(s) re-read, 0 failed") {
		t.Errorf("scrub --all: %s", out)
	}

	// Untrusted and broken hosts: named, not served.
	for _, id := range []string{"dock-03", "dock-04"} {
		code, out, _ := run(t, nil, "custody", own[id][0].ID, "--config", console.cfg, "--json")
		if code == 0 {
			t.Errorf("custody of %s's item served at the console: %s", id, out)
		}
	}
	var fleet []catalog.HostHealth
	waitFor(t, "dock-04 seen as untrusted", poll+10*time.Second, func() bool {
		fleet = console.fleetJSON()
		return hostOf(fleet, "dock-04").ID != ""
	})
	if h := hostOf(fleet, "dock-04"); h.Trusted || !strings.Contains(strings.Join(h.Flags, " "), "untrusted") {
		t.Errorf("dock-04: %+v", h)
	}
	if h := hostOf(fleet, "dock-03"); h.Records != 0 || !strings.Contains(strings.Join(h.Flags, " "), "not the key configured for dock-03") {
		t.Errorf("dock-03: %+v", h)
	}
	for _, id := range []string{"dock-01", "dock-02"} {
		if h := hostOf(fleet, id); !h.Trusted || h.Items != 2 || h.Checkpoint == 0 || len(h.Flags) != 0 {
			t.Errorf("%s: %+v", id, h)
		}
	}
	// verify --remote at the console checks the fleet it serves: every
	// stored recording re-read (dock-01's and dock-02's), dock-03's broken
	// history a problem naming it, the unlisted dock-04 a notice.
	code, out, errs := run(t, nil, "verify", "--remote", "--json", "--config", console.cfg, "--reason", "audit")
	var vr verifyJSON
	if err := json.Unmarshal([]byte(out), &vr); err != nil {
		t.Fatalf("verify --remote at the console: exit %d: %v\n%s%s", code, err, out, errs)
	}
	if code != 3 || vr.OK || vr.Objects != 4 || vr.ObjectsFailed != 0 || vr.Items != 4 || len(vr.Problems) != 1 ||
		vr.Problems[0].Kind != "host" || vr.Problems[0].Host != "dock-03" || !strings.Contains(vr.Problems[0].What, "not the key configured for dock-03") ||
		!strings.Contains(fmt.Sprint(vr.Notices), "host dock-04 anchors in the store but is not listed") {
		t.Errorf("verify --remote at the console: exit %d\n%s%s", code, out, errs)
	}
	var f catalog.Fleet
	if err := json.Unmarshal([]byte(console.must("fleet", "--json")), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cameras) != 2 || f.Cameras[0].Serial != "BWC-0001" || f.Cameras[0].Host != "dock-01" || f.Cameras[1].AssignedTo != "officer-2" {
		t.Errorf("cameras at the console (only trusted hosts' docks): %+v", f.Cameras)
	}
	// The untrusted and the broken host's uploads are named by no trusted
	// host's records: orphans, each named.
	var fo catalog.Fleet
	if err := json.Unmarshal([]byte(console.must("fleet", "--orphans", "--json")), &fo); err != nil {
		t.Fatal(err)
	}
	orphans := map[string]bool{}
	for _, o := range fo.Orphans {
		orphans[o.Key+"@"+o.VersionID] = true
	}
	for _, id := range []string{"dock-03", "dock-04"} {
		for _, it := range own[id] {
			if !orphans[it.ObjectKey+"@"+it.VersionID] {
				t.Errorf("%s's %s is not listed as an orphan: %+v", id, it.ObjectKey, fo.Orphans)
			}
		}
	}
	if len(fo.Orphans) != 4 {
		t.Errorf("%d orphans, want dock-03's and dock-04's 4: %+v", len(fo.Orphans), fo.Orphans)
	}
	out = console.must("fleet")
	if !strings.Contains(out, "dock-03") || !strings.Contains(out, "broken") || !strings.Contains(out, "untrusted") {
		t.Errorf("fleet table:\n%s", out)
	}

	// The index is a cache: deleted, it is rebuilt the same.
	stop()
	var trusted []catalog.Trusted
	for _, id := range []string{"dock-01", "dock-02", "dock-03"} {
		b, err := os.ReadFile(keys[id])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := signing.ParsePublicPEM(b)
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, catalog.Trusted{ID: id, Key: pub})
	}
	db := filepath.Join(console.dir, "state", "catalog.db")
	before := dumpCatalog(t, db, trusted)
	if !strings.Contains(before, "dock-04") || !strings.Contains(before, own["dock-02"][1].ID) {
		t.Fatalf("index before: %s", before)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	stop = console.daemon()
	waitFor(t, "the rebuilt index", poll+10*time.Second, func() bool {
		f := console.fleetJSON()
		return len(console.findJSON()) == 4 && hostOf(f, "dock-04").ID != "" && len(hostOf(f, "dock-03").Flags) > 0
	})
	stop()
	if after := dumpCatalog(t, db, trusted); after != before {
		t.Errorf("rebuilt index differs\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// What investigators did at the console is in its ledger, anchored
	// under _custody/hq/ like a dock host's.
	acc := console.must("access", "--json")
	for _, want := range []string{`"find"`, `"custody"`, `"fleet"`, `"retrieve"`, "complaint 7"} {
		if !strings.Contains(acc, want) {
			t.Errorf("console access log lacks %s", want)
		}
	}
	st := openBucketStore(t, srv, bucket)
	vs, err := st.ListVersions(t.Context(), "_custody/hq/checkpoints/")
	if err != nil || len(vs) == 0 {
		t.Errorf("the console's ledger is not anchored: %d objects, %v", len(vs), err)
	}

	// Someone with write access to the bucket adds a version to one of
	// dock-02's checkpoints, behind what the console has followed: the
	// daily pass's audit names it and withholds dock-02.
	forged := forgeCheckpoint(t, st, "dock-02")
	code, out, errs = run(t, nil, "scrub", "--config", console.cfg)
	if code != 3 || !strings.Contains(out, "WITHHELD dock-02: "+forged) {
		t.Errorf("scrub after tampering: exit %d\n%s%s", code, out, errs)
	}
	if items := console.findJSON(); len(items) != 2 || items[0].Host != "dock-01" {
		t.Errorf("after the audit the console serves %+v", items)
	}

	// The same behind dock-01's last checkpoint: verify --remote audits
	// too, names dock-01 and serves nothing of it any more.
	forged = forgeCheckpoint(t, st, "dock-01")
	code, out, errs = run(t, nil, "verify", "--remote", "--config", console.cfg)
	if code != 3 || !strings.Contains(out, "FAIL host dock-01: withheld (audit): "+forged) || !strings.Contains(out, "FAIL host dock-02: withheld (audit)") ||
		!strings.Contains(out, "FAIL host dock-03: broken") || !strings.Contains(out, "0 objects checked") {
		t.Errorf("verify --remote after tampering with dock-01: exit %d\n%s%s", code, out, errs)
	}
	if items := console.findJSON(); len(items) != 0 {
		t.Errorf("after verify's audit the console serves %+v", items)
	}
}

// verifyJSON is what `verify --json` prints, as far as the console tests
// read it.
type verifyJSON struct {
	OK            bool `json:"ok"`
	Items         int  `json:"items"`
	Objects       int  `json:"objects_checked"`
	ObjectsFailed int  `json:"objects_failed"`
	Problems      []struct {
		Kind, Host, Item, Object, What string
	} `json:"problems"`
	Notices []struct{ What string } `json:"notices"`
}

// forgeCheckpoint adds a version to the first of host's anchored
// checkpoints, behind what a console has followed (someone with write
// access to the bucket), and returns its key.
func forgeCheckpoint(t *testing.T, st *s3store.Store, host string) string {
	t.Helper()
	cps, err := st.ListVersions(t.Context(), "_custody/"+host+"/checkpoints/")
	if err != nil || len(cps) == 0 {
		t.Fatalf("%s's checkpoints: %v %v", host, cps, err)
	}
	forged := []byte("evidenced/" + host + "\n1\nAAAA\n")
	if _, err := st.Put(t.Context(), objstore.PutRequest{Key: cps[0].Key, Body: bytes.NewReader(forged), Size: int64(len(forged)), SHA256: digest.Bytes(forged)}); err != nil {
		t.Fatal(err)
	}
	return cps[0].Key
}

// openBucketStore opens the shared bucket as the hosts see it.
func openBucketStore(t *testing.T, srv *s3srv.Server, bucket string) *s3store.Store {
	t.Helper()
	st, err := s3store.New(t.Context(), s3store.Config{
		Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
