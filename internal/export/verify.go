package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/tsa"
)

// Problem is one thing in a package that does not check out.
type Problem struct {
	File string // package-relative path
	Msg  string
}

func (p Problem) String() string { return p.File + ": " + p.Msg }

// Result is what Verify found.
type Result struct {
	Problems []Problem
	Notices  []string
	Info     *Info // nil when package.json is unusable
	// Counts of what was checked and held.
	Files, Items, Records, Signatures, Proofs, Footage int
	// Facts counts the lines of facts.jsonl that re-parsing their source
	// file gave back exactly; Carried the sidecar files and crop images
	// they come from that match their recorded SHA-256.
	Facts, Carried int
	// Anchored is true when the package's anchored checkpoint (signed by
	// an accepted key), its consistency with the export's checkpoint and
	// (when present) its time-stamp's binding to it all check out;
	// Timestamped when the time-stamp also verified against the TSA CA
	// given from outside the package (Trust.TSACA).
	Anchored, Timestamped bool
	// Keys are the package's host keys that were accepted, and why.
	Keys []KeyTrust
	// PackageKeyTrusted is true when the first key was accepted only
	// because the verifier asked to trust the package's own key: the
	// result then proves nothing about who made the package, and any
	// report of it must say so first.
	PackageKeyTrusted bool
	// Unsigned counts records accepted without a signature of their own
	// (before the host had a key) because a trusted checkpoint's tree
	// holds them, or because unsigned records were allowed.
	Unsigned int
	// ManifestSHA256 is the SHA-256 of MANIFEST.sha256: the one value that
	// fixes the whole package (the custodian writes it on the certificate).
	ManifestSHA256 string
	// Fleet is the fleet.json of a console's package (FleetFormat); nil
	// for a dock host's.
	Fleet *FleetInfo
}

// OK reports a package with no problems.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// maxSmallFile bounds the package files Verify reads whole (all but
// footage, which is streamed).
const maxSmallFile = 64 << 20

type verifier struct {
	ctx   context.Context
	dir   string
	res   *Result
	files map[string]bool   // every regular file, slash paths
	sums  map[string]string // SHA-256 of every regular file
	sizes map[string]int64
	info  *Info
	cp    tlog.Checkpoint
	cpOK  bool
	keys  map[string]ed25519.PublicKey // by file, as the package has them
	// trusted are the package keys trustKeys accepted, by file: the only
	// keys any signature is checked with.
	trusted   map[string]ed25519.PublicKey
	trust     Trust
	tsaRoots  *x509.CertPool // from Trust.TSACA; nil: none given
	cpTrusted bool           // the checkpoint's signature is by an accepted key
	recs      map[uint64][]byte
	evs       map[uint64]custody.Event
	sigs      map[uint64]bool
	expect    map[string]bool // files the layout accounts for
}

