package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/evidenced/evidenced/internal/custody"
)

// writeItems writes /api/items's answer. For a search by the items' fields
// (no match to show) it is written without reflection, byte for byte what
// encoding/json writes for it (TestItemsAnswerIsEncodingJSONs compares
// them over every field): encoding the answer was an eighth of a console's
// CPU per search, most of it encoding/json checking and compacting each
// time's own JSON (docs/BENCHMARKS.md). An answer with a match (a search
// by plate or place) goes through encoding/json.
func writeItems(w http.ResponseWriter, a itemsAnswer) {
	b, ok := appendItemsAnswer(make([]byte, 0, 1024+700*len(a.Items)), a)
	if !ok {
		writeJSON(w, http.StatusOK, a)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendItemsAnswer appends a as json.NewEncoder writes it (with its
// newline); ok is false when an item carries a match, or a time that
// encoding/json would refuse.
func appendItemsAnswer(b []byte, a itemsAnswer) (_ []byte, ok bool) {
	b = append(b, `{"items":[`...)
	for i, f := range a.Items {
		if f.Match != nil {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendItem(b, f.Item); !ok {
			return nil, false
		}
	}
	b = append(b, ']')
	if a.Next != "" {
		b = appendString(append(b, `,"next":`...), a.Next)
	}
	b = strconv.AppendInt(append(b, `,"page":`...), int64(a.Page), 10)
	b = strconv.AppendInt(append(b, `,"per_page":`...), int64(a.PerPage), 10)
	b = strconv.AppendInt(append(b, `,"total":`...), int64(a.Total), 10)
	return append(b, "}\n"...), true
}

// itemFields is how many fields appendItem writes: a field added to
// custody.Item fails the test until appendItem writes it too.
const itemFields = 19

// appendItem appends it as encoding/json does, in its fields' order, with
// their tags' names and omitempty/omitzero.
func appendItem(b []byte, it custody.Item) (_ []byte, ok bool) {
	str := func(name, v string) {
		b = appendString(append(append(b, ',', '"'), name...), v)
	}
	b = appendString(append(b, `{"id":`...), it.ID)
	str(`camera":`, it.Camera)
	str(`kind":`, it.Kind)
	str(`assigned_to":`, it.AssignedTo)
	str(`source_path":`, it.SourcePath)
	b = strconv.AppendInt(append(b, `,"size":`...), it.Size, 10)
	str(`sha256":`, it.SHA256)
	for _, t := range []struct {
		name string
		at   time.Time
	}{{`,"recorded_at":`, it.RecordedAt}, {`,"ingested_at":`, it.IngestedAt}} {
		if b, ok = appendTime(append(b, t.name...), t.at); !ok {
			return nil, false
		}
	}
	str(`state":`, string(it.State))
	str(`vault_path":`, it.VaultPath)
	str(`object_key":`, it.ObjectKey)
	str(`version_id":`, it.VersionID)
	str(`retention_class":`, it.RetentionClass)
	if !it.RetainUntil.IsZero() {
		if b, ok = appendTime(append(b, `,"retain_until":`...), it.RetainUntil); !ok {
			return nil, false
		}
	}
	str(`host":`, it.Host)
	b = strconv.AppendUint(append(b, `,"dock_seq":`...), it.DockSeq, 10)
	if it.UploadAttempts != 0 {
		b = strconv.AppendInt(append(b, `,"upload_attempts":`...), int64(it.UploadAttempts), 10)
	}
	if it.LastError != "" {
		str(`last_error":`, it.LastError)
	}
	return append(b, '}'), true
}

// appendTime appends t's own MarshalJSON (which encoding/json would then
// check and compact: its output is already compact); ok is false when it
// refuses t (a year past 9999).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	j, err := t.MarshalJSON()
	return append(b, j...), err == nil
}

// appendString appends s quoted as encoding/json does: printable ASCII
// but for the quote, the backslash and the HTML characters as is;
// anything else through encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
