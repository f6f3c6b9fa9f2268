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

// TestVerifyMarkdownSteps runs the shell steps of VERIFY.md against a
// package: sha256sum -c, openssl on a record signature and on the
// checkpoint, and the bash walk of an inclusion proof.
func TestVerifyMarkdownSteps(t *testing.T) {
	for _, tool := range []string{"openssl", "sha256sum", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	for _, mode := range []string{signed, rotated} {
		t.Run(mode, func(t *testing.T) { verifyMarkdownSteps(t, mode) })
	}
}

// verifyMarkdownSteps runs every command block of VERIFY.md, starting (step
// 0) from the first host key's fingerprint as obtained out of band: here,
// from the genuine package the test built.
func verifyMarkdownSteps(t *testing.T, mode string) {
	f := newFixture(t, mode)
	dir := filepath.Join(t.TempDir(), "pkg")
	f.build(t, dir, true)
	genuine := mustVerify(t, dir)
	fp := signing.Fingerprint(packageKey(t, dir, genuine, 0))
	md, err := os.ReadFile(filepath.Join(dir, verifyName))
	if err != nil {
		t.Fatal(err)
	}
	blocks := codeBlocks(string(md))
	if len(blocks) < 10 {
		t.Fatalf("VERIFY.md has %d command blocks:\n%s", len(blocks), md)
	}
	run := func(script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-euc", "cd \"$1\"; shift; "+script, "bash", dir)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "FP="+fp)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n-> %v\n%s", script, err, out)
		}
		return string(out)
	}
	var proofRoot, cpRoot string
	var trusted, rotations int
	for _, b := range blocks {
		if strings.HasPrefix(b, "export ") {
			continue // the reader's out-of-band input: FP is set above
		}
		out := run(b)
		switch {
		case strings.HasPrefix(b, "for k in host/*.pem"):
			trusted = strings.Count(out, "is your key: TRUSTED")
			if got := strings.Count(out, "\n"); got != len(genuine.Info.Keys) {
				t.Errorf("step 0 printed %d lines for %d keys:\n%s", got, len(genuine.Info.Keys), out)
			}
		case strings.Contains(b, "KEY_ROTATED") || strings.Contains(b, "introduces host/"):
			if !strings.Contains(out, "Signature Verified Successfully") || !strings.Contains(out, ": OK") {
				t.Errorf("rotation step:\n%s\n%s", b, out)
			}
			rotations++
		case strings.HasPrefix(b, "sha256sum -c"):
			if strings.Count(out, ": OK") < 20 || strings.Contains(out, "FAILED") {
				t.Errorf("sha256sum -c:\n%s", out)
			}
		case strings.HasPrefix(b, "openssl pkeyutl -verify"):
			if !strings.Contains(out, "Signature Verified Successfully") {
				t.Errorf("%s\n%s", b, out)
			}
		case strings.HasPrefix(b, "for s in records/*.sig"):
			if strings.Count(out, ": yes") != genuine.Signatures || strings.Contains(out, ": no") {
				t.Errorf("signature loop:\n%s", out)
			}
		case strings.HasPrefix(b, "for f in records/*.json"):
			if strings.Contains(out, "FAILED") || !strings.Contains(out, "OK") {
				t.Errorf("chain loop:\n%s", out)
			}
		case strings.Contains(b, "checkpoint.sig"):
			if !strings.Contains(out, "Signature Verified Successfully") {
				t.Errorf("checkpoint signature:\n%s", out)
			}
		case strings.HasPrefix(b, "sed -n 3p"):
			cpRoot = strings.TrimSpace(out)
		case strings.HasPrefix(b, "proof="):
			proofRoot = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "root "))
		}
	}
	if trusted != 1 || rotations != len(genuine.Info.Keys)-1 {
		t.Errorf("step 0: %d key(s) matched the fingerprint (want 1), %d rotation(s) checked (want %d)", trusted, rotations, len(genuine.Info.Keys)-1)
	}
	r := mustVerify(t, dir) // the steps' scratch files must not land in the package
	if !r.OK() {
		t.Errorf("package after the steps: %v", r.Problems)
	}
	if cpRoot == "" || cpRoot != proofRoot || cpRoot != r.Info.Root {
		t.Errorf("checkpoint root %q, proof walk gives %q, package.json %q", cpRoot, proofRoot, r.Info.Root)
	}
	// Step 0 with another host's fingerprint trusts nothing.
	other, _ := signing.Generate(host)
	fp = signing.Fingerprint(other.Public())
	for _, b := range blocks {
		if strings.HasPrefix(b, "for k in host/*.pem") {
			if out := run(b); strings.Contains(out, "TRUSTED") {
				t.Errorf("step 0 trusted a key with another fingerprint:\n%s", out)
			}
		}
	}
}

// codeBlocks returns VERIFY.md's indented command blocks.
func codeBlocks(md string) []string {
	var out []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for _, l := range strings.Split(md, "\n") {
		if s, ok := strings.CutPrefix(l, "    "); ok {
			cur = append(cur, s)
			continue
		}
		flush()
	}
	flush()
	return out
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
