package signing

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

const host = "depot-north-01"

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "host.key")
	k, created, err := LoadOrCreate(path, host)
	if err != nil || !created {
		t.Fatalf("create: %v created=%t", err, created)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the key (no temporary left)", len(ents))
	}
	k2, created, err := LoadOrCreate(path, host)
	if err != nil || created {
		t.Fatalf("reload: %v created=%t", err, created)
	}
	if !k.Public().Equal(k2.Public()) || k.KeyID() != k2.KeyID() {
		t.Fatal("reloaded key differs")
	}
	if len(k.KeyID()) != 64 {
		t.Errorf("key id %q is not 64 hex digits", k.KeyID())
	}
	der, _ := PublicDER(k.Public())
	if !bytes.Contains(der, k.Public()) {
		t.Error("DER does not hold the raw key")
	}
}

func TestLoadOrCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	if _, _, err := LoadOrCreate(good, host); err != nil {
		t.Fatal(err)
	}
	goodPEM, _ := os.ReadFile(good)
	k, _, _ := LoadOrCreate(good, host)
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    error
	}{
		{"group readable", goodPEM, 0o640, ErrPermissions},
		{"world readable", goodPEM, 0o604, ErrPermissions},
		{"garbage", []byte("not a key\n"), 0o600, ErrFormat},
		{"empty", nil, 0o600, ErrFormat},
		{"public key", k.PublicPEM(), 0o600, ErrFormat},
		{"two blocks", append(append([]byte{}, goodPEM...), goodPEM...), 0o600, ErrFormat},
		{"trailing junk", append(append([]byte{}, goodPEM...), "junk"...), 0o600, ErrFormat},
		{"huge", bytes.Repeat([]byte("A"), 10000), 0o600, ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".key")
			if err := os.WriteFile(p, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreate(p, host)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name the path", err)
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(after, tc.content) {
				t.Error("a refused key file was rewritten")
			}
		})
	}
	if _, _, err := LoadOrCreate(filepath.Join(dir, "x.key"), "bad host"); !errors.Is(err, ErrName) {
		t.Errorf("host id with a space: %v, want ErrName", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(filepath.Join(dir, "adir"), host); !errors.Is(err, ErrPermissions) {
		t.Errorf("directory as key: %v, want ErrPermissions", err)
	}
}

func TestSignVerifyAndNotes(t *testing.T) {
	k, err := Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"actor":"evidenced"}`)
	sig, err := k.Sign(msg)
	if err != nil || !ed25519.Verify(k.Public(), msg, sig) {
		t.Fatalf("sign/verify: %v", err)
	}
	if ed25519.Verify(k.Public(), append(msg, ' '), sig) {
		t.Fatal("signature verifies over other bytes")
	}
	pub, err := ParsePublicPEM(k.PublicPEM())
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("PEM round trip: %v", err)
	}
	b64, _ := PublicBase64(k.Public())
	pub, err = ParsePublicBase64(b64)
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("base64 round trip: %v", err)
	}
	if _, err := ParsePublicBase64(b64 + "="); err == nil {
		t.Error("non-canonical base64 accepted")
	}

	if k.NoteSigner().Name() != "evidenced-"+host {
		t.Errorf("note key name %q", k.NoteSigner().Name())
	}
	other, _ := Generate(host)
	adapted, err := NoteSignerFor(host, other)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []note.Signer{k.NoteSigner(), adapted} {
		signed, err := note.Sign(&note.Note{Text: "evidenced/" + host + "\n1\nAAAA\n"}, s)
		if err != nil {
			t.Fatal(err)
		}
		vs := note.VerifierList(k.NoteVerifier(), mustVerifier(t, other))
		n, err := note.Open(signed, vs)
		if err != nil || len(n.Sigs) != 1 {
			t.Fatalf("open note: %v", err)
		}
		// The verifier key string round-trips through note's own parser.
		if _, err := note.NewVerifier(k.VerifierKey()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := note.Open(mustSign(t, adapted), note.VerifierList(k.NoteVerifier())); err == nil {
		t.Error("a note signed by another key opened")
	}
}

func mustVerifier(t *testing.T, s Signer) note.Verifier {
	v, err := NoteVerifier(host, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSign(t *testing.T, s note.Signer) []byte {
	b, err := note.Sign(&note.Note{Text: "x\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenSSLVerifies checks the claim made to third parties: openssl alone
// verifies a signature with the exported public key, and derives the same
// public key and key id from the key file.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "host.key")
	k, _, err := LoadOrCreate(keyPath, host)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"actor":"evidenced","seq":1}`)
	sig, _ := k.Sign(msg)
	files := map[string][]byte{"pub.pem": k.PublicPEM(), "msg": msg, "sig": sig, "bad": append([]byte{}, msg...)}
	files["bad"][0] = '['
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	if out, err := run("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile", "sig"); err != nil {
		t.Fatalf("openssl rejected a good signature: %v\n%s", err, out)
	}
	if out, err := run("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "bad", "-sigfile", "sig"); err == nil {
		t.Fatalf("openssl accepted a signature over other bytes:\n%s", out)
	}
	out, err := run("pkey", "-in", "host.key", "-pubout")
	if err != nil {
		t.Fatalf("openssl cannot read the key file: %v\n%s", err, out)
	}
	if !bytes.Equal(out, k.PublicPEM()) {
		t.Errorf("openssl derives public key\n%s\nwant\n%s", out, k.PublicPEM())
	}
}