// Verify checks the package in dir against what the verifier trusts (see
// Trust; with nothing trusted it returns ErrNoTrust and reads nothing): the
// manifest, every record's hash and the prev_hash links between records
// present, each custody.json and custody.csv against the record bytes, the
// package's host keys against the trusted ones and their KEY_ROTATED
// records, each signature against the accepted keys, each inclusion proof
// against the checkpoint root, the checkpoint's signature, item.json
// against the item_hash of its last record, the footage against the
// recorded SHA-256, the time-stamp against the TSA CA given from outside,
// and report.html and VERIFY.md against what the records say (when the
// package's documents version is the one this evidenced writes; otherwise
// a notice says they were not compared). Each problem
// names the file. The error is for a package that cannot be read at all,
// or trust input that is unusable.
func Verify(ctx context.Context, dir string, trust Trust) (*Result, error) {
	if trust.empty() {
		return nil, ErrNoTrust
	}
	var roots *x509.CertPool
	if trust.TSACA != nil {
		var err error
		if roots, err = tsa.ParseRoots("the TSA CA given", trust.TSACA); err != nil {
			return nil, fmt.Errorf("verify export %s: %w", dir, err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("verify export %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("verify export %s: not a directory", dir)
	}
	v := &verifier{
		ctx: ctx, dir: dir, res: &Result{}, files: map[string]bool{}, sums: map[string]string{}, sizes: map[string]int64{},
		keys: map[string]ed25519.PublicKey{}, recs: map[uint64][]byte{}, evs: map[uint64]custody.Event{},
		sigs: map[uint64]bool{}, expect: map[string]bool{manifestName: true},
		trusted: map[string]ed25519.PublicKey{}, trust: trust, tsaRoots: roots,
	}
	if err := v.scan(); err != nil {
		return nil, err
	}
	v.manifest()
	v.res.Files = len(v.files)
	if isFleet(v.files) {
		v.verifyFleet()
		v.extraFiles()
		return v.res, ctx.Err()
	}
	if v.info = v.readInfo(); v.info == nil {
		return v.res, nil
	}
	v.res.Info = v.info
	v.hostKeys()
	seqs := v.loadRecords()
	v.trustKeys()
	v.checkpoint()
	v.anchored()
	v.records(seqs)
	items := v.items()
	facts := v.checkFacts(factsSection{infoFile: infoName, facts: v.info.Facts, files: v.info.Files}, items)
	v.derived(items, facts)
	v.extraFiles()
	return v.res, ctx.Err()
}

// extraFiles names every file the layout does not account for.
func (v *verifier) extraFiles() {
	for _, f := range sortedSet(v.files) {
		if !v.expect[f] {
			v.problem(f, "is not part of the package layout (an extra file)")
		}
	}
}

func (v *verifier) problem(file, format string, args ...any) {
	v.res.Problems = append(v.res.Problems, Problem{File: file, Msg: fmt.Sprintf(format, args...)})
}

// scan lists and hashes every file; anything but a regular file or a
// directory is a problem (a symlink could point outside the package).
func (v *verifier) scan() error {
	return filepath.WalkDir(v.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("verify export %s: %w", v.dir, err)
		}
		if err := v.ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(v.dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			v.problem(rel, "is not a regular file (%v)", d.Type())
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			v.problem(rel, "cannot be read: %v", err)
			return nil
		}
		defer f.Close()
		sum, n, err := digest.Reader(f)
		if err != nil {
			v.problem(rel, "cannot be read: %v", err)
			return nil
		}
		v.files[rel], v.sums[rel], v.sizes[rel] = true, sum.Hex(), n
		return nil
	})
}

func (v *verifier) read(name string) ([]byte, bool) {
	if !v.files[name] {
		v.problem(name, "is missing")
		return nil, false
	}
	if v.sizes[name] > maxSmallFile {
		v.problem(name, "is %d bytes, more than any file of this kind can be", v.sizes[name])
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(v.dir, filepath.FromSlash(name)))
	if err != nil {
		v.problem(name, "cannot be read: %v", err)
		return nil, false
	}
	if digest.Bytes(b).Hex() != v.sums[name] {
		v.problem(name, "changed while being verified")
		return nil, false
	}
	return b, true
}

// manifest checks MANIFEST.sha256 both ways: every line's file has that
// hash, and every file is on a line.
func (v *verifier) manifest() {
	b, ok := v.read(manifestName)
	if !ok {
		return
	}
	v.res.ManifestSHA256 = digest.Bytes(b).Hex()
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || !isHex(sum) || checkName(name) != nil {
			v.problem(manifestName, "line %d is not \"<sha256>  <path>\": %q", n, line)
			continue
		}
		if listed[name] {
			v.problem(manifestName, "line %d lists %s a second time", n, name)
			continue
		}
		listed[name] = true
		switch {
		case name == manifestName:
			v.problem(manifestName, "line %d lists the manifest itself", n)
		case !v.files[name]:
			v.problem(name, "is listed in %s (line %d) but missing", manifestName, n)
		case v.sums[name] != sum:
			v.problem(name, "has SHA-256 %s but %s (line %d) says %s: the file or the manifest was changed", v.sums[name], manifestName, n, sum)
		}
	}
	if err := sc.Err(); err != nil {
		v.problem(manifestName, "cannot be read: %v", err)
	}
	for _, f := range sortedSet(v.files) {
		if f != manifestName && !listed[f] {
			v.problem(f, "is not listed in %s", manifestName)
		}
	}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// strictJSON decodes b into v refusing unknown fields, and requires b to be
// exactly the form renderJSON writes.
func strictJSON(b []byte, val any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(val); err != nil {
		return err
	}
	again, err := renderJSON(val)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, b) {
		return fmt.Errorf("not in the form evidenced writes (edited?)")
	}
	return nil
}

