package config

import (
	"net/url"
	"path/filepath"
	"time"
)

// Custody configures the off-host anchoring of the custody ledger (package
// anchor) and the host key that signs it (package signing).
type Custody struct {
	// CheckpointInterval is the longest time between two anchored
	// checkpoints; 0 (absent) means DefaultCheckpointInterval.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// TSAURL is an RFC 3161 time-stamping authority; "" means none.
	TSAURL string `yaml:"tsa_url"`
	// TSACA is a PEM file of the CAs the TSA's certificate chains to.
	TSACA string `yaml:"tsa_ca"`
	// KeyFile is the host's signing key; "" means <state_dir>/host.key.
	KeyFile string `yaml:"key_file"`
	// RetentionDays is how long anchored custody objects are locked; 0
	// means the longest retention class.
	RetentionDays int `yaml:"retention_days"`
	// WitnessFile, when set, is an append-only file outside state_dir that
	// receives every signed head of the ledger (package witness); "" means
	// the systemd journal when journald runs, else no witness.
	WitnessFile string `yaml:"witness_file"`
}

// Checkpoint interval bounds and default.
const (
	DefaultCheckpointInterval = 10 * time.Minute
	minCheckpointInterval     = time.Minute
	maxCheckpointInterval     = 24 * time.Hour
	maxCustodyRetentionDays   = 100 * 365
)

// CheckpointInterval is custody.checkpoint_interval or its default.
func (c *Config) CheckpointInterval() time.Duration {
	if c.Custody.CheckpointInterval.Duration == 0 {
		return DefaultCheckpointInterval
	}
	return c.Custody.CheckpointInterval.Duration
}

// KeyPath is the host signing key's file.
func (c *Config) KeyPath() string {
	if c.Custody.KeyFile != "" {
		return c.Custody.KeyFile
	}
	return filepath.Join(c.StateDir, "host.key")
}

// CustodyRetention is how long anchored custody objects are locked:
// custody.retention_days, or the longest retention class (custody must be
// provable for as long as any footage it describes is kept).
func (c *Config) CustodyRetention() time.Duration {
	days := c.Custody.RetentionDays
	if days == 0 {
		for _, cl := range c.Retention.Classes {
			days = max(days, cl.Days)
		}
	}
	return time.Duration(days) * 24 * time.Hour
}

// custody checks the custody section. An explicit checkpoint_interval of 0
// is refused (absent means the default; 0 would mean "never").
func (v *validator) custody(c *Config) {
	cu := c.Custody
	if _, set := c.lines["custody.checkpoint_interval"]; set || cu.CheckpointInterval.Duration != 0 {
		if d := cu.CheckpointInterval.Duration; d < minCheckpointInterval || d > maxCheckpointInterval {
			v.add("custody.checkpoint_interval", "must be between %s and %s, got %s", minCheckpointInterval, maxCheckpointInterval, cu.CheckpointInterval)
		}
	}
	if cu.TSAURL != "" {
		u, err := url.Parse(cu.TSAURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
			v.add("custody.tsa_url", "%q must be an http:// or https:// URL with a host", cu.TSAURL)
		case u.User != nil:
			v.add("custody.tsa_url", "must not contain a user or password")
		case u.Fragment != "":
			v.add("custody.tsa_url", "%q must not have a fragment", cu.TSAURL)
		}
	}
	if cu.TSACA != "" {
		if cu.TSAURL == "" {
			v.add("custody.tsa_ca", "set without custody.tsa_url")
		}
		v.absPath("custody.tsa_ca", cu.TSACA)
	}
	if cu.KeyFile != "" {
		if v.absPath("custody.key_file", cu.KeyFile) && c.StateDir != "" && within(c.StateDir, cu.KeyFile) {
			v.add("custody.key_file", "%s is state_dir or a directory above it; name a file", cu.KeyFile)
		}
	}
	if cu.WitnessFile != "" {
		if v.absPath("custody.witness_file", cu.WitnessFile) && c.StateDir != "" &&
			(within(cu.WitnessFile, c.StateDir) || within(c.StateDir, cu.WitnessFile)) {
			v.add("custody.witness_file", "%s is inside state_dir (or above it): the witness must be where write access to state_dir does not reach", cu.WitnessFile)
		}
	}
	if cu.RetentionDays < 0 || cu.RetentionDays > maxCustodyRetentionDays {
		v.add("custody.retention_days", "must be between 0 and %d, got %d", maxCustodyRetentionDays, cu.RetentionDays)
	}
}