// A trust file holds one or more public keys and nothing else; a
// fingerprint is the key id behind "SHA256:".
func TestTrustFileAndFingerprint(t *testing.T) {
	a, _ := Generate("h1")
	b, _ := Generate("h2")
	two := append(append([]byte{}, a.PublicPEM()...), b.PublicPEM()...)
	pubs, err := ParsePublicPEMs(append([]byte("\n"), two...))
	if err != nil || len(pubs) != 2 || !pubs[0].Equal(a.Public()) || !pubs[1].Equal(b.Public()) {
		t.Fatalf("two keys: %v %v", pubs, err)
	}
	for _, bad := range [][]byte{nil, []byte("x\n"), append([]byte("comment\n"), two...), append(two, "trailing"...)} {
		if _, err := ParsePublicPEMs(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("ParsePublicPEMs(%q): %v, want ErrFormat", bad, err)
		}
	}
	if fp := Fingerprint(a.Public()); fp != "SHA256:"+a.KeyID() {
		t.Errorf("fingerprint %s, key id %s", fp, a.KeyID())
	}
	if id, err := ParseFingerprint(Fingerprint(a.Public())); err != nil || id != a.KeyID() {
		t.Errorf("ParseFingerprint: %s %v", id, err)
	}
}

// Load never creates a key (a read-only command on a host whose key is gone).
func TestLoadCreatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.key")
	if _, err := Load(path, "h1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load created %s: %v", path, err)
	}
	k, _, err := LoadOrCreate(path, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path, "h1"); err != nil || got.KeyID() != k.KeyID() {
		t.Fatalf("Load of the key: %v %v", got, err)
	}
}

// A rotation's next key never replaces a file (Create), replaces the key
// file only by a rename (Install), and a retired copy is read-only and
// still loads.
func TestCreateInstallRetire(t *testing.T) {
	dir := t.TempDir()
	path, next := filepath.Join(dir, "host.key"), filepath.Join(dir, "host.key.next")
	old, _, err := LoadOrCreate(path, host)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Create(next, host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(next, host); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over an existing next key: %v", err)
	}
	retired := filepath.Join(dir, "host.key.retired-"+old.KeyID())
	if err := old.WriteRetired(retired); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(retired); err != nil || st.Mode().Perm() != 0o400 {
		t.Fatalf("retired copy: %v %v", st, err)
	}
	if r, err := Load(retired, host); err != nil || r.KeyID() != old.KeyID() {
		t.Fatalf("retired copy loads: %v", err)
	}
	if err := Install(next, path); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path, host); err != nil || got.KeyID() != k.KeyID() {
		t.Fatalf("installed key: %v", err)
	}
	if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("next key still there after Install: %v", err)
	}
	if err := Remove(retired); err != nil {
		t.Fatal(err)
	}
}