func (v *verifier) readInfo() *Info {
	v.expect[infoName] = true
	b, ok := v.read(infoName)
	if !ok {
		return nil
	}
	var in Info
	if err := strictJSON(b, &in); err != nil {
		v.problem(infoName, "%v", err)
		return nil
	}
	if in.Format != Format {
		v.problem(infoName, "format %q, this verifier reads %q", in.Format, Format)
		return nil
	}
	return &in
}

func (v *verifier) hostKeys() {
	var last uint64
	for i, k := range v.info.Keys {
		if k.File != keyPath(k.KeyID) {
			v.problem(infoName, "key %d: file %q, want %q", i+1, k.File, keyPath(k.KeyID))
			continue
		}
		v.expect[k.File] = true
		if i > 0 && k.FromSeq <= last {
			v.problem(infoName, "key %s from record %d does not follow the previous key's record %d", k.KeyID, k.FromSeq, last)
		}
		last = k.FromSeq
		b, ok := v.read(k.File)
		if !ok {
			continue
		}
		pub, err := signing.ParsePublicPEM(b)
		if err != nil {
			v.problem(k.File, "%v", err)
			continue
		}
		if id := signing.KeyID(pub); id != k.KeyID {
			v.problem(k.File, "holds the key with id %s, not %s (SHA-256 of its DER form)", id, k.KeyID)
			continue
		}
		v.keys[k.File] = pub
	}
}

func (v *verifier) checkpoint() {
	in := v.info
	name := in.Checkpoint
	if name != checkpointPath(in.TreeSize, in.Signed) {
		v.problem(infoName, "checkpoint %q, want %q", name, checkpointPath(in.TreeSize, in.Signed))
		return
	}
	v.expect[name] = true
	b, ok := v.read(name)
	if !ok {
		return
	}
	origin := custody.CheckpointOrigin(in.Host)
	var c tlog.Checkpoint
	if in.Signed {
		var errs []string
		found := false
		for _, k := range in.Keys {
			pub, ok := v.trusted[k.File]
			if !ok {
				continue
			}
			nv, err := signing.NoteVerifier(in.Host, pub)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if c, err = tlog.OpenCheckpoint(b, origin, nv); err == nil {
				found = true
				break
			}
			errs = append(errs, k.File+": "+err.Error())
		}
		if !found {
			v.problem(name, "signature does not verify with any accepted host key (%s)", strings.Join(errs, "; "))
			return
		}
		v.cpTrusted = true
	} else {
		var err error
		if c, err = tlog.ParseCheckpoint(b); err != nil {
			v.problem(name, "%v", err)
			return
		}
		if c.Origin != origin {
			v.problem(name, "origin %q, want %q", c.Origin, origin)
			return
		}
		if v.trust.AllowUnsigned {
			v.res.Notices = append(v.res.Notices, name+" is not signed (allowed): the host had no signing key at export; compare its root with an independently obtained checkpoint")
		} else {
			v.problem(name, "is not signed: nothing vouches for the tree it describes (allow unsigned packages explicitly to accept it)")
		}
	}
	if c.Size != in.TreeSize || c.Root.String() != in.Root {
		v.problem(infoName, "says tree size %d root %s, %s says size %d root %s", in.TreeSize, in.Root, name, c.Size, c.Root)
		return
	}
	v.cp, v.cpOK = c, true
}

