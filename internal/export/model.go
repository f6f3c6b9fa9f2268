package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// Format names this package layout; Verify refuses any other.
const Format = "evidenced-export/v1"

// Info is package.json: what was exported, by whom, why and against which
// checkpoint.
type Info struct {
	Format string `json:"format"`
	Tool   string `json:"tool"`
	// Documents is the version of the derived documents' text (report.html
	// and VERIFY.md, see documentsVersion) the exporting evidenced wrote;
	// absent, 0, in packages exported before the text was numbered. Verify
	// compares the documents byte for byte only when it writes the same
	// version: a package from an earlier release is not failed because the
	// wording has moved on since.
	Documents  uint      `json:"documents,omitempty"`
	Host       string    `json:"host"`
	ExportedAt time.Time `json:"exported_at"`
	ExportedBy string    `json:"exported_by"`
	Reason     string    `json:"reason"`
	Items      []string  `json:"items"`
	Footage    bool      `json:"footage"`
	// Files are the items whose held file the package carries whatever
	// Footage says: the sidecar files and plate-crop images that the facts
	// in Facts (facts.jsonl) come from, so each fact is checked offline
	// against the bytes it was read from. Both are absent from a package
	// without facts.
	Files []string `json:"files,omitempty"`
	Facts string   `json:"facts,omitempty"`
	// Checkpoint is the path of the checkpoint file; Signed tells a signed
	// note (.note) from an unsigned tree head (.txt).
	Checkpoint string `json:"checkpoint"`
	Signed     bool   `json:"checkpoint_signed"`
	TreeSize   uint64 `json:"tree_size"`
	Root       string `json:"root"` // lower hex
	// Keys are the host keys, oldest first; each signs the records from
	// FromSeq up to the next key's FromSeq-1. Records before the first key's
	// FromSeq are unsigned (a ledger from before signing).
	Keys []KeyRef `json:"keys"`
	// Anchored is the newest checkpoint the host anchored in the object
	// store under Object Lock at or below TreeSize, tying the package to
	// evidence the host cannot rewrite; nil when the host anchors nothing
	// (no object store) or had not anchored yet.
	Anchored *AnchoredRef `json:"anchored,omitempty"`
}

// AnchoredRef is the anchored checkpoint in the package and what ties it
// to the export's checkpoint.
type AnchoredRef struct {
	// Object is its key in the object store (relative to the configured
	// prefix): _custody/<host>/checkpoints/<size>.note.
	Object string `json:"object"`
	// Checkpoint is the package file: checkpoints/<size>.note, the
	// anchored bytes (the export's own checkpoint when the sizes are equal).
	Checkpoint string `json:"checkpoint"`
	TreeSize   uint64 `json:"tree_size"`
	Root       string `json:"root"` // lower hex
	// Consistency is checkpoints/<export size>.proof: the RFC 9162
	// consistency proof from this tree to the export's ("" when the sizes
	// are equal), so every record of the package up to TreeSize is in the
	// anchored tree.
	Consistency string `json:"consistency"`
	// Timestamp is checkpoints/<size>.tsr, the RFC 3161 reply over the
	// SHA-256 of the note's bytes as anchored ("" when none); TimestampTime
	// is the TSA's time in it. TSACA is checkpoints/tsa-ca.pem, the TSA CA
	// certificate(s) the host was configured with ("" when none).
	Timestamp     string     `json:"timestamp"`
	TimestampTime *time.Time `json:"timestamp_time,omitempty"`
	TSACA         string     `json:"tsa_ca"`
}

// KeyRef is one host key in the package.
type KeyRef struct {
	KeyID   string `json:"key_id"`
	FromSeq uint64 `json:"from_seq"`
	File    string `json:"file"`
}

// keyFor returns the key that signs seq, or nil for an unsigned record.
func (in *Info) keyFor(seq uint64) *KeyRef {
	var k *KeyRef
	for i := range in.Keys {
		if in.Keys[i].FromSeq <= seq {
			k = &in.Keys[i]
		}
	}
	return k
}

