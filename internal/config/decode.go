package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem with one key of a configuration. It wraps
// ErrInvalid.
type FieldError struct {
	File string // the config file, as given to Parse
	Line int    // 1-based; 0 when not known (e.g. a Config built in code)
	Key  string // key path, e.g. "cameras[3].serial"; empty for the whole file
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(displayName(e.File))
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// joinErrors returns nil, the single error, or all of them joined: an
// operator fixing a file wants every problem at once, not one per restart.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns the YAML parser's error into a FieldError with the line
// split out, and says so when a tab is the likely cause.
func syntaxError(data []byte, name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	fe := &FieldError{File: name, Line: line, Msg: "not valid YAML: " + msg}
	if lines := bytes.Split(data, []byte("\n")); line > 0 && line <= len(lines) && bytes.ContainsRune(lines[line-1], '\t') {
		fe.Msg += " (this line has a tab: YAML indentation must use spaces)"
	} else if line == 0 && bytes.ContainsRune(data, '\t') {
		fe.Msg += " (the file has tabs: YAML indentation must use spaces)"
	}
	return fe
}

// parseDocument parses data into its one YAML document's top-level mapping.
func parseDocument(data []byte, name string) (*yaml.Node, error) {
	empty := &FieldError{File: name, Msg: "the file is empty (it must set at least host_id and retention)"}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, empty
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, empty
		}
		return nil, syntaxError(data, name, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &FieldError{File: name, Line: next.Line, Msg: "more than one YAML document (---): a config file holds exactly one"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(data, name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, empty
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, empty
	}
	if root.Kind != yaml.MappingNode {
		return nil, &FieldError{File: name, Line: root.Line, Msg: "expected keys at the top level (host_id: …, state_dir: …), got " + describe(root)}
	}
	return root, nil
}

// hasKey reports whether mapping m sets key to something other than null.
func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return !(v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null")
		}
	}
	return false
}

// checkTree walks the node tree against Config's type and reports every
// unknown key, duplicate key and value of the wrong shape, each with its key
// path and line. It records where each key was written in lines. It never
// writes a Config: the strict yaml.v3 decode that follows is the decoder of
// record, and checkTree is at least as strict as it, so that decode does not
// fail with a message that lacks the key path.
func checkTree(root *yaml.Node, name string, lines map[string]int) error {
	k := &checker{file: name, lines: lines, budget: 100_000}
	k.check(root, reflect.TypeOf(Config{}), "")
	return joinErrors(k.errs)
}

const maxErrors = 20

type checker struct {
	file   string
	lines  map[string]int
	errs   []error
	budget int // nodes left to visit: aliases must not make the walk explode
}

func (k *checker) fail(n *yaml.Node, path, format string, args ...any) {
	if len(k.errs) >= maxErrors {
		return
	}
	k.errs = append(k.errs, &FieldError{File: k.file, Line: n.Line, Key: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	durationType    = reflect.TypeOf(Duration{})
	byteSizeType    = reflect.TypeOf(ByteSize(0))
	usbIDType       = reflect.TypeOf(USBID(0))
)

func (k *checker) check(n *yaml.Node, t reflect.Type, path string) {
	k.budget--
	if k.budget < 0 || len(k.errs) >= maxErrors {
		if k.budget == -1 {
			k.fail(n, path, "the document is too large or uses too many aliases")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			k.fail(n, path, "alias to nothing")
			return
		}
		k.check(n.Alias, t, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // no value: the default stays
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			k.fail(n, path, "expected %s, got %s", expected(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			k.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		k.check(n, t.Elem(), path)
	case reflect.Struct:
		k.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := ""
			if n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
			}
			k.fail(n, path, "expected a list, got %s%s", describe(n), hint)
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			k.lines[p] = item.Line
			k.check(item, t.Elem(), p)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			k.fail(n, path, "expected %s, got %s", expected(t), describe(n))
		}
	case reflect.Int, reflect.Int64:
		var v int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
			k.fail(n, path, "expected %s, got %s", expected(t), describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			k.fail(n, path, "expected %s, got %s", expected(t), describe(n))
		}
	default:
		// Config only has the kinds above; a new field of another kind
		// must be taught here (TestExampleComplete would notice).
		k.fail(n, path, "internal error: no check for %s", t)
	}
}

// mapping checks a YAML mapping against struct type t.
func (k *checker) mapping(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		k.fail(n, path, "expected %s, got %s", expected(t), describe(n))
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		if key.Kind != yaml.ScalarNode {
			k.fail(key, path, "a key must be a plain name, got %s", describe(key))
			continue
		}
		if key.ShortTag() == "!!merge" {
			// "<<: *anchor" merges another mapping's keys in.
			if val.Kind == yaml.SequenceNode {
				for _, m := range val.Content {
					k.check(m, t, path)
				}
			} else {
				k.check(val, t, path)
			}
			continue
		}
		p := joinKey(path, key.Value)
		if first, dup := seen[key.Value]; dup {
			k.fail(key, p, "written twice (first on line %d)", first)
			continue
		}
		seen[key.Value] = key.Line
		f, ok := fields[key.Value]
		if !ok {
			k.fail(key, p, "%s", unknownKey(key.Value, fields))
			continue
		}
		k.lines[p] = key.Line
		k.check(val, f.Type, p)
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML key names to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		m[name] = f
	}
	return m
}

// unknownKey explains an unknown key: a likely typo, or credentials, which
// have no place in the file.
func unknownKey(key string, fields map[string]reflect.StructField) string {
	lk := strings.ToLower(key)
	for _, s := range []string{"secret", "password", "passwd", "token", "credential", "access_key", "accesskey"} {
		if strings.Contains(lk, s) {
			return "unknown key: credentials are never read from the config file; " +
				"give AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment " +
				"(the systemd unit reads /etc/evidenced/credentials) or use an instance role"
		}
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	if best := Closest(lk, names); best != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", best)
	}
	return "unknown key; known here: " + strings.Join(names, ", ")
}

// Closest is the name among names nearest to a mistyped one (at most two
// edits away), for "did you mean"; "" when none is that near.
func Closest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func expected(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 2s or 5m"
	case t == byteSizeType:
		return "a size such as 64MiB or 1GiB"
	case t == usbIDType:
		return "a USB id such as 1209"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping of keys"
	case reflect.String:
		return "a single value"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// describe names what a node holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}