// loadRecords reads and decodes each record file and returns their seqs in
// order; records checks them.
func (v *verifier) loadRecords() []uint64 {
	var seqs []uint64
	for f := range v.files {
		rest, ok := strings.CutPrefix(f, "records/")
		if !ok {
			continue
		}
		base, ext, _ := strings.Cut(rest, ".")
		seq, err := strconv.ParseUint(base, 10, 64)
		if err != nil || seq == 0 || strconv.FormatUint(seq, 10) != base || (ext != "json" && ext != "sig") {
			continue // reported as an extra file
		}
		if ext == "json" {
			seqs = append(seqs, seq)
		} else if !v.files[recordPath(seq)] {
			v.expect[f] = true
			v.problem(recordPath(seq), "is missing, but its signature %s is present: the record was removed", f)
		}
	}
	for f := range v.files {
		rest, ok := strings.CutPrefix(f, "proofs/")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(rest, ".json"), 10, 64)
		if err == nil && proofPath(seq) == f && !v.files[recordPath(seq)] {
			v.expect[f] = true
			v.problem(recordPath(seq), "is missing, but its inclusion proof %s is present: the record was removed", f)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		name := recordPath(seq)
		v.expect[name] = true
		b, ok := v.read(name)
		if !ok {
			continue
		}
		ev, err := custody.DecodeRecord(b)
		if err != nil {
			v.problem(name, "is not a canonical custody record: %v", err)
			continue
		}
		if ev.Seq != seq {
			v.problem(name, "holds record %d", ev.Seq)
			continue
		}
		if ev.Host != v.info.Host {
			v.problem(name, "is a record of host %q, the package is of host %q", ev.Host, v.info.Host)
		}
		v.recs[seq], v.evs[seq] = b, ev
	}
	return seqs
}

// records checks each record's links to its neighbours, its inclusion
// proof and its signature.
func (v *verifier) records(seqs []uint64) {
	for _, seq := range seqs {
		ev, ok := v.evs[seq]
		if !ok {
			continue
		}
		switch prev, ok := v.evs[seq-1]; {
		case seq == 1 && ev.PrevHash != custody.GenesisHash:
			v.problem(recordPath(seq), "is record 1 but its prev_hash %s is not the genesis hash", ev.PrevHash)
		case ok && ev.PrevHash != prev.Hash:
			v.problem(recordPath(seq), "prev_hash %s is not the hash %s of %s: the chain is broken here", ev.PrevHash, prev.Hash, recordPath(seq-1))
		}
		proven := v.proof(seq)
		v.signature(seq, proven)
	}
	v.res.Records = len(v.evs)
}

// signature checks record seq's signature. When it fails, the record is
// blamed if the checkpoint's tree does not hold it either (proven false),
// else the signature file.
func (v *verifier) signature(seq uint64, proven bool) {
	name := sigPath(seq)
	k := v.info.keyFor(seq)
	has := v.files[name]
	switch {
	case k == nil && has:
		v.expect[name] = true
		v.problem(name, "signs record %d, but no host key in package.json is in force at that record", seq)
		return
	case k == nil:
		v.unsigned(seq, proven)
		return
	case !has:
		v.problem(name, "is missing: host key %s signs every record from %d", k.KeyID, k.FromSeq)
		return
	}
	v.expect[name] = true
	v.sigs[seq] = true
	sig, ok := v.read(name)
	if !ok {
		return
	}
	pub, ok := v.trusted[k.File]
	if !ok {
		if _, usable := v.keys[k.File]; usable {
			v.problem(name, "is by host key %s, which is not accepted: record %d is not vouched for", k.File, seq)
		} else {
			v.problem(name, "cannot be checked: %s is unusable", k.File)
		}
		return
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, v.recs[seq], sig) {
		if !proven && v.cpOK {
			v.problem(recordPath(seq), "does not match its signature %s (key %s) either: the record was changed", name, k.File)
			return
		}
		v.problem(name, "does not verify with %s over %s: the signature was changed", k.File, recordPath(seq))
		return
	}
	v.res.Signatures++
}

// unsigned decides about a record no host key was in force for (written
// before the host had a key): it counts when its inclusion proof holds in a
// checkpoint signed by an accepted key (that signature covers it), or when
// unsigned records are allowed; otherwise it is a problem.
func (v *verifier) unsigned(seq uint64, proven bool) {
	switch {
	case proven && v.cpTrusted:
	case v.trust.AllowUnsigned:
	default:
		v.problem(recordPath(seq), "has no signature and no checkpoint signed by an accepted key holds it: nothing vouches for it (allow unsigned records explicitly to accept it)")
		return
	}
	v.res.Unsigned++
}

// readQuiet reads a small file that may be absent without reporting it
// (the check that needs it reports).
func (v *verifier) readQuiet(name string) ([]byte, bool) {
	if !v.files[name] || v.sizes[name] > maxSmallFile {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(v.dir, filepath.FromSlash(name)))
	if err != nil || digest.Bytes(b).Hex() != v.sums[name] {
		return nil, false
	}
	return b, true
}

