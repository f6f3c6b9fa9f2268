package config

import (
	"strings"
	"testing"
)

// Issue #12, finding 3: rights on the control socket by Unix group. The
// groups load from control.read_group and control.write_group, must be
// Unix group names, and a socket opened to a group must lie outside
// state_dir (a member would otherwise have to traverse the vault's and the
// key's directory to reach it). control.retrieve_group (get, export) loads
// beside them; unset, nobody but root and the daemon's user retrieves, and
// an invalid name is refused saying so.
func TestControlGroups(t *testing.T) {
	parse := func(extra string) (*Config, error) {
		c, err := Parse([]byte(strings.Replace(full, "control_socket: \"\"\n", extra, 1)), "/etc/evidenced/evidenced.yaml")
		if err != nil {
			return nil, err
		}
		return c, c.Validate()
	}

	c, err := parse("control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  read_group: evidenced-read\n  write_group: evidenced-custody\n")
	if err != nil {
		t.Fatalf("both groups, socket outside state_dir: %v", err)
	}
	if c.Control.ReadGroup != "evidenced-read" || c.Control.WriteGroup != "evidenced-custody" || c.Control.RetrieveGroup != "" {
		t.Errorf("control = %+v, want no retrieve group by default", c.Control)
	}
	c, err = parse("control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  read_group: evidenced-read\n  retrieve_group: evidenced-court\n")
	if err != nil {
		t.Fatalf("read and retrieve groups: %v", err)
	}
	if c.Control.RetrieveGroup != "evidenced-court" || c.Control.SocketGroup() != "evidenced-read" {
		t.Errorf("control = %+v, socket group %q", c.Control, c.Control.SocketGroup())
	}
	if g := (Control{RetrieveGroup: "court"}).SocketGroup(); g != "court" {
		t.Errorf("socket group with only a retrieve group: %q", g)
	}
	if g := c.Control.SocketGroup(); g != "evidenced-read" {
		t.Errorf("socket group %q, want the read group", g)
	}
	if g := (Control{WriteGroup: "custody"}).SocketGroup(); g != "custody" {
		t.Errorf("socket group with only a write group: %q", g)
	}
	if g := (Control{}).SocketGroup(); g != "" {
		t.Errorf("socket group with no groups: %q, want owner-only", g)
	}

	// No groups: the default socket inside state_dir stays fine.
	if _, err := parse("control_socket: \"\"\n"); err != nil {
		t.Errorf("no groups, default socket: %v", err)
	}

	refused := []struct{ name, extra, key, says string }{
		{"read group, default socket inside state_dir",
			"control:\n  read_group: evidenced-read\n", "control_socket", "inside state_dir"},
		{"write group, socket named inside state_dir",
			"control_socket: /var/lib/evidenced/run/evidenced.sock\ncontrol:\n  write_group: custody\n", "control_socket", "inside state_dir"},
		{"read group name with a space",
			"control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  read_group: \"evidence readers\"\n", "control.read_group", "not a Unix group name"},
		{"write group name in upper case",
			"control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  write_group: Custody\n", "control.write_group", "not a Unix group name"},
		{"retrieve group alone, default socket inside state_dir",
			"control:\n  retrieve_group: court\n", "control_socket", "inside state_dir"},
		{"retrieve group name with a slash",
			"control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  retrieve_group: court/clerks\n", "control.retrieve_group", `"" means only root and the daemon's user may get or export`},
		{"group name too long",
			"control_socket: /run/evidenced-control/evidenced.sock\ncontrol:\n  read_group: " + strings.Repeat("r", 32) + "\n", "control.read_group", "not a Unix group name"},
	}
	for _, tc := range refused {
		_, err := parse(tc.extra)
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want refused naming %s (%q)", tc.name, err, tc.key, tc.says)
		}
	}
}
