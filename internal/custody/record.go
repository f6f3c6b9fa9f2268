package custody

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/evidenced/evidenced/internal/digest"
)

// EventType names a custody step. Types are upper-case ASCII words joined by
// underscores; the constants below are the ones evidenced writes, but the
// record format accepts any name of that shape so a later release can add a
// step without a schema change.
type EventType string

// NeverWipe is the VAULTED detail that keeps the item's camera file from
// ever being wiped, saying why (a camera the inventory had retired when it
// docked): the wipe rule reads it from the item's own custody, so the
// promise holds whatever configuration or inventory is in force later.
const NeverWipe = "never_wipe"

// Custody steps.
const (
	Docked        EventType = "DOCKED"         // a camera appeared on a bay (Camera set)
	Copied        EventType = "COPIED"         // a file was copied off a camera and hashed (Item, SHA256)
	Vaulted       EventType = "VAULTED"        // the copy was verified in the vault; creates the Item
	Uploaded      EventType = "UPLOADED"       // the object store acknowledged the object (Item, SHA256)
	Verified      EventType = "VERIFIED"       // the stored object was read back and its hash matched (Item, SHA256)
	Accessed      EventType = "ACCESSED"       // a person opened or retrieved an item; Details say why
	Refused       EventType = "REFUSED"        // a request or device was refused; Details say why
	UnknownDevice EventType = "UNKNOWN_DEVICE" // a device not in the camera inventory was docked
	RetiredDocked EventType = "RETIRED_DOCKED" // an alert: a camera the inventory retired docked (ingested, never wiped)
	SafeToUndock  EventType = "SAFE_TO_UNDOCK" // everything on a docked camera is vaulted
	Undocked      EventType = "UNDOCKED"       // a camera left its bay
	CopyFailed    EventType = "COPY_FAILED"    // a copy attempt failed; Details say why
	UploadFailed  EventType = "UPLOAD_FAILED"  // an upload attempt failed; Details say why
	HostStarted   EventType = "HOST_STARTED"   // the daemon started on this host

	// UploadStarted records a multipart upload id (with key, part size and
	// part count) before its first part is sent, so a restart resumes it and
	// no upload is ever left in the store that the ledger does not name.
	UploadStarted EventType = "UPLOAD_STARTED"
	// UploadParts records parts of a multipart upload the store acknowledged
	// (number, SHA-256, ETag), batched; the store's ListParts stays the truth
	// for what it holds.
	UploadParts EventType = "UPLOAD_PARTS"
	// UploadAborted records a multipart upload given up (superseded, gone
	// from the store, or abandoned) and aborted.
	UploadAborted EventType = "UPLOAD_ABORTED"

	// VerifyFailed records a read-back whose hash did NOT match. It exists so
	// that VERIFIED always means "matched": Append and Verify require the
	// SHA256 of COPIED/VAULTED/UPLOADED/VERIFIED events naming a vaulted item to
	// equal the item's, so a mismatching observation must use this type.
	VerifyFailed EventType = "VERIFY_FAILED"
	// RetentionChanged records a change of an item's retention class or
	// retain-until date (an investigator categorising footage).
	RetentionChanged EventType = "RETENTION_CHANGED"

	// Legal holds (issue #5): one HOLD_SET per case that holds an item, one
	// HOLD_RELEASED when that case lets go; the object's own legal hold is
	// off only once no case holds it. Details: case, reason, legal_hold.
	HoldSet      EventType = "HOLD_SET"
	HoldReleased EventType = "HOLD_RELEASED"

	// The wipe rule (issue #5, package wipe): a camera file is deleted only
	// after WIPE_STARTED (the source's identity), one WIPE_CHECKED per
	// condition that held (Details check = stream_vault, store, lock or
	// source), and WIPE_UNLINKING (the intent, so a crash after the unlink
	// is told apart from a file someone else removed); WIPED records the
	// deletion. WIPE_REFUSED ends an attempt whose check failed; the file
	// stays on the camera.
	WipeStarted   EventType = "WIPE_STARTED"
	WipeChecked   EventType = "WIPE_CHECKED"
	WipeUnlinking EventType = "WIPE_UNLINKING"
	Wiped         EventType = "WIPED"
	WipeRefused   EventType = "WIPE_REFUSED"
	// VaultReleased records the removal of a verified item's vault copy
	// after the configured grace (the object store holds it).
	VaultReleased EventType = "VAULT_RELEASED"

	// Sidecar parsing (package facts): PARSED records that a vaulted file
	// was parsed, from its vault copy checked against the item's SHA-256,
	// with the parser, its version and the counts of facts and rejects;
	// PARSE_FAILED that it could not be (Details reason). The facts are a
	// derived index outside the ledger, rebuilt from the vaulted files;
	// REINDEXED records such a rebuild (no item).
	Parsed      EventType = "PARSED"
	ParseFailed EventType = "PARSE_FAILED"
	Reindexed   EventType = "REINDEXED"
)

