package export

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
)

// documentsGolden is, per documents version, the SHA-256 of VERIFY.md and
// report.html rendered from goldenPackage. Append a line when you bump
// documentsVersion; never edit an existing one: a version names one text,
// and the packages already exported with it are compared against it.
//
// verifyNoFootage is VERIFY.md rendered from goldenNoFootage (a package
// without the recordings, whose step 7 differs); "" for a version whose
// no-footage text was not recorded.
var documentsGolden = map[uint]struct{ verify, verifyNoFootage, report string }{
	1: {
		verify: "21a23ea4521ea6e8470b32f8c5c56614fd76ae0246399007ba6455a03040ae23",
		report: "9e8348bd17f0bf44582c67579b3ff1a07079a97039a58331fa8dd99240b8f41a",
	},
	2: {
		verify:          "49cbddf0d8f38b726a513d14063130b0f2e06e40d9aafc014d0d5958cca75a67",
		verifyNoFootage: "6e33d5149390d012ce3287e43b1ca1409b4b1eaab1b3250f8c49bbd7fe3fa327",
		report:          "9e8348bd17f0bf44582c67579b3ff1a07079a97039a58331fa8dd99240b8f41a",
	},
	3: {
		verify:          "49cbddf0d8f38b726a513d14063130b0f2e06e40d9aafc014d0d5958cca75a67",
		verifyNoFootage: "ca283479362082b874841b4cc33523259cfe24c67d97ad5c023f6c3d8efd081f",
		report:          "9e8348bd17f0bf44582c67579b3ff1a07079a97039a58331fa8dd99240b8f41a",
	},
}

