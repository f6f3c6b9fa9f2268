package export

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/verifymd"
)

const host = "dock-01"

// fixture is a real ledger on disk holding one dock session of two files,
// with their footage.
type fixture struct {
	l       *custody.Ledger
	ids     []string
	footage map[string][]byte
}

type memFootage map[string][]byte

func (m memFootage) Open(_ context.Context, it custody.Item) (io.ReadCloser, string, error) {
	b, ok := m[it.ID]
	if !ok {
		return nil, "", os.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), "memory", nil
}

// Fixture modes: how the ledger is signed.
const (
	unsigned = "unsigned" // no host key ever
	signed   = "signed"   // a host key from record 1
	mixed    = "mixed"    // a ledger from before signing: the dock unsigned, the accesses signed after HOST_KEY
	rotated  = "rotated"  // signed, and the key rotated before the accesses
)

// hostKeys are the public keys of every host key the fixtures made: what a
// verifier obtains out of band in these tests. A forger's key is made with
// signing.Generate directly, never here.
var hostKeys struct {
	sync.Mutex
	pubs []ed25519.PublicKey
}

func newKey(t testing.TB) *signing.Key {
	t.Helper()
	k, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys.Lock()
	hostKeys.pubs = append(hostKeys.pubs, k.Public())
	hostKeys.Unlock()
	return k
}

// hostTrust trusts the fixtures' host keys (and, for the unsigned
// fixtures, unsigned packages).
func hostTrust() Trust {
	hostKeys.Lock()
	defer hostKeys.Unlock()
	return Trust{Keys: slices.Clone(hostKeys.pubs), AllowUnsigned: true}
}

