package export

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
)

// ErrNoTrust: Verify was given nothing to trust. A package carries its own
// public keys, so checking it against them proves only that whoever made
// the package holds those keys; the verifier must say which host key it
// trusts (obtained out of band), or explicitly accept the package's own.
var ErrNoTrust = errors.New("export: no trusted host key given (a key file, a fingerprint, or an explicit trust of the package's own key)")

// Trust is what the verifier brings from outside the package. Nothing in a
// package vouches for itself: its keys, its TSA CA and an unsigned
// checkpoint are all things a forger can write.
type Trust struct {
	// Keys are host public keys obtained out of band (one host's key, or a
	// file of several hosts' keys for a console package).
	Keys []ed25519.PublicKey
	// KeyIDs are trusted key ids (signing.ParseFingerprint of a
	// "SHA256:…" fingerprint obtained out of band).
	KeyIDs []string
	// PackageKey trusts the package's FIRST host key as it stands, for a
	// verifier who has no out-of-band key; the result says so
	// (Result.PackageKeyTrusted) and every later key still needs its
	// KEY_ROTATED record.
	PackageKey bool
	// TSACA is the PEM of the time-stamping authority's CA certificate(s)
	// from outside the package; the one inside the package is only
	// informational. Nil: time-stamps are checked against their
	// checkpoint but not attributed to any TSA.
	TSACA []byte
	// AllowUnsigned accepts an unsigned checkpoint and records that no
	// trusted signature covers (a ledger from before signing).
	AllowUnsigned bool
}

func (t Trust) empty() bool { return len(t.Keys) == 0 && len(t.KeyIDs) == 0 && !t.PackageKey }

func (t Trust) trusts(keyID string) bool {
	for _, k := range t.Keys {
		if signing.KeyID(k) == keyID {
			return true
		}
	}
	for _, id := range t.KeyIDs {
		if id == keyID {
			return true
		}
	}
	return false
}

// KeyTrust says why a package key was accepted.
type KeyTrust struct {
	KeyID       string
	Fingerprint string
	FromSeq     uint64
	// How: "given" (a trusted key or fingerprint), "package" (the
	// package's own first key, trusted on request) or "rotation" (a
	// KEY_ROTATED record signed by the accepted key before it).
	How string
	// RotationSeq is the KEY_ROTATED record's seq when How is "rotation".
	RotationSeq uint64
	// Host is the host the key vouched for, in a console's package.
	Host string
}

// trustKeys decides which of the package's keys count. The first key must
// be trusted from outside (or, on request, the package's own); each later
// key must be trusted from outside or introduced by the KEY_ROTATED record
// just before its first record, in the package, naming it and the key
// before it, and carrying a valid signature by that (accepted) key. A key
// that is neither is a problem, and nothing it signs counts: that is the
// forgery of a second key slipped into the ledger's key list.
func (v *verifier) trustKeys() {
	prevOK := false
	for i, k := range v.info.Keys {
		pub, ok := v.keys[k.File]
		if !ok {
			prevOK = false
			continue // already a problem
		}
		kt := KeyTrust{KeyID: k.KeyID, Fingerprint: signing.Fingerprint(pub), FromSeq: k.FromSeq}
		switch {
		case v.trust.trusts(k.KeyID):
			kt.How = "given"
		case i == 0 && v.trust.PackageKey:
			kt.How = "package"
			v.res.PackageKeyTrusted = true
		case i > 0 && prevOK:
			if why := v.rotation(v.info.Keys[i-1], k, pub); why != "" {
				v.problem(k.File, "host key %s (from record %d) is not trusted and %s", kt.Fingerprint, k.FromSeq, why)
				prevOK = false
				continue
			}
			kt.How, kt.RotationSeq = "rotation", k.FromSeq-1
		default:
			how := "is not a key you trust"
			if i > 0 {
				how = "is not a key you trust, and the key before it is not accepted either"
			}
			v.problem(k.File, "host key %s (from record %d) %s: nothing it signs counts (give the host's key obtained out of band)", kt.Fingerprint, k.FromSeq, how)
			prevOK = false
			continue
		}
		v.trusted[k.File] = pub
		v.res.Keys = append(v.res.Keys, kt)
		prevOK = true
	}
}

// rotation checks that record k.FromSeq-1 is a KEY_ROTATED record, signed
// by prev, naming k; it returns what is wrong, or "".
func (v *verifier) rotation(prev, k KeyRef, pub ed25519.PublicKey) string {
	if k.FromSeq < 2 {
		return "no KEY_ROTATED record can precede record " + strconv.FormatUint(k.FromSeq, 10)
	}
	seq := k.FromSeq - 1
	name := recordPath(seq)
	ev, ok := v.evs[seq]
	switch {
	case !ok:
		return fmt.Sprintf("the package has no KEY_ROTATED record %s introducing it", name)
	case ev.Type != custody.KeyRotated:
		return fmt.Sprintf("%s, the record before its first, is %s, not a KEY_ROTATED record introducing it", name, ev.Type)
	case ev.Details["key_id"] != k.KeyID || ev.Details["previous_key_id"] != prev.KeyID:
		return fmt.Sprintf("KEY_ROTATED record %s names key %q after %q, not this key after %s", name, ev.Details["key_id"], ev.Details["previous_key_id"], prev.KeyID)
	case seq < prev.FromSeq:
		return fmt.Sprintf("KEY_ROTATED record %s is before the previous key's first record %d", name, prev.FromSeq)
	}
	named, err := signing.ParsePublicBase64(ev.Details["public_key"])
	if err != nil || !named.Equal(pub) {
		return fmt.Sprintf("KEY_ROTATED record %s does not carry this public key", name)
	}
	sig, ok := v.readQuiet(sigPath(seq))
	prevPub := v.trusted[prev.File]
	if !ok || prevPub == nil || len(sig) != ed25519.SignatureSize || !ed25519.Verify(prevPub, v.recs[seq], sig) {
		return fmt.Sprintf("KEY_ROTATED record %s has no valid signature by the previous key %s", name, prev.KeyID)
	}
	return ""
}
