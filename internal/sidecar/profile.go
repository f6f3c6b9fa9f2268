package sidecar

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Rule maps camera files to a parser kind.
type Rule struct {
	// Glob is a path.Match pattern over the file's slash-separated path
	// relative to the camera's root. A pattern without '/' is matched against
	// the base name at any depth ("*.NMEA"); one with '/' against the whole
	// relative path ("ANPR/*.csv"). Matching ignores case: camera cards are
	// FAT file systems, where "GPS.NMEA" and "gps.nmea" are one name.
	Glob string
	Kind Kind
}

// Profile says which files on a camera are which sidecar kind. Rules are
// tried in order; the first match wins; a file no rule matches is not a
// sidecar (it is still ingested as an opaque recording).
type Profile struct {
	Name  string
	Rules []Rule
}

// Validate reports the first rule that could never work: a malformed
// pattern, an absolute or upward path, an unknown kind or a repeated pattern.
func (p Profile) Validate() error {
	seen := map[string]int{}
	for i, r := range p.Rules {
		where := fmt.Sprintf("profile %q rule %d (%q)", p.Name, i+1, r.Glob)
		g := strings.ToLower(r.Glob)
		switch {
		case r.Glob == "":
			return fmt.Errorf("%s: empty glob", where)
		case strings.HasPrefix(r.Glob, "/"):
			return fmt.Errorf("%s: glob must be relative to the camera root", where)
		case strings.Contains(r.Glob, "\\"):
			return fmt.Errorf("%s: use '/' between folders, not '\\'", where)
		case slices.Contains(strings.Split(r.Glob, "/"), ".."), slices.Contains(strings.Split(r.Glob, "/"), "."):
			return fmt.Errorf("%s: no '.' or '..' segments", where)
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if !slices.Contains(Kinds(), r.Kind) {
			return fmt.Errorf("%s: unknown kind %q (known: %v)", where, r.Kind, Kinds())
		}
		if j, dup := seen[g]; dup {
			return fmt.Errorf("%s: same glob as rule %d", where, j)
		}
		seen[g] = i + 1
	}
	return nil
}

// Match returns the kind of the file at rel (slash-separated, relative to
// the camera root), and false if no rule matches. The profile must be valid.
func (p Profile) Match(rel string) (Kind, bool) {
	rel = strings.ToLower(strings.TrimPrefix(rel, "./"))
	base := path.Base(rel)
	for _, r := range p.Rules {
		g := strings.ToLower(r.Glob)
		subject := rel
		if !strings.Contains(g, "/") {
			subject = base
		}
		if ok, _ := path.Match(g, subject); ok {
			return r.Kind, true
		}
	}
	return "", false
}

// KindOf is the kind whose parser has the name a parse record gives
// ("nmea0183" is KindNMEA); false for a name no parser has.
func KindOf(parser string) (Kind, bool) {
	for _, k := range Kinds() {
		if p, err := New(k); err == nil && p.Name() == parser {
			return k, true
		}
	}
	return "", false
}
