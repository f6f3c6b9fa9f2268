package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
)

// live lets a running daemon take a new configuration without restarting:
// every component keeps the *Config it was built with, and the lookups of
// the reloadable keys (Camera, Class, UploadBandwidthAt) read the newest
// accepted config through this pointer, atomically. Keys read as fields
// keep their start-up values until a restart.
type live struct {
	p atomic.Pointer[Config]
	// pub is the console's inventory in force (inventory.go), nil: none.
	pub atomic.Pointer[Published]
}

// Reloadable are the keys Reload applies to a running daemon; a change to
// any other key is reported by RestartNeeded and takes effect at the next
// start.
var Reloadable = []string{"cameras", "retention.classes", "upload.bandwidth", "upload.windows", "log_level"}

// current is the newest config accepted by Reload, or c itself.
func (c *Config) current() *Config {
	if c.live != nil {
		if n := c.live.p.Load(); n != nil {
			return n
		}
	}
	return c
}

// Current returns the newest configuration accepted by Reload (c itself
// when there was none).
func (c *Config) Current() *Config { return c.current() }

// Reload makes next the configuration the reloadable lookups of c read. next
// must come from Load (validated); c keeps every other value.
func (c *Config) Reload(next *Config) {
	if c.live == nil {
		c.live = &live{}
	}
	c.live.p.Store(next)
}

// EnableReload prepares c for Reload; call it before c is shared between
// goroutines (Reload itself then only stores a pointer).
func (c *Config) EnableReload() {
	if c.live == nil {
		c.live = &live{}
	}
}

// UploadBandwidthAt is BandwidthAt of the newest config's upload section.
func (c *Config) UploadBandwidthAt(t time.Time) int64 { return c.current().Upload.BandwidthAt(t) }

// RestartNeeded lists the keys (top-level, or the retention and upload
// keys) whose values differ between c and next and that Reload does not
// apply.
func (c *Config) RestartNeeded(next *Config) []string {
	var out []string
	a, b := reflect.ValueOf(*c), reflect.ValueOf(*next)
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		switch name {
		case "retention", "upload":
			out = append(out, diffSub(name, a.Field(i), b.Field(i))...)
			continue
		}
		if !isReloadable(name) && !sameJSON(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

func diffSub(prefix string, a, b reflect.Value) []string {
	var out []string
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := prefix + "." + strings.Split(f.Tag.Get("yaml"), ",")[0]
		if !f.IsExported() || isReloadable(name) {
			continue
		}
		if !sameJSON(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

func isReloadable(key string) bool {
	for _, k := range Reloadable {
		if k == key {
			return true
		}
	}
	return false
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
