package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// Issue #17 at the console, through the built binary on a real S3 server.
// A vehicle camera's recording, GPS log and ANPR log are docked on a dock
// host that uploads them; the console daemon parses the sidecars from the
// store as its catalog learns of their uploads, and at the console find
// --plate (exact, and --fuzzy with one OCR confusion) and find --near
// return the recording, from the dock host, through the file and hash the
// dock host recorded. The console's parse is in its own ledger. A second
// camera's plate log is altered in the store before the console reads it:
// the console (no daemon: the command syncs and parses) records the failed
// parse naming the item and finds nothing from it; a console reindex
// re-derives the same answers and the same failure.
func TestConsoleSidecarsE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	dock := newFleetHost(t, srv, bucket, "dock-01", "cameras:\n"+
		"  - {serial: CAR-0001, kind: vehicle, assigned_to: car-17}\n"+
		"  - {serial: CAR-0002, kind: vehicle, assigned_to: car-18}\n"+sidecarRules)
	dockPEM := dock.publicKey()
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  poll: 2s\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n%s",
		dockPEM, sidecarRules))
	stop := console.daemon()

	cam := filepath.Join(dock.dir, "cam-car")
	writeCarCamera(t, cam)
	dock.must("ingest", "--camera", "CAR-0001", "--from", cam)
	byPath := map[string]custody.Item{}
	for _, it := range dock.findJSON() {
		byPath[it.SourcePath] = it
	}
	rec, csv, gps := byPath["DCIM/100MEDIA/VID_0001.MP4"], byPath["ANPR/READS.CSV"], byPath["GPS/TRACK.NMEA"]
	if rec.VersionID == "" || csv.VersionID == "" || gps.VersionID == "" {
		t.Fatalf("the dock host did not upload the camera's files: %+v", byPath)
	}

	find := func(args ...string) []found {
		t.Helper()
		return findFound(t, func(args ...string) (int, string, string) {
			return run(t, nil, append([]string{args[0], "--config", console.cfg}, args[1:]...)...)
		}, args...)
	}
	wantRecording := func(what string, fs []found, from custody.Item) {
		t.Helper()
		wantFoundRecording(t, what+" at the console", fs, rec, from)
	}
	// The daemon parses each upload as its catalog learns of it.
	waitFor(t, "the plate read found at the console", 30*time.Second, func() bool { return len(find("--plate", "CA 123-456")) > 0 })
	wantRecording("--plate CA 123-456", find("--plate", "CA 123-456"), csv)
	wantRecording("--plate CA I23-456 --fuzzy (1 read as I)", find("--plate", "CA I23-456", "--fuzzy"), csv)
	if fs := find("--plate", "CA I23-456"); len(fs) != 0 {
		t.Errorf("an OCR confusion found without --fuzzy: %+v", fs)
	}
	nearCorner := []string{"--near", "-33.9249,18.4241", "--radius", "300", "--since", "2026-12-03T18:00:00Z", "--until", "2026-12-03T22:00:00Z"}
	wantRecording("--near the corner", find(nearCorner...), gps)
	if fs := find("--near", "-33.9700,18.4241", "--radius", "300"); len(fs) != 0 {
		t.Errorf("5 km away: %+v", fs)
	}
	if fs := find("--plate", "CA 123-456", "--host", "dock-02"); len(fs) != 0 {
		t.Errorf("--host dock-02 found dock-01's recording: %+v", fs)
	}
	// The table names the host, the recording, the fact and the file's hash.
	if out := console.must("find", "--plate", "CA 123-456"); !strings.HasPrefix(out, "HOST") ||
		!strings.Contains(out, "dock-01") || !strings.Contains(out, rec.ID) || !strings.Contains(out, csv.SHA256) {
		t.Errorf("find --plate table at the console:\n%s", out)
	}

	// The parse at the console is the console's own custody step, beside
	// the dock host's.
	parsedBy := func(it custody.Item, typ custody.EventType) map[string]custody.Event {
		t.Helper()
		var evs []custody.Event
		if err := json.Unmarshal([]byte(console.must("custody", it.ID, "--json")), &evs); err != nil {
			t.Fatal(err)
		}
		out := map[string]custody.Event{}
		for _, ev := range evs {
			if ev.Type == typ {
				out[ev.Host] = ev
			}
		}
		return out
	}
	p := parsedBy(csv, custody.Parsed)
	if ev := p["hq"]; ev.Item != csv.ID || ev.SHA256 != csv.SHA256 || ev.Details["parser"] != "anpr-csv" || ev.Details["facts"] != p["dock-01"].Details["facts"] {
		t.Errorf("READS.CSV parsed: at hq %+v, at dock-01 %+v", ev, p["dock-01"])
	}
	acc := console.must("access", "--json")
	if !strings.Contains(acc, `"plate": "CA I23-456"`) || !strings.Contains(acc, `"near": "-33.9249,18.4241"`) {
		t.Errorf("the console's access log lacks the searches:\n%s", acc)
	}
	stop()

	// The console's parse record travels in its package with the dock
	// host's, each proven in its host's checkpoint.
	pkg := filepath.Join(t.TempDir(), "pkg")
	console.must("export", rec.ID, csv.ID, "--reason", "complaint 9", "--out", pkg)
	keys := filepath.Join(t.TempDir(), "fleet.pem")
	dockKey, err := os.ReadFile(dockPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, append(dockKey, console.must("key", "--public")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, nil, "verify-export", pkg, "--keys", keys); code != 0 {
		t.Errorf("verify-export of the console's package: exit %d\n%s%s", code, out, errs)
	}
	var trail []export.FleetEntry
	readJSON(t, filepath.Join(pkg, "items", csv.ID, "custody.json"), &trail)
	var got []string
	for _, e := range trail {
		got = append(got, e.Host+":"+string(e.Type))
	}
	if g := strings.Join(got, " "); !strings.Contains(g, "dock-01:PARSED") || !strings.Contains(g, "hq:PARSED") {
		t.Errorf("custody.json of READS.CSV in the console's package: %s", g)
	}

	// A second car; its plate log is altered in the store before the
	// console has read it.
	cam2 := filepath.Join(dock.dir, "cam-car2")
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for rel, data := range map[string][]byte{
		"DCIM/100MEDIA/VID_0002.MP4": sidecarfile.MP4(start, 10*time.Minute, []byte("second car footage")),
		"ANPR/READS.CSV":             []byte("time,plate,confidence,region,lat,lon,heading,camera,crop\n2026-12-04T10:05:00Z,ND 555-111,0.95,ZA-KZN,-29.85,31.02,10,VEH-018,\n"),
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(cam2, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cam2, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dock.must("ingest", "--camera", "CAR-0002", "--from", cam2)
	var csv2, rec2 custody.Item
	for _, it := range dock.findJSON("--camera", "CAR-0002") {
		switch it.SourcePath {
		case "ANPR/READS.CSV":
			csv2 = it
		case "DCIM/100MEDIA/VID_0002.MP4":
			rec2 = it
		}
	}
	if csv2.VersionID == "" || rec2.VersionID == "" {
		t.Fatalf("CAR-0002 not uploaded: %+v %+v", csv2, rec2)
	}
	tamperStored(t, srv, bucket, csv2.ObjectKey, "ND 555-111", "ND 555-117")

	if fs := find("--plate", "ND 555-111", "--fuzzy"); len(fs) != 0 {
		t.Errorf("a plate found from a log altered in the store: %+v", fs)
	}
	if fs := find("--plate", "ND 555-117"); len(fs) != 0 {
		t.Errorf("the altered plate found: %+v", fs)
	}
	failed := parsedBy(csv2, custody.ParseFailed)["hq"]
	if failed.Item != csv2.ID || failed.SHA256 != csv2.SHA256 || !strings.Contains(failed.Details["reason"], "not the recorded "+csv2.SHA256) {
		t.Errorf("the altered plate log at the console: PARSE_FAILED %+v", failed)
	}
	if ev := parsedBy(rec2, custody.Parsed)["hq"]; ev.Item != rec2.ID {
		t.Errorf("CAR-0002's recording was not parsed beside the failed log: %+v", ev)
	}
	wantRecording("--plate CA123456 after the failure", find("--plate", "CA123456"), csv)

	// The console's index is derived data: rebuilt from the store, the
	// same answers and the same failure, recorded once.
	out := console.must("reindex")
	if !strings.Contains(out, "5 sidecar file(s) parsed, 1 failed, 0 parse record(s) new") {
		t.Errorf("reindex at the console: %s", out)
	}
	wantRecording("--plate CA 123-456 after reindex", find("--plate", "CA 123-456"), csv)
	wantRecording("--near after reindex", find(nearCorner...), gps)
	if fs := find("--plate", "ND 555-111"); len(fs) != 0 {
		t.Errorf("after reindex a plate found from the altered log: %+v", fs)
	}

	// A host withheld by the audit (a version added behind a checkpoint
	// the console followed) is served by no search, its facts included.
	forgeCheckpoint(t, openBucketStore(t, srv, bucket), "dock-01")
	if code, out, errs := run(t, nil, "scrub", "--config", console.cfg); code != 3 || !strings.Contains(out, "WITHHELD dock-01") {
		t.Fatalf("scrub after the forged checkpoint: exit %d\n%s%s", code, out, errs)
	}
	if fs := find("--plate", "CA 123-456"); len(fs) != 0 {
		t.Errorf("a withheld host's recording found by plate: %+v", fs)
	}
	if fs := find(nearCorner...); len(fs) != 0 {
		t.Errorf("a withheld host's recording found by place: %+v", fs)
	}
}

// tamperStored changes, in place and at the same size, the bytes of the
// stored object key, each from string to the string after it (versitygw's posix backend keeps the newest version of
// an object as a plain file): what someone with access to the store's
// disks could do.
func tamperStored(t *testing.T, srv *s3srv.Server, bucket, key string, fromTo ...string) {
	t.Helper()
	p := filepath.Join(srv.Dir, "data", bucket, filepath.FromSlash(key))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the stored object %s: %v", key, err)
	}
	changed := replaceSameLength(t, key, b, fromTo...)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, st.Mode().Perm())
}

// replaceSameLength replaces, in b (the object key), the first of each
// from string with the to string after it; each pair must be of one length
// (the size the server recorded stays true) and from must be there.
func replaceSameLength(t *testing.T, key string, b []byte, fromTo ...string) []byte {
	t.Helper()
	if len(fromTo)%2 != 0 {
		t.Fatalf("replacements for %s: %q is not from, to pairs", key, fromTo)
	}
	s := string(b)
	for i := 0; i < len(fromTo); i += 2 {
		from, to := fromTo[i], fromTo[i+1]
		if len(from) != len(to) || !strings.Contains(s, from) {
			t.Fatalf("%s does not hold %q", key, from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	return []byte(s)
}