// goldenPackage is a fixed, deterministic package's data that reaches most
// of the documents' branches: two signing keys (a rotation), an anchored,
// time-stamped checkpoint, footage, a recording's whole custody from
// DOCKED to ACCESSED, a carried sidecar file and its plate read and GPS fix.
func goldenPackage() (*Info, []*itemData, map[uint64]bool, []Fact) {
	h := func(s string) string { return digest.Bytes([]byte(s)).Hex() }
	at := time.Date(2026, 11, 30, 7, 21, 37, 0, time.UTC)
	tsAt := at.Add(2 * time.Hour)
	info := &Info{
		Format: Format, Tool: "evidenced golden", Documents: documentsVersion, Host: "dock-01",
		ExportedAt: at.Add(3 * time.Hour), ExportedBy: "custodian-1", Reason: "case 2026/113 <court> & co",
		Items: []string{h("rec")[:24], h("nmea")[:24]}, Footage: true,
		Files: []string{h("nmea")[:24]}, Facts: factsName,
		Checkpoint: checkpointPath(12, true), Signed: true, TreeSize: 12, Root: h("root"),
		Keys: []KeyRef{{KeyID: h("k1"), FromSeq: 1, File: keyPath(h("k1"))}, {KeyID: h("k2"), FromSeq: 5, File: keyPath(h("k2"))}},
		Anchored: &AnchoredRef{
			Object: "_custody/dock-01/checkpoints/10.note", Checkpoint: anchoredPath(10), TreeSize: 10, Root: h("root10"),
			Consistency: consistencyPath(12), Timestamp: timestampPath(10), TimestampTime: &tsAt, TSACA: tsaCAPath,
		},
	}
	rec := custody.Item{
		ID: info.Items[0], Camera: "BWC-0001", Kind: "body", AssignedTo: "officer-4711", SourcePath: "DCIM/100MEDIA/VID_0001.MP4",
		Size: 1993509, SHA256: h("rec footage"), RecordedAt: at.Add(-9 * time.Hour), IngestedAt: at.Add(time.Second),
		State: custody.StateVerified, VaultPath: "/var/lib/evidenced/vault/items/ab/" + info.Items[0], ObjectKey: "dock-01/" + info.Items[0],
		VersionID: "v-1", RetentionClass: "evidential", RetainUntil: at.AddDate(7, 0, 0), Host: "dock-01", DockSeq: 2,
	}
	nmea := custody.Item{
		ID: info.Items[1], Camera: "BWC-0001", Kind: "gps", AssignedTo: "officer-4711", SourcePath: "DCIM/100MEDIA/VID_0001.NMEA",
		Size: 4321, SHA256: h("nmea bytes"), RecordedAt: at.Add(-9 * time.Hour), IngestedAt: at.Add(2 * time.Second),
		State: custody.StateVaulted, RetentionClass: "uncategorized", Host: "dock-01", DockSeq: 2,
	}
	ev := func(seq uint64, typ custody.EventType, it *custody.Item, actor string, d map[string]string) custody.Event {
		e := custody.Event{Seq: seq, Type: typ, At: at.Add(time.Duration(seq) * time.Second), Host: "dock-01", Actor: actor,
			Camera: "BWC-0001", Details: d, Hash: h(fmt.Sprint("hash", seq)), PrevHash: h(fmt.Sprint("hash", seq-1))}
		if it != nil {
			e.Item, e.SHA256, e.ItemHash = it.ID, it.SHA256, h(fmt.Sprint("item", seq))
		}
		return e
	}
	docked := ev(2, custody.Docked, nil, "evidenced@dock-01", map[string]string{
		"assigned_to": "officer-4711", "host_time": at.Add(2 * time.Second).Format(time.RFC3339Nano), "clock_synced": "true",
		"clock_max_error": "16ms", "clock_est_error": "1ms", "clock_method": "adjtimex", "camera_clock": "not exposed", "via": "watch",
	})
	items := []*itemData{
		{item: rec, itemBytes: []byte("{}"), events: []custody.Event{
			docked,
			ev(3, custody.Copied, &rec, "evidenced@dock-01", map[string]string{"source_path": rec.SourcePath, "size": "1993509", "dock_seq": "2"}),
			ev(4, custody.Vaulted, &rec, "evidenced@dock-01", map[string]string{"read_back": "cold"}),
			ev(7, custody.Uploaded, &rec, "evidenced@dock-01", map[string]string{"key": rec.ObjectKey, "version_id": "v-1",
				"lock_mode": "COMPLIANCE", "retain_until": rec.RetainUntil.Format(time.RFC3339Nano)}),
			ev(8, custody.Verified, &rec, "evidenced@dock-01", map[string]string{"key": rec.ObjectKey, "version_id": "v-1", "method": "GetObject"}),
			ev(9, custody.EventType("HELD"), &rec, "custodian-1", map[string]string{"case": "2026/113", "note": "a & b"}),
			ev(11, custody.Accessed, &rec, "custodian-1", map[string]string{"action": "export", "reason": info.Reason}),
		}},
		{item: nmea, itemBytes: []byte("{}"), events: []custody.Event{
			docked,
			ev(5, custody.Copied, &nmea, "evidenced@dock-01", map[string]string{"source_path": nmea.SourcePath, "size": "4321", "dock_seq": "2"}),
			ev(6, custody.Vaulted, &nmea, "evidenced@dock-01", map[string]string{"read_back": "cold"}),
			ev(12, custody.Accessed, &nmea, "custodian-1", map[string]string{"action": "export", "reason": info.Reason}),
		}},
	}
	sigs := map[uint64]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true, 11: true, 12: true}
	file := footagePath(nmea)
	facts := []Fact{
		{Kind: FactGPSFix, Recording: rec.ID, Source: nmea.ID, SHA256: nmea.SHA256, Parser: "nmea", File: file, Offset: 0, Line: 1,
			Time: at.Add(-9 * time.Hour).Format(time.RFC3339Nano), HasPos: true, Lat: -33.918861, Lon: 18.4233, Heading: 90},
		{Kind: FactPlateRead, Recording: rec.ID, Source: nmea.ID, SHA256: nmea.SHA256, Parser: "nmea", File: file, Offset: 71, Line: 2,
			Time: at.Add(-9*time.Hour + time.Second).Format(time.RFC3339Nano), Plate: "CA123456", AsRead: "CA 123-456", Confidence: 0.93,
			Region: "WC", HasPos: true, Lat: -33.9189, Lon: 18.4234, ANPRCamera: "front", Crop: "crops/0001.jpg"},
	}
	return info, items, sigs, facts
}

