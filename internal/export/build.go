package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/tsa"
)

// Sentinel errors.
var (
	// ErrIntegrity: what the ledger, the vault or the store gave does not
	// check out (a record that does not hash to the chain, a root the
	// records do not reproduce, footage with another SHA-256). Build writes
	// no package that fails its own checks.
	ErrIntegrity = errors.New("export: integrity check failed")
	// ErrLayout: a file name or archive entry outside the package layout.
	ErrLayout = errors.New("export: not in the package layout")
	// ErrNotFound: an item to export is not in the ledger.
	ErrNotFound = errors.New("export: item not found")
)

// Ledger is what Build reads from the custody ledger. *custody.Ledger
// implements it. Every method is a read; none is held across another.
type Ledger interface {
	Host() string
	// Item and Custody: the item projection and its custody by seq
	// (errors wrap custody.ErrNotFound for an unknown id).
	Item(ctx context.Context, id string) (custody.Item, error)
	Custody(ctx context.Context, id string) ([]custody.Event, error)
	// Records calls fn with the exact stored bytes of each record from
	// fromSeq, in seq order.
	Records(ctx context.Context, fromSeq uint64, fn func(seq uint64, rec []byte) error) error
	// Signature is record seq's Ed25519 signature (nil if unsigned).
	Signature(ctx context.Context, seq uint64) ([]byte, error)
	// Keys lists the host keys and the record each is in force from.
	Keys(ctx context.Context) ([]custody.KeyPeriod, error)
	// Checkpoint is the signed note of the tree now (custody.ErrNoSigner
	// when this process has no signing key); TreeHead the unsigned head.
	Checkpoint(ctx context.Context) ([]byte, error)
	TreeHead(ctx context.Context) (tlog.Checkpoint, error)
	// InclusionProof and ConsistencyProof are the ledger's Merkle proofs
	// (O(log n) reads); Build checks each against the checkpoint's root.
	InclusionProof(ctx context.Context, seq, treeSize uint64) (tlog.Proof, error)
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) (tlog.Proof, error)
}

var _ Ledger = (*custody.Ledger)(nil)

// Footage opens an item's recording (from the vault, or the object store
// when the vault no longer holds it); from names where it came from. The
// bytes are checked against the item's SHA-256 and size by Build.
type Footage interface {
	Open(ctx context.Context, it custody.Item) (rc io.ReadCloser, from string, err error)
}

// Anchors supplies the checkpoints the host anchored off the host (package
// anchor), so the package carries evidence the host cannot rewrite.
type Anchors interface {
	// Latest returns the newest anchored checkpoint whose size is at most
	// maxSize; found is false when none is anchored. It verifies nothing:
	// Build checks the note against the host keys and the ledger, and the
	// time-stamp against the note.
	Latest(ctx context.Context, maxSize uint64) (a Anchored, found bool, err error)
}

// Anchored is one checkpoint as the object store holds it.
type Anchored struct {
	Object string // its key in the store
	Size   uint64
	// Note is the signed checkpoint; Timestamp its RFC 3161 reply (nil: none).
	Note, Timestamp []byte
}

// Options say what to export and on whose behalf.
type Options struct {
	// Anchors, when set, adds the newest anchored checkpoint, its
	// time-stamp and a consistency proof to the export's checkpoint.
	Anchors Anchors
	// TSACA is the PEM of the TSA's CA certificate(s) (custody.tsa_ca),
	// added beside a time-stamp and used to check it; nil: none.
	TSACA   []byte
	IDs     []string
	Footage bool // include the recordings (needs a Footage source)
	// Facts, when it holds any, adds facts.jsonl and the items (with their
	// files, custody and proofs) the facts come from (GatherFacts).
	Facts      *FactPlan
	ExportedBy string
	Reason     string
	Tool       string    // "evidenced <version>"
	Now        time.Time // the export time; zero: time.Now
}

// Summary says what Build wrote.
type Summary struct {
	Items, Records, Signatures int
	FootageBytes               int64
	Facts                      int // lines of facts.jsonl
	TreeSize                   uint64
	Root                       string
	CheckpointSigned           bool
}

