package config

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// inventoryColumns are the columns of an inventory CSV: the first three
// required, retired optional (an RFC 3339 time, or empty).
var inventoryColumns = []string{"serial", "kind", "assigned_to", "retired"}

// isCSV tells an inventory CSV from YAML or JSON: by its extension, or by
// a first line that is the CSV header (a spreadsheet export may be named
// anything).
func isCSV(data []byte, name string) bool {
	if strings.EqualFold(filepath.Ext(name), ".csv") {
		return true
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	for _, f := range strings.Split(string(first), ",") {
		if strings.ToLower(strings.Trim(strings.TrimSpace(f), `"`)) == "serial" {
			return strings.Contains(string(first), ",")
		}
	}
	return false
}

// ParseInventoryCSV decodes and validates an inventory CSV, as a
// spreadsheet exports it: a header row naming serial, kind, assigned_to
// and optionally retired (any order, any case), then one camera a row.
// Quoted fields, CRLF line ends and a byte order mark are taken; a row
// with the wrong number of fields, a bad retired time or a bad value is an
// error naming name:line, the serial and the column. A CSV carries no
// assignment history: import it to start one.
func ParseInventoryCSV(data []byte, name string) ([]InventoryCamera, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.TrimLeadingSpace = true
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrInvalid, displayName(name), line, fmt.Sprintf(format, args...))
	}
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bad(1, "empty: want a header row serial,kind,assigned_to[,retired]")
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, displayName(name), err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range inventoryColumns {
			known = known || c == h
		}
		if !known {
			return nil, bad(1, "column %d: unknown column %q (want serial, kind, assigned_to, retired)", i+1, h)
		}
		if _, dup := col[h]; dup {
			return nil, bad(1, "column %q named twice", h)
		}
		col[h] = i
	}
	for _, c := range inventoryColumns[:3] {
		if _, ok := col[c]; !ok {
			return nil, bad(1, "no %s column (the header must name serial, kind, assigned_to)", c)
		}
	}
	var cams []InventoryCamera
	lines := []int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, bad(pe.Line, "%v", pe.Err)
			}
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, displayName(name), err)
		}
		line, _ := r.FieldPos(0)
		field := func(c string) string {
			if i, ok := col[c]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		cam := InventoryCamera{Serial: field("serial"), Kind: field("kind"), AssignedTo: field("assigned_to")}
		if s := field("retired"); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, bad(line, "camera %s: retired: %q is not an RFC 3339 time (2026-12-01T06:00:00Z)", cam.Serial, s)
			}
			t = t.UTC()
			cam.Retired = &t
		}
		cams = append(cams, cam)
		lines = append(lines, line)
	}
	if len(cams) == 0 {
		return nil, bad(1, "no cameras: an empty inventory would stop every dock")
	}
	// Each camera is checked alone, so the error names its line.
	first := map[string]int{} // lower-cased serial → line
	for i := range cams {
		if err := CheckInventory(cams[i:i+1], name); err != nil {
			return nil, bad(lines[i], "camera %q: %s", cams[i].Serial, stripCameraKey(err))
		}
		if prev, dup := first[strings.ToLower(cams[i].Serial)]; dup {
			return nil, bad(lines[i], "serial: %q is already listed at line %d", cams[i].Serial, prev)
		}
		first[strings.ToLower(cams[i].Serial)] = lines[i]
	}
	return cams, nil
}

// stripCameraKey is a one-camera CheckInventory error without its
// file and cameras[0] prefix: the CSV error names the line instead.
func stripCameraKey(err error) string {
	var msgs []string
	for _, e := range unwrapAll(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			msgs = append(msgs, strings.TrimPrefix(fe.Key, "cameras[0].")+": "+fe.Msg)
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return strings.Join(msgs, "; ")
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
