package custody

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// State is where an item is in its life. An item exists only once it is
// vaulted; the later states require an event of the same name (Append refuses
// an item in state "uploaded" unless an UPLOADED event names it, and the same
// for "verified").
type State string

// Item states.
const (
	StateVaulted  State = "vaulted"
	StateUploaded State = "uploaded"
	StateVerified State = "verified"
)

func (s State) valid() bool {
	return s == StateVaulted || s == StateUploaded || s == StateVerified
}

// Item is the projection of the ledger that find and upload use: the current
// state of one piece of footage. It is written only by Append, in the same
// transaction as the event that changed it, and that event's ItemHash is the
// hash of the stored item bytes.
type Item struct {
	ID         string `json:"id"`
	Camera     string `json:"camera"`
	Kind       string `json:"kind"`
	AssignedTo string `json:"assigned_to"`
	SourcePath string `json:"source_path"` // relative to the camera root, display form (valid UTF-8)
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`

	RecordedAt time.Time `json:"recorded_at"`
	IngestedAt time.Time `json:"ingested_at"`

	State State `json:"state"`

	VaultPath string `json:"vault_path"`
	ObjectKey string `json:"object_key"`
	VersionID string `json:"version_id"`

	RetentionClass string    `json:"retention_class"`
	RetainUntil    time.Time `json:"retain_until,omitzero"`

	Host    string `json:"host"`
	DockSeq uint64 `json:"dock_seq"` // seq of the DOCKED event of the dock that vaulted it

	UploadAttempts int    `json:"upload_attempts,omitempty"`
	LastError      string `json:"last_error,omitempty"`
}

// maxNameLen bounds identifiers that become bbolt bucket names or key parts.
const maxNameLen = 1024

// validateItem checks what a caller supplies.
func validateItem(it Item) error {
	if it.ID == "" {
		return fmt.Errorf("%w: item id is empty", ErrInvalid)
	}
	for _, f := range [...]struct{ name, v string }{
		{"item id", it.ID}, {"item camera", it.Camera}, {"item assigned_to", it.AssignedTo},
	} {
		if len(f.v) > maxNameLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, f.name, maxNameLen)
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"item id", it.ID}, {"item camera", it.Camera}, {"item kind", it.Kind},
		{"item assigned_to", it.AssignedTo}, {"item source_path", it.SourcePath},
		{"item sha256", it.SHA256}, {"item state", string(it.State)},
		{"item vault_path", it.VaultPath}, {"item object_key", it.ObjectKey},
		{"item version_id", it.VersionID}, {"item retention_class", it.RetentionClass},
		{"item host", it.Host}, {"item last_error", it.LastError},
	} {
		if err := checkString(f.name, f.v); err != nil {
			return err
		}
	}
	if !isHex64(it.SHA256) {
		return fmt.Errorf("%w: item %s sha256 %q is not 64 lower-case hex digits", ErrInvalid, it.ID, it.SHA256)
	}
	if it.Size < 0 {
		return fmt.Errorf("%w: item %s size %d is negative", ErrInvalid, it.ID, it.Size)
	}
	if !it.State.valid() {
		return fmt.Errorf("%w: item %s state %q is not vaulted, uploaded or verified", ErrInvalid, it.ID, it.State)
	}
	for _, f := range [...]struct {
		name string
		t    time.Time
	}{{"recorded_at", it.RecordedAt}, {"ingested_at", it.IngestedAt}, {"retain_until", it.RetainUntil}} {
		if y := f.t.Year(); !f.t.IsZero() && (y < 1 || y > 9999) {
			return fmt.Errorf("%w: item %s %s %v outside years 1-9999", ErrInvalid, it.ID, f.name, f.t)
		}
	}
	return nil
}

// normalizeItem puts times in UTC without monotonic readings, so the stored
// JSON (and so its hash) depends only on the instant.
func normalizeItem(it *Item) {
	it.RecordedAt = it.RecordedAt.UTC().Round(0)
	it.IngestedAt = it.IngestedAt.UTC().Round(0)
	it.RetainUntil = it.RetainUntil.UTC().Round(0)
}

// encodeItem is the stored form of an item: encoding/json of the struct
// (fixed field order) without HTML escaping and without a trailing newline.
func encodeItem(it Item) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(it); err != nil {
		return nil, fmt.Errorf("encode item %s: %w", it.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeItem(b []byte) (Item, error) {
	if it, ok := decodeItemFast(b); ok {
		return it, nil
	}
	var it Item
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return Item{}, fmt.Errorf("%w: item: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return Item{}, fmt.Errorf("%w: item: trailing data", ErrCorrupt)
	}
	return it, nil
}

// Index keys are 8-byte big-endian Unix nanoseconds of RecordedAt followed by
// the item id, so a cursor walks items by RecordedAt then ID. Times before
// 1970 (cameras with an unset clock) clamp to 0 and times after 2262 clamp to
// MaxInt64: such items still sort first or last, by ID among themselves.
func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, clampNanos(t))
	return append(k, id...)
}

var maxNanoTime = time.Unix(0, math.MaxInt64)

func clampNanos(t time.Time) uint64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return uint64(t.UnixNano())
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}
