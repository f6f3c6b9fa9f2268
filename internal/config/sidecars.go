package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evidenced/evidenced/internal/sidecar"
)

// SidecarRule says which files on a camera are one kind of sidecar: the
// files the glob matches are parsed, once vaulted, by the named parser, and
// their facts (GPS fixes, plate reads, a recording's own time span) indexed.
type SidecarRule struct {
	// Glob is matched against the file's path relative to the camera root,
	// ignoring case (camera cards are FAT): without '/' against the base
	// name at any depth ("*.nmea"), with '/' against the whole path
	// ("ANPR/*.csv"). See sidecar.Rule.
	Glob string `yaml:"glob"`
	// Parser is one of sidecar.Kinds(): nmea, gpx, anpr-csv, anpr-jsonl,
	// mp4.
	Parser string `yaml:"parser"`
	// Kinds limits the rule to cameras of these inventory kinds (body,
	// vehicle); empty applies it to every camera.
	Kinds []string `yaml:"kinds"`
}

// SidecarProfile is the profile for a camera of the given inventory kind:
// the sidecars: rules that apply to it, in file order (the first match
// wins). A config with no sidecars: rules parses nothing.
func (c *Config) SidecarProfile(cameraKind string) sidecar.Profile {
	p := sidecar.Profile{Name: cameraKind}
	for _, r := range c.current().Sidecars {
		if len(r.Kinds) == 0 || slices.Contains(r.Kinds, cameraKind) {
			p.Rules = append(p.Rules, sidecar.Rule{Glob: r.Glob, Kind: sidecar.Kind(r.Parser)})
		}
	}
	return p
}

// sidecars checks every rule on its own (glob, parser, kinds) and then the
// profile each camera kind ends up with (a glob repeated within it).
func (v *validator) sidecars(rules []SidecarRule) {
	before := len(v.errs)
	for i, r := range rules {
		key := fmt.Sprintf("sidecars[%d]", i)
		one := sidecar.Profile{Rules: []sidecar.Rule{{Glob: r.Glob, Kind: sidecar.Kind(r.Parser)}}}
		if !slices.Contains(sidecar.Kinds(), sidecar.Kind(r.Parser)) {
			v.add(key+".parser", "must be one of %v, got %q", sidecar.Kinds(), r.Parser)
		} else if err := one.Validate(); err != nil {
			v.add(key+".glob", "%q: %s", r.Glob, strings.TrimPrefix(err.Error(), fmt.Sprintf("profile %q rule 1 (%q): ", "", r.Glob)))
		}
		for j, k := range r.Kinds {
			if k != KindBody && k != KindVehicle {
				v.add(fmt.Sprintf("%s.kinds[%d]", key, j), "must be %s or %s, got %q", KindBody, KindVehicle, k)
			}
		}
	}
	if len(v.errs) > before {
		return // each kind's profile would repeat what is already said
	}
	for _, kind := range []string{KindBody, KindVehicle} {
		if err := v.c.SidecarProfile(kind).Validate(); err != nil {
			v.add("sidecars", "for %s cameras: %v", kind, err)
		}
	}
}

// FactsPath is the sidecar facts index (bbolt; derived data, rebuilt from
// the vault by `evidenced reindex`).
func (c *Config) FactsPath() string { return filepath.Join(c.StateDir, "facts.db") }
