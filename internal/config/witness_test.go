package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// The witness of the ledger's signed heads is worth something only where
// write access to state_dir does not reach: custody.witness_file inside
// state_dir (or state_dir itself, or a directory above it) is refused.
func TestWitnessFileOutsideStateDir(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "state")
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(base, "witness", "heads.jsonl"), true},
		{filepath.Join(state, "heads.jsonl"), false},
		{filepath.Join(state, "vault", "heads.jsonl"), false},
		{state, false},
		{base, false},
		{"heads.jsonl", false}, // relative: only a Config built in code gets here
	} {
		c := mustParse(t, full)
		c.StateDir = state
		c.Custody.WitnessFile = tc.path
		err := c.Validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "custody.witness_file")) {
			t.Errorf("witness_file %s: %v", tc.path, err)
		}
	}
}
