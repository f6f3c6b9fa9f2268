package custody

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Sentinel errors. Errors returned by this package wrap one of these (or a
// bbolt error) and name what was being done.
var (
	// ErrNotFound: no such item (or no event names it).
	ErrNotFound = errors.New("custody: not found")
	// ErrLocked: another process (or another Ledger in this one) holds the
	// file; it wraps bbolt's timeout error.
	ErrLocked = errors.New("custody: ledger is locked by another process")
	// ErrReadOnly: Append on a ledger opened with Options.ReadOnly.
	ErrReadOnly = errors.New("custody: ledger is open read-only")
	// ErrInvalid: Append refused an event or item (bad UTF-8, missing actor,
	// an item change the ledger's rules forbid). Permanent: retrying the same
	// call fails the same way.
	ErrInvalid = errors.New("custody: invalid event or item")
	// ErrCorrupt: stored bytes do not decode. Verify reports these as
	// problems; read paths return them.
	ErrCorrupt = errors.New("custody: ledger data corrupt")
	// ErrHostMismatch: the ledger was created by another host id.
	ErrHostMismatch = errors.New("custody: ledger belongs to another host")
	// ErrSchema: the file is not a ledger this release can read.
	ErrSchema = errors.New("custody: unsupported ledger schema")
	// ErrNoSigner: an Append, RotateKey or Checkpoint that needs a signing
	// key on a ledger opened without Options.Signer. Once a ledger has a
	// host key in force, every record must be signed.
	ErrNoSigner = errors.New("custody: no signing key")
	// ErrKeyMismatch: Options.Signer is not the host key in force in the
	// ledger. A key changes only through RotateKey, signed by the old key.
	ErrKeyMismatch = errors.New("custody: signing key is not the ledger's host key in force")
	// ErrNoLedger: Options.MustExist and there is no ledger file. A read
	// command on a deleted ledger must say so, not create an empty one and
	// report it intact.
	ErrNoLedger = errors.New("custody: no ledger")
	// ErrCheckpoint: the ledger does not reproduce a checkpoint (it was
	// truncated, rewritten, forked or restored from an older copy), or the
	// checkpoint is not validly signed.
	ErrCheckpoint = errors.New("custody: ledger does not match checkpoint")
)

// Signer signs custody records and checkpoints with the host's Ed25519 key:
// Sign returns the pure Ed25519 (RFC 8032) signature of msg under the key
// whose public half Public returns. *signing.Key implements it.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
	Public() ed25519.PublicKey
}

var _ Signer = (*signing.Key)(nil)

// schemaVersion is the version kept in v1/meta. Open migrates older
// versions forward (see migrations), in one write transaction.
const schemaVersion = 2

// defaultChunk is how many records a long walk reads per read transaction.
// bbolt read transactions never block writers, but every page a read
// transaction can see stays pinned: a writer cannot reuse it, so a single
// transaction held across a walk of millions of records (while ingest keeps
// appending) makes the file grow by every page rewritten meanwhile. Short
// transactions of a bounded number of records keep the free list usable and
// also keep callbacks (which may do I/O) outside any transaction.
const defaultChunk = 10_000

var (
	bucketV1         = []byte("v1")
	bucketMeta       = []byte("meta")
	bucketEvents     = []byte("events")
	bucketItems      = []byte("items")
	bucketItemEvents = []byte("item_events")
	bucketByCamera   = []byte("by_camera")
	bucketByAssignee = []byte("by_assignee")
	bucketByTime     = []byte("by_time")
	bucketSigs       = []byte("sigs")
	bucketKeys       = []byte("keys")

	metaVersion   = []byte("version")
	metaHost      = []byte("host")
	metaCreatedAt = []byte("created_at")
	metaHeadSeq   = []byte("head_seq")
	metaHeadHash  = []byte("head_hash")
	metaTree      = []byte("tree")
	metaMigrated  = []byte("migrated_from_v1")
)

var childBuckets = [][]byte{
	bucketMeta, bucketEvents, bucketItems, bucketItemEvents,
	bucketByCamera, bucketByAssignee, bucketByTime, bucketSigs, bucketKeys,
}

