package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
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
// (exit 3) naming the file.
func TestConsoleExportCarriesFactsE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	dock := newFleetHost(t, srv, bucket, "dock-01", "cameras:\n  - {serial: CAR-0001, kind: vehicle, assigned_to: car-17}\n"+sidecarRules)
	dockPEM := dock.publicKey()
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n%s",
		dockPEM, sidecarRules))
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
	if err := os.WriteFile(keys, append(mustRead(t, dockPEM), mustRead(t, consolePEM)...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, vout, verrs := run(t, nil, "verify-export", pkg, "--keys", keys)
	if code != 0 || !strings.Contains(vout, "11 plate read(s) / GPS fix(es) in facts.jsonl, each found at its stated line of its source file; 3 sidecar file(s) and crop image(s) match") {
		t.Fatalf("verify-export --keys of the console's package: exit %d\n%s%s", code, vout, verrs)
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

	fails := func(what, file string, edit func([]byte) []byte, says ...string) {
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
	fails("the plate log altered in the package", csvFile,
		func(b []byte) []byte { return []byte(strings.Replace(string(b), "CA 123-456", "CA 123-457", 1)) },
		"FAILED "+csvFile+": has SHA-256", "FAILED facts.jsonl: line")
	fails("a fact claimed for another host", "facts.jsonl",
		func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"host":"dock-01"`, `"host":"dock-02"`, 1))
		},
		"FAILED facts.jsonl: line 1: is not what")
}
