package custody

import (
	"strconv"
	"time"
)

// decodeItemFast reads the exact form encodeItem writes for an item whose
// strings are printable ASCII without '"' or '\': the common case, which
// Verify decodes for every item. ok is false for anything else (other
// characters, escapes, whitespace, another field order, a value out of
// range), and decodeItem then falls back to encoding/json. For every input
// it accepts, the result is the one encoding/json gives for it, since it
// accepts only a plain subset of JSON that maps field for field onto Item
// and parses times with time.Time's own UnmarshalJSON.
func decodeItemFast(b []byte) (it Item, ok bool) {
	p := itemParser{b: b, ok: true}
	p.lit(`{"id":`)
	it.ID = p.str()
	p.lit(`,"camera":`)
	it.Camera = p.str()
	p.lit(`,"kind":`)
	it.Kind = p.str()
	p.lit(`,"assigned_to":`)
	it.AssignedTo = p.str()
	p.lit(`,"source_path":`)
	it.SourcePath = p.str()
	p.lit(`,"size":`)
	it.Size = p.int()
	p.lit(`,"sha256":`)
	it.SHA256 = p.str()
	p.lit(`,"recorded_at":`)
	it.RecordedAt = p.time()
	p.lit(`,"ingested_at":`)
	it.IngestedAt = p.time()
	p.lit(`,"state":`)
	it.State = State(p.str())
	p.lit(`,"vault_path":`)
	it.VaultPath = p.str()
	p.lit(`,"object_key":`)
	it.ObjectKey = p.str()
	p.lit(`,"version_id":`)
	it.VersionID = p.str()
	p.lit(`,"retention_class":`)
	it.RetentionClass = p.str()
	if p.opt(`,"retain_until":`) {
		it.RetainUntil = p.time()
	}
	p.lit(`,"host":`)
	it.Host = p.str()
	p.lit(`,"dock_seq":`)
	it.DockSeq = p.uint()
	if p.opt(`,"upload_attempts":`) {
		it.UploadAttempts = int(p.int())
	}
	if p.opt(`,"last_error":`) {
		it.LastError = p.str()
	}
	p.lit("}")
	if !p.ok || p.i != len(b) {
		return Item{}, false
	}
	return it, true
}

type itemParser struct {
	b  []byte
	i  int
	ok bool
}

func (p *itemParser) lit(s string) {
	if p.ok && (len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s) {
		p.ok = false
	}
	if p.ok {
		p.i += len(s)
	}
}

// opt consumes s if it comes next.
func (p *itemParser) opt(s string) bool {
	if p.ok && len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// raw returns a quoted run of printable ASCII other than '"' and '\',
// without the quotes.
func (p *itemParser) raw() []byte {
	if !p.ok || p.i >= len(p.b) || p.b[p.i] != '"' {
		p.ok = false
		return nil
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return p.b[start:j]
		case c < 0x20 || c > 0x7e || c == '\\':
			p.ok = false
			return nil
		}
	}
	p.ok = false
	return nil
}

func (p *itemParser) str() string { return string(p.raw()) }

func (p *itemParser) time() time.Time {
	start := p.i
	p.raw()
	var t time.Time
	if p.ok && t.UnmarshalJSON(p.b[start:p.i]) != nil {
		p.ok = false
	}
	return t
}

// digits returns a JSON integer's text: an optional '-' (when signed),
// then "0" or a non-zero digit and more digits ("" after a failure).
func (p *itemParser) digits(signed bool) string {
	if !p.ok {
		return ""
	}
	start := p.i
	if signed && p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	d := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i == d || (p.b[d] == '0' && p.i-d > 1) {
		p.ok = false
	}
	return string(p.b[start:p.i])
}

// check fails the parse on a number encoding/json would refuse.
func (p *itemParser) check(err error) {
	if err != nil {
		p.ok = false
	}
}

func (p *itemParser) int() int64 {
	n, err := strconv.ParseInt(p.digits(true), 10, 64)
	p.check(err)
	return n
}

func (p *itemParser) uint() uint64 {
	n, err := strconv.ParseUint(p.digits(false), 10, 64)
	p.check(err)
	return n
}
