package custody

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/signing"
)

// Key events. Both carry the key they introduce in Details: "algorithm"
// ("ed25519"), "key_id" (lower-hex SHA-256 of the PKIX DER public key),
// "public_key" (standard base64 of that DER) and, when the host id can name
// a signed-note key, "note_key" (the signed-note verifier key that checks
// this host's checkpoints). HOST_KEY also binds v1/meta: "ledger_created_at"
// and, in a migrated ledger, "migrated_from_v1".
const (
	// HostKey introduces the ledger's first host key. It is the first
	// signed record, and is signed by the key it introduces (proof of
	// possession); that key is in force from this record on. Append writes
	// it, just before the caller's event, the first time a Signer appends
	// to a ledger without a host key: in a new ledger it is record 1, in a
	// migrated one the record after the last schema-1 record.
	HostKey EventType = "HOST_KEY"
	// KeyRotated (RotateKey) names the next host key, with
	// "previous_key_id" in Details. It is signed by the key in force; the
	// key it names is in force from the NEXT record on.
	KeyRotated EventType = "KEY_ROTATED"
)

// keyEvent builds the HOST_KEY or KEY_ROTATED event introducing k.
func keyEvent(t EventType, k, prev *keyInfo) Event {
	d := map[string]string{"algorithm": "ed25519", "key_id": k.id, "public_key": k.b64}
	if prev != nil {
		d["previous_key_id"] = prev.id
	}
	return Event{Type: t, Actor: "evidenced", Details: d}
}

// addNoteKey sets details["note_key"] when host can name a note key.
func addNoteKey(d map[string]string, host string, pub ed25519.PublicKey) {
	if vk, err := note.NewEd25519VerifierKey(signing.KeyName(host), pub); err == nil {
		if _, err := note.NewVerifier(vk); err == nil {
			d["note_key"] = vk
		}
	}
}

// signRecord signs rec (the exact stored record bytes) and stores the
// signature in v1/sigs, checking it first so a faulty signer cannot store
// a signature that will never verify.
func signRecord(b bkts, k *keyInfo, seq uint64, rec []byte) ([]byte, error) {
	sig, err := k.s.Sign(rec)
	if err != nil {
		return nil, fmt.Errorf("sign record %d: %w", seq, err)
	}
	if !ed25519.Verify(k.pub, rec, sig) {
		return nil, fmt.Errorf("%w: signer produced a signature for record %d that does not verify with key %s", ErrInvalid, seq, k.id)
	}
	if err := b.sigs.Put(seqKey(seq), sig); err != nil {
		return nil, fmt.Errorf("write signature of record %d: %w", seq, err)
	}
	return sig, nil
}

// RotateKey appends a KEY_ROTATED record naming next, signed by the key in
// force (Options.Signer), after which Append signs with next. The caller
// keeps next's private key (written with signing.Create before this record
// names it) and should anchor a checkpoint soon after, so the rotation is
// on record off-host.
func (l *Ledger) RotateKey(ctx context.Context, next Signer) (Event, error) {
	return l.RotateKeyBy(ctx, next, "evidenced", nil)
}