func newFixture(t testing.TB, mode string) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	o := custody.Options{Host: host, Timeout: 5 * time.Second}
	if mode == signed || mode == rotated {
		o.Signer = newKey(t)
	}
	l, err := custody.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	f := &fixture{l: l, footage: map[string][]byte{}}
	at := time.Date(2026, 11, 30, 7, 21, 37, 0, time.UTC)
	dock, err := l.Append(ctx, custody.Event{
		Type: custody.Docked, Actor: "evidenced@" + host, Camera: "BWC-0001", At: at,
		Details: map[string]string{
			"assigned_to": "officer-4711", "host_time": at.Format(time.RFC3339Nano), "clock_synced": "true",
			"clock_max_error": "16ms", "clock_est_error": "1ms", "clock_method": "adjtimex", "camera_clock": "not exposed", "via": "watch",
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{"DCIM/100MEDIA/VID_0001.MP4", "DCIM/100MEDIA/VID_0001.NMEA"} {
		b := make([]byte, 1000+i*777)
		rand.Read(b)
		sum := digest.Bytes(b).Hex()
		id := sum[:24]
		at = at.Add(time.Second)
		d := map[string]string{"source_path": src, "size": itoa(len(b)), "dock_seq": itoa(int(dock.Seq))}
		if _, err := l.Append(ctx, custody.Event{Type: custody.Copied, Actor: "evidenced@" + host, Camera: "BWC-0001", Item: id, SHA256: sum, At: at, Details: d}, nil); err != nil {
			t.Fatal(err)
		}
		it := custody.Item{
			ID: id, Camera: "BWC-0001", Kind: "body", AssignedTo: "officer-4711", SourcePath: src, Size: int64(len(b)), SHA256: sum,
			RecordedAt: time.Date(2026, 11, 29, 22, 0, i, 0, time.UTC), IngestedAt: at, State: custody.StateVaulted,
			VaultPath: "/var/lib/evidenced/vault/items/" + id[:2] + "/" + id, RetentionClass: "uncategorized", DockSeq: dock.Seq,
		}
		if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "evidenced@" + host, Camera: "BWC-0001", At: at, Details: map[string]string{"read_back": "cold"}}, &it); err != nil {
			t.Fatal(err)
		}
		f.ids = append(f.ids, id)
		f.footage[id] = b
	}
	switch mode {
	case mixed:
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		o.Signer = newKey(t)
		if l, err = custody.Open(path, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		f.l = l
	case rotated:
		if _, err := l.RotateKey(ctx, newKey(t)); err != nil {
			t.Fatal(err)
		}
	}
	// The export's own access records, as the CLI writes them.
	for _, id := range f.ids {
		it, _ := l.Item(ctx, id)
		if _, err := l.Append(ctx, custody.Event{Type: custody.Accessed, Actor: "custodian-1", Item: id, Camera: it.Camera, SHA256: it.SHA256,
			Details: map[string]string{"action": "export", "reason": "case 2026/113 <court> & co"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func itoa(n int) string { return strconv.Itoa(n) }

func (f *fixture) build(t testing.TB, dir string, footage bool) Summary {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Build(context.Background(), f.l, memFootage(f.footage), NewDirSink(dir), Options{
		IDs: f.ids, Footage: footage, ExportedBy: "custodian-1", Reason: "case 2026/113 <court> & co", Tool: "evidenced test",
		Now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerify(t testing.TB, dir string) *Result {
	t.Helper()
	return mustVerifyWith(t, dir, hostTrust())
}

func mustVerifyWith(t testing.TB, dir string, trust Trust) *Result {
	t.Helper()
	r, err := Verify(context.Background(), dir, trust)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildVerifySigned(t *testing.T) {
	f := newFixture(t, signed)
	dir := filepath.Join(t.TempDir(), "pkg")
	s := f.build(t, dir, true)
	// HOST_KEY + DOCKED + 2x(COPIED, VAULTED) + 2 ACCESSED = 8 records; the
	// package holds all but HOST_KEY (no item's custody names it).
	if s.Records != 7 || s.Signatures != 7 || !s.CheckpointSigned || s.TreeSize != 8 || s.FootageBytes != 1000+1777 {
		t.Errorf("summary %+v", s)
	}
	r := mustVerify(t, dir)
	if !r.OK() {
		t.Fatalf("fresh package has problems: %v", r.Problems)
	}
	if r.Records != 7 || r.Signatures != 7 || r.Proofs != 7 || r.Items != 2 || r.Footage != 2 || len(r.Notices) != 0 || len(r.ManifestSHA256) != 64 {
		t.Errorf("result %+v", r)
	}
	rep, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	for _, want := range []string{
		"On 2026-11-30 07:21:38 UTC at host dock-01, evidenced copied DCIM/100MEDIA/VID_0001.MP4 (1,000 bytes, SHA-256 " + f.ids[0][:8] + "…) off camera BWC-0001 issued to officer-4711",
		"NTP-synchronised: yes, maximum error 16ms, as reported by adjtimex",
		"@media print", "Certified to be correct", "section 15(4)", "case 2026/113 &lt;court&gt; &amp; co",
	} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*"?(https?:)?//`).Match(rep) {
		t.Error("report.html refers to an external resource")
	}
}

func TestTarRoundTripAndRefusals(t *testing.T) {
	f := newFixture(t, signed)
	var buf bytes.Buffer
	ts := NewTarSink(&buf, time.Now())
	if _, err := Build(context.Background(), f.l, memFootage(f.footage), ts, Options{IDs: f.ids, Footage: true, ExportedBy: "x", Reason: "y"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Extract(bytes.NewReader(buf.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	if r := mustVerify(t, dir); !r.OK() {
		t.Fatalf("extracted package has problems: %v", r.Problems)
	}
	// Extracting over existing files is refused (O_EXCL), never overwrites.
	if err := Extract(bytes.NewReader(buf.Bytes()), dir); err == nil {
		t.Error("second extract into the same directory succeeded")
	}
	for _, bad := range []string{"../evil", "/abs", "a/../b", ""} {
		if err := checkName(bad); !errors.Is(err, ErrLayout) {
			t.Errorf("checkName(%q) = %v", bad, err)
		}
	}
}

func TestBuildRefusesWrongFootage(t *testing.T) {
	f := newFixture(t, signed)
	bad := memFootage{}
	for id, b := range f.footage {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 1
		bad[id] = c
	}
	_, err := Build(context.Background(), f.l, bad, NewDirSink(t.TempDir()), Options{IDs: f.ids, Footage: true, ExportedBy: "x", Reason: "y"})
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("footage with a flipped bit: %v, want ErrIntegrity", err)
	}
	_, err = Build(context.Background(), f.l, nil, NewDirSink(t.TempDir()), Options{IDs: []string{"nope"}, ExportedBy: "x", Reason: "y"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown item: %v, want ErrNotFound", err)
	}
}

func TestSigningModes(t *testing.T) {
	cases := []struct {
		mode            string
		recs, sigs      int
		keys            int
		size            uint64
		checkpointFile  string
		checkpointNotes int
	}{
		{unsigned, 7, 0, 0, 7, "checkpoints/7.txt", 1},
		// HOST_KEY (record 6) is not in any item's custody; the two
		// ACCESSED records after it are signed.
		{mixed, 7, 2, 1, 8, "checkpoints/8.note", 0},
		// HOST_KEY 1 ... KEY_ROTATED 7 (signed by the first key, in the
		// package so the second key can be accepted), ACCESSED 8 and 9 by
		// the second.
		{rotated, 8, 8, 2, 9, "checkpoints/9.note", 0},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			f := newFixture(t, c.mode)
			dir := filepath.Join(t.TempDir(), "pkg")
			s := f.build(t, dir, false)
			if s.Signatures != c.sigs || s.Records != c.recs || s.TreeSize != c.size {
				t.Errorf("summary %+v", s)
			}
			r := mustVerify(t, dir)
			if !r.OK() || r.Proofs != c.recs || r.Signatures != c.sigs || len(r.Notices) != c.checkpointNotes || len(r.Info.Keys) != c.keys {
				t.Fatalf("problems %v notices %v result %+v", r.Problems, r.Notices, r)
			}
			if r.Info.Checkpoint != c.checkpointFile {
				t.Errorf("checkpoint %s, want %s", r.Info.Checkpoint, c.checkpointFile)
			}
			if c.sigs == 0 {
				return
			}
			// A signed record's signature removed (manifest recomputed) is
			// named; so is a signature on a record before the first key.
			last := r.Info.Keys[len(r.Info.Keys)-1]
			seq := strconv.FormatUint(last.FromSeq+1, 10)
			d := copyDir(t, dir)
			os.Remove(filepath.Join(d, "records", seq+".sig"))
			rehash(t, d)
			if r := mustVerify(t, d); r.OK() || r.Problems[0].File != "records/"+seq+".sig" || !strings.Contains(r.Problems[0].Msg, "missing") {
				t.Errorf("removed signature: %v", r.Problems)
			}
			if c.mode == mixed {
				d := copyDir(t, dir)
				os.WriteFile(filepath.Join(d, "records", "1.sig"), make([]byte, 64), 0o644)
				rehash(t, d)
				if r := mustVerify(t, d); r.OK() || r.Problems[0].File != "records/1.sig" {
					t.Errorf("signature on an unsigned record: %v", r.Problems)
				}
			}
		})
	}
}

// copyDir copies a package for one tampering.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "pkg")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func editFile(t *testing.T, p string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	nb := fn(b)
	if bytes.Equal(nb, b) {
		t.Fatalf("edit of %s changed nothing", p)
	}
	if err := os.WriteFile(p, nb, 0o644); err != nil {
		t.Fatal(err)
	}
}

func replace(old, new string) func([]byte) []byte {
	return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
}

// rehash rewrites MANIFEST.sha256 to match the files: the tamperer who
// knows the format. Everything but the manifest check must still catch it.
func rehash(t *testing.T, dir string) {
	t.Helper()
	m := &manifest{sink: discard{}, sums: map[string]string{}}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() || rel == manifestName {
			return nil
		}
		b, _ := os.ReadFile(p)
		m.sums[filepath.ToSlash(rel)] = digest.Bytes(b).Hex()
		return nil
	})
	if err := os.WriteFile(filepath.Join(dir, manifestName), m.render(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type discard struct{}

func (discard) Put(string, int64, io.Reader) error { return nil }

func TestVerifyNamesTamperedFile(t *testing.T) {
	f := newFixture(t, signed)
	clean := filepath.Join(t.TempDir(), "pkg")
	f.build(t, clean, true)
	id := f.ids[0]
	item := "items/" + id
	cases := []struct {
		name, file string
		edit       func(t *testing.T, dir string)
	}{
		{"report wording", "report.html", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "report.html"), replace("officer-4711", "officer-4712"))
		}},
		{"custody actor", item + "/custody.json", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, item, "custody.json"), replace(`"actor": "custodian-1"`, `"actor": "someone-else"`))
		}},
		{"custody csv", item + "/custody.csv", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, item, "custody.csv"), replace("custodian-1", "someone-else"))
		}},
		{"record", "records/3.json", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "records/3.json"), replace(`"actor":"evidenced@dock-01"`, `"actor":"evidenced@dock-02"`))
		}},
		{"signature", "records/3.sig", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "records/3.sig"), func(b []byte) []byte { c := bytes.Clone(b); c[5] ^= 1; return c })
		}},
		{"proof", "proofs/3.json", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "proofs/3.json"), func(b []byte) []byte {
				// Change the first hex digit of the first hash to a different
				// one (a fixed replacement would be a no-op 1 time in 16).
				return regexp.MustCompile(`("hashes": \[\s*")[0-9a-f]`).ReplaceAllFunc(b, func(m []byte) []byte {
					c := bytes.Clone(m)
					if c[len(c)-1] == 'f' {
						c[len(c)-1] = '0'
					} else {
						c[len(c)-1] = 'f'
					}
					return c
				})
			})
		}},
		{"checkpoint", "checkpoints/8.note", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, "checkpoints/8.note"), func(b []byte) []byte {
				lines := strings.SplitN(string(b), "\n", 4)
				lines[2] = strings.Repeat("A", 43) + "="
				return []byte(strings.Join(lines, "\n"))
			})
		}},
		{"footage", item + "/footage.mp4", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, item, "footage.mp4"), func(b []byte) []byte { c := bytes.Clone(b); c[10] ^= 0x80; return c })
		}},
		{"item metadata", item + "/item.json", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, item, "item.json"), replace(`"assigned_to":"officer-4711"`, `"assigned_to":"officer-0001"`))
		}},
		{"public key", "", func(t *testing.T, dir string) {
			keys, _ := filepath.Glob(filepath.Join(dir, "host", "*.pem"))
			k, _ := signing.Generate(host)
			os.WriteFile(keys[0], k.PublicPEM(), 0o644)
		}},
		{"removed record", "records/4.json", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "records/4.json"))
		}},
		{"extra file", "notes.txt", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hi"), 0o644)
		}},
	}
	for _, c := range cases {
		for _, recompute := range []bool{false, true} {
			name := c.name
			if recompute {
				name += "/manifest recomputed"
			}
			t.Run(name, func(t *testing.T) {
				dir := copyDir(t, clean)
				c.edit(t, dir)
				if recompute {
					rehash(t, dir)
				}
				r := mustVerify(t, dir)
				if r.OK() {
					t.Fatal("tampered package verifies")
				}
				if c.file == "" {
					return
				}
				for _, p := range r.Problems {
					if p.File == c.file {
						return
					}
				}
				t.Errorf("no problem names %s: %v", c.file, r.Problems)
			})
		}
	}
	t.Run("manifest", func(t *testing.T) {
		dir := copyDir(t, clean)
		editFile(t, filepath.Join(dir, manifestName), func(b []byte) []byte {
			c := bytes.Clone(b)
			c[0] = "01"[c[0]&1] // change the first hex digit of the first line
			if c[0] == b[0] {
				c[0] = 'f'
			}
			return c
		})
		r := mustVerify(t, dir)
		if r.OK() || !strings.Contains(r.Problems[0].Msg, manifestName) {
			t.Fatalf("edited manifest: %v", r.Problems)
		}
	})
}