// Options configure Open.
type Options struct {
	// Host is this docking-station host's id, stamped on every event. It is
	// required to create a ledger; afterwards it may be empty (the stored id
	// is used) or must equal the stored id (else ErrHostMismatch).
	Host string
	// Timeout is how long Open waits for bbolt's file lock; default 5s.
	Timeout time.Duration
	// Logger receives operational logs (never footage or personal data);
	// nil discards them.
	Logger *slog.Logger
	// ReadOnly opens with a shared lock: several read-only opens may coexist,
	// none with a writer. Append then fails with ErrReadOnly.
	ReadOnly bool
	// Signer, when set, signs every record appended (and checkpoints). The
	// first Append with a Signer on a ledger without a host key writes a
	// HOST_KEY record first; a Signer that is not the key in force is
	// refused (ErrKeyMismatch). Without a Signer a ledger is readable and
	// verifiable, and appendable only until it has a host key.
	Signer Signer
	// MustExist refuses to create the ledger: without a file at path, Open
	// fails with ErrNoLedger ("no ledger at PATH").
	MustExist bool
	// Witness, when set, is given every signed tree head an Append wrote,
	// after its transaction committed, so that a copy of the head lives
	// outside the ledger's directory (the systemd journal, a witness file):
	// someone who can rewrite the ledger but not the witness cannot trim
	// records unnoticed, anchored or not. Heads reach it in increasing
	// size, one call at a time; a head older than one already given is
	// not given. A witness error is logged, never undoes the append.
	Witness func(WitnessedHead) error
}

// WitnessedHead is one signed tree head as handed to Options.Witness.
type WitnessedHead struct {
	Size uint64
	Root tlog.Hash
	// Note is the signed checkpoint (C2SP tlog-checkpoint signed note).
	Note []byte
	// Key is the fingerprint (signing.Fingerprint) of the key that signed it.
	Key string
}

// Ledger is an open custody ledger. It is safe for concurrent use.
type Ledger struct {
	db       *bolt.DB
	path     string
	host     string
	readOnly bool
	log      *slog.Logger
	chunk    int    // records per read transaction in long walks; tests lower it
	version  uint64 // schema version of the file (1 only for a read-only open of an unmigrated ledger)

	// mu guards signer: Append holds it shared for its whole transaction,
	// RotateKey exclusively, so no record is signed by a key that is no
	// longer (or not yet) in force.
	mu     sync.RWMutex
	signer *keyInfo

	// witness is Options.Witness; witnessMu orders its calls and
	// witnessed is the largest size given to it.
	witness   func(WitnessedHead) error
	witnessMu sync.Mutex
	witnessed uint64

	// group is AppendGrouped's queue (group.go).
	group groupQueue
}

// keyInfo is a signer with its derived forms.
type keyInfo struct {
	s   Signer
	pub ed25519.PublicKey
	id  string
	pem []byte
	b64 string
}

func newKeyInfo(s Signer) (*keyInfo, error) {
	pub := s.Public()
	pemb, err := signing.PublicPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %w", ErrInvalid, err)
	}
	b64, _ := signing.PublicBase64(pub)
	return &keyInfo{s: s, pub: pub, id: signing.KeyID(pub), pem: pemb, b64: b64}, nil
}

