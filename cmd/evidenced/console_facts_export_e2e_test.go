package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// Issues #13 and #17: a console's package of a recording found by plate
// carries the same facts as the dock host's package of it, through the
// built binary on a real S3 server. A vehicle camera's recording, GPS log,
// ANPR log and plate crop are docked on a dock host that uploads them; at
// the console (no daemon: the command syncs the catalog and parses the
// uploads from the store) the export carries facts.jsonl, the log, the
// track and the crop read from the store, each an item with its dock
// host's proven custody. facts.jsonl is the dock host's own, line for
// line, plus the host that ingested each source. verify-export --keys
// re-parses the carried files; a carried sidecar altered in the package
// (the manifest fixed), or a fact claimed for another host, fails it
// (exit 3) naming the file. The same camera also docked a recording of
// the same minutes at a second host: the console links none of the first
// host's reads to it, and a read re-linked to it in the package (the
// manifest fixed) fails naming the line, the camera and both hosts.
func TestConsoleExportCarriesFactsE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	dock := newFleetHost(t, srv, bucket, "dock-01", "cameras:\n  - {serial: CAR-0001, kind: vehicle, assigned_to: car-17}\n"+sidecarRules)
	dockPEM := dock.publicKey()
	dock2 := newFleetHost(t, srv, bucket, "dock-02", "cameras:\n  - {serial: CAR-0001, kind: vehicle, assigned_to: car-17}\n"+sidecarRules)
	dock2PEM := dock2.publicKey()
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n    - {id: dock-02, public_key_file: %s}\n%s",
		dockPEM, dock2PEM, sidecarRules))
	consolePEM := console.publicKey()

	cam := filepath.Join(dock.dir, "cam-car")
	writeCarCamera(t, cam)
	dock.must("ingest", "--camera", "CAR-0001", "--from", cam)
	byPath := map[string]custody.Item{}
	for _, it := range dock.findJSON() {
		byPath[it.SourcePath] = it
	}
	rec, csv, gps, crop := byPath["DCIM/100MEDIA/VID_0001.MP4"], byPath["ANPR/READS.CSV"], byPath["GPS/TRACK.NMEA"], byPath["ANPR/crops/a.jpg"]
	for _, it := range []custody.Item{rec, csv, gps, crop} {
		if it.VersionID == "" {
			t.Fatalf("the dock host did not upload the camera's files: %+v", byPath)
		}
	}

	// The same camera's recording of the same minutes, docked at dock-02.
	cam2 := filepath.Join(dock2.dir, "cam-car")
	vid2 := filepath.Join(cam2, "DCIM", "100MEDIA", "VID_0002.MP4")
	if err := os.MkdirAll(filepath.Dir(vid2), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vid2, sidecarfile.MP4(time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC), 15*time.Minute, bytes.Repeat([]byte("other"), 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	dock2.must("ingest", "--camera", "CAR-0001", "--from", cam2)
	rec2 := dock2.findJSON()[0]

	// The dock host's package of the recording, for comparison.
	dockPkg := filepath.Join(t.TempDir(), "dock-pkg")
	dock.must("export", rec.ID, "--reason", "complaint 9", "--out", dockPkg)
	dockFacts := mustRead(t, filepath.Join(dockPkg, "facts.jsonl"))

	pkg := filepath.Join(t.TempDir(), "pkg")
	code, out, errs := run(t, nil, "export", "--config", console.cfg, rec.ID, "--reason", "complaint 9", "--out", pkg)
	if code != 0 || !strings.Contains(errs, "11 plate read(s) / GPS fix(es) in facts.jsonl") {
		t.Fatalf("export at the console: exit %d\n%s%s", code, out, errs)
	}
	keys := filepath.Join(t.TempDir(), "fleet.pem")
	if err := os.WriteFile(keys, bytes.Join([][]byte{mustRead(t, dockPEM), mustRead(t, dock2PEM), mustRead(t, consolePEM)}, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	code, vout, verrs := run(t, nil, "verify-export", pkg, "--keys", keys)
	if code != 0 || !strings.Contains(vout, "11 plate read(s) / GPS fix(es) in facts.jsonl, each found at its stated line of its source file; 3 sidecar file(s) and crop image(s) match") {
		t.Fatalf("verify-export --keys of the console's package: exit %d\n%s%s", code, vout, verrs)
	}
	// Without the footage, each link is still checked by time: the
	// recording's PARSED record, proven in the package, gives its span.
	if strings.Contains(vout+verrs, "checked by camera") {
		t.Errorf("verify-export of the console's package did not check the links by the recording's signed span:\n%s%s", vout, verrs)
	}

	// The same facts as the dock host's package, each naming dock-01.
	facts := mustRead(t, filepath.Join(pkg, "facts.jsonl"))
	if n := strings.Count(string(facts), `"host":"dock-01",`); n != 11 {
		t.Errorf("facts.jsonl: %d of 11 facts name dock-01\n%s", n, facts)
	}
	if got := strings.ReplaceAll(string(facts), `"host":"dock-01",`, ""); got != string(dockFacts) {
		t.Errorf("the console's facts.jsonl is not the dock host's:\nconsole:\n%s\ndock:\n%s", got, dockFacts)
	}
	var info export.FleetInfo
	readJSON(t, filepath.Join(pkg, "fleet.json"), &info)
	if info.Facts != "facts.jsonl" || len(info.Files) != 3 || len(info.Items) != 4 {
		t.Fatalf("fleet.json: facts %q, files %v, %d item(s)", info.Facts, info.Files, len(info.Items))
	}
	for _, it := range []custody.Item{csv, gps, crop} {
		files := mustGlob(t, filepath.Join(pkg, "items", it.ID, "footage.*"))
		if len(files) != 1 || digest.Bytes(mustRead(t, files[0])).Hex() != it.SHA256 {
			t.Errorf("%s: its file in the package %v does not hash to %s", it.SourcePath, files, it.SHA256)
		}
		var trail []export.FleetEntry
		readJSON(t, filepath.Join(pkg, "items", it.ID, "custody.json"), &trail)
		var got []string
		for _, e := range trail {
			got = append(got, e.Host+":"+string(e.Type)+":"+e.Details["action"])
		}
		if g := strings.Join(got, " "); !strings.Contains(g, "dock-01:COPIED:") || !strings.Contains(g, "dock-01:VAULTED:") ||
			!strings.Contains(g, "dock-01:UPLOADED:") || !strings.HasSuffix(g, "hq:ACCESSED:export") {
			t.Errorf("custody.json of %s in the console's package: %s", it.SourcePath, g)
		}
	}
	if files := mustGlob(t, filepath.Join(pkg, "items", rec.ID, "footage.*")); len(files) != 0 {
		t.Errorf("the console's package carries the recording itself: %v", files)
	}
	read := plateReadIn(t, facts)
	if read == nil || read["source"] != csv.ID || read["sha256"] != csv.SHA256 || read["crop_item"] != crop.ID || read["recording"] != rec.ID {
		t.Fatalf("the plate read in the console's facts.jsonl: %v", read)
	}

	fails := func(what, pkg, file string, edit func([]byte) []byte, says ...string) {
		t.Helper()
		d := exportCopy(t, pkg)
		exportEdit(t, filepath.Join(d, file), edit)
		rehashManifest(t, d)
		code, vout, verrs := run(t, nil, "verify-export", d, "--keys", keys)
		for _, s := range says {
			if code != exitIntegrity || !strings.Contains(verrs, s) {
				t.Errorf("%s: verify-export exit %d, want %d saying %q\n%s%s", what, code, exitIntegrity, s, vout, verrs)
			}
		}
	}
	csvFile := read["file"].(string)
	fails("the plate log altered in the package", pkg, csvFile,
		func(b []byte) []byte { return []byte(strings.Replace(string(b), "CA 123-456", "CA 123-457", 1)) },
		"FAILED "+csvFile+": has SHA-256", "FAILED facts.jsonl: line")
	fails("a fact claimed for another host", pkg, "facts.jsonl",
		func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"host":"dock-01"`, `"host":"dock-02"`, 1))
		},
		"FAILED facts.jsonl: line 1: is not what")

	// Both recordings in one package: dock-01's reads and fixes are linked
	// to dock-01's recording only, though dock-02's covers the same
	// minutes of the same camera.
	both := filepath.Join(t.TempDir(), "both")
	if code, out, errs := run(t, nil, "export", "--config", console.cfg, rec.ID, rec2.ID, "--reason", "complaint 9", "--out", both); code != 0 {
		t.Fatalf("export of both recordings at the console: exit %d\n%s%s", code, out, errs)
	}
	bothFacts := mustRead(t, filepath.Join(both, "facts.jsonl"))
	if n := strings.Count(string(bothFacts), `"recording":"`+rec.ID+`"`); n != 11 || strings.Contains(string(bothFacts), rec2.ID) {
		t.Errorf("facts.jsonl of both recordings: %d fact(s) linked to dock-01's, want 11 and none to dock-02's\n%s", n, bothFacts)
	}
	if code, vout, verrs := run(t, nil, "verify-export", both, "--keys", keys); code != 0 {
		t.Fatalf("verify-export --keys of both recordings: exit %d\n%s%s", code, vout, verrs)
	}
	n := 1 + strings.Count(string(bothFacts[:strings.Index(string(bothFacts), `"kind":"plate_read"`)]), "\n")
	fails("a plate read re-linked to dock-02's recording of the same camera", both, "facts.jsonl",
		func(b []byte) []byte {
			lines := strings.SplitAfter(string(b), "\n")
			lines[n-1] = strings.Replace(lines[n-1], `"recording":"`+rec.ID+`"`, `"recording":"`+rec2.ID+`"`, 1)
			return []byte(strings.Join(lines, ""))
		},
		fmt.Sprintf("FAILED facts.jsonl: line %d: links the plate_read at 2026-12-03T19:07:09.12Z of %s (camera CAR-0001 of dock-01) to recording %s (camera CAR-0001 of dock-02): a fact is linked only to a recording of the same camera and dock host",
			n, csv.ID, rec2.ID))
}