// needVerifyTools skips where VERIFY.md's tools are missing (never in CI).
func needVerifyTools(t *testing.T) {
	t.Helper()
	for _, tool := range verifymd.Tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// follow follows dir's VERIFY.md from the fingerprint fp.
func follow(t *testing.T, dir, fp string) *verifymd.Report {
	t.Helper()
	r, err := verifymd.Follow(dir, verifymd.Env{FP: fp})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyMarkdownSteps follows VERIFY.md as its reader does (package
// verifymd: every command block run with bash, every "must" of the prose
// checked against the values the prose names), starting (step 0) from the
// first host key's fingerprint as obtained out of band: here, from the
// genuine package the test built. A signed, a rotated and a mixed ledger
// (records from before the host had a key), with footage: every key is
// accepted, every record is signed or in the signed tree, every footage
// file matches its COPIED record. Another host's fingerprint trusts
// nothing.
func TestVerifyMarkdownSteps(t *testing.T) {
	needVerifyTools(t)
	for _, mode := range []string{signed, rotated, mixed} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, mode)
			dir := filepath.Join(t.TempDir(), "pkg")
			f.build(t, dir, true)
			genuine := mustVerify(t, dir)
			fp := signing.Fingerprint(packageKey(t, dir, genuine, 0))
			r := follow(t, dir, fp)
			if !r.OK() {
				t.Fatalf("VERIFY.md's steps fail on a genuine package:\n%s", strings.Join(r.Failures, "\n"))
			}
			if r.Trusted != genuine.Info.Keys[0].File || len(r.Introduced) != len(genuine.Info.Keys)-1 {
				t.Errorf("step 0 trusted %q and introduced %v; the package's keys are %+v", r.Trusted, r.Introduced, genuine.Info.Keys)
			}
			if len(r.InTree) != genuine.Records || len(r.Signed) != genuine.Signatures || len(r.Signed)+len(r.Unsigned) != genuine.Records ||
				len(r.Footage) != len(f.ids) || r.Root != genuine.Info.Root {
				t.Errorf("followed: %d in the tree, %d signed, %d unsigned, footage %v, root %s; package: %d records, %d signatures, root %s",
					len(r.InTree), len(r.Signed), len(r.Unsigned), r.Footage, r.Root, genuine.Records, genuine.Signatures, genuine.Info.Root)
			}
			if mode == mixed && len(r.Unsigned) == 0 {
				t.Error("a mixed ledger's package showed no unsigned record")
			}
			if after := mustVerify(t, dir); !after.OK() { // the steps' scratch files must not land in the package
				t.Errorf("package after the steps: %v", after.Problems)
			}
			other, _ := signing.Generate(host)
			r = follow(t, dir, signing.Fingerprint(other.Public()))
			if r.OK() || r.Trusted != "" || !slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, "step 0: no key in host/") }) {
				t.Errorf("another host's fingerprint: trusted %q, failures %v", r.Trusted, r.Failures)
			}
		})
	}
}