// goldenNoFootage is goldenPackage exported without the recordings (as
// every console package is): step 7 checks the facts' times against the
// span the recording's signed PARSED record gives, so the recording has
// one.
func goldenNoFootage() (*Info, []*itemData, map[uint64]bool, []Fact) {
	info, items, sigs, facts := goldenPackage()
	info.Footage = false
	rec := &items[0].item
	at := time.Date(2026, 11, 30, 7, 21, 37, 0, time.UTC)
	parsed := custody.Event{Seq: 10, Type: custody.Parsed, At: at.Add(10 * time.Second), Host: "dock-01", Actor: "evidenced@dock-01",
		Camera: "BWC-0001", Item: rec.ID, SHA256: rec.SHA256, Details: map[string]string{"kind": "mp4", "parser": "mp4", "parser_version": "1",
			"span_from": "2026-11-29T22:21:37Z", "span_to": "2026-11-29T22:31:37.5Z"},
		Hash: digest.Bytes([]byte("hash10")).Hex(), PrevHash: digest.Bytes([]byte("hash9")).Hex(), ItemHash: digest.Bytes([]byte("item10")).Hex()}
	evs := items[0].events
	i := slices.IndexFunc(evs, func(e custody.Event) bool { return e.Seq > parsed.Seq })
	items[0].events = slices.Insert(evs, i, parsed)
	sigs[parsed.Seq] = true
	return info, items, sigs, facts
}