// RotateKeyBy is RotateKey recording who rotated the key: actor is the
// record's actor and details (who they acted for, why) are added to its
// Details, without replacing the key fields RotateKey sets.
func (l *Ledger) RotateKeyBy(ctx context.Context, next Signer, actor string, details map[string]string) (Event, error) {
	if l.readOnly {
		return Event{}, fmt.Errorf("rotate key of ledger %s: %w", l.path, ErrReadOnly)
	}
	nk, err := newKeyInfo(next)
	if err != nil {
		return Event{}, fmt.Errorf("rotate key of ledger %s: %w", l.path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer == nil {
		return Event{}, fmt.Errorf("rotate key of ledger %s: %w: the old key must sign the rotation", l.path, ErrNoSigner)
	}
	if bytes.Equal(nk.pem, l.signer.pem) {
		return Event{}, fmt.Errorf("rotate key of ledger %s: %w: the next key is the key in force", l.path, ErrInvalid)
	}
	ev := keyEvent(KeyRotated, nk, l.signer)
	addNoteKey(ev.Details, l.host, nk.pub)
	if actor != "" {
		ev.Actor = actor
	}
	for k, v := range details {
		switch k {
		case "algorithm", "key_id", "public_key", "previous_key_id", "note_key":
			// The key fields are RotateKey's alone.
		default:
			ev.Details[k] = v
		}
	}
	out, err := l.appendLocked(ctx, []pending{{ev: ev, rotateTo: nk}}, l.signer)
	if err != nil {
		return Event{}, err
	}
	l.signer = nk
	l.log.Info("custody host key rotated", "seq", out[len(out)-1].Seq, "key_id", nk.id)
	return out[len(out)-1], nil
}

// KeyPeriod is one host key and the records it signs.
type KeyPeriod struct {
	KeyID     string `json:"key_id"`
	FromSeq   uint64 `json:"from_seq"`
	PublicPEM string `json:"public_key_pem"`
}

// Keys lists the host keys recorded in v1/keys, oldest first: each signs
// the records from FromSeq to the next period's FromSeq-1. It reads the
// index, not the records; Verify checks one against the other.
func (l *Ledger) Keys(ctx context.Context) ([]KeyPeriod, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []KeyPeriod
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil || b.keys == nil {
			return err
		}
		c := b.keys.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || v == nil {
				continue // Verify reports it
			}
			pub, err := signing.ParsePublicPEM(v)
			if err != nil {
				return fmt.Errorf("%w: v1/keys entry %x: %v", ErrCorrupt, k, err)
			}
			out = append(out, KeyPeriod{KeyID: signing.KeyID(pub), FromSeq: binary.BigEndian.Uint64(k), PublicPEM: string(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s keys: %w", l.path, err)
	}
	return out, nil
}

// Signature returns the stored signature of record seq (nil if unsigned).
func (l *Ledger) Signature(ctx context.Context, seq uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sig []byte
	err := l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil || b.sigs == nil {
			return err
		}
		sig = bytes.Clone(b.sigs.Get(seqKey(seq)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s signature of record %d: %w", l.path, seq, err)
	}
	return sig, nil
}

// verKey is a key as Verify derives it from the records.
type verKey struct {
	pub  ed25519.PublicKey
	id   string
	pem  []byte
	from uint64
}

// keyFromDetails reads the key a HOST_KEY or KEY_ROTATED record introduces.
func keyFromDetails(d map[string]string) (*verKey, error) {
	if d["algorithm"] != "ed25519" {
		return nil, fmt.Errorf("algorithm %q is not ed25519", d["algorithm"])
	}
	pub, err := signing.ParsePublicBase64(d["public_key"])
	if err != nil {
		return nil, err
	}
	id := signing.KeyID(pub)
	if d["key_id"] != id {
		return nil, fmt.Errorf("key_id %q is not the id %s of its public_key", d["key_id"], id)
	}
	pemb, _ := signing.PublicPEM(pub)
	return &verKey{pub: pub, id: id, pem: pemb}, nil
}

// signature checks record seq's signature against the key in force, and
// follows HOST_KEY and KEY_ROTATED records. ev is nil when the record does
// not decode (its signature is still checked over the stored bytes).
func (v *verifier) signature(b bkts, k []byte, seq uint64, val []byte, ev *Event) {
	if v.pendingKey != nil {
		v.key, v.pendingKey = v.pendingKey, nil
		v.keyFrom(seq)
	}
	if ev != nil && ev.Type == HostKey {
		nk, err := keyFromDetails(ev.Details)
		switch {
		case err != nil:
			v.report(seq, "", "record %d is a HOST_KEY record with a malformed key: %v", seq, err)
		case v.key != nil && nk.id != v.key.id:
			v.report(seq, "", "record %d introduces host key %s while key %s is in force: a key may change only by a KEY_ROTATED record signed by the key in force",
				seq, nk.id, v.key.id)
			fallthrough
		default:
			nk.from = seq
			v.key = nk
			v.keysWant[seq] = nk.pem
			v.keyFrom(seq)
		}
		if v.hostKeySeq == 0 {
			v.hostKeySeq, v.hostKeyDetails = seq, ev.Details
		}
	}
	var sig []byte
	if b.sigs != nil {
		sig = v.gSigs.get(b.sigs, k)
	}
	if sig != nil {
		v.acc.sigs = sigsStep(v.acc.sigs, seq, sig)
	}
	if v.acc.present && seq == v.acc.sigsSize {
		v.acc.sigsWalk, v.acc.sigsSeen = v.acc.sigs, true
	}
	switch {
	case v.key == nil && sig != nil:
		v.report(seq, "", "record %d has a signature in v1/sigs but no host key is in force at that record", seq)
	case v.key == nil:
		v.stats.Unsigned++
		if v.unsignedFirst == 0 {
			v.unsignedFirst = seq
		}
		v.unsignedLast = seq
	case sig == nil:
		v.report(seq, "", "record %d: signature missing (key %s is in force since record %d)", seq, v.key.id, v.key.from)
	case v.covered(seq):
		// Vouched for by the signed tree head of this key (checked by
		// atHead below, once the walk reaches its size; if it does not
		// check out, this signature is checked on its own after the walk).
		v.acc.cover.count++
	default:
		v.sigc.check(seq, val, sig, v.key)
	}
	if ev != nil && ev.Type == KeyRotated {
		nk, err := keyFromDetails(ev.Details)
		switch {
		case v.key == nil:
			v.report(seq, "", "record %d rotates the host key but no host key is in force", seq)
		case err != nil:
			v.report(seq, "", "record %d is a KEY_ROTATED record with a malformed key: %v", seq, err)
		case ev.Details["previous_key_id"] != v.key.id:
			v.report(seq, "", "record %d rotates from key %q but key %s is in force", seq, ev.Details["previous_key_id"], v.key.id)
		}
		if err == nil {
			nk.from = seq + 1
			v.pendingKey = nk
			v.keysWant[seq+1] = nk.pem
		}
	}
	v.atHead(seq)
}

// keysIndex compares v1/keys with the keys the records introduced.
func (v *verifier) keysIndex(ctx context.Context) error {
	return v.view(ctx, func(b bkts) error {
		if b.keys == nil {
			return nil
		}
		seen := map[uint64]bool{}
		c := b.keys.Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			if len(k) != 8 || val == nil {
				v.report(0, "", "v1/keys has a malformed entry %x", k)
				continue
			}
			from := binary.BigEndian.Uint64(k)
			want, ok := v.keysWant[from]
			switch {
			case !ok && from > v.lastSeq+1:
				// A rotation racing the walk; ignore keys beyond it.
			case !ok:
				v.report(from, "", "v1/keys holds a key from record %d that no HOST_KEY or KEY_ROTATED record introduced", from)
			case !bytes.Equal(want, val):
				v.report(from, "", "v1/keys holds a different key from record %d than the record introduced", from)
			}
			seen[from] = true
		}
		for from := range v.keysWant {
			if !seen[from] {
				v.report(from, "", "the host key in force from record %d is missing from v1/keys", from)
			}
		}
		return nil
	})
}

// sigChecker verifies record signatures on every CPU: an Ed25519
// verification costs far more than the rest of a record's checks, and the
// records are independent. Failures are reported when the walk ends.
type sigChecker struct {
	jobs   chan sigJob
	wg     sync.WaitGroup
	mu     sync.Mutex
	failed []sigJob
	ok     atomic.Uint64
	closed bool
}

type sigJob struct {
	seq      uint64
	rec, sig []byte
	key      *verKey
}

func newSigChecker() *sigChecker {
	c := &sigChecker{jobs: make(chan sigJob, 1024)}
	for range runtime.GOMAXPROCS(0) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for j := range c.jobs {
				if ed25519.Verify(j.key.pub, j.rec, j.sig) {
					c.ok.Add(1)
					continue
				}
				c.mu.Lock()
				c.failed = append(c.failed, sigJob{seq: j.seq, key: j.key})
				c.mu.Unlock()
			}
		}()
	}
	return c
}

// check queues one verification; rec and sig are copied (they point into
// the transaction's pages).
func (c *sigChecker) check(seq uint64, rec, sig []byte, key *verKey) {
	c.jobs <- sigJob{seq: seq, rec: bytes.Clone(rec), sig: bytes.Clone(sig), key: key}
}

// wait ends the checker and returns the failures by seq and the number of
// good signatures. It may be called more than once.
func (c *sigChecker) wait() ([]sigJob, uint64) {
	if !c.closed {
		c.closed = true
		close(c.jobs)
	}
	c.wg.Wait()
	slices.SortFunc(c.failed, func(a, b sigJob) int { return cmp.Compare(a.seq, b.seq) })
	return c.failed, c.ok.Load()
}

// finishSignatures reports the signatures that did not verify.
func (v *verifier) finishSignatures() {
	failed, ok := v.sigc.wait()
	v.stats.Signed, v.stats.Vouched = ok+v.acc.ok, v.acc.ok
	for _, j := range failed {
		v.report(j.seq, "", "record %d: signature does not verify with key %s", j.seq, j.key.id)
	}
	v.flush()
}

// checkMetaBinding compares v1/meta with what the first HOST_KEY record
// recorded of it (created_at, migrated_from_v1), so those are covered by a
// signature too.
func (v *verifier) checkMetaBinding(b bkts) {
	if v.hostKeySeq == 0 || b.meta == nil {
		return
	}
	d := v.hostKeyDetails
	if want, ok := d["ledger_created_at"]; ok && string(b.meta.Get(metaCreatedAt)) != want {
		v.report(v.hostKeySeq, "", "v1/meta created_at %q is not the %q that HOST_KEY record %d recorded", b.meta.Get(metaCreatedAt), want, v.hostKeySeq)
	}
	m := b.meta.Get(metaMigrated)
	have := ""
	if len(m) == 8 {
		have = strconv.FormatUint(binary.BigEndian.Uint64(m), 10)
	} else if m != nil {
		have = fmt.Sprintf("%x", m)
	}
	if d["migrated_from_v1"] != have {
		v.report(v.hostKeySeq, "", "v1/meta migrated_from_v1 %q is not the %q that HOST_KEY record %d recorded", have, d["migrated_from_v1"], v.hostKeySeq)
	}
}