// GenesisHash is the PrevHash of the first record (seq 1), and the head hash
// of an empty ledger.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Event is one custody record. Seq, Host, PrevHash, ItemHash and Hash are
// assigned by Append; At is set by Append when zero. Hash is not part of the
// stored record: it is the SHA-256 of the stored record bytes, filled on read.
type Event struct {
	Seq     uint64            `json:"seq"`
	Type    EventType         `json:"type"`
	At      time.Time         `json:"at"`   // UTC, set by Append if zero
	Host    string            `json:"host"` // set by Append from Options.Host
	Actor   string            `json:"actor"`
	Item    string            `json:"item,omitempty"`
	Camera  string            `json:"camera,omitempty"`
	SHA256  string            `json:"sha256,omitempty"`
	Details map[string]string `json:"details,omitempty"`
	// ItemHash is the lower-hex SHA-256 of the item projection bytes this
	// event wrote (Append with item != nil), empty otherwise. It binds the
	// mutable projection in v1/items to the chain, so editing an item without
	// a new event is detected by Verify.
	ItemHash string `json:"item_hash,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

const (
	// maxSeq keeps seq exactly representable as an IEEE double, which RFC 8785
	// requires of numbers; 2^53 events is not a limit anyone will meet.
	maxSeq = 1<<53 - 1
	// maxRecordSize bounds one record so a runaway Details map cannot bloat
	// every later read transaction; custody records are a few hundred bytes.
	maxRecordSize = 1 << 20
	maxTypeLen    = 64
)

// RecordHash is the hash that chains records: lower-hex SHA-256 of the exact
// stored record bytes.
func RecordHash(rec []byte) string { return digest.Bytes(rec).Hex() }

// EncodeRecord returns the canonical record bytes of ev (every field except
// Hash, see the package documentation). It fails with ErrInvalid when a field
// cannot be represented exactly: invalid UTF-8, a zero or out-of-range time, a
// malformed hash, an empty Host or Actor.
func EncodeRecord(ev Event) ([]byte, error) {
	return appendRecord(make([]byte, 0, 320), ev)
}

// appendRecord appends EncodeRecord's bytes to b (which decodeCanonical
// reuses, so that checking a record's canonical form allocates no buffer).
func appendRecord(b []byte, ev Event) ([]byte, error) {
	at, err := encodable(ev)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(ev.Details))
	for k := range ev.Details {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)

	start := len(b)
	b = append(b, `{"actor":`...)
	b = appendString(b, ev.Actor)
	b = append(b, `,"at":`...)
	b = appendString(b, at)
	b = append(b, `,"camera":`...)
	b = appendString(b, ev.Camera)
	b = append(b, `,"details":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, ev.Details[k])
	}
	b = append(b, `},"host":`...)
	b = appendString(b, ev.Host)
	b = append(b, `,"item":`...)
	b = appendString(b, ev.Item)
	b = append(b, `,"item_hash":`...)
	b = appendString(b, ev.ItemHash)
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, ev.PrevHash)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"sha256":`...)
	b = appendString(b, ev.SHA256)
	b = append(b, `,"type":`...)
	b = appendString(b, string(ev.Type))
	b = append(b, '}')
	if len(b)-start > maxRecordSize {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(b)-start, maxRecordSize)
	}
	return b, nil
}

// encodable checks what EncodeRecord refuses to write (see validateEvent,
// the seq range and prev_hash's form) and returns ev.At as a record writes
// it, the one value whose text the parser cannot check by itself.
func encodable(ev Event) (at string, err error) {
	if err := checkEncodable(ev); err != nil {
		return "", err
	}
	return canonicalTime(ev.At)
}

// checkEncodable is encodable without rendering the time.
func checkEncodable(ev Event) error {
	if err := validateEvent(ev); err != nil {
		return err
	}
	if ev.Seq < 1 || ev.Seq > maxSeq {
		return fmt.Errorf("%w: seq %d out of range", ErrInvalid, ev.Seq)
	}
	if !isHex64(ev.PrevHash) {
		return fmt.Errorf("%w: prev_hash %q is not 64 lower-case hex digits", ErrInvalid, ev.PrevHash)
	}
	return nil
}

// DecodeRecord parses stored record bytes. It accepts only the canonical
// encoding: any input that EncodeRecord would not have produced byte for
// byte (extra, missing or reordered members, whitespace, non-canonical
// escapes, numbers or times, unsorted or duplicate details, invalid UTF-8) is
// rejected with ErrCorrupt. The returned event has Hash set to
// RecordHash(rec). It never panics.
//
// The parser reads the fixed member sequence directly rather than through
// encoding/json (which matches names case-insensitively, keeps the last of
// duplicate names and repairs bad UTF-8, and is several times slower: Verify
// decodes every record). The parser accepts only the bytes EncodeRecord
// writes for the values it reads (member order, separators, escapes, digits,
// sorted details); what remains is checked on the values, not by writing
// them out again: that EncodeRecord would accept them (encodable) and that
// the time is spelled the one way it writes times. FuzzDecodeRecord holds
// the two sides equal: whatever DecodeRecord accepts, EncodeRecord writes
// back byte for byte.
func DecodeRecord(rec []byte) (Event, error) {
	ev, err := decodeCanonical(rec)
	if err != nil {
		return Event{}, err
	}
	ev.Hash = RecordHash(rec)
	return ev, nil
}

// decodeCanonical is DecodeRecord without Hash, for Verify, which hashes
// every record once for the chain and the tree.
func decodeCanonical(rec []byte) (Event, error) {
	ev, at, err := parseRecordMode(rec, false)
	if err != nil {
		return Event{}, err
	}
	if err := checkEncodable(ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var buf [len("2006-01-02T15:04:05.999999999Z")]byte
	want, err := appendCanonicalTime(buf[:0], ev.At)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if at != string(want) {
		return Event{}, fmt.Errorf("%w: at %q is not in canonical form (%q)", ErrCorrupt, at, string(want))
	}
	return ev, nil
}

// parseFacts is the parsing half of DecodeRecord for the item walk, which
// needs only seq, type, item, item_hash, sha256, host and camera of records
// the chain walk has decoded: it reads the same grammar but leaves actor,
// details and prev_hash empty instead of copying them out, and
// does not check the values (encodable). The strings it returns share
// rec's memory (unless they held an escape): they are valid only while rec
// is, within the read transaction rec came from, and must be copied to be
// kept beyond it.
func parseFacts(rec []byte) (Event, error) {
	ev, _, err := parseRecordMode(rec, true)
	return ev, err
}

// parseRecordMode reads the grammar and returns the event and its time as
// written.
func parseRecordMode(rec []byte, facts bool) (Event, string, error) {
	if len(rec) > maxRecordSize {
		return Event{}, "", fmt.Errorf("%w: record of %d bytes exceeds %d", ErrCorrupt, len(rec), maxRecordSize)
	}
	// One copy of the record as a string: the members that need no
	// unescaping are slices of it, one allocation instead of one each.
	// parseFacts's caller reads the record in place for as long as it uses
	// what it returns, so there the string is the record's own bytes.
	p := recParser{b: rec}
	if facts {
		p.s = unsafe.String(unsafe.SliceData(rec), len(rec))
	} else {
		p.s = string(rec)
	}
	var ev Event
	var at string
	other := func() string { // a member parseFacts leaves empty
		if facts {
			p.skip()
			return ""
		}
		return p.str()
	}
	p.lit(`{"actor":`)
	ev.Actor = other()
	p.lit(`,"at":`)
	at = p.str()
	p.lit(`,"camera":`)
	ev.Camera = p.str()
	p.lit(`,"details":{`)
	if p.peek('}') {
		p.i++
	} else {
		if !facts {
			ev.Details = map[string]string{}
		}
		prev := ""
		for n := 0; p.err == nil; n++ {
			k := p.str()
			p.lit(":")
			v := other()
			if n > 0 && compareUTF16(prev, k) >= 0 {
				p.fail("details not sorted, or a name repeats")
			}
			if !facts {
				ev.Details[k] = v
			}
			prev = k
			if !p.peek(',') {
				break
			}
			p.i++
		}
		p.lit("}")
	}
	p.lit(`,"host":`)
	ev.Host = p.str()
	p.lit(`,"item":`)
	ev.Item = p.str()
	p.lit(`,"item_hash":`)
	ev.ItemHash = p.str()
	p.lit(`,"prev_hash":`)
	ev.PrevHash = other()
	p.lit(`,"seq":`)
	ev.Seq = p.uint()
	p.lit(`,"sha256":`)
	ev.SHA256 = p.str()
	p.lit(`,"type":`)
	ev.Type = EventType(p.str())
	p.lit("}")
	if p.err == nil && p.i != len(rec) {
		p.fail("data after the record")
	}
	if p.err != nil {
		return Event{}, "", fmt.Errorf("%w: %v", ErrCorrupt, p.err)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Event{}, "", fmt.Errorf("%w: at: %v", ErrCorrupt, err)
	}
	ev.At = t.UTC()
	return ev, at, nil
}

// recParser reads the canonical record grammar; after the first error every
// method is a no-op, so DecodeRecord reads straight through and checks once.
type recParser struct {
	b   []byte
	s   string // b as a string
	i   int
	err error
}

func (p *recParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("at byte %d: "+format, append([]any{p.i}, args...)...)
	}
}

func (p *recParser) peek(c byte) bool {
	return p.err == nil && p.i < len(p.b) && p.b[p.i] == c
}

func (p *recParser) lit(s string) {
	if p.err != nil {
		return
	}
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		p.fail("want %q", s)
		return
	}
	p.i += len(s)
}

// str reads a string with only the escapes appendString writes, each only
// for the character appendString writes it for, so the string's bytes are
// exactly appendString's. UTF-8 validity is left to encodable (checkString).
func (p *recParser) str() string { return p.strMode(false) }

// skip reads a string exactly as str does but, unless it holds an escape,
// without copying it out: for the members parseFacts does not return.
func (p *recParser) skip() { p.strMode(true) }

func (p *recParser) strMode(skip bool) string {
	if p.err != nil {
		return ""
	}
	if !p.peek('"') {
		p.fail("want a string")
		return ""
	}
	p.i++
	start := p.i
	var out []byte // nil until the first escape
	for p.i < len(p.b) {
		if out == nil { // the common case: bytes taken as they are
			for p.i < len(p.b) && plainByte[p.b[p.i]] {
				p.i++
			}
			if p.i == len(p.b) {
				break
			}
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			var s string
			switch {
			case out != nil:
				s = string(out)
			case !skip:
				s = p.s[start:p.i]
			}
			p.i++
			return s
		case c < 0x20:
			p.fail("raw control character")
			return ""
		case c != '\\':
			if out != nil {
				out = append(out, c)
			}
			p.i++
			continue
		}
		if out == nil {
			out = append([]byte{}, p.b[start:p.i]...)
		}
		if p.i+1 >= len(p.b) {
			break
		}
		e := p.b[p.i+1]
		switch e {
		case '"', '\\':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'f':
			out = append(out, '\f')
		case 'r':
			out = append(out, '\r')
		case 'u':
			// Only \u00xx (lower-case hex) for a control character
			// without a short form.
			if p.i+6 > len(p.b) || p.b[p.i+2] != '0' || p.b[p.i+3] != '0' {
				p.fail("non-canonical \\u escape")
				return ""
			}
			hi, lo := unhex(p.b[p.i+4]), unhex(p.b[p.i+5])
			if c := hi<<4 | lo; hi > 1 || lo > 15 || shortEscape(c) {
				p.fail("non-canonical \\u escape")
				return ""
			}
			out = append(out, hi<<4|lo)
			p.i += 6
			continue
		default:
			p.fail("non-canonical escape \\%c", e)
			return ""
		}
		p.i += 2
	}
	p.fail("unterminated string")
	return ""
}

// plainByte marks the bytes a string holds as they are (not '"', '\\' or a
// control character), so strMode passes over runs of them with one load and
// test per byte.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// shortEscape reports whether appendString writes c with a two-character
// escape (\b \t \n \f \r), never as \u00xx.
func shortEscape(c byte) bool {
	return c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// unhex decodes a lower-case hex digit; 0xFF for anything else.
func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0xFF
}

// uint reads a decimal integer without sign, leading zeros, fraction or
// exponent, at most maxSeq.
func (p *recParser) uint() uint64 {
	if p.err != nil {
		return 0
	}
	start := p.i
	var n uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		if p.i-start == 16 { // maxSeq has 16 digits
			p.fail("number too long")
			return 0
		}
		n = n*10 + uint64(p.b[p.i]-'0')
		p.i++
	}
	if p.i == start || (p.b[start] == '0') {
		p.i = start
		p.fail("want a decimal integer without leading zeros")
		return 0
	}
	return n
}

// validateEvent checks the fields a caller supplies; Seq and PrevHash are
// checked by EncodeRecord because Append assigns them.
func validateEvent(ev Event) error {
	if !validType(ev.Type) {
		return fmt.Errorf("%w: event type %q is not upper-case ASCII words joined by underscores", ErrInvalid, ev.Type)
	}
	if ev.Host == "" {
		return fmt.Errorf("%w: event host is empty", ErrInvalid)
	}
	if ev.Actor == "" {
		return fmt.Errorf("%w: event actor is empty: every custody step names who took it", ErrInvalid)
	}
	for _, f := range [...]struct{ name, v string }{
		{"host", ev.Host}, {"actor", ev.Actor}, {"item", ev.Item}, {"camera", ev.Camera},
	} {
		if err := checkString(f.name, f.v); err != nil {
			return err
		}
	}
	if ev.SHA256 != "" && !isHex64(ev.SHA256) {
		return fmt.Errorf("%w: sha256 %q is not 64 lower-case hex digits", ErrInvalid, ev.SHA256)
	}
	if ev.ItemHash != "" && !isHex64(ev.ItemHash) {
		return fmt.Errorf("%w: item_hash %q is not 64 lower-case hex digits", ErrInvalid, ev.ItemHash)
	}
	for k, v := range ev.Details {
		if err := checkString("details key", k); err != nil {
			return err
		}
		if err := checkString("details["+strconv.Quote(k)+"]", v); err != nil {
			return err
		}
	}
	return nil
}

func validType(t EventType) bool {
	if len(t) == 0 || len(t) > maxTypeLen || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// checkString enforces what RFC 8785 (via I-JSON, RFC 7493) needs of a
// string: valid UTF-8 and no Unicode noncharacters. Invalid input is refused
// rather than repaired, because a silently replaced byte would make the record
// say something other than what the caller observed.
func checkString(name, s string) error {
	if isASCII(s) { // valid UTF-8, and no noncharacter is ASCII
		return nil
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8 (escape raw bytes before recording them)", ErrInvalid, name)
	}
	for _, r := range s {
		if isNoncharacter(r) {
			return fmt.Errorf("%w: %s contains the Unicode noncharacter %U", ErrInvalid, name, r)
		}
	}
	return nil
}

// isASCII reports whether s is all ASCII, eight bytes at a time: Verify
// checks every string of every record, and nearly all are ASCII.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

// canonicalTime renders t the one way records store times.
func canonicalTime(t time.Time) (string, error) {
	b, err := appendCanonicalTime(nil, t)
	return string(b), err
}

// appendCanonicalTime is canonicalTime appending to b: Verify compares
// every record's time with it, and a buffer on the stack spares an
// allocation per record.
func appendCanonicalTime(b []byte, t time.Time) ([]byte, error) {
	if t.IsZero() {
		return b, fmt.Errorf("%w: event time is zero", ErrInvalid)
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return b, fmt.Errorf("%w: event time %v outside years 1-9999", ErrInvalid, t)
	}
	return t.AppendFormat(b, time.RFC3339Nano), nil
}

func isHex64(s string) bool {
	if len(s) != 2*digest.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

// lowerHex marks the bytes isHex64 accepts: one load per byte instead of
// two range tests, for the three digests of every record Verify decodes.
var lowerHex = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, 'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true}

// appendString writes s as an RFC 8785 string: only '"', '\\' and U+0000 to
// U+001F are escaped, the five with short forms (\b \t \n \f \r) use them and
// the rest use \u00xx with lower-case hex; every other character, including
// '/', U+2028 and non-ASCII, is copied as UTF-8.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	run := 0 // start of the pending run of bytes copied as they are
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[run:i]...)
		run = i + 1
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
	}
	b = append(b, s[run:]...)
	return append(b, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts
// member names. It differs from byte order only when a character at or above
// U+10000 meets one in U+E000..U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			// Same high surrogate: the low surrogates order as the runes do.
			return int(ra) - int(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

func firstUnit(r rune) uint16 {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return uint16(hi)
	}
	return uint16(r)
}