// Open opens (creating if needed, unless read-only) the ledger at path and
// its v1 layout.
func Open(path string, o Options) (*Ledger, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.MustExist {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no ledger at %s: %w", path, ErrNoLedger)
		}
	}
	// Never NoSync: a custody step counts as done only when its record is on
	// disk. 0600 because the ledger names officers and cameras (POPIA).
	var db *bolt.DB
	err := safely(func() (err error) {
		// PreLoadFreelist: read the free list here, where a damaged one is
		// caught by safely, not later in the goroutine tx.Check starts.
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.Timeout, ReadOnly: o.ReadOnly, PreLoadFreelist: true})
		return err
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open ledger %s: %w: %w", path, ErrLocked, err)
		}
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	l := &Ledger{db: db, path: path, readOnly: o.ReadOnly, log: log, chunk: defaultChunk, witness: o.Witness}
	if o.Signer != nil {
		if l.signer, err = newKeyInfo(o.Signer); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open ledger %s: %w", path, err)
		}
	}
	err = safely(func() error {
		if o.ReadOnly {
			// Read-only opens serve verify and the read commands: make sure
			// bbolt's cursors can walk the file safely before any does.
			// (No writer can change it while the shared lock is held.)
			if err := l.checkStructure(); err != nil {
				return err
			}
			return db.View(func(tx *bolt.Tx) error { return l.checkLayout(tx, o.Host) })
		}
		return db.Update(func(tx *bolt.Tx) error { return l.initLayout(tx, o.Host) })
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	seq, _, _ := l.Head(context.Background())
	log.Info("custody ledger open", "path", path, "head_seq", seq, "read_only", o.ReadOnly)
	return l, nil
}

// initLayout creates the v1 buckets and meta of a new ledger, or checks those
// of an existing one. Buckets missing from an existing ledger are NOT
// recreated: that would paper over tampering; Verify reports them instead.
func (l *Ledger) initLayout(tx *bolt.Tx, host string) error {
	if v1 := tx.Bucket(bucketV1); v1 != nil {
		if meta := v1.Bucket(bucketMeta); meta != nil && meta.Get(metaVersion) != nil {
			if err := l.checkLayout(tx, host); err != nil {
				return err
			}
			if err := l.migrate(tx); err != nil {
				return err
			}
			return l.backfill(tx)
		}
		if ev := v1.Bucket(bucketEvents); ev != nil {
			if k, _ := ev.Cursor().First(); k != nil {
				return fmt.Errorf("%w: v1/meta has no version but v1/events has records", ErrSchema)
			}
		}
	}
	if host == "" {
		return fmt.Errorf("%w: a host id is required to create a ledger", ErrInvalid)
	}
	if err := checkString("host", host); err != nil {
		return err
	}
	v1, err := tx.CreateBucketIfNotExists(bucketV1)
	if err != nil {
		return fmt.Errorf("create bucket v1: %w", err)
	}
	for _, name := range childBuckets {
		if _, err := v1.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket v1/%s: %w", name, err)
		}
	}
	meta := v1.Bucket(bucketMeta)
	for _, kv := range [...][2][]byte{
		{metaVersion, seqKey(schemaVersion)},
		{metaHost, []byte(host)},
		{metaCreatedAt, []byte(time.Now().UTC().Format(time.RFC3339Nano))},
		{metaHeadSeq, seqKey(0)},
		{metaHeadHash, []byte(GenesisHash)},
		{metaTree, mustFrontier(tlog.Frontier{})},
	} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return fmt.Errorf("write v1/meta %s: %w", kv[0], err)
		}
	}
	if err := l.checkLayout(tx, host); err != nil {
		return err
	}
	return l.backfill(tx)
}

// checkLayout checks only what identifies the file as this schema and this
// host's ledger, so that a damaged ledger can still be opened and Verified.
func (l *Ledger) checkLayout(tx *bolt.Tx, host string) error {
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return fmt.Errorf("%w: no v1 bucket", ErrSchema)
	}
	meta := v1.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%w: no v1/meta bucket", ErrSchema)
	}
	v := meta.Get(metaVersion)
	if len(v) != 8 {
		return fmt.Errorf("%w: v1/meta version missing or malformed", ErrSchema)
	}
	n := binary.BigEndian.Uint64(v)
	if n < 1 || n > schemaVersion {
		return fmt.Errorf("%w: schema version %d, this release reads 1 to %d", ErrSchema, n, schemaVersion)
	}
	l.version = n
	stored := string(meta.Get(metaHost))
	if stored == "" {
		return fmt.Errorf("%w: v1/meta has no host id", ErrSchema)
	}
	if host != "" && host != stored {
		return fmt.Errorf("%w: created by host %q, opened as %q", ErrHostMismatch, stored, host)
	}
	l.host = stored
	return nil
}

// Close closes the file, waiting for running transactions.
func (l *Ledger) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close ledger %s: %w", l.path, err)
	}
	return nil
}

// Path is the file the ledger was opened from.
func (l *Ledger) Path() string { return l.path }

// Host is the host id stored in the ledger (stamped on every event).
func (l *Ledger) Host() string { return l.host }

// Head returns the seq and hash of the last record: (0, GenesisHash) for an
// empty ledger. Anchoring the head elsewhere (the object store) is what makes
// a truncation of the tail detectable even by someone who rewrites v1/meta.
func (l *Ledger) Head(ctx context.Context) (seq uint64, hash string, err error) {
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	err = l.db.View(func(tx *bolt.Tx) error {
		b, err := buckets(tx)
		if err != nil {
			return err
		}
		seq, hash, err = readHead(b.meta)
		return err
	})
	if err != nil {
		return 0, "", fmt.Errorf("ledger %s head: %w", l.path, err)
	}
	return seq, hash, nil
}