// proof checks record seq's inclusion proof and reports whether the record
// is proven to be in the checkpoint's tree. A proof that holds for its own
// leaf_hash but not for the record's bytes means the record was changed; a
// proof that does not hold at all means the proof was.
func (v *verifier) proof(seq uint64) bool {
	name := proofPath(seq)
	v.expect[name] = true
	b, ok := v.read(name)
	if !ok || !v.cpOK {
		return false
	}
	var p Proof
	if err := strictJSON(b, &p); err != nil {
		v.problem(name, "%v", err)
		return false
	}
	switch {
	case p.Seq != seq || p.Record != recordPath(seq) || p.LeafIndex != seq-1:
		v.problem(name, "is for record %d (%s, leaf %d), not record %d", p.Seq, p.Record, p.LeafIndex, seq)
		return false
	case p.Checkpoint != v.info.Checkpoint || p.TreeSize != v.cp.Size || p.Root != v.cp.Root.String():
		v.problem(name, "is against tree size %d root %s (%s), the package's checkpoint has size %d root %s",
			p.TreeSize, p.Root, p.Checkpoint, v.cp.Size, v.cp.Root)
		return false
	}
	hashes := make([]tlog.Hash, 0, len(p.Hashes))
	for i, s := range p.Hashes {
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			v.problem(name, "hash %d %q is not 64 hex digits", i+1, s)
			return false
		}
		hashes = append(hashes, tlog.Hash(raw))
	}
	leaf := tlog.LeafHash(v.recs[seq])
	if err := tlog.VerifyInclusion(leaf, seq-1, v.cp.Size, hashes, v.cp.Root); err == nil {
		if p.LeafHash != leaf.String() {
			v.problem(name, "leaf_hash %s is not the leaf hash %s of %s", p.LeafHash, leaf, recordPath(seq))
		}
		v.res.Proofs++
		return true
	}
	raw, err := hex.DecodeString(p.LeafHash)
	if err == nil && len(raw) == tlog.HashSize && tlog.VerifyInclusion(tlog.Hash(raw), seq-1, v.cp.Size, hashes, v.cp.Root) == nil {
		v.problem(recordPath(seq), "is not the record the checkpoint's tree holds at leaf %d (its leaf hash is %s, %s proves %s): the record was changed",
			seq-1, leaf, name, p.LeafHash)
		return false
	}
	v.problem(name, "does not prove %s is in the checkpoint's tree (size %d, root %s): the proof was changed", recordPath(seq), v.cp.Size, v.cp.Root)
	return false
}

// items checks each item's files against the records and returns what the
// derived files are regenerated from.
func (v *verifier) items() []*itemData {
	var out []*itemData
	for _, id := range v.info.Items {
		if checkName(itemDir(id)) != nil || strings.Contains(id, "/") {
			v.problem(infoName, "item id %q cannot be a directory name", id)
			continue
		}
		if d := v.item(id); d != nil {
			out = append(out, d)
			v.res.Items++
		}
	}
	return out
}