// A reader who follows VERIFY.md by hand catches what a forger who knows
// the format does to a genuine package, the manifest recomputed each time
// (so step 1 passes): a made-up record beside the genuine ones with no
// signature, a record edited, footage replaced with its item.json made to
// match, footage moved under an item no record names. Each is caught by the step that covers every record or every
// footage file, not only the example the file shows.
func TestVerifyMarkdownCatchesForgeries(t *testing.T) {
	needVerifyTools(t)
	f := newFixture(t, signed)
	clean := filepath.Join(t.TempDir(), "pkg")
	f.build(t, clean, true)
	genuine := mustVerify(t, clean)
	fp := signing.Fingerprint(packageKey(t, clean, genuine, 0))
	last := genuine.Info.TreeSize
	id := f.ids[1]
	for _, tc := range []struct {
		name  string
		forge func(t *testing.T, dir string)
		want  []string
	}{
		{"a made-up unsigned record with a proof copied from a genuine one", func(t *testing.T, dir string) {
			fake := recordPath(last + 1)
			b, err := os.ReadFile(filepath.Join(dir, recordPath(last)))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(`"seq":`+itoa(int(last))), []byte(`"seq":`+itoa(int(last+1))), 1)
			if err := os.WriteFile(filepath.Join(dir, fake), bytes.Replace(b, []byte("case 2026/113"), []byte("case 2026/999"), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := os.ReadFile(filepath.Join(dir, proofPath(last)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, proofPath(last+1)), bytes.Replace(p, []byte(recordPath(last)), []byte(fake), 1), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"step 5: " + recordPath(last+1) + ": NOT in the tree"}},
		{"a record edited", func(t *testing.T, dir string) {
			editFile(t, filepath.Join(dir, recordPath(last)), replace("case 2026/113", "case 2026/999"))
		}, []string{"step 3: " + recordPath(last) + ": no", "step 5: " + recordPath(last) + ": NOT in the tree"}},
		{"footage replaced, item.json made to match", func(t *testing.T, dir string) {
			itemDir := filepath.Join(dir, "items", id)
			files, _ := filepath.Glob(filepath.Join(itemDir, "footage.*"))
			if len(files) != 1 {
				t.Fatalf("footage of %s: %v", id, files)
			}
			fake := []byte("other footage")
			if err := os.WriteFile(files[0], fake, 0o644); err != nil {
				t.Fatal(err)
			}
			editFile(t, filepath.Join(itemDir, "item.json"), replace(digest.Bytes(f.footage[id]).Hex(), digest.Bytes(fake).Hex()))
		}, []string{"step 6: items/" + id + "/footage."}},
		{"footage of an item no record names", func(t *testing.T, dir string) {
			fake := strings.Repeat("0", 24)
			if err := os.Rename(filepath.Join(dir, "items", id), filepath.Join(dir, "items", fake)); err != nil {
				t.Fatal(err)
			}
		}, []string{"step 6: items/" + strings.Repeat("0", 24) + "/footage."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, clean)
			tc.forge(t, dir)
			rehash(t, dir)
			r := follow(t, dir, fp)
			for _, w := range tc.want {
				if !slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, w) }) {
					t.Errorf("no failure %q; failures:\n%s", w, strings.Join(r.Failures, "\n"))
				}
			}
			if slices.ContainsFunc(r.Failures, func(s string) bool { return strings.HasPrefix(s, "step 1:") }) {
				t.Errorf("the manifest was recomputed, yet step 1 failed: %v", r.Failures)
			}
		})
	}
}

