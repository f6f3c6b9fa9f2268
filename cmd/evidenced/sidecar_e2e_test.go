package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/testutil/sidecarfile"
)

// found is one row of find --json for a search by plate or place.
type found struct {
	custody.Item
	Match *struct {
		Kind   string `json:"kind"`
		Source struct {
			Item       string `json:"item"`
			SourcePath string `json:"source_path"`
			SHA256     string `json:"sha256"`
		} `json:"source"`
		Line  int64 `json:"line"`
		Plate *struct {
			AsRead string `json:"as_read"`
		} `json:"plate"`
		Distance  float64 `json:"distance"`
		Metres    float64 `json:"metres"`
		Recording string  `json:"recording"`
	} `json:"match"`
}

const sidecarRules = `sidecars:
  - {glob: "*.mp4", parser: mp4}
  - {glob: "*.nmea", parser: nmea}
  - {glob: "ANPR/*.csv", parser: anpr-csv, kinds: [vehicle]}
`

// A vehicle camera docks with a recording, its GPS log and its plate-read
// log; the built binary ingests it, records each parse in custody, and
// finds the recording by plate (as written, as typed, with one OCR error)
// and by place, not by a place it never was; a rebuilt index answers the
// same. Hostile lines are counted as rejects and never reach a terminal raw.
func TestSidecarsEndToEnd(t *testing.T) {
	h := dockedCar(t)
	ids := map[string]custody.Item{}
	for _, it := range h.find() {
		ids[it.SourcePath] = it
	}
	rec, csv, gps := ids["DCIM/100MEDIA/VID_0001.MP4"], ids["ANPR/READS.CSV"], ids["GPS/TRACK.NMEA"]
	if rec.ID == "" || csv.ID == "" || gps.ID == "" {
		t.Fatalf("items: %+v", ids)
	}
	parsed := func(it custody.Item) custody.Event {
		for _, ev := range h.custody(it.ID) {
			if ev.Type == custody.Parsed {
				return ev
			}
		}
		t.Fatalf("%s: no PARSED in its custody", it.SourcePath)
		return custody.Event{}
	}
	if ev := parsed(gps); ev.SHA256 != gps.SHA256 || ev.Details["facts"] != "10" || ev.Details["rejects"] != "bad_checksum=1 line_too_long=1 no_sentence=1" {
		t.Errorf("TRACK.NMEA PARSED: %+v", ev)
	}
	if ev := parsed(csv); ev.Details["parser"] != "anpr-csv" || ev.Details["rejects"] != "bad_camera=1 bad_utf8=1" || ev.Details["flags"] != "plate_bad_char=1" {
		t.Errorf("READS.CSV PARSED: %+v", ev)
	}
	if ev := parsed(rec); ev.Details["parser"] != "mp4" || ev.Details["facts"] != "1" {
		t.Errorf("VID_0001.MP4 PARSED: %+v", ev)
	}
	for _, ev := range h.custody(ids["ANPR/crops/a.jpg"].ID) {
		if ev.Type == custody.Parsed || ev.Type == custody.ParseFailed {
			t.Errorf("the crop image was parsed: %+v", ev)
		}
	}

	findJSON := func(args ...string) []found {
		t.Helper()
		return findFound(t, func(args ...string) (int, string, string) { return h.bin(nil, args...) }, args...)
	}
	wantRecording := func(what string, fs []found, from custody.Item) {
		t.Helper()
		wantFoundRecording(t, what, fs, rec, from)
	}
	for _, q := range [][]string{{"--plate", "CA123456"}, {"--plate", "CA 123-456"}, {"--plate", "CA 12E-456", "--fuzzy"}, {"--plate", "CA I23-456", "--fuzzy"}} {
		wantRecording(strings.Join(q, " "), findJSON(q...), csv)
	}
	if fs := findJSON("--plate", "CA 12E-456"); len(fs) != 0 {
		t.Errorf("an OCR error found without --fuzzy: %+v", fs)
	}
	near := []string{"--near", "-33.9249,18.4241", "--radius", "300", "--since", "2026-12-03T18:00:00Z", "--until", "2026-12-03T22:00:00Z"}
	wantRecording("near the corner", findJSON(near...), gps)
	if fs := findJSON("--near", "-33.9700,18.4241", "--radius", "300"); len(fs) != 0 {
		t.Errorf("5 km away: %+v", fs)
	}
	if fs := findJSON("--near", "-33.9249,18.4241", "--radius", "300", "--since", "2026-12-04"); len(fs) != 0 {
		t.Errorf("the next day: %+v", fs)
	}

	// The table names the recording, the fact and the file's hash, and
	// nothing from the logs reaches the terminal unescaped.
	code, out, errs := h.bin(nil, "find", "--plate", "ca.123.456")
	if code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, csv.SHA256) || !strings.Contains(out, `read "CA 123-456"`) {
		t.Errorf("find --plate table: exit %d\n%s\n%s", code, out, errs)
	}
	for _, args := range [][]string{{"custody", csv.ID}, {"custody", gps.ID}, {"find", "--plate", "CA 1", "--fuzzy"}} {
		code, out, errs := h.bin(nil, args...)
		if code != 0 || strings.ContainsAny(out+errs, "\x1b\x07\xff") {
			t.Errorf("%v: exit %d, raw bytes from a log in the output:\n%q", args, code, out+errs)
		}
	}

	// Bad searches are refused as usage errors, naming the flag.
	for want, args := range map[string][]string{
		"--radius":      {"find", "--near", "-33.9,18.4"},
		"--fuzzy needs": {"find", "--fuzzy"},
		"not a plate":   {"find", "--plate", "CA\x1b[2J"},
		"LAT,LON":       {"find", "--near", "north", "--radius", "5"},
	} {
		if code, _, errs := h.bin(nil, args...); code != exitUsage || !strings.Contains(errs, want) || strings.Contains(errs, "\x1b") {
			t.Errorf("%q: exit %d, stderr %q, want %d naming %q", args, code, errs, exitUsage, want)
		}
	}

	// The index is derived data: rebuilt from the vault it answers the same.
	before := findJSON("--plate", "CA 123-456")
	if code, out, errs := h.bin(nil, "reindex"); code != 0 || !strings.Contains(out, "3 sidecar file(s) parsed, 0 failed, 0 parse record(s) new") {
		t.Fatalf("reindex: exit %d\n%s\n%s", code, out, errs)
	}
	after := findJSON("--plate", "CA 123-456")
	if b, _ := json.Marshal(before); string(b) != mustJSON(t, after) {
		t.Errorf("after reindex:\n%s\nbefore:\n%s", mustJSON(t, after), b)
	}
	if n := strings.Count(strings.Join(eventTypes(h.custody(csv.ID)), " "), "PARSED"); n != 1 {
		t.Errorf("%d PARSED records for READS.CSV after reindex, want 1", n)
	}
}

