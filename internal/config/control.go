package config

import (
	"path/filepath"
	"regexp"
)

// Control says who may use the daemon's control socket besides root and
// the daemon's own user, by Unix group (checked on every command from the
// peer's SO_PEERCRED uid; see package control).
type Control struct {
	// ReadGroup may look: find, custody, access, status, verify, key (and
	// at a console, fleet). "" means no group.
	ReadGroup string `yaml:"read_group"`
	// WriteGroup may also ingest and change retention: ingest, hold,
	// release, classify, scrub. "" means no group.
	WriteGroup string `yaml:"write_group"`
	// RetrieveGroup may also take footage out: get and export. "" means
	// nobody but root and the daemon's user, whatever the other groups
	// are: looking up custody or ingesting never implies releasing bytes.
	RetrieveGroup string `yaml:"retrieve_group"`
}

// SocketGroup is the group the control socket is handed to (mode 0660):
// read_group, else write_group, else retrieve_group; "" keeps it
// owner-only (0600). Members of the other groups connect only if they are
// also in this one.
func (c Control) SocketGroup() string {
	for _, g := range []string{c.ReadGroup, c.WriteGroup} {
		if g != "" {
			return g
		}
	}
	return c.RetrieveGroup
}

// groupName is what useradd(8) and systemd-sysusers accept.
var groupName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// control checks the group names, and that a socket opened to a group is
// outside state_dir: to reach a socket inside it a member would need to
// traverse state_dir, where the vault and the host key are, so the groups
// could not use the daemon without being given the footage directly.
func (v *validator) control(c *Config) {
	ctl := c.Control
	for _, g := range [][3]string{
		{"control.read_group", ctl.ReadGroup, ""},
		{"control.write_group", ctl.WriteGroup, ""},
		{"control.retrieve_group", ctl.RetrieveGroup, `; "" means only root and the daemon's user may get or export`},
	} {
		if g[1] != "" && !groupName.MatchString(g[1]) {
			v.add(g[0], "%q is not a Unix group name (lower case letters, digits, _ and -, at most 31)%s", g[1], g[2])
		}
	}
	g := ctl.SocketGroup()
	if g == "" || c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return
	}
	if sp := filepath.Clean(c.SocketPath()); filepath.IsAbs(sp) && within(filepath.Dir(sp), filepath.Clean(c.StateDir)) {
		v.add("control_socket", "the control socket %s is inside state_dir, which members of %q must not traverse (the vault and the host key are there); set control_socket outside it, e.g. /run/evidenced-control/evidenced.sock", sp, g)
	}
}
