package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Roles a host plays.
const (
	// RoleDock docks cameras, vaults, uploads and anchors its ledger.
	RoleDock = "dock"
	// RoleConsole docks nothing: it reads the custody that dock hosts
	// anchored in the object store (package catalog) and serves it
	// fleet-wide, recording every search and view in its own ledger.
	RoleConsole = "console"
)

// Console configures a host with role console: which dock hosts it trusts
// and how often it reads the store.
type Console struct {
	// Poll is how often the store is read for new checkpoints.
	Poll Duration `yaml:"poll"`
	// Hosts are the dock hosts whose records are evidence here. A host that
	// anchors in the same bucket but is not listed is shown as untrusted
	// and never served.
	Hosts []ConsoleHost `yaml:"hosts"`
	// Scrub re-reads the stored objects over a cycle.
	Scrub Scrub `yaml:"scrub"`
	// UnverifiedAfter is how long an item may stay vaulted at its dock
	// host without being verified in the store before fleet flags it.
	UnverifiedAfter Duration `yaml:"unverified_after"`
}

// ConsoleHost is one trusted dock host.
type ConsoleHost struct {
	// ID is the host's host_id, as it anchors under _custody/<id>/.
	ID string `yaml:"id"`
	// PublicKeyFile is the host's public key, as `evidenced key --public`
	// prints it on that host. It is the only key of that host the console
	// starts from: a key the store offers is never trusted on its own
	// word, only through a KEY_ROTATED record signed by the key before it.
	PublicKeyFile string `yaml:"public_key_file"`
}

// Scrub configures the re-hashing of stored objects.
type Scrub struct {
	// Cycle is how long one pass over the whole store takes.
	Cycle Duration `yaml:"cycle"`
}

// Console defaults and bounds.
const (
	DefaultConsolePoll = 10 * time.Second
	DefaultScrubCycle  = 90 * 24 * time.Hour
	// A verified upload normally follows a dock within minutes; a day
	// covers a host that was offline overnight.
	DefaultUnverifiedAfter = 24 * time.Hour
	minUnverifiedAfter     = time.Minute
	maxUnverifiedAfter     = 365 * 24 * time.Hour
	// A poll under a second only lists the bucket for nothing; over an
	// hour, "findable within the poll" stops meaning anything to a user.
	minConsolePoll = time.Second
	maxConsolePoll = time.Hour
	minScrubCycle  = 24 * time.Hour
	maxScrubCycle  = 10 * 365 * 24 * time.Hour
)

// defaultConsole is what a console section starts from.
func defaultConsole() *Console {
	return &Console{Poll: Duration{DefaultConsolePoll}, Scrub: Scrub{Cycle: Duration{DefaultScrubCycle}},
		UnverifiedAfter: Duration{DefaultUnverifiedAfter}}
}

// IsConsole reports whether this host is a fleet console.
func (c *Config) IsConsole() bool { return c.Role == RoleConsole }

// CatalogPath is the console's index (bbolt): only a cache of what the
// store holds, rebuilt from the store when deleted.
func (c *Config) CatalogPath() string { return filepath.Join(c.StateDir, "catalog.db") }

// ConsoleHost returns the listed host id.
func (c *Config) ConsoleHost(id string) (ConsoleHost, bool) {
	if c.Console == nil {
		return ConsoleHost{}, false
	}
	for _, h := range c.Console.Hosts {
		if h.ID == id {
			return h, true
		}
	}
	return ConsoleHost{}, false
}

// resolveConsolePaths makes the hosts' key files absolute.
func (c *Config) resolveConsolePaths(abs func(string) string) {
	if c.Console == nil {
		return
	}
	for i := range c.Console.Hosts {
		c.Console.Hosts[i].PublicKeyFile = abs(c.Console.Hosts[i].PublicKeyFile)
	}
}

// console checks role and the console section. A console docks nothing,
// so a console config that also configures camera sources is refused
// rather than half-obeyed; a dock config with a console section is a role
// that was forgotten.
func (v *validator) console(c *Config) {
	switch c.Role {
	case RoleDock:
		if c.Console != nil {
			v.add("console", "set, but role is %s; write role: %s", RoleDock, RoleConsole)
		}
		return
	case RoleConsole:
	default:
		v.add("role", "must be %s or %s, got %q", RoleDock, RoleConsole, c.Role)
		return
	}
	if c.Console == nil {
		v.add("console", "required with role: %s (poll, hosts)", RoleConsole)
		return
	}
	if c.ObjectStore == nil {
		v.add("object_store", "required with role: %s: the console reads the fleet's custody from the store", RoleConsole)
	}
	if len(c.Sources.Watch) > 0 {
		v.add("sources.watch", "a console docks no cameras; remove it or use role: %s", RoleDock)
	}
	if c.Sources.USB.Enabled {
		v.add("sources.usb.enabled", "a console docks no cameras; remove it or use role: %s", RoleDock)
	}
	co := c.Console
	if d := co.Poll.Duration; d < minConsolePoll || d > maxConsolePoll {
		v.add("console.poll", "must be between %s and %s, got %s", minConsolePoll, maxConsolePoll, co.Poll)
	}
	if d := co.Scrub.Cycle.Duration; d < minScrubCycle || d > maxScrubCycle {
		v.add("console.scrub.cycle", "must be between 1d and 3650d, got %s", co.Scrub.Cycle)
	}
	if d := co.UnverifiedAfter.Duration; d < minUnverifiedAfter || d > maxUnverifiedAfter {
		v.add("console.unverified_after", "must be between %s and 365d, got %s", minUnverifiedAfter, co.UnverifiedAfter)
	}
	if len(co.Hosts) == 0 {
		v.add("console.hosts", "required: list the dock hosts whose records are evidence here")
	}
	seen := map[string]string{}
	for i, h := range co.Hosts {
		key := fmt.Sprintf("console.hosts[%d]", i)
		if v.ident(key+".id", h.ID, "host id") {
			if prev, dup := seen[strings.ToLower(h.ID)]; dup {
				v.add(key+".id", "%q is already listed at %s", h.ID, prev)
			} else {
				seen[strings.ToLower(h.ID)] = key
			}
			if h.ID == c.HostID {
				v.add(key+".id", "%q is this console's own host_id; a console does not vouch for itself", h.ID)
			}
		}
		v.absPath(key+".public_key_file", h.PublicKeyFile)
	}
}
