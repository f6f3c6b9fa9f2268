package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid configuration; tests append to it.
const minimal = `host_id: dock-01
state_dir: /var/lib/evidenced
retention:
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
`

func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	c, err := Parse([]byte(yml), "/etc/evidenced/evidenced.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	checks := []struct {
		name      string
		got, want any
	}{
		{"settle", c.Sources.Settle.Duration, 2 * time.Second},
		{"watch", len(c.Sources.Watch), 0},
		{"object_store", c.ObjectStore == nil, true},
		{"default_class", c.Retention.DefaultClass, "uncategorized"},
		{"shutdown_timeout", c.ShutdownTimeout.Duration, 30 * time.Second},
		{"vault_reserve", c.VaultReserve, GiB},
		{"vault.io_budget", c.Vault.IOBudget, 32 * MiB},
		{"concurrency", c.Upload.Concurrency, 2},
		{"retry_min", c.Upload.RetryMin.Duration, time.Second},
		{"retry_max", c.Upload.RetryMax.Duration, 5 * time.Minute},
		{"part_sums_at_ingest", c.Upload.PartSumsAtIngest, true},
		{"log_level", c.LogLevel, "info"},
		{"ledger", c.LedgerPath(), "/var/lib/evidenced/ledger.db"},
		{"vault", c.VaultDir(), "/var/lib/evidenced/vault"},
		{"socket", c.SocketPath(), "/var/lib/evidenced/evidenced.sock"},
		{"path", c.Path, "/etc/evidenced/evidenced.yaml"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if d := Default(); d.Validate() == nil {
		t.Error("Default() validated without host_id and classes; they have no defaults on purpose")
	}
}

func TestObjectStoreSection(t *testing.T) {
	t.Run("defaults inside a present section", func(t *testing.T) {
		c := mustParse(t, minimal+"object_store:\n  bucket: evidence\n")
		if c.ObjectStore == nil {
			t.Fatal("object_store present but nil")
		}
		if c.ObjectStore.Region != "us-east-1" || c.ObjectStore.MultipartThreshold != 64*MiB || c.ObjectStore.PathStyle {
			t.Errorf("defaults not applied: %+v", *c.ObjectStore)
		}
	})
	t.Run("explicit values", func(t *testing.T) {
		c := mustParse(t, minimal+`object_store:
  endpoint: https://s3.example.org:9000
  bucket: evidence.depot-a
  region: af-south-1
  path_style: true
  prefix: depot-a/
  multipart_threshold: 128MiB
`)
		want := ObjectStore{Endpoint: "https://s3.example.org:9000", Bucket: "evidence.depot-a", Region: "af-south-1", PathStyle: true, Prefix: "depot-a/", MultipartThreshold: 128 * MiB}
		if *c.ObjectStore != want {
			t.Errorf("got %+v, want %+v", *c.ObjectStore, want)
		}
	})
	t.Run("null section means vault only", func(t *testing.T) {
		c := mustParse(t, minimal+"object_store:\n")
		if c.ObjectStore != nil {
			t.Errorf("object_store with no value = %+v, want nil", *c.ObjectStore)
		}
	})
}

func TestAccessors(t *testing.T) {
	c := mustParse(t, minimal+`cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-CA123456}
control_socket: /run/evidenced/ctl.sock
log_level: debug
`)
	if cam, ok := c.Camera("CAR-0001"); !ok || cam.Kind != KindVehicle || cam.AssignedTo != "vehicle-CA123456" {
		t.Errorf("Camera(CAR-0001) = %+v, %v", cam, ok)
	}
	if _, ok := c.Camera("car-0001"); ok {
		t.Error("Camera lookup must be exact")
	}
	if _, ok := c.Camera("BWC-9999"); ok {
		t.Error("unknown camera found")
	}
	if cl, ok := c.Class("uncategorized"); !ok || cl.Days != 90 || cl.Mode != ModeGovernance {
		t.Errorf("Class(uncategorized) = %+v, %v", cl, ok)
	}
	if _, ok := c.Class("incident"); ok {
		t.Error("undefined class found")
	}
	if got := c.SocketPath(); got != "/run/evidenced/ctl.sock" {
		t.Errorf("SocketPath = %s", got)
	}
	if got := c.SlogLevel().String(); got != "DEBUG" {
		t.Errorf("SlogLevel = %s", got)
	}
}

// Relative paths are relative to the config file's directory, not to the
// working directory.
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "conf", "evidenced.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	yml := `host_id: dock-01
state_dir: state
sources:
  watch: [../media, /run/evidenced/media]
control_socket: ./run/ctl.sock
retention:
  classes: [{name: uncategorized, days: 90, mode: GOVERNANCE}]
`
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	// A working directory elsewhere must not matter.
	t.Chdir(t.TempDir())
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources.Watch) != 2 {
		t.Fatalf("watch = %v", c.Sources.Watch)
	}
	for _, ck := range []struct{ name, got, want string }{
		{"state_dir", c.StateDir, filepath.Join(dir, "conf", "state")},
		{"sources.watch[0]", c.Sources.Watch[0], filepath.Join(dir, "media")},
		{"sources.watch[1]", c.Sources.Watch[1], "/run/evidenced/media"},
		{"control_socket", c.ControlSocket, filepath.Join(dir, "conf", "run", "ctl.sock")},
		{"Path", c.Path, p},
		{"LedgerPath", c.LedgerPath(), filepath.Join(dir, "conf", "state", "ledger.db")},
		{"VaultDir", c.VaultDir(), filepath.Join(dir, "conf", "state", "vault")},
		{"SocketPath", c.SocketPath(), filepath.Join(dir, "conf", "run", "ctl.sock")},
	} {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}

	// Parse with a bare name resolves against the working directory, which
	// is that name's directory.
	wd := t.TempDir()
	t.Chdir(wd)
	c, err = Parse([]byte(yml), "evidenced.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "state"); c.StateDir != want {
		t.Errorf("Parse(name without dir): state_dir = %s, want %s", c.StateDir, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+10), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
		is               error
	}{
		{"missing", filepath.Join(dir, "nope.yaml"), "nope.yaml", fs.ErrNotExist},
		{"directory", dir, "not a regular file", nil},
		{"too large", big, "larger than", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

// Files that are not a configuration at all get a clear message with the
// file name and, where there is one, the line.
func TestCorruptFiles(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{"empty", "", []string{"cfg.yaml", "empty"}},
		{"whitespace", "  \n\n", []string{"empty"}},
		{"only comments", "# nothing here\n", []string{"empty"}},
		{"null document", "~\n", []string{"empty"}},
		{"tab indentation", "host_id: a\nsources:\n\twatch: [/x]\n", []string{"cfg.yaml:3", "not valid YAML", "tab"}},
		{"not yaml", "host_id: [unclosed\n", []string{"cfg.yaml", "not valid YAML"}},
		{"binary", "\x00\x01\x02\xff", []string{"not valid YAML"}},
		{"scalar document", "just some text\n", []string{"cfg.yaml:1", "expected keys at the top level"}},
		{"list document", "- a\n- b\n", []string{"expected keys at the top level", "a list"}},
		{"two documents", minimal + "---\nhost_id: b\n", []string{"more than one YAML document"}},
		{"bad indentation", "host_id: a\n  state_dir: /x\n", []string{"cfg.yaml:", "not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "cfg.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// Unknown keys, duplicate keys and values of the wrong shape are refused
// with the key path and line.
func TestStrictDecode(t *testing.T) {
	tests := []struct {
		name, extra string
		want        []string
	}{
		{"unknown top-level key", "hostid: x\n", []string{"cfg.yaml:6", "hostid", "did you mean host_id"}},
		{"unknown nested key", "object_store:\n  bucket: evidence\n  bukket: x\n", []string{"cfg.yaml:8", "object_store.bukket", "did you mean bucket"}},
		{"unknown key in list item", "cameras:\n  - {serial: A, kind: body, assigned_to: x}\n  - {serial: B, kind: body, assigned_to: x, colour: red}\n", []string{"cfg.yaml:8", "cameras[1].colour"}},
		{"unknown key in class", "  default_days: 3\n", []string{"retention.default_days"}},
		{"credential key", "object_store:\n  bucket: evidence\n  secret_access_key: abc\n", []string{"object_store.secret_access_key", "credentials are never read from the config file", "AWS_SECRET_ACCESS_KEY"}},
		{"duplicate key", "log_level: info\nlog_level: debug\n", []string{"cfg.yaml:7", "log_level", "written twice (first on line 6)"}},
		{"int expected", "upload:\n  concurrency: many\n", []string{"cfg.yaml:7", "upload.concurrency", "whole number"}},
		{"float for int", "upload:\n  concurrency: 2.5\n", []string{"upload.concurrency", "whole number"}},
		{"bool expected", "object_store:\n  bucket: evidence\n  path_style: yes\n", []string{"object_store.path_style", "true or false"}},
		{"duration without unit", "shutdown_timeout: 30\n", []string{"cfg.yaml:6", "shutdown_timeout", "no unit"}},
		{"bad duration", "sources:\n  settle: soon\n", []string{"sources.settle", "not a duration"}},
		{"bad size", "vault_reserve: 1.5GiB\n", []string{"vault_reserve", "unknown unit"}},
		{"negative size", "vault_reserve: -1\n", []string{"vault_reserve", "negative"}},
		{"ambiguous size unit", "vault_reserve: 10G\n", []string{"vault_reserve", "unknown unit"}},
		{"list expected", "sources:\n  watch: /run/evidenced/media\n", []string{"sources.watch", "expected a list", "[/run/evidenced/media]"}},
		{"mapping expected", "sources: /run/evidenced/media\n", []string{"sources", "expected a mapping"}},
		{"scalar expected", "log_level: [a, b]\n", []string{"log_level", "expected a single value, got a list"}},
		{"camera not a mapping", "cameras:\n  - BWC-0001\n", []string{"cameras[0]", "expected a mapping"}},
		{"size as list", "vault_reserve: [1]\n", []string{"vault_reserve", "expected a size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tt.extra), "cfg.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("err = %v, want a *FieldError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestAliasesAndMerge(t *testing.T) {
	c := mustParse(t, minimal+`cameras:
  - &first {serial: BWC-0001, kind: body, assigned_to: pool-a}
  - {<<: *first, serial: BWC-0002}
`)
	if len(c.Cameras) != 2 || c.Cameras[1].Serial != "BWC-0002" || c.Cameras[1].AssignedTo != "pool-a" {
		t.Errorf("merge key: cameras = %+v", c.Cameras)
	}
	_, err := Parse([]byte(minimal+`cameras:
  - &first {serial: BWC-0001, kind: body, assigned_to: pool-a}
  - {<<: *first, serial: BWC-0002, colour: red}
`), "cfg.yaml")
	if err == nil || !strings.Contains(err.Error(), "cameras[1].colour") {
		t.Errorf("unknown key next to a merge: err = %v", err)
	}
}

// All problems are reported at once, so an operator fixes the file in one go.
func TestAllProblemsReported(t *testing.T) {
	_, err := Parse([]byte(`host_id: "bad host"
state_dir: /var/lib/evidenced
retention:
  default_class: nope
  classes:
    - {name: uncategorized, days: 0, mode: governance}
cameras:
  - {serial: BWC-0001, kind: drone, assigned_to: x}
`), "cfg.yaml")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, w := range []string{
		"cfg.yaml:1: host_id:",
		"cfg.yaml:4: retention.default_class:",
		"cfg.yaml:6: retention.classes[0].days:",
		"cfg.yaml:6: retention.classes[0].mode:",
		"cfg.yaml:8: cameras[0].kind:",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err = %q\nwant it to contain %q", err, w)
		}
	}
}
