package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 4: a control_socket in a world-writable directory was accepted,
// and another user's fake server there answered the CLI. Validation now
// refuses a socket directory writable by group or others, or owned by
// anyone but root, the daemon's user (state_dir's owner) or the caller.
func TestControlSocketDirectory(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "state")
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	check := func(sockDir string) error {
		c := mustParse(t, full)
		c.StateDir = state
		c.ControlSocket = filepath.Join(sockDir, "evidenced.sock")
		return c.Validate()
	}
	if err := check(mk("private", 0o750)); err != nil {
		t.Errorf("a 0750 directory of the caller: %v", err)
	}
	if err := check(filepath.Join(base, "absent")); err != nil {
		t.Errorf("a directory that does not exist yet: %v", err)
	}
	for name, mode := range map[string]os.FileMode{"world": 0o777, "tmp-like": 0o1777, "group": 0o770} {
		err := check(mk(name, mode))
		if err == nil || !strings.Contains(err.Error(), "control_socket") || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("socket directory mode %04o: %v, want refused naming control_socket", mode, err)
		}
	}
	// The default socket in a state_dir that is group-writable is named
	// under state_dir.
	c := mustParse(t, full)
	c.StateDir = mk("loose-state", 0o770)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "state_dir") {
		t.Errorf("default socket in a group-writable state_dir: %v", err)
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	const other = 65534
	theirs := mk("theirs", 0o755)
	if err := os.Chown(theirs, other, other); err != nil {
		t.Fatal(err)
	}
	if err := check(theirs); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("a directory owned by another user: %v, want refused", err)
	}
	// That user is the daemon's (it owns state_dir): accepted.
	if err := os.Chown(state, other, other); err != nil {
		t.Fatal(err)
	}
	if err := check(theirs); err != nil {
		t.Errorf("a directory of the daemon's user: %v", err)
	}
}