// TestDocumentsVersionGolden fails when what renderVerify or renderReport
// writes for a fixed package changes without documentsVersion being
// bumped: Verify compares the documents of packages that say the same
// version byte for byte, so an unversioned change of wording would fail
// every genuine package already exported with it.
func TestDocumentsVersionGolden(t *testing.T) {
	sum := func(pkg func() (*Info, []*itemData, map[uint64]bool, []Fact), render func(*Info, []*itemData, map[uint64]bool, []Fact) ([]byte, error)) string {
		t.Helper()
		info, items, sigs, facts := pkg()
		a, err := render(info, items, sigs, facts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := render(info, items, sigs, facts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("rendering the same package twice gave different bytes")
		}
		return digest.Bytes(a).Hex()
	}
	verify, noFootage, report := sum(goldenPackage, renderVerify), sum(goldenNoFootage, renderVerify), sum(goldenPackage, renderReport)
	g, ok := documentsGolden[documentsVersion]
	if !ok {
		t.Fatalf("documentsVersion is %d but documentsGolden has no line for it: add %d: {verify: %q, verifyNoFootage: %q, report: %q}",
			documentsVersion, documentsVersion, verify, noFootage, report)
	}
	if verify != g.verify || noFootage != g.verifyNoFootage || report != g.report {
		t.Errorf("the rendered documents changed (VERIFY.md %s, without footage %s, report.html %s), but documentsVersion is still %d, "+
			"whose text is VERIFY.md %s, without footage %s, report.html %s: "+
			"bump documentsVersion to %d and add its line to documentsGolden (never edit an existing line)",
			verify, noFootage, report, documentsVersion, g.verify, g.verifyNoFootage, g.report, documentsVersion+1)
	}
	for v, o := range documentsGolden {
		if v > documentsVersion {
			t.Errorf("documentsGolden has version %d, beyond documentsVersion %d", v, documentsVersion)
		}
		if v != documentsVersion && o == g {
			t.Errorf("documents versions %d and %d render the same text: a bump without a change", v, documentsVersion)
		}
	}
}

// setDocuments rewrites package.json's documents version (0: the field
// removed, as in packages exported before it existed).
func setDocuments(t *testing.T, dir string, n uint) {
	t.Helper()
	editFile(t, filepath.Join(dir, infoName), func(b []byte) []byte {
		cur := fmt.Sprintf("  \"documents\": %d,\n", documentsVersion)
		if !bytes.Contains(b, []byte(cur)) {
			t.Fatalf("package.json does not say %q", cur)
		}
		repl := ""
		if n != 0 {
			repl = fmt.Sprintf("  \"documents\": %d,\n", n)
		}
		return bytes.Replace(b, []byte(cur), []byte(repl), 1)
	})
}

func hasProblem(r *Result, file string) bool {
	for _, p := range r.Problems {
		if p.File == file {
			return true
		}
	}
	return false
}

// TestDocumentsOfAnotherVersion: a genuine package whose report.html and
// VERIFY.md another release wrote verifies, saying they were not
// compared; everything that proves custody is still checked, and a
// package of this version is still compared byte for byte.
func TestDocumentsOfAnotherVersion(t *testing.T) {
	f := newFixture(t, signed)
	clean := filepath.Join(t.TempDir(), "pkg")
	f.build(t, clean, true)
	if r := mustVerify(t, clean); !r.OK() || len(r.Notices) != 0 {
		t.Fatalf("fresh package: problems %v, notices %v", r.Problems, r.Notices)
	}
	b, err := os.ReadFile(filepath.Join(clean, infoName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(fmt.Sprintf("\"documents\": %d,", documentsVersion))) {
		t.Fatalf("Build does not stamp documents version %d into package.json:\n%s", documentsVersion, b)
	}
	// What an earlier release's VERIFY.md and report would differ by.
	oldText := func(t *testing.T, dir string) {
		editFile(t, filepath.Join(dir, verifyName), replace("# How to verify this package", "# How to verify this package (older wording)"))
		editFile(t, filepath.Join(dir, reportName), replace("officer-4711", "officer 4711"))
	}
	for _, c := range []struct {
		name    string
		version uint
		notice  string
	}{
		{"earlier release", 0, fmt.Sprintf("report.html and VERIFY.md were written by documents version 0, this evidenced writes %d: not compared; "+
			"the records, proofs, signatures and files were checked", documentsVersion)},
		{"later release", documentsVersion + 1, fmt.Sprintf("report.html and VERIFY.md were written by documents version %d, newer than this evidenced knows (it writes %d): "+
			"not compared; verify with a newer evidenced to compare them", documentsVersion+1, documentsVersion)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, clean)
			setDocuments(t, dir, c.version)
			oldText(t, dir)
			rehash(t, dir)
			r := mustVerify(t, dir)
			if !r.OK() {
				t.Fatalf("genuine package with documents version %d fails: %v", c.version, r.Problems)
			}
			if len(r.Notices) != 1 || !strings.HasPrefix(r.Notices[0], c.notice) {
				t.Fatalf("notices %q, want one starting %q", r.Notices, c.notice)
			}
			if r.Records != 7 || r.Signatures != 7 || r.Proofs != 7 || r.Footage != 2 {
				t.Errorf("not everything was checked: %+v", r)
			}
			// The custody evidence is checked all the same.
			bad := copyDir(t, dir)
			editFile(t, filepath.Join(bad, "records/3.json"), replace(`"actor":"evidenced@dock-01"`, `"actor":"evidenced@dock-02"`))
			rehash(t, bad)
			if r := mustVerify(t, bad); r.OK() || !hasProblem(r, "records/3.json") {
				t.Errorf("edited record in a documents version %d package: %v", c.version, r.Problems)
			}
			// The documents must still be there.
			gone := copyDir(t, dir)
			os.Remove(filepath.Join(gone, verifyName))
			rehash(t, gone)
			if r := mustVerify(t, gone); r.OK() || !hasProblem(r, verifyName) {
				t.Errorf("VERIFY.md removed from a documents version %d package: %v", c.version, r.Problems)
			}
		})
	}
	t.Run("this release", func(t *testing.T) {
		dir := copyDir(t, clean)
		oldText(t, dir)
		rehash(t, dir)
		r := mustVerify(t, dir)
		for _, name := range []string{verifyName, reportName} {
			if r.OK() || !hasProblem(r, name) {
				t.Errorf("edited %s in a documents version %d package: %v", name, documentsVersion, r.Problems)
			}
		}
	})
}