func (v *verifier) item(id string) *itemData {
	dir := itemDir(id)
	itemFile, custodyFile, csvFile := dir+"/item.json", dir+"/custody.json", dir+"/custody.csv"
	for _, f := range []string{itemFile, custodyFile, csvFile} {
		v.expect[f] = true
	}
	ib, ok := v.read(itemFile)
	if !ok {
		return nil
	}
	it, err := decodeItem(ib)
	if err != nil {
		v.problem(itemFile, "%v", err)
		return nil
	}
	if it.ID != id {
		v.problem(itemFile, "is item %q, not %q", it.ID, id)
		return nil
	}
	cb, ok := v.read(custodyFile)
	if !ok {
		return nil
	}
	var c Custody
	dec := json.NewDecoder(bytes.NewReader(cb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		v.problem(custodyFile, "%v", err)
		return nil
	}
	if c.Item != id {
		v.problem(custodyFile, "is the custody of %q, not %q", c.Item, id)
	}
	// The events: the ones custody.json names, each checked field by field
	// against its record.
	d := &itemData{item: it, itemBytes: ib}
	named := map[uint64]bool{}
	var last uint64
	for i, e := range c.Entries {
		if i > 0 && e.Seq <= last {
			v.problem(custodyFile, "event %d (seq %d) is out of order after seq %d", i+1, e.Seq, last)
		}
		last = e.Seq
		ev, ok := v.evs[e.Seq]
		if !ok {
			if !v.files[recordPath(e.Seq)] {
				v.problem(recordPath(e.Seq), "is missing, but %s names it: the record was removed", custodyFile)
			}
			continue
		}
		named[e.Seq] = true
		d.events = append(d.events, ev)
		want := entries(v.info, []custody.Event{ev}, v.sigs)[0]
		if diff := entryDiff(e, want); diff != "" {
			v.problem(custodyFile, "event seq %d: %s", e.Seq, diff)
		}
	}
	if want, err := renderJSON(Custody{Item: id, Entries: entries(v.info, d.events, v.sigs)}); err == nil && !bytes.Equal(want, cb) {
		if len(v.res.Problems) == 0 || v.res.Problems[len(v.res.Problems)-1].File != custodyFile {
			v.problem(custodyFile, "is not what its records say (%s)", firstDiff(cb, want))
		}
	}
	// Every record in the package that names the item is in its custody,
	// and so is the DOCKED record that began it.
	for seq, ev := range v.evs {
		if (ev.Item == id || (seq == it.DockSeq && ev.Type == custody.Docked)) && !named[seq] {
			v.problem(custodyFile, "leaves out %s, which belongs to this item's custody", recordPath(seq))
		}
	}
	if it.DockSeq != 0 && !named[it.DockSeq] {
		v.problem(custodyFile, "leaves out the DOCKED record %d the item names", it.DockSeq)
	}
	if csvb, ok := v.read(csvFile); ok {
		want, err := renderCSV(entries(v.info, d.events, v.sigs))
		if err == nil && !bytes.Equal(want, csvb) {
			v.problem(csvFile, "is not what its records say (%s)", firstDiff(csvb, want))
		}
	}
	// item.json is bound to the chain: its SHA-256 is the item_hash of the
	// last record that wrote it; its content hash is the recorded one.
	if h := lastItemHash(d.events); h != digest.Bytes(ib).Hex() {
		v.problem(itemFile, "has SHA-256 %s, but the last record that wrote the item says item_hash %q", digest.Bytes(ib).Hex(), h)
	}
	for _, ev := range d.events {
		if (ev.Type == custody.Copied || ev.Type == custody.Vaulted) && ev.SHA256 != it.SHA256 {
			v.problem(itemFile, "sha256 %s, but %s (%s) recorded %s", it.SHA256, recordPath(ev.Seq), ev.Type, ev.SHA256)
		}
		if ev.Type == custody.Copied && ev.Details["size"] != "" && ev.Details["size"] != strconv.FormatInt(it.Size, 10) {
			v.problem(itemFile, "size %d, but %s (COPIED) recorded %s bytes", it.Size, recordPath(ev.Seq), ev.Details["size"])
		}
	}
	if carried := slices.Contains(v.info.Files, id); v.info.Footage || carried {
		v.heldFile(infoName, it, carried)
	}
	return d
}

// heldFile checks an item's file in the package (footage, or a sidecar or
// crop image carried for facts) against the recorded SHA-256 and size.
func (v *verifier) heldFile(infoFile string, it custody.Item, carried bool) {
	f := footagePath(it)
	v.expect[f] = true
	switch {
	case !v.files[f]:
		v.problem(f, "is missing (%s says the file is included)", infoFile)
	case v.sums[f] != it.SHA256 || v.sizes[f] != it.Size:
		v.problem(f, "has SHA-256 %s (%d bytes), but the recorded SHA-256 is %s (%d bytes): it is not the file that came off the camera",
			v.sums[f], v.sizes[f], it.SHA256, it.Size)
	case carried:
		v.res.Carried++
	default:
		v.res.Footage++
	}
}

// entryDiff names the first field of a custody.json entry that differs
// from its record.
func entryDiff(got, want Entry) string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	t := gv.Type()
	for i := range t.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
			return fmt.Sprintf("%s is %v but %s says %v", name, gv.Field(i).Interface(), want.Record, wv.Field(i).Interface())
		}
	}
	return ""
}

// firstDiff describes where two texts first differ, by line.
func firstDiff(got, want []byte) string {
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			return fmt.Sprintf("line %d is %.80q, expected %.80q", i+1, g, w)
		}
	}
	return "differs"
}

