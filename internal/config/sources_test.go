package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Finding 3: `ingest --from <state_dir>` through the daemon vaulted and
// uploaded host.key. The daemon now reads only under configured sources,
// never at, above or below state_dir or the host key's directory, nor the
// config's own directory; links are resolved before the check.
func TestResolveIngestSource(t *testing.T) {
	base := t.TempDir()
	mk := func(parts ...string) string {
		d := filepath.Join(append([]string{base}, parts...)...)
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
		return d
	}
	state, etc, media, reader, mnt := mk("state"), mk("etc"), mk("media"), mk("reader"), mk("mnt")
	mk("media", "BWC-0001", "DCIM")
	mk("reader", "card")
	mk("etc", "offload")
	os.WriteFile(filepath.Join(state, "host.key"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(etc, "credentials"), []byte("secret"), 0o600)
	c := Default()
	c.HostID, c.StateDir, c.Path = "h", state, filepath.Join(etc, "evidenced.yaml")
	c.Sources.Watch, c.Sources.USB.MountDir = []string{media}, mnt
	c.Sources.Manual = []string{reader, filepath.Join(etc, "offload")}

	for _, ok := range []string{media + "/BWC-0001", media + "/BWC-0001/DCIM", reader, reader + "/card", mnt, etc + "/offload"} {
		got, err := c.ResolveIngestSource(ok)
		if err != nil || got != ok {
			t.Errorf("ResolveIngestSource(%s) = %q, %v; want it allowed", ok, got, err)
		}
	}
	// A link inside a source that leads to the state directory.
	if err := os.Symlink(state, filepath.Join(reader, "link")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{state, state + "/../state", filepath.Join(reader, "link"), base, etc, filepath.Dir(base), "/"} {
		if got, err := c.ResolveIngestSource(bad); !errors.Is(err, ErrSourceNotAllowed) {
			t.Errorf("ResolveIngestSource(%s) = %q, %v; want ErrSourceNotAllowed", bad, got, err)
		}
	}
	other := t.TempDir()
	if _, err := c.ResolveIngestSource(other); !errors.Is(err, ErrSourceNotAllowed) || !strings.Contains(err.Error(), "sources.manual") {
		t.Errorf("a directory outside every source: %v", err)
	}
	if _, err := c.ResolveIngestSource(filepath.Join(reader, "absent")); err == nil || errors.Is(err, ErrSourceNotAllowed) {
		t.Errorf("a missing directory: %v, want the lookup error", err)
	}
	// The host key elsewhere: its directory is private too.
	keys := mk("reader", "keys")
	c.Custody.KeyFile = filepath.Join(keys, "host.key")
	if _, err := c.ResolveIngestSource(keys); !errors.Is(err, ErrSourceNotAllowed) {
		t.Errorf("the host key's directory: %v", err)
	}
}

func TestSourcesLimitsValidate(t *testing.T) {
	for name, c := range map[string]struct {
		mutate func(c *Config)
		key    string
	}{
		"manual in state_dir":        {func(c *Config) { c.Sources.Manual = []string{"/var/lib/evidenced/vault"} }, "sources.manual[0]"},
		"manual above state_dir":     {func(c *Config) { c.Sources.Manual = []string{"/var/lib"} }, "sources.manual[0]"},
		"manual is the config's dir": {func(c *Config) { c.Sources.Manual = []string{"/srv/x", "/etc/evidenced"} }, "sources.manual[1]"},
		"manual relative":            {func(c *Config) { c.Sources.Manual = []string{"x"} }, "sources.manual[0]"},
		"no files":                   {func(c *Config) { c.Sources.MaxFilesPerDock = 0 }, "sources.max_files_per_dock"},
		"too deep":                   {func(c *Config) { c.Sources.MaxDepth = 65 }, "sources.max_depth"},
		"no depth":                   {func(c *Config) { c.Sources.MaxDepth = 0 }, "sources.max_depth"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mustParse(t, full)
			c.mutate(cfg)
			err := cfg.Validate()
			found := false
			for _, fe := range fieldErrors(err) {
				found = found || fe.Key == c.key
			}
			if !found {
				t.Errorf("Validate() = %v, want an error on %s", err, c.key)
			}
		})
	}
	c := mustParse(t, minimal)
	if c.Sources.MaxFilesPerDock != DefaultMaxFilesPerDock || c.Sources.MaxDepth != DefaultMaxDepth {
		t.Errorf("defaults: %+v", c.Sources)
	}
}

// cameras[].usb_id pins a camera to a configured USB model.
func TestCameraUSBPin(t *testing.T) {
	pinned := strings.Replace(full, "cameras:\n", "cameras:\n"+`  - {serial: BWC-0002, kind: body, assigned_to: officer-2, usb_id: "1209:0001"}`+"\n", 1)
	_, err := Parse([]byte(pinned), "test.yaml")
	found := false
	for _, fe := range fieldErrors(err) {
		found = found || (fe.Key == "cameras[0].usb_id" && strings.Contains(fe.Msg, "no sources.usb.profiles entry"))
	}
	if !found {
		t.Errorf("a pin to a model no profile names: %v, want refused", err)
	}
	withProfile := strings.Replace(pinned, "  settle: 2s\n", "  settle: 2s\n  usb:\n    profiles:\n"+
		`      - {name: x1, vendor_id: "1209", product_id: "0001", recordings: [DCIM]}`+"\n", 1)
	c := mustParse(t, withProfile)
	if pin := c.Cameras[0].USBID; pin == nil || pin.String() != "1209:0001" {
		t.Fatalf("usb_id parsed as %v", pin)
	}
	for _, bad := range []string{"1209", "1209:1", "zzzz:0001", "1209:0001:1"} {
		if _, err := ParseUSBPair(bad); err == nil {
			t.Errorf("ParseUSBPair(%q) accepted", bad)
		}
	}
}