// Check runs bbolt's own consistency check (page structure, free list), not
// the chain check (that is Verify). On a writable ledger it holds bbolt's
// writer lock while it runs, so Appends wait for it: meant for tests and the
// verify command, not for a periodic job on a busy host.
func (l *Ledger) Check() error {
	// tx.Check is only safe alongside writers when run in a writable
	// transaction; it is rolled back, so nothing is written.
	var tx *bolt.Tx
	var err error
	if l.readOnly {
		tx, err = l.db.Begin(false)
	} else {
		tx, err = l.db.Begin(true)
	}
	if err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	defer func() { _ = tx.Rollback() }()
	// tx.Check walks the file in a goroutine of its own, where a page id
	// pointing outside the file is a fatal fault that cannot be recovered.
	// Walk every page here first, where safely turns that into ErrCorrupt.
	if err := l.checkStructure(); err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	if err := safely(func() error { return touchAll(tx) }); err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	var errs []error
	if err := safely(func() error {
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check ledger %s: %w", l.path, err)
	}
	return nil
}

// bkts are the v1 buckets of one transaction. sigs and keys are nil in a
// schema 1 ledger opened read-only.
type bkts struct {
	meta, events, items, itemEvents, byCamera, byAssignee, byTime *bolt.Bucket
	sigs, keys                                                    *bolt.Bucket
	// nodes and heads are nil in a ledger no writable Open of this release
	// has completed (see heads.go).
	nodes, heads *bolt.Bucket
}

func buckets(tx *bolt.Tx) (bkts, error) {
	v1 := tx.Bucket(bucketV1)
	if v1 == nil {
		return bkts{}, fmt.Errorf("%w: no v1 bucket", ErrSchema)
	}
	b := bkts{
		meta: v1.Bucket(bucketMeta), events: v1.Bucket(bucketEvents), items: v1.Bucket(bucketItems),
		itemEvents: v1.Bucket(bucketItemEvents), byCamera: v1.Bucket(bucketByCamera),
		byAssignee: v1.Bucket(bucketByAssignee), byTime: v1.Bucket(bucketByTime),
		sigs: v1.Bucket(bucketSigs), keys: v1.Bucket(bucketKeys),
		nodes: v1.Bucket(bucketNodes), heads: v1.Bucket(bucketHeads),
	}
	if b.meta == nil || b.events == nil || b.items == nil || b.itemEvents == nil ||
		b.byCamera == nil || b.byAssignee == nil || b.byTime == nil {
		return bkts{}, fmt.Errorf("%w: v1 bucket missing", ErrSchema)
	}
	return b, nil
}

func readHead(meta *bolt.Bucket) (uint64, string, error) {
	s, h := meta.Get(metaHeadSeq), meta.Get(metaHeadHash)
	if len(s) != 8 || !isHex64(string(h)) {
		return 0, "", fmt.Errorf("%w: v1/meta head missing or malformed", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(s), string(h), nil
}

// safely runs fn, turning a panic (bbolt panics on some corrupt pages) or a
// memory fault while reading the mapped file into an error wrapping
// ErrCorrupt, so a damaged ledger is reported, never crashes the caller.
func safely(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the database file is damaged: %v", ErrCorrupt, r)
		}
	}()
	return fn()
}

func mustFrontier(f tlog.Frontier) []byte {
	b, err := f.MarshalBinary()
	if err != nil {
		panic(err) // a Frontier built by Append always marshals
	}
	return b
}

// readTree reads the Merkle tree state kept in v1/meta.
func readTree(meta *bolt.Bucket) (tlog.Frontier, error) {
	raw := meta.Get(metaTree)
	if raw == nil {
		return tlog.Frontier{}, fmt.Errorf("%w: v1/meta has no Merkle tree state", ErrCorrupt)
	}
	f, err := tlog.UnmarshalFrontier(raw)
	if err != nil {
		return tlog.Frontier{}, fmt.Errorf("%w: v1/meta tree: %v", ErrCorrupt, err)
	}
	return f, nil
}

// keyInForce returns the PEM of the last v1/keys entry and the seq it is in
// force from (nil, 0 when the ledger has no host key).
func keyInForce(keys *bolt.Bucket) (pem []byte, from uint64) {
	if keys == nil {
		return nil, 0
	}
	k, v := keys.Cursor().Last()
	if k == nil || len(k) != 8 {
		return nil, 0
	}
	return bytes.Clone(v), binary.BigEndian.Uint64(k)
}

// touchAll reads every bucket, key and value reachable in tx (the first and
// last byte of each), so every page is visited in the calling goroutine.
func touchAll(tx *bolt.Tx) error {
	var sink byte
	touch := func(b []byte) {
		if len(b) > 0 {
			sink ^= b[0] ^ b[len(b)-1]
		}
	}
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			touch(k)
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					if err := walk(sub); err != nil {
						return err
					}
				}
				continue
			}
			touch(v)
		}
		return nil
	}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
	_ = sink
	return err
}