// dockedCar is a dock host with the sidecar rules that has ingested the
// vehicle camera of writeCarCamera with the built binary.
func dockedCar(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, harnessOpts{noStore: true, extra: sidecarRules})
	cam := filepath.Join(h.dir, "cam-car")
	writeCarCamera(t, cam)
	if code, out, errs := h.bin(nil, "ingest", "--camera", "CAR-0001", "--from", cam); code != 0 {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out, errs)
	}
	return h
}

// findFound runs find --json with args through bin (a host's command
// line) and decodes the results.
func findFound(t *testing.T, bin func(args ...string) (int, string, string), args ...string) []found {
	t.Helper()
	code, out, errs := bin(append([]string{"find", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("find %v: exit %d\n%s%s", args, code, out, errs)
	}
	var fs []found
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("find %v: %v\n%s", args, err, out)
	}
	return fs
}

// wantFoundRecording: fs is the recording rec alone (as its host serves
// it), matched through a fact of the file from.
func wantFoundRecording(t *testing.T, what string, fs []found, rec, from custody.Item) {
	t.Helper()
	if len(fs) != 1 || fs[0].ID != rec.ID || fs[0].Host != rec.Host || fs[0].SHA256 != rec.SHA256 || fs[0].Match == nil ||
		fs[0].Match.Recording != rec.ID || fs[0].Match.Source.Item != from.ID || fs[0].Match.Source.SHA256 != from.SHA256 ||
		fs[0].Match.Source.SourcePath != from.SourcePath {
		t.Errorf("%s: %+v, want %s's recording %s through %s", what, fs, rec.Host, rec.ID, from.SourcePath)
	}
}

// writeCarCamera writes a vehicle camera's folder: a 15-minute recording
// from 19:00 UTC on 2026-12-03, its GPS log (ten fixes a minute apart from
// -33.9249,18.4241, then a bad checksum, a huge line and raw bytes with a
// terminal escape), its ANPR log (CA 123-456 read at 19:07:09, then hostile
// lines) and a crop image.
func writeCarCamera(t *testing.T, cam string) {
	t.Helper()
	start := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	var track bytes.Buffer
	for i := range 10 {
		track.WriteString(sidecarfile.RMC(start.Add(time.Duration(i)*time.Minute), -33.9249+float64(i)*0.0002, 18.4241) + "\r\n")
	}
	bad := sidecarfile.RMC(start.Add(11*time.Minute), -33.9, 18.4)
	track.WriteString(bad[:len(bad)-2] + "00\r\n$GPRMC," + strings.Repeat("7", 10000) + "\r\n\xff\xfe\x1b[2J\r\n")
	files := map[string][]byte{
		"DCIM/100MEDIA/VID_0001.MP4": sidecarfile.MP4(start, 15*time.Minute, bytes.Repeat([]byte("frame"), 2000)),
		"GPS/TRACK.NMEA":             track.Bytes(),
		"ANPR/READS.CSV": []byte("time,plate,confidence,region,lat,lon,heading,camera,crop\n" +
			"2026-12-03T21:07:09.120+02:00,CA 123-456,0.93,ZA-WC,-33.9249,18.4241,90,VEH-017,crops/a.jpg\n" +
			"2026-12-03T19:08:00Z,\"\x1b]0;owned\x07CA 1\",0.50,ZA-WC,,,,VEH-017,\n" +
			"2026-12-03T19:09:00Z,CA\xc0 1,0.50,ZA-WC,,,,VEH-017,\n" +
			"2026-12-03T19:09:30Z,CA 777-777,0.50,ZA-WC,,,,\x1b[31mVEH,\n"),
		"ANPR/crops/a.jpg": []byte("\xff\xd8\xff\xe0 crop"),
	}
	for rel, data := range files {
		p := filepath.Join(cam, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The daemon parses what a dock vaulted in its own loop, and after a start
// without the index (deleted: it is derived data) and without the camera
// catches up from the vault, recording no parse twice.
func TestSidecarsDaemonParsesAndCatchesUp(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true, extra: sidecarRules})
	stop, logs := h.daemon(t)
	staging := filepath.Join(h.dir, "staging", "CAR-0001")
	writeCarCamera(t, staging)
	if err := os.Rename(staging, filepath.Join(h.media, "CAR-0001")); err != nil {
		t.Fatal(err)
	}
	nearArgs := []string{"find", "--json", "--near", "-33.9249,18.4241", "--radius", "300"}
	recording := func() string {
		code, out, _ := h.cli(nearArgs...)
		var fs []found
		if code != 0 || json.Unmarshal([]byte(out), &fs) != nil || len(fs) != 1 || fs[0].Match == nil {
			return ""
		}
		return fs[0].Match.Recording
	}
	waitFor(t, "the docked recording found near the corner", time.Minute, func() bool { return recording() != "" })
	rec := recording()
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	// The camera left; only the vault holds its files now.
	if err := os.Rename(filepath.Join(h.media, "CAR-0001"), staging); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(h.state, "facts.db")); err != nil {
		t.Fatal(err)
	}
	h.daemon(t)
	waitFor(t, "the index caught up after a start without it", time.Minute, func() bool { return recording() == rec })
	for _, it := range h.find("--camera", "CAR-0001") {
		want := 1
		if it.SourcePath == "ANPR/crops/a.jpg" {
			want = 0
		}
		if n := strings.Count(strings.Join(eventTypes(h.custody(it.ID)), " "), "PARSED"); n != want {
			t.Errorf("%s: %d PARSED records, want %d", it.SourcePath, n, want)
		}
	}
}

// The recording found by plate is exported on the dock host; the package
// carries the read (its line of the ANPR log, the log's hash), the crop
// image and the log itself with their custody, and the standalone verifier,
// trusting the host key obtained from the host, passes it. A read edited in
// the package, a read added, and a crop replaced each fail with exit 3
// naming the file, even with the manifest recomputed.
func TestSidecarExportCarriesTheRead(t *testing.T) {
	h := dockedCar(t)
	fs := findFound(t, func(args ...string) (int, string, string) { return h.bin(nil, args...) }, "--plate", "CA 123-456")
	if len(fs) != 1 || fs[0].Match == nil {
		t.Fatalf("find --plate: %+v", fs)
	}
	rec := fs[0].Item
	ids := map[string]custody.Item{}
	for _, it := range h.find() {
		ids[it.SourcePath] = it
	}
	csv, crop, gps := ids["ANPR/READS.CSV"], ids["ANPR/crops/a.jpg"], ids["GPS/TRACK.NMEA"]
	key := filepath.Join(h.dir, "host.pem")
	if err := os.WriteFile(key, []byte(h.mustCLI("key", "--public")), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(h.dir, "pkg")
	code, _, errs := h.bin(nil, "export", rec.ID, "--reason", "complaint 2026/77", "--out", out)
	if code != 0 || !strings.Contains(errs, "plate read(s) / GPS fix(es) in facts.jsonl") {
		t.Fatalf("export: exit %d\n%s", code, errs)
	}
	code, vout, verrs := verifyExport(t, out, "--key", key)
	if code != 0 || !strings.Contains(vout, "11 plate read(s) / GPS fix(es) in facts.jsonl") {
		t.Fatalf("verify-export: exit %d\n%s%s", code, vout, verrs)
	}
	facts, err := os.ReadFile(filepath.Join(out, "facts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	read := plateReadIn(t, facts)
	if read == nil || read["plate"] != "CA123456" || read["line"] != 2.0 || read["source"] != csv.ID || read["sha256"] != csv.SHA256 ||
		read["recording"] != rec.ID || read["crop_item"] != crop.ID {
		t.Fatalf("the plate read in facts.jsonl: %v\n%s", read, facts)
	}
	for _, it := range []custody.Item{csv, crop, gps} {
		b, err := os.ReadFile(filepath.Join(out, "items", it.ID, "item.json"))
		if err != nil || !strings.Contains(string(b), it.SHA256) {
			t.Errorf("%s: no item.json in the package: %v", it.SourcePath, err)
		}
		if files := mustGlob(t, filepath.Join(out, "items", it.ID, "footage.*")); len(files) != 1 || digest.Bytes(mustRead(t, files[0])).Hex() != it.SHA256 {
			t.Errorf("%s: its file in the package %v does not hash to %s", it.SourcePath, files, it.SHA256)
		}
		cj := mustRead(t, filepath.Join(out, "items", it.ID, "custody.json"))
		for _, ty := range []string{`"type": "COPIED"`, `"type": "VAULTED"`, `"action": "export"`} {
			if !strings.Contains(string(cj), ty) {
				t.Errorf("%s: custody.json lacks %s", it.SourcePath, ty)
			}
		}
	}
	if rep := mustRead(t, filepath.Join(out, "report.html")); !strings.Contains(string(rep), "plate CA123456 read as “CA 123-456”") {
		t.Errorf("report.html does not show the read")
	}

	for name, c := range map[string]struct {
		file, old, new, want string
	}{
		"read edited":   {"facts.jsonl", `"as_read":"CA 123-456"`, `"as_read":"CA 123-457"`, "FAILED facts.jsonl: line"},
		"read added":    {"facts.jsonl", "", "", "has no plate_read at offset"},
		"crop replaced": {read["crop_file"].(string), "crop", "fake", "FAILED " + read["crop_file"].(string) + ": has SHA-256"},
	} {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "pkg")
			if err := os.CopyFS(d, os.DirFS(out)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, c.file)
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			b := mustRead(t, p)
			var nb []byte
			if c.old == "" {
				var readLine string
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, `"kind":"plate_read"`) {
						readLine = l
					}
				}
				nb = append(b, strings.Replace(strings.Replace(readLine, `"line":2`, `"line":3`, 1), `"offset":`, `"offset":9`, 1)+"\n"...)
			} else {
				nb = []byte(strings.Replace(string(b), c.old, c.new, 1))
			}
			if string(nb) == string(b) {
				t.Fatalf("the edit of %s changed nothing", c.file)
			}
			if err := os.WriteFile(p, nb, 0o644); err != nil {
				t.Fatal(err)
			}
			rehashManifest(t, d)
			code, vout, verrs := verifyExport(t, d, "--key", key)
			if code != exitIntegrity || !strings.Contains(verrs, c.want) {
				t.Errorf("exit %d, want %d naming %q\n%s%s", code, exitIntegrity, c.want, vout, verrs)
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plateReadIn is the (last) plate read of a package's facts.jsonl, each
// line decoded as JSON; nil when there is none.
func plateReadIn(t *testing.T, facts []byte) map[string]any {
	t.Helper()
	var read map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(facts)), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("facts.jsonl: %v\n%s", err, l)
		}
		if f["kind"] == "plate_read" {
			read = f
		}
	}
	return read
}