// FuzzVerifyEditedFile replaces one file of a good package with arbitrary
// bytes: Verify must never panic, and never call the package good unless
// the bytes are the original ones.
func FuzzVerifyEditedFile(f *testing.F) {
	fx := newFixture(f, signed)
	clean := filepath.Join(f.TempDir(), "pkg")
	fx.build(f, clean, true)
	var files []string
	filepath.WalkDir(clean, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(clean, p)
			files = append(files, rel)
		}
		return nil
	})
	// One seed per file (a flipped bit in the middle), plus the original
	// bytes and an emptied file once each.
	for i, name := range files {
		b, _ := os.ReadFile(filepath.Join(clean, name))
		b = bytes.Clone(b)
		if len(b) > 0 {
			b[len(b)/2] ^= 0x04
		}
		f.Add(uint8(i), b)
		if i == 0 {
			orig, _ := os.ReadFile(filepath.Join(clean, name))
			f.Add(uint8(i), orig)
			f.Add(uint8(i), []byte{})
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		name := files[int(which)%len(files)]
		orig, _ := os.ReadFile(filepath.Join(clean, name))
		dir := copyDir(t, clean)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
		r := mustVerify(t, dir)
		if r.OK() != bytes.Equal(content, orig) {
			t.Fatalf("%s replaced by %d bytes (original: %v): OK=%v, problems %v", name, len(content), bytes.Equal(content, orig), r.OK(), r.Problems)
		}
	})
}