// derived regenerates report.html and VERIFY.md from the checked data.
func (v *verifier) derived(items []*itemData, facts []Fact) {
	v.expect[reportName], v.expect[verifyName] = true, true
	// The report and VERIFY.md are regenerated from the items' files: when
	// one of those does not check out, the regeneration follows the edit,
	// and a difference would blame the report for what was changed in the
	// item. The changed file is already named; the derived ones are not
	// compared.
	var bad []string
	for _, p := range v.res.Problems {
		if (p.File == factsName || strings.HasPrefix(p.File, "items/") && (strings.HasSuffix(p.File, "/item.json") || strings.HasSuffix(p.File, "/custody.json"))) &&
			!slices.Contains(bad, p.File) {
			bad = append(bad, p.File)
		}
	}
	if len(bad) > 0 {
		v.res.Notices = append(v.res.Notices, fmt.Sprintf("%s and %s not compared: they are regenerated from %s, which does not check out",
			reportName, verifyName, strings.Join(bad, ", ")))
		return
	}
	// Only documents of the version this evidenced writes can be
	// regenerated byte for byte. Another version's wording is not a
	// finding, so it is not a problem (exit 3 means something is wrong);
	// the notice says the documents were not compared. Nothing that proves
	// custody depends on them, so a package.json that claims another
	// version to avoid the comparison gains a forger nothing: the records,
	// proofs, signatures and files above were checked all the same (see
	// docs/THREAT-MODEL.md).
	switch n := v.info.Documents; {
	case n < documentsVersion:
		v.res.Notices = append(v.res.Notices, fmt.Sprintf("%s and %s were written by documents version %d, this evidenced writes %d: not compared; the records, proofs, signatures and files were checked",
			reportName, verifyName, n, documentsVersion))
		v.present(reportName, verifyName)
		return
	case n > documentsVersion:
		v.res.Notices = append(v.res.Notices, fmt.Sprintf("%s and %s were written by documents version %d, newer than this evidenced knows (it writes %d): not compared; verify with a newer evidenced to compare them (the records, proofs, signatures and files were checked)",
			reportName, verifyName, n, documentsVersion))
		v.present(reportName, verifyName)
		return
	}
	for _, f := range []struct {
		name   string
		render func(*Info, []*itemData, map[uint64]bool, []Fact) ([]byte, error)
	}{{reportName, renderReport}, {verifyName, renderVerify}} {
		got, ok := v.read(f.name)
		if !ok {
			continue
		}
		want, err := f.render(v.info, items, v.sigs, facts)
		if err != nil {
			v.problem(f.name, "cannot be regenerated: %v", err)
			continue
		}
		if !bytes.Equal(got, want) {
			v.problem(f.name, "does not say what the package's records say (%s)", firstDiff(got, want))
		}
	}
}