// Entry is one custody event in custody.json: the record's fields (exactly
// what records/<seq>.json says) and the files that prove it.
type Entry struct {
	Seq       uint64            `json:"seq"`
	Type      string            `json:"type"`
	At        string            `json:"at"` // as in the record
	Host      string            `json:"host"`
	Actor     string            `json:"actor"`
	Camera    string            `json:"camera"`
	Item      string            `json:"item"`
	SHA256    string            `json:"sha256"`
	Details   map[string]string `json:"details"`
	ItemHash  string            `json:"item_hash"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
	Record    string            `json:"record"`
	Signature string            `json:"signature"`  // "" when unsigned
	PublicKey string            `json:"public_key"` // "" when unsigned
	Proof     string            `json:"proof"`
}

// Custody is custody.json.
type Custody struct {
	Item    string  `json:"item"`
	Entries []Entry `json:"events"`
}

// Proof is proofs/<seq>.json: the RFC 6962 (RFC 9162 section 2.1.3)
// inclusion proof of a record's leaf in the checkpoint's tree.
type Proof struct {
	Algorithm  string   `json:"algorithm"`
	Seq        uint64   `json:"seq"`
	Record     string   `json:"record"`
	LeafIndex  uint64   `json:"leaf_index"`
	TreeSize   uint64   `json:"tree_size"`
	LeafHash   string   `json:"leaf_hash"` // SHA-256(0x00 || record bytes), hex
	Checkpoint string   `json:"checkpoint"`
	Root       string   `json:"root"` // hex
	Hashes     []string `json:"hashes"`
}

const proofAlgorithm = "RFC 6962 Merkle tree, SHA-256; leaf = SHA-256(0x00 || record), node = SHA-256(0x01 || left || right)"

// Package file names.
const (
	manifestName = "MANIFEST.sha256"
	verifyName   = "VERIFY.md"
	reportName   = "report.html"
	infoName     = "package.json"
)

func recordPath(seq uint64) string { return "records/" + strconv.FormatUint(seq, 10) + ".json" }
func sigPath(seq uint64) string    { return "records/" + strconv.FormatUint(seq, 10) + ".sig" }
func proofPath(seq uint64) string  { return "proofs/" + strconv.FormatUint(seq, 10) + ".json" }
func itemDir(id string) string     { return "items/" + id }
func keyPath(id string) string     { return "host/" + id + ".pem" }

func anchoredPath(size uint64) string { return "checkpoints/" + strconv.FormatUint(size, 10) + ".note" }
func consistencyPath(size uint64) string {
	return "checkpoints/" + strconv.FormatUint(size, 10) + ".proof"
}
func timestampPath(size uint64) string { return "checkpoints/" + strconv.FormatUint(size, 10) + ".tsr" }

const tsaCAPath = "checkpoints/tsa-ca.pem"

func checkpointPath(size uint64, signed bool) string {
	if signed {
		return "checkpoints/" + strconv.FormatUint(size, 10) + ".note"
	}
	return "checkpoints/" + strconv.FormatUint(size, 10) + ".txt"
}

// footagePath keeps the source's extension (lower-case, alphanumeric, at
// most 8 characters) so the file opens in a player; names from the camera
// never become package paths.
func footagePath(it custody.Item) string {
	ext := strings.ToLower(path.Ext(it.SourcePath))
	if len(ext) < 2 || len(ext) > 9 || strings.ContainsFunc(ext[1:], func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) {
		ext = ""
	}
	return itemDir(it.ID) + "/footage" + ext
}

// itemData is what the derived files of one item are made of.
type itemData struct {
	item      custody.Item
	itemBytes []byte
	events    []custody.Event // by seq, decoded from the package's record bytes
}

// entries builds custody.json's entries from the records.
func entries(in *Info, evs []custody.Event, sigs map[uint64]bool) []Entry {
	out := make([]Entry, 0, len(evs))
	for _, ev := range evs {
		d := ev.Details
		if d == nil {
			d = map[string]string{}
		}
		e := Entry{
			Seq: ev.Seq, Type: string(ev.Type), At: ev.At.UTC().Format(time.RFC3339Nano), Host: ev.Host,
			Actor: ev.Actor, Camera: ev.Camera, Item: ev.Item, SHA256: ev.SHA256, Details: d,
			ItemHash: ev.ItemHash, PrevHash: ev.PrevHash, Hash: ev.Hash,
			Record: recordPath(ev.Seq), Proof: proofPath(ev.Seq),
		}
		if k := in.keyFor(ev.Seq); k != nil && sigs[ev.Seq] {
			e.Signature, e.PublicKey = sigPath(ev.Seq), k.File
		}
		out = append(out, e)
	}
	return out
}

// renderJSON is the one JSON form of the package's JSON files: two-space
// indent, no HTML escaping, a trailing newline.
func renderJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeItem is the ledger's stored form of an item (see the custody
// package documentation): encoding/json of the struct, no HTML escaping, no
// trailing newline. Its SHA-256 is the item_hash of the record that wrote it.
func encodeItem(it custody.Item) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(it); err != nil {
		return nil, fmt.Errorf("encode item %s: %w", it.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func decodeItem(b []byte) (custody.Item, error) {
	var it custody.Item
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return custody.Item{}, err
	}
	if dec.More() {
		return custody.Item{}, fmt.Errorf("data after the item")
	}
	again, err := encodeItem(it)
	if err != nil {
		return custody.Item{}, err
	}
	if !bytes.Equal(again, b) {
		return custody.Item{}, fmt.Errorf("not in the form the ledger stores")
	}
	return it, nil
}

// csvHeader puts the columns that never need quoting (numbers, hashes,
// package paths) first, so `cut -d, -f1-7` reads them reliably.
var csvHeader = []string{
	"seq", "hash", "prev_hash", "record", "signature", "public_key", "proof",
	"type", "at", "host", "actor", "camera", "item", "sha256", "item_hash", "details",
}

// renderCSV is custody.csv: one row per entry, details as k=v joined by
// "; " in key order (RFC 4180 quoting; CRLF line ends as RFC 4180 says).
func renderCSV(es []Entry) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	for _, e := range es {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make([]string, len(keys))
		for i, k := range keys {
			d[i] = k + "=" + e.Details[k]
		}
		if err := w.Write([]string{
			strconv.FormatUint(e.Seq, 10), e.Hash, e.PrevHash, e.Record, e.Signature, e.PublicKey, e.Proof,
			e.Type, e.At, e.Host, e.Actor, e.Camera, e.Item, e.SHA256, e.ItemHash, strings.Join(d, "; "),
		}); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}
