// Package signing owns a docking-station host's Ed25519 signing key: the key
// that signs every custody record and every Merkle checkpoint the host
// publishes, so that a court or a defence expert can check them without
// trusting the host.
//
// # Invariants
//
//   - The private key lives in one file, mode 0600, owned by the daemon's
//     user: a PKCS #8 "PRIVATE KEY" PEM block holding an Ed25519 key and
//     nothing else (`openssl pkey -in host.key -pubout` prints its public
//     key). LoadOrCreate refuses a file that is readable or writable by group
//     or others, or that is anything but exactly that, naming the path: a
//     leaked or substituted key must stop the daemon, not be papered over.
//   - A new key is written atomically and durably: a temporary file in the
//     same directory is written and fsynced, then linked into place (a
//     rename that cannot overwrite a key another process created
//     meanwhile), then the directory is fsynced. A key file is never
//     rewritten in place: a rotation writes the next key to its own file
//     (Create) and renames it over the key file (Install) only once the
//     ledger names it.
//   - The key id is the lower-hex SHA-256 of the public key's PKIX
//     (SubjectPublicKeyInfo) DER encoding, so a third party can compute it
//     from the exported public key alone:
//     `openssl pkey -pubin -in pub.pem -outform DER | sha256sum`.
//   - Signatures are pure Ed25519 (RFC 8032) over the exact message bytes,
//     so `openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg
//     -sigfile sig` checks them.
//   - For signed notes (C2SP signed-note, golang.org/x/mod/sumdb/note), the
//     key name is "evidenced-<host id>" (KeyName).
package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/digest"
)

// Sentinel errors.
var (
	// ErrPermissions: the key file is accessible to group or others (or is
	// not a regular file).
	ErrPermissions = errors.New("signing: key file permissions too wide")
	// ErrFormat: the key file (or a public key) is not in the one format
	// this package writes.
	ErrFormat = errors.New("signing: malformed key")
	// ErrName: the host id cannot be part of a signed-note key name.
	ErrName = errors.New("signing: invalid host id for a key name")
)

const (
	pemPrivate = "PRIVATE KEY"
	pemPublic  = "PUBLIC KEY"
	// maxKeyFile bounds what LoadOrCreate reads: a PKCS #8 Ed25519 PEM is
	// 119 bytes.
	maxKeyFile = 4096
)

// Key is a host signing key. It is safe for concurrent use.
type Key struct {
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	hostID   string
	keyID    string
	signer   note.Signer
	verifier note.Verifier
}

// KeyName is the signed-note key name of a host: "evidenced-<host id>".
func KeyName(hostID string) string { return "evidenced-" + hostID }

// KeyID is the lower-hex SHA-256 of the PKIX DER encoding of pub.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Only a wrong-length key fails; hash the raw bytes so the id
		// still differs from every real key's.
		return digest.Bytes(pub).Hex()
	}
	return digest.Bytes(der).Hex()
}

// PublicDER is the PKIX (SubjectPublicKeyInfo) DER encoding of pub.
func PublicDER(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: ed25519 public key of %d bytes", ErrFormat, len(pub))
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// PublicPEM is pub as a PKIX "PUBLIC KEY" PEM block, the form openssl reads
// with -pubin.
func PublicPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := PublicDER(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: der}), nil
}

// ParsePublicPEM reads exactly one PKIX "PUBLIC KEY" PEM block holding an
// Ed25519 key (trailing whitespace allowed, nothing else).
func ParsePublicPEM(b []byte) (ed25519.PublicKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != pemPublic || len(blk.Headers) != 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w: want one PEM %q block", ErrFormat, pemPublic)
	}
	return ParsePublicDER(blk.Bytes)
}

// ParsePublicDER reads a PKIX DER Ed25519 public key.
func ParsePublicDER(der []byte) (ed25519.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key is %T, not Ed25519", ErrFormat, k)
	}
	return pub, nil
}

// LoadOrCreate loads the host key at path, or creates it (and its directory,
// mode 0700) when the file does not exist. created reports a new key. A file
// with group or other permission bits, or in any other format than a PKCS #8
// Ed25519 PEM block, is refused with an error naming path.
func LoadOrCreate(path, hostID string) (k *Key, created bool, err error) {
	if err := checkHostID(hostID); err != nil {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	k, err = load(path, hostID)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: generate: %w", path, err)
	}
	if err := writeNew(path, priv, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use that one.
			k, err = load(path, hostID)
			return k, false, err
		}
		return nil, false, err
	}
	k, err = New(hostID, priv)
	if err != nil {
		return nil, false, fmt.Errorf("host key %s: %w", path, err)
	}
	return k, true, nil
}