// present reads each file for what the layout asks of it (there, a regular
// file, readable) without comparing its content.
func (v *verifier) present(names ...string) {
	for _, n := range names {
		v.read(n)
	}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// anchored checks the checkpoint the host anchored off the host: signed by
// an accepted host key, consistent with the export's checkpoint (so every
// record up to its size is in the anchored tree), and time-stamped over its
// exact bytes by a TSA chaining to the TSA CA given from outside.
func (v *verifier) anchored() {
	a := v.info.Anchored
	if a == nil {
		return
	}
	in := v.info
	switch {
	case a.TreeSize == 0 || a.TreeSize > in.TreeSize:
		v.problem(infoName, "anchored checkpoint of size %d is not within the export's checkpoint of size %d", a.TreeSize, in.TreeSize)
		return
	case a.Checkpoint != anchoredPath(a.TreeSize):
		v.problem(infoName, "anchored checkpoint %q, want %q", a.Checkpoint, anchoredPath(a.TreeSize))
		return
	case (a.TreeSize == in.TreeSize) != (a.Consistency == ""),
		a.Consistency != "" && a.Consistency != consistencyPath(in.TreeSize):
		v.problem(infoName, "anchored consistency proof %q does not fit sizes %d→%d", a.Consistency, a.TreeSize, in.TreeSize)
		return
	case a.Timestamp != "" && a.Timestamp != timestampPath(a.TreeSize),
		a.Timestamp == "" && (a.TimestampTime != nil || a.TSACA != ""),
		a.TSACA != "" && a.TSACA != tsaCAPath:
		v.problem(infoName, "anchored time-stamp %q / TSA CA %q are not where the layout puts them", a.Timestamp, a.TSACA)
		return
	}
	for _, f := range []string{a.Checkpoint, a.Consistency, a.Timestamp, a.TSACA} {
		if f != "" {
			v.expect[f] = true
		}
	}
	b, ok := v.read(a.Checkpoint)
	if !ok {
		return
	}
	var c tlog.Checkpoint
	var errs []string
	found := false
	for _, k := range in.Keys {
		pub, ok := v.trusted[k.File]
		if !ok {
			continue
		}
		nv, err := signing.NoteVerifier(in.Host, pub)
		if err != nil {
			continue
		}
		var err2 error
		if c, err2 = tlog.OpenCheckpoint(b, custody.CheckpointOrigin(in.Host), nv); err2 == nil {
			found = true
			break
		}
		errs = append(errs, k.File+": "+err2.Error())
	}
	if !found {
		v.problem(a.Checkpoint, "the anchored checkpoint's signature does not verify with any accepted host key (%s)", strings.Join(errs, "; "))
		return
	}
	if c.Size != a.TreeSize || c.Root.String() != a.Root {
		v.problem(infoName, "says the anchored checkpoint has size %d root %s, %s says size %d root %s", a.TreeSize, a.Root, a.Checkpoint, c.Size, c.Root)
		return
	}
	consistent := false
	switch {
	case !v.cpOK:
	case a.Consistency == "":
		if c.Root != v.cp.Root {
			v.problem(a.Checkpoint, "has root %s, the export's checkpoint %s of the same size %s", c.Root, in.Checkpoint, v.cp.Root)
		} else {
			consistent = true
		}
	default:
		pb, ok := v.read(a.Consistency)
		if !ok {
			break
		}
		p, err := tlog.ParseProof(pb)
		switch {
		case err != nil:
			v.problem(a.Consistency, "not a proof: %v", err)
		case p.Kind != tlog.Consistency || p.A != c.Size || p.B != v.cp.Size:
			v.problem(a.Consistency, "is a %s proof %d→%d, want consistency %d→%d", p.Kind, p.A, p.B, c.Size, v.cp.Size)
		case p.Verify(tlog.Hash{}, c.Root, v.cp.Root) != nil:
			v.problem(a.Consistency, "does not prove the export's checkpoint (size %d, root %s) extends the anchored one (size %d, root %s)",
				v.cp.Size, v.cp.Root, c.Size, c.Root)
		default:
			consistent = true
		}
	}
	stamped := true
	if a.Timestamp != "" {
		stamped = v.timestamp(a, b)
	}
	v.res.Anchored = consistent && stamped
}

// timestamp checks the anchored checkpoint's RFC 3161 reply.
func (v *verifier) timestamp(a *AnchoredRef, noteBytes []byte) bool {
	b, ok := v.read(a.Timestamp)
	if !ok {
		return false
	}
	tok, err := tsa.ParseResponse(b, digest.Bytes(noteBytes), nil)
	if err != nil {
		v.problem(a.Timestamp, "is not a time-stamp of %s: %v", a.Checkpoint, err)
		return false
	}
	if a.TimestampTime == nil || !a.TimestampTime.Equal(tok.GenTime) {
		v.problem(infoName, "says the anchored checkpoint was time-stamped at %v, %s says %s", a.TimestampTime, a.Timestamp, tok.GenTime.Format(time.RFC3339))
		return false
	}
	// A CA in the package is the forger's to choose: the time-stamp is
	// attributed to a TSA only with a CA given from outside.
	if v.tsaRoots == nil {
		v.res.Notices = append(v.res.Notices, a.Timestamp+" is checked against its checkpoint only: no TSA CA was given from outside the package (the package's own "+
			tsaCAPath+", if any, is informational); check it with `openssl ts -verify` and the TSA's published CA")
		return true
	}
	if err := tok.Verify(v.tsaRoots); err != nil {
		v.problem(a.Timestamp, "the time-stamp does not verify with the TSA CA given: %v", err)
		return false
	}
	v.res.Timestamped = true
	return true
}