// Build writes the package for o.IDs to sink. The caller records the access
// (an ACCESSED event per item) before calling Build, so the export's own
// record is part of the package. On any error the sink's output must be
// discarded.
func Build(ctx context.Context, l Ledger, src Footage, sink Sink, o Options) (Summary, error) {
	var sum Summary
	ids := dedupe(o.IDs)
	if len(ids) == 0 {
		return sum, fmt.Errorf("export: no items")
	}
	withFacts := o.Facts != nil && len(o.Facts.Facts) > 0
	if (o.Footage || withFacts) && src == nil {
		return sum, fmt.Errorf("export: footage or facts asked for but no footage source")
	}
	// The facts' sources and crops are items of the package like the
	// recordings, carrying their files.
	carried := map[string]bool{}
	if withFacts {
		for _, id := range o.Facts.Items {
			carried[id] = true
		}
		ids = dedupe(append(ids, o.Facts.Items...))
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	host := l.Host()

	// 1. Each item and its custody, consistent with each other.
	items := make([]*itemData, 0, len(ids))
	need := map[uint64]bool{}
	for _, id := range ids {
		d, err := readItem(ctx, l, id)
		if err != nil {
			return sum, err
		}
		items = append(items, d)
		for _, ev := range d.events {
			need[ev.Seq] = true
		}
	}

	// 2. The checkpoint, taken after the custody was read, so it covers it.
	keys, err := l.Keys(ctx)
	if err != nil {
		return sum, fmt.Errorf("export: host keys: %w", err)
	}
	info := &Info{
		Format: Format, Tool: o.Tool, Documents: documentsVersion, Host: host, ExportedAt: now.UTC().Round(0), ExportedBy: o.ExportedBy,
		Reason: o.Reason, Items: ids, Footage: o.Footage, Keys: []KeyRef{},
	}
	if withFacts {
		info.Files, info.Facts = slices.Clone(o.Facts.Items), factsName
	}
	for _, k := range keys {
		info.Keys = append(info.Keys, KeyRef{KeyID: k.KeyID, FromSeq: k.FromSeq, File: keyPath(k.KeyID)})
	}
	cpBytes, cp, signed, err := checkpoint(ctx, l, host, keys)
	if err != nil {
		return sum, err
	}
	info.Checkpoint, info.Signed, info.TreeSize, info.Root = checkpointPath(cp.Size, signed), signed, cp.Size, cp.Root.String()
	// Each later key's KEY_ROTATED record, signed by the key before it, is
	// what lets a verifier who trusts the first key accept the next one.
	for _, k := range keys[min(1, len(keys)):] {
		if k.FromSeq >= 2 && k.FromSeq-1 <= cp.Size {
			need[k.FromSeq-1] = true
		}
	}

	seqs := make([]uint64, 0, len(need))
	for s := range need {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	// 3. The exact bytes of the records the package holds, each with its
	// inclusion proof in the checkpoint's tree, checked against the
	// checkpoint's root: O(log n) reads per record, not a walk of the
	// ledger (that is verify's job).
	recs, proofs, err := proveRecords(ctx, l, cp, seqs)
	if err != nil {
		return sum, err
	}
	for _, d := range items {
		for i, ev := range d.events {
			rec, ok := recs[ev.Seq]
			if !ok {
				return sum, fmt.Errorf("export: %w: record %d of item %s is beyond the checkpoint of size %d", ErrIntegrity, ev.Seq, d.item.ID, cp.Size)
			}
			again, err := custody.DecodeRecord(rec)
			if err != nil || again.Hash != ev.Hash {
				return sum, fmt.Errorf("export: %w: record %d changed between reads (%v)", ErrIntegrity, ev.Seq, err)
			}
			d.events[i] = again
		}
	}

	// 3b. The checkpoint anchored off the host, bound to the export's.
	var anchored *anchoredFiles
	if o.Anchors != nil {
		if anchored, err = anchoredEvidence(ctx, l, o.Anchors, o.TSACA, host, keys, cp); err != nil {
			return sum, err
		}
		if anchored != nil {
			info.Anchored = &anchored.ref
			if anchored.ref.Checkpoint == info.Checkpoint {
				cpBytes = anchored.note // the same checkpoint: the anchored bytes
			}
		}
	}

	m := &manifest{sink: sink, sums: map[string]string{}}
	// 4. Records, signatures, proofs.
	sigs := map[uint64]bool{}
	for _, s := range seqs {
		rec := recs[s]
		if err := m.put(recordPath(s), rec); err != nil {
			return sum, err
		}
		sig, err := l.Signature(ctx, s)
		if err != nil {
			return sum, fmt.Errorf("export: %w", err)
		}
		if sig != nil {
			if err := m.put(sigPath(s), sig); err != nil {
				return sum, err
			}
			sigs[s] = true
			sum.Signatures++
		}
		p := Proof{
			Algorithm: proofAlgorithm, Seq: s, Record: recordPath(s), LeafIndex: s - 1, TreeSize: cp.Size,
			LeafHash: tlog.LeafHash(rec).String(), Checkpoint: info.Checkpoint, Root: cp.Root.String(), Hashes: []string{},
		}
		for _, h := range proofs[s] {
			p.Hashes = append(p.Hashes, h.String())
		}
		if err := m.putJSON(proofPath(s), p); err != nil {
			return sum, err
		}
	}
	// 5. Host keys and the checkpoint.
	for _, k := range keys {
		if err := m.put(keyPath(k.KeyID), []byte(k.PublicPEM)); err != nil {
			return sum, err
		}
	}
	if err := m.put(info.Checkpoint, cpBytes); err != nil {
		return sum, err
	}
	if anchored != nil {
		if err := anchored.write(m, info.Checkpoint); err != nil {
			return sum, err
		}
	}
	// 6. Items.
	for _, d := range items {
		dir := itemDir(d.item.ID)
		if err := m.put(dir+"/item.json", d.itemBytes); err != nil {
			return sum, err
		}
		es := entries(info, d.events, sigs)
		if err := m.putJSON(dir+"/custody.json", Custody{Item: d.item.ID, Entries: es}); err != nil {
			return sum, err
		}
		c, err := renderCSV(es)
		if err != nil {
			return sum, fmt.Errorf("export: custody.csv of %s: %w", d.item.ID, err)
		}
		if err := m.put(dir+"/custody.csv", c); err != nil {
			return sum, err
		}
		if o.Footage || carried[d.item.ID] {
			n, err := m.putFootage(ctx, src, d.item)
			if err != nil {
				return sum, err
			}
			sum.FootageBytes += n
		}
	}
	var facts []Fact
	if withFacts {
		facts = o.Facts.Facts
		b, err := renderFacts(facts)
		if err != nil {
			return sum, err
		}
		if err := m.put(factsName, b); err != nil {
			return sum, err
		}
		sum.Facts = len(facts)
	}
	// 7. package.json, VERIFY.md, report.html, then the manifest.
	if err := m.putJSON(infoName, info); err != nil {
		return sum, err
	}
	v, err := renderVerify(info, items, sigs, facts)
	if err != nil {
		return sum, err
	}
	if err := m.put(verifyName, v); err != nil {
		return sum, err
	}
	r, err := renderReport(info, items, sigs, facts)
	if err != nil {
		return sum, err
	}
	if err := m.put(reportName, r); err != nil {
		return sum, err
	}
	mf := m.render()
	if err := sink.Put(manifestName, int64(len(mf)), bytes.NewReader(mf)); err != nil {
		return sum, err
	}
	sum.Items, sum.Records, sum.TreeSize, sum.Root, sum.CheckpointSigned = len(items), len(seqs), cp.Size, cp.Root.String(), signed
	return sum, nil
}

func dedupe(ids []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// readItem reads an item and its custody so that the item bytes are the ones
// the last item-writing record in the custody hashed (item_hash): an upload
// landing between the two reads is retried.
func readItem(ctx context.Context, l Ledger, id string) (*itemData, error) {
	var last string
	for range 5 {
		it, err := l.Item(ctx, id)
		if errors.Is(err, custody.ErrNotFound) {
			return nil, fmt.Errorf("export: item %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		evs, err := l.Custody(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		b, err := encodeItem(it)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		last = lastItemHash(evs)
		if last == digest.Bytes(b).Hex() {
			return &itemData{item: it, itemBytes: b, events: evs}, nil
		}
	}
	return nil, fmt.Errorf("export: %w: item %s does not hash to item_hash %s of its last record; run evidenced verify", ErrIntegrity, id, last)
}

// lastItemHash is the item_hash of the last record in evs that wrote the
// item.
func lastItemHash(evs []custody.Event) string {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].ItemHash != "" {
			return evs[i].ItemHash
		}
	}
	return ""
}

// checkpoint returns the signed checkpoint note, or the unsigned tree head
// when this process has no signing key.
func checkpoint(ctx context.Context, l Ledger, host string, keys []custody.KeyPeriod) ([]byte, tlog.Checkpoint, bool, error) {
	msg, err := l.Checkpoint(ctx)
	if errors.Is(err, custody.ErrNoSigner) {
		c, err := l.TreeHead(ctx)
		if err != nil {
			return nil, c, false, fmt.Errorf("export: tree head: %w", err)
		}
		text, err := c.Marshal()
		if err != nil {
			return nil, c, false, fmt.Errorf("export: tree head: %w", err)
		}
		return text, c, false, nil
	}
	if err != nil {
		return nil, tlog.Checkpoint{}, false, fmt.Errorf("export: checkpoint: %w", err)
	}
	if len(keys) == 0 {
		return nil, tlog.Checkpoint{}, false, fmt.Errorf("export: %w: a signed checkpoint but no host key in the ledger", ErrIntegrity)
	}
	pub, err := signing.ParsePublicPEM([]byte(keys[len(keys)-1].PublicPEM))
	if err != nil {
		return nil, tlog.Checkpoint{}, false, fmt.Errorf("export: host key: %w", err)
	}
	v, err := signing.NoteVerifier(host, pub)
	if err != nil {
		return nil, tlog.Checkpoint{}, false, fmt.Errorf("export: host key: %w", err)
	}
	c, err := tlog.OpenCheckpoint(msg, custody.CheckpointOrigin(host), v)
	if err != nil {
		return nil, tlog.Checkpoint{}, false, fmt.Errorf("export: %w: the checkpoint does not verify with the key in force: %w", ErrIntegrity, err)
	}
	return msg, c, true, nil
}

var errStop = errors.New("stop")

// proveRecords reads records seqs (those within the checkpoint) and their
// inclusion proofs in the checkpoint's tree, and checks each proof against
// the checkpoint's root: a package is never written with a proof that
// does not verify (a damaged stored node, or records that are not the ones
// the checkpoint covers).
func proveRecords(ctx context.Context, l Ledger, cp tlog.Checkpoint, seqs []uint64) (map[uint64][]byte, map[uint64][]tlog.Hash, error) {
	recs, proofs := map[uint64][]byte{}, map[uint64][]tlog.Hash{}
	for _, s := range seqs {
		if s > cp.Size {
			continue // Build names it
		}
		var rec []byte
		err := l.Records(ctx, s, func(seq uint64, b []byte) error {
			if seq == s {
				rec = b
			}
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, nil, fmt.Errorf("export: read record %d: %w", s, err)
		}
		if rec == nil {
			return nil, nil, fmt.Errorf("export: %w: record %d is missing", ErrIntegrity, s)
		}
		p, err := l.InclusionProof(ctx, s, cp.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("export: inclusion proof of record %d: %w", s, err)
		}
		if err := tlog.VerifyInclusion(tlog.LeafHash(rec), s-1, cp.Size, p.Hashes, cp.Root); err != nil {
			return nil, nil, fmt.Errorf("export: %w: record %d is not in the checkpoint's tree of %d records (root %s): %v; run evidenced verify",
				ErrIntegrity, s, cp.Size, cp.Root, err)
		}
		recs[s], proofs[s] = rec, p.Hashes
	}
	return recs, proofs, nil
}

// manifest writes files through to the sink and keeps their SHA-256.
type manifest struct {
	sink Sink
	sums map[string]string
}

func (m *manifest) put(name string, b []byte) error {
	if _, dup := m.sums[name]; dup {
		return fmt.Errorf("export: %w: %s written twice", ErrLayout, name)
	}
	if err := m.sink.Put(name, int64(len(b)), bytes.NewReader(b)); err != nil {
		return err
	}
	m.sums[name] = digest.Bytes(b).Hex()
	return nil
}

func (m *manifest) putJSON(name string, v any) error {
	b, err := renderJSON(v)
	if err != nil {
		return fmt.Errorf("export: %s: %w", name, err)
	}
	return m.put(name, b)
}

// putFootage copies the recording, hashing the same bytes it writes; it
// counts only if the SHA-256 and size equal the recorded ones.
func (m *manifest) putFootage(ctx context.Context, src Footage, it custody.Item) (int64, error) {
	name := footagePath(it)
	rc, from, err := src.Open(ctx, it)
	if err != nil {
		return 0, fmt.Errorf("export: footage of %s: %w", it.ID, err)
	}
	defer rc.Close()
	h := digest.New()
	if err := m.sink.Put(name, it.Size, io.TeeReader(rc, h)); err != nil {
		return 0, fmt.Errorf("export: footage of %s from the %s: %w", it.ID, from, err)
	}
	var one [1]byte
	if n, _ := io.ReadFull(rc, one[:]); n != 0 {
		return 0, fmt.Errorf("export: %w: footage of %s from the %s is longer than the recorded %d bytes", ErrIntegrity, it.ID, from, it.Size)
	}
	got := digest.FromHash(h).Hex()
	if got != it.SHA256 {
		return 0, fmt.Errorf("export: %w: footage of %s from the %s hashes %s, recorded %s", ErrIntegrity, it.ID, from, got, it.SHA256)
	}
	m.sums[name] = got
	return it.Size, nil
}

// render is MANIFEST.sha256: "<hex>  <path>\n" per file, sorted by path,
// the format `sha256sum -c` reads.
func (m *manifest) render() []byte {
	names := make([]string, 0, len(m.sums))
	for n := range m.sums {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(m.sums[n] + "  " + n + "\n")
	}
	return []byte(b.String())
}

// anchoredFiles is what the package carries of the anchored checkpoint.
type anchoredFiles struct {
	ref                         AnchoredRef
	note, proof, tsr, tsaCAFile []byte
}

// anchoredEvidence fetches the newest checkpoint anchored at or below the
// export's and checks it as verify-export will: signed by a host key, its
// tree a prefix of the export's (the ledger's consistency proof leads from
// its root to the checkpoint's), its time-stamp over its
// bytes (and signed by a TSA chaining to tsaCA, when given). A package is
// never written with anchored evidence that does not check out: the ledger
// and the store disagree, and `evidenced verify --remote` says how.
func anchoredEvidence(ctx context.Context, l Ledger, src Anchors, tsaCA []byte, host string, keys []custody.KeyPeriod,
	cp tlog.Checkpoint) (*anchoredFiles, error) {
	a, found, err := src.Latest(ctx, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("export: the anchored checkpoints: %w", err)
	}
	if !found {
		return nil, nil
	}
	if a.Size == 0 || a.Size > cp.Size {
		return nil, fmt.Errorf("export: anchored checkpoint %s of size %d is not within the export's %d", a.Object, a.Size, cp.Size)
	}
	ac, err := openWithKeys(a.Note, host, keys)
	if err != nil {
		return nil, fmt.Errorf("export: %w: anchored checkpoint %s: %w; run evidenced verify --remote", ErrIntegrity, a.Object, err)
	}
	if ac.Size != a.Size {
		return nil, fmt.Errorf("export: %w: anchored checkpoint %s holds size %d", ErrIntegrity, a.Object, ac.Size)
	}
	// The anchored tree must be a prefix of the export's: the consistency
	// proof between them (from the ledger's stored nodes) must lead from the
	// anchored root to the checkpoint's.
	var hashes []tlog.Hash
	if a.Size < cp.Size {
		p, err := l.ConsistencyProof(ctx, a.Size, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("export: consistency proof %d→%d: %w", a.Size, cp.Size, err)
		}
		hashes = p.Hashes
	}
	if err := tlog.VerifyConsistency(a.Size, cp.Size, ac.Root, cp.Root, hashes); err != nil {
		return nil, fmt.Errorf("export: %w: the ledger's first %d records do not have the root %s that the anchored checkpoint %s says: %v; run evidenced verify --remote",
			ErrIntegrity, a.Size, ac.Root, a.Object, err)
	}
	f := &anchoredFiles{note: a.Note, ref: AnchoredRef{
		Object: a.Object, Checkpoint: anchoredPath(a.Size), TreeSize: a.Size, Root: ac.Root.String(),
	}}
	if a.Size < cp.Size {
		var err error
		if f.proof, err = (tlog.Proof{Kind: tlog.Consistency, A: a.Size, B: cp.Size, Hashes: hashes}).Marshal(); err != nil {
			return nil, fmt.Errorf("export: consistency proof %d→%d: %w", a.Size, cp.Size, err)
		}
		f.ref.Consistency = consistencyPath(cp.Size)
	}
	if a.Timestamp != nil {
		tok, err := tsa.ParseResponse(a.Timestamp, digest.Bytes(a.Note), nil)
		if err != nil {
			return nil, fmt.Errorf("export: %w: the time-stamp of anchored checkpoint %s: %w", ErrIntegrity, a.Object, err)
		}
		if len(tsaCA) > 0 {
			roots, err := tsa.ParseRoots("custody.tsa_ca", tsaCA)
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			if err := tok.Verify(roots); err != nil {
				return nil, fmt.Errorf("export: %w: the time-stamp of anchored checkpoint %s: %w", ErrIntegrity, a.Object, err)
			}
			f.tsaCAFile, f.ref.TSACA = tsaCA, tsaCAPath
		}
		gt := tok.GenTime.UTC()
		f.tsr, f.ref.Timestamp, f.ref.TimestampTime = a.Timestamp, timestampPath(a.Size), &gt
	}
	return f, nil
}

// write puts the anchored files; the note only when it is not already the
// export's checkpoint (exportCheckpoint).
func (f *anchoredFiles) write(m *manifest, exportCheckpoint string) error {
	if f.ref.Checkpoint != exportCheckpoint {
		if err := m.put(f.ref.Checkpoint, f.note); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		name string
		b    []byte
	}{{f.ref.Consistency, f.proof}, {f.ref.Timestamp, f.tsr}, {f.ref.TSACA, f.tsaCAFile}} {
		if x.name == "" {
			continue
		}
		if err := m.put(x.name, x.b); err != nil {
			return err
		}
	}
	return nil
}

// openWithKeys opens a signed checkpoint of host with whichever host key
// signed it.
func openWithKeys(msg []byte, host string, keys []custody.KeyPeriod) (tlog.Checkpoint, error) {
	err := errors.New("no host key in the ledger")
	for _, k := range keys {
		pub, perr := signing.ParsePublicPEM([]byte(k.PublicPEM))
		if perr != nil {
			err = perr
			continue
		}
		v, verr := signing.NoteVerifier(host, pub)
		if verr != nil {
			err = verr
			continue
		}
		c, oerr := tlog.OpenCheckpoint(msg, custody.CheckpointOrigin(host), v)
		if oerr == nil {
			return c, nil
		}
		err = fmt.Errorf("does not verify with any host key: %w", oerr)
	}
	return tlog.Checkpoint{}, err
}