// Load loads the host key at path and never creates one: a read-only
// command must not mint a new host identity for a host whose key is gone.
func Load(path, hostID string) (*Key, error) {
	if err := checkHostID(hostID); err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return load(path, hostID)
}

func load(path, hostID string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("host key %s: %w: not a regular file (%v)", path, ErrPermissions, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("host key %s: %w: mode %04o, want 0600 (chmod 600 %s, and consider the key compromised if others could read it)",
			path, ErrPermissions, perm, path)
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if len(buf) > maxKeyFile {
		return nil, fmt.Errorf("host key %s: %w: file larger than %d bytes", path, ErrFormat, maxKeyFile)
	}
	priv, err := parsePrivatePEM(buf)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	k, err := New(hostID, priv)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return k, nil
}

func parsePrivatePEM(b []byte) (ed25519.PrivateKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != pemPrivate || len(blk.Headers) != 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w: want exactly one PEM %q block (PKCS #8 Ed25519)", ErrFormat, pemPrivate)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, not Ed25519", ErrFormat, k)
	}
	return priv, nil
}

// Create makes a new key and writes it to path (mode 0600, fsynced with
// its directory), never replacing a file there (fs.ErrExist): the next key
// of a rotation, written beside the key in force before any record names it.
func Create(path, hostID string) (*Key, error) {
	k, err := Generate(hostID)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	if err := writeNew(path, k.priv, 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

// WriteRetired keeps a copy of k's private key at path, mode 0400 (read
// only: a retired key is never written again), fsynced with its directory;
// fs.ErrExist if path exists.
func (k *Key) WriteRetired(path string) error { return writeNew(path, k.priv, 0o400) }

// Install moves the key file from to path, replacing the key there, and
// fsyncs the directory: rename(2) is atomic, so after a crash path holds
// either key whole, and after Install returns the new one durably.
func Install(from, path string) error {
	if err := os.Rename(from, path); err != nil {
		return fmt.Errorf("host key %s: install %s: %w", path, from, err)
	}
	return syncDir(filepath.Dir(path))
}

// Remove removes a key file and fsyncs its directory, so the removal
// survives a crash.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("host key %s: remove: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// writeNew writes priv to path atomically without ever replacing an
// existing file: fs.ErrExist if path exists.
func writeNew(path string, priv ed25519.PrivateKey, mode os.FileMode) (err error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("host key %s: encode: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: der})
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }() // after the link, only the temporary name goes
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("host key %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("host key %s: write: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("host key %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	// link(2) is rename(2) that refuses to replace an existing name.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("host key %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	return nil
}

// checkHostID: a signed-note key name must be non-empty UTF-8 without
// whitespace or '+'; an origin line must not hold a newline.
func checkHostID(hostID string) error {
	if hostID == "" {
		return fmt.Errorf("%w: empty", ErrName)
	}
	if strings.ContainsAny(hostID, "+") || strings.ContainsFunc(hostID, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200a) ||
			r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000 || r == 0xfffd
	}) {
		return fmt.Errorf("%w: %q holds whitespace, a control character or '+'", ErrName, hostID)
	}
	return nil
}

// New wraps an existing private key (tests, and rotation tooling that
// generated one elsewhere).
func New(hostID string, priv ed25519.PrivateKey) (*Key, error) {
	if err := checkHostID(hostID); err != nil {
		return nil, err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: ed25519 private key of %d bytes", ErrFormat, len(priv))
	}
	pub := priv.Public().(ed25519.PublicKey)
	k := &Key{priv: priv, pub: pub, hostID: hostID, keyID: KeyID(pub)}
	var err error
	if k.verifier, err = NoteVerifier(hostID, pub); err != nil {
		return nil, err
	}
	k.signer = &noteSigner{name: k.verifier.Name(), hash: k.verifier.KeyHash(), sign: k.Sign}
	return k, nil
}

// Generate makes a new in-memory key (tests; rotation writes one with
// Create).
func Generate(hostID string) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return New(hostID, priv)
}

// Public is the Ed25519 public key.
func (k *Key) Public() ed25519.PublicKey { return k.pub }

// KeyID is the lower-hex SHA-256 of the PKIX DER public key.
func (k *Key) KeyID() string { return k.keyID }

// HostID is the host the key was loaded for.
func (k *Key) HostID() string { return k.hostID }

// Sign signs msg with pure Ed25519. It never fails; the error is there to
// satisfy signer interfaces (a hardware-backed key could fail).
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// NoteSigner signs C2SP signed notes as "evidenced-<host id>".
func (k *Key) NoteSigner() note.Signer { return k.signer }

// NoteVerifier verifies this key's signed notes.
func (k *Key) NoteVerifier() note.Verifier { return k.verifier }

// VerifierKey is the signed-note verifier key string
// ("evidenced-<host>+<hash>+<base64>"), the form note tooling reads.
func (k *Key) VerifierKey() string {
	vk, _ := note.NewEd25519VerifierKey(KeyName(k.hostID), k.pub)
	return vk
}

// PublicPEM is the public key as a PKIX "PUBLIC KEY" PEM block.
func (k *Key) PublicPEM() []byte {
	b, _ := PublicPEM(k.pub) // cannot fail: the key has the right length
	return b
}

// NoteVerifier returns the signed-note verifier of hostID's key pub.
func NoteVerifier(hostID string, pub ed25519.PublicKey) (note.Verifier, error) {
	if err := checkHostID(hostID); err != nil {
		return nil, err
	}
	vk, err := note.NewEd25519VerifierKey(KeyName(hostID), pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	v, err := note.NewVerifier(vk)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return v, nil
}

// Signer is the least a key must do to sign custody records: pure Ed25519
// over the given bytes. *Key implements it; so could an HSM-backed key.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
	Public() ed25519.PublicKey
}

var _ Signer = (*Key)(nil)

// NoteSignerFor adapts any Signer to a signed-note signer named
// "evidenced-<host id>". Ed25519 note signatures are pure Ed25519 over the
// note text, so no access to the private key is needed.
func NoteSignerFor(hostID string, s Signer) (note.Signer, error) {
	v, err := NoteVerifier(hostID, s.Public())
	if err != nil {
		return nil, err
	}
	return &noteSigner{name: v.Name(), hash: v.KeyHash(), sign: s.Sign}, nil
}

type noteSigner struct {
	name string
	hash uint32
	sign func([]byte) ([]byte, error)
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return s.sign(msg) }

var _ note.Signer = (*noteSigner)(nil)

// PublicBase64 is the PKIX DER public key in standard base64: the form
// custody records carry (`base64 -d | openssl pkey -pubin -inform DER`).
func PublicBase64(pub ed25519.PublicKey) (string, error) {
	der, err := PublicDER(pub)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

// ParsePublicBase64 is the inverse of PublicBase64; it accepts only the
// canonical encoding.
func ParsePublicBase64(s string) (ed25519.PublicKey, error) {
	der, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public key base64: %v", ErrFormat, err)
	}
	if base64.StdEncoding.EncodeToString(der) != s {
		return nil, fmt.Errorf("%w: public key base64 not canonical", ErrFormat)
	}
	return ParsePublicDER(der)
}

// FingerprintPrefix starts every key fingerprint.
const FingerprintPrefix = "SHA256:"

// Fingerprint is the form in which a host key is passed out of band (on the
// custodian's certificate, over the phone, to `verify-export
// --key-fingerprint`): "SHA256:" and the key id, so anyone can recompute it
// from the public key with `openssl pkey -pubin -in pub.pem -outform DER |
// sha256sum`.
func Fingerprint(pub ed25519.PublicKey) string { return FingerprintPrefix + KeyID(pub) }

// ParseFingerprint returns the key id a fingerprint names. It accepts
// "SHA256:<64 hex digits>" (either case) and refuses anything else, so a
// truncated or mistyped fingerprint is never matched by a prefix.
func ParseFingerprint(s string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), FingerprintPrefix)
	if !ok {
		return "", fmt.Errorf("%w: fingerprint %q does not start with %q", ErrFormat, s, FingerprintPrefix)
	}
	rest = strings.ToLower(rest)
	if len(rest) != 64 || strings.Trim(rest, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: fingerprint %q is not %s and 64 hex digits", ErrFormat, s, FingerprintPrefix)
	}
	return rest, nil
}

// ParsePublicPEMs reads one or more PKIX "PUBLIC KEY" PEM blocks holding
// Ed25519 keys (several hosts' keys in one trust file); anything between
// or around the blocks but whitespace is refused, so a file that is not a
// key file is not half-read.
func ParsePublicPEMs(b []byte) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	rest := b
	for n := 1; strings.TrimSpace(string(rest)) != ""; n++ {
		blk, r := pem.Decode(rest)
		if blk == nil || blk.Type != pemPublic || len(blk.Headers) != 0 {
			return nil, fmt.Errorf("%w: block %d: want a PEM %q block", ErrFormat, n, pemPublic)
		}
		if pre, _, ok := strings.Cut(string(rest), "-----BEGIN"); !ok || strings.TrimSpace(pre) != "" {
			return nil, fmt.Errorf("%w: block %d: text before the PEM block", ErrFormat, n)
		}
		pub, err := ParsePublicDER(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		out = append(out, pub)
		rest = r
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no PEM %q block", ErrFormat, pemPublic)
	}
	return out, nil
}
