package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// full is a valid configuration that sets every key.
const full = `host_id: dock-01
state_dir: /var/lib/evidenced
sources:
  watch: [/run/evidenced/media, /srv/offload]
  settle: 2s
object_store:
  endpoint: http://127.0.0.1:7070
  bucket: evidence
  region: us-east-1
  path_style: true
  prefix: ""
  multipart_threshold: 64MiB
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
    - {name: incident, days: 2555, mode: COMPLIANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-CA123456}
shutdown_timeout: 30s
vault_reserve: 1GiB
vault:
  io_budget: 16MiB
upload:
  concurrency: 2
  retry_min: 1s
  retry_max: 5m
control_socket: ""
log_level: info
`

// fieldErrors unpacks what Validate returned (one error or several joined).
func fieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		var fe *FieldError
		if errors.As(err, &fe) && err == error(fe) {
			out = append(out, fe)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string // the key the error must name
		msg    string // and a word of its message
	}{
		{"host_id empty", func(c *Config) { c.HostID = "" }, "host_id", "required"},
		{"host_id with space", func(c *Config) { c.HostID = "dock 01" }, "host_id", "not a valid host id"},
		{"host_id slash", func(c *Config) { c.HostID = "dock/01" }, "host_id", "not a valid"},
		{"host_id dotdot", func(c *Config) { c.HostID = ".." }, "host_id", "cannot be"},
		{"host_id too long", func(c *Config) { c.HostID = strings.Repeat("a", 65) }, "host_id", "1-64"},
		{"state_dir empty", func(c *Config) { c.StateDir = "" }, "state_dir", "required"},
		{"state_dir relative", func(c *Config) { c.StateDir = "var/lib" }, "state_dir", "absolute"},
		{"state_dir tilde", func(c *Config) { c.StateDir = "~/evidenced" }, "state_dir", "~ is not expanded"},
		{"watch relative", func(c *Config) { c.Sources.Watch[1] = "media" }, "sources.watch[1]", "absolute"},
		{"watch empty entry", func(c *Config) { c.Sources.Watch[0] = "" }, "sources.watch[0]", "required"},
		{"watch duplicate", func(c *Config) { c.Sources.Watch[1] = c.Sources.Watch[0] }, "sources.watch[1]", "already watched"},
		{"watch nested", func(c *Config) { c.Sources.Watch[1] = "/run/evidenced/media/BWC-0001" }, "sources.watch[1]", "overlaps"},
		{"watch contains state_dir", func(c *Config) { c.Sources.Watch[1] = "/var/lib" }, "sources.watch[1]", "overlaps state_dir"},
		{"watch inside state_dir", func(c *Config) { c.Sources.Watch[1] = "/var/lib/evidenced/vault" }, "sources.watch[1]", "overlaps state_dir"},
		{"settle zero", func(c *Config) { c.Sources.Settle = Duration{} }, "sources.settle", "more than 0"},
		{"settle negative", func(c *Config) { c.Sources.Settle = Duration{-time.Second} }, "sources.settle", "more than 0"},
		{"endpoint no scheme", func(c *Config) { c.ObjectStore.Endpoint = "127.0.0.1:7070" }, "object_store.endpoint", "http"},
		{"endpoint ftp", func(c *Config) { c.ObjectStore.Endpoint = "ftp://store" }, "object_store.endpoint", "http:// or https://"},
		{"endpoint no host", func(c *Config) { c.ObjectStore.Endpoint = "http://" }, "object_store.endpoint", "no host"},
		{"endpoint credentials", func(c *Config) { c.ObjectStore.Endpoint = "https://key:secret@s3.example.org" }, "object_store.endpoint", "credentials"},
		{"endpoint query", func(c *Config) { c.ObjectStore.Endpoint = "https://s3.example.org/?x=1" }, "object_store.endpoint", "query"},
		{"endpoint bad port", func(c *Config) { c.ObjectStore.Endpoint = "http://127.0.0.1:99999" }, "object_store.endpoint", "port"},
		{"endpoint garbage", func(c *Config) { c.ObjectStore.Endpoint = "http://[::1" }, "object_store.endpoint", "not a URL"},
		{"bucket empty", func(c *Config) { c.ObjectStore.Bucket = "" }, "object_store.bucket", "required"},
		{"bucket short", func(c *Config) { c.ObjectStore.Bucket = "ev" }, "object_store.bucket", "3-63"},
		{"bucket long", func(c *Config) { c.ObjectStore.Bucket = strings.Repeat("e", 64) }, "object_store.bucket", "3-63"},
		{"bucket upper case", func(c *Config) { c.ObjectStore.Bucket = "Evidence" }, "object_store.bucket", "lower-case"},
		{"bucket underscore", func(c *Config) { c.ObjectStore.Bucket = "evi_dence" }, "object_store.bucket", "lower-case"},
		{"bucket leading hyphen", func(c *Config) { c.ObjectStore.Bucket = "-evidence" }, "object_store.bucket", "begin and end"},
		{"bucket trailing dot", func(c *Config) { c.ObjectStore.Bucket = "evidence." }, "object_store.bucket", "begin and end"},
		{"bucket double dot", func(c *Config) { c.ObjectStore.Bucket = "evi..dence" }, "object_store.bucket", "two dots"},
		{"bucket ip", func(c *Config) { c.ObjectStore.Bucket = "192.168.5.4" }, "object_store.bucket", "IP address"},
		{"bucket xn--", func(c *Config) { c.ObjectStore.Bucket = "xn--evidence" }, "object_store.bucket", "xn--"},
		{"bucket -s3alias", func(c *Config) { c.ObjectStore.Bucket = "evidence-s3alias" }, "object_store.bucket", "-s3alias"},
		{"region empty", func(c *Config) { c.ObjectStore.Region = "" }, "object_store.region", "required"},
		{"region spaces", func(c *Config) { c.ObjectStore.Region = "us east" }, "object_store.region", "not a region"},
		{"prefix leading slash", func(c *Config) { c.ObjectStore.Prefix = "/depot" }, "object_store.prefix", "start with /"},
		{"prefix double slash", func(c *Config) { c.ObjectStore.Prefix = "a//b" }, "object_store.prefix", "//"},
		{"prefix dotdot", func(c *Config) { c.ObjectStore.Prefix = "a/../b" }, "object_store.prefix", ".."},
		{"prefix control", func(c *Config) { c.ObjectStore.Prefix = "a\nb" }, "object_store.prefix", "control"},
		{"prefix long", func(c *Config) { c.ObjectStore.Prefix = strings.Repeat("p", 513) }, "object_store.prefix", "longer"},
		{"multipart small", func(c *Config) { c.ObjectStore.MultipartThreshold = 4 * MiB }, "object_store.multipart_threshold", "between"},
		{"multipart large", func(c *Config) { c.ObjectStore.MultipartThreshold = 6 * GiB }, "object_store.multipart_threshold", "between"},
		{"no classes", func(c *Config) { c.Retention.Classes = nil }, "retention.classes", "at least one"},
		{"default_class empty", func(c *Config) { c.Retention.DefaultClass = "" }, "retention.default_class", "required"},
		{"default_class unknown", func(c *Config) { c.Retention.DefaultClass = "evidentiary" }, "retention.default_class", "not one of"},
		{"class name empty", func(c *Config) { c.Retention.Classes[1].Name = "" }, "retention.classes[1].name", "required"},
		{"class name bad", func(c *Config) { c.Retention.Classes[1].Name = "in cident" }, "retention.classes[1].name", "not a valid class name"},
		{"class duplicate", func(c *Config) { c.Retention.Classes[1].Name = "uncategorized" }, "retention.classes[1].name", "already defined"},
		{"class days zero", func(c *Config) { c.Retention.Classes[0].Days = 0 }, "retention.classes[0].days", "between 1"},
		{"class days negative", func(c *Config) { c.Retention.Classes[0].Days = -5 }, "retention.classes[0].days", "between 1"},
		{"class days huge", func(c *Config) { c.Retention.Classes[0].Days = 36501 }, "retention.classes[0].days", "36500"},
		{"class mode lower", func(c *Config) { c.Retention.Classes[1].Mode = "compliance" }, "retention.classes[1].mode", "upper case"},
		{"class mode empty", func(c *Config) { c.Retention.Classes[1].Mode = "" }, "retention.classes[1].mode", "GOVERNANCE or COMPLIANCE"},
		{"serial empty", func(c *Config) { c.Cameras[1].Serial = "" }, "cameras[1].serial", "required"},
		{"serial space", func(c *Config) { c.Cameras[1].Serial = "CAR 0001" }, "cameras[1].serial", "not a valid serial"},
		{"serial slash", func(c *Config) { c.Cameras[1].Serial = "../etc" }, "cameras[1].serial", "not a valid serial"},
		{"serial too long", func(c *Config) { c.Cameras[1].Serial = strings.Repeat("S", 65) }, "cameras[1].serial", "1-64"},
		{"serial dot", func(c *Config) { c.Cameras[1].Serial = "." }, "cameras[1].serial", "cannot be"},
		{"serial duplicate", func(c *Config) { c.Cameras[1].Serial = "BWC-0001" }, "cameras[1].serial", "already listed at cameras[0]"},
		{"serial duplicate ignoring case", func(c *Config) { c.Cameras[1].Serial = "bwc-0001" }, "cameras[1].serial", "already listed"},
		{"kind empty", func(c *Config) { c.Cameras[0].Kind = "" }, "cameras[0].kind", "body or vehicle"},
		{"kind unknown", func(c *Config) { c.Cameras[0].Kind = "drone" }, "cameras[0].kind", "body or vehicle"},
		{"assigned_to empty", func(c *Config) { c.Cameras[0].AssignedTo = " " }, "cameras[0].assigned_to", "required"},
		{"assigned_to control", func(c *Config) { c.Cameras[0].AssignedTo = "officer\x1b[2J" }, "cameras[0].assigned_to", "control"},
		{"assigned_to long", func(c *Config) { c.Cameras[0].AssignedTo = strings.Repeat("o", 129) }, "cameras[0].assigned_to", "longer"},
		{"shutdown_timeout zero", func(c *Config) { c.ShutdownTimeout = Duration{} }, "shutdown_timeout", "more than 0"},
		{"vault_reserve negative", func(c *Config) { c.VaultReserve = -1 }, "vault_reserve", "negative"},
		{"io_budget below one buffer", func(c *Config) { c.Vault.IOBudget = 512 * KiB }, "vault.io_budget", "at least 1MiB"},
		{"io_budget zero", func(c *Config) { c.Vault.IOBudget = 0 }, "vault.io_budget", "at least 1MiB"},
		{"concurrency zero", func(c *Config) { c.Upload.Concurrency = 0 }, "upload.concurrency", "between 1 and 64"},
		{"concurrency huge", func(c *Config) { c.Upload.Concurrency = 65 }, "upload.concurrency", "between 1 and 64"},
		{"retry_min zero", func(c *Config) { c.Upload.RetryMin = Duration{} }, "upload.retry_min", "more than 0"},
		{"retry_max below min", func(c *Config) { c.Upload.RetryMax = Duration{500 * time.Millisecond} }, "upload.retry_max", "retry_min"},
		{"control_socket relative", func(c *Config) { c.ControlSocket = "ctl.sock" }, "control_socket", "absolute"},
		{"control_socket too long", func(c *Config) { c.ControlSocket = "/run/" + strings.Repeat("s", 110) }, "control_socket", "at most 108"},
		{"default socket too long", func(c *Config) { c.StateDir = "/" + strings.Repeat("d", 100) }, "state_dir", "control_socket"},
		{"log_level unknown", func(c *Config) { c.LogLevel = "verbose" }, "log_level", "debug, info, warn or error"},
		{"log_level empty", func(c *Config) { c.LogLevel = "" }, "log_level", "debug, info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, full)
			tt.mutate(c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want an ErrInvalid naming %s", err, tt.key)
			}
			var found *FieldError
			for _, fe := range fieldErrors(err) {
				if fe.Key == tt.key {
					found = fe
					break
				}
			}
			if found == nil {
				t.Fatalf("Validate() = %v\nwant a problem with key %s", err, tt.key)
			}
			if !strings.Contains(found.Msg, tt.msg) {
				t.Errorf("%s: %q, want it to mention %q", tt.key, found.Msg, tt.msg)
			}
			if !strings.Contains(err.Error(), tt.key+": ") {
				t.Errorf("error text %q does not name %s", err, tt.key)
			}
			if found.File != "/etc/evidenced/evidenced.yaml" || found.Line == 0 {
				t.Errorf("%s: file:line = %s:%d, want the config file and a line", tt.key, found.File, found.Line)
			}
		})
	}
}

// Values at the edges of each rule are accepted.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"full as written", func(*Config) {}},
		{"no object store", func(c *Config) { c.ObjectStore = nil }},
		{"no endpoint (AWS)", func(c *Config) { c.ObjectStore.Endpoint = "" }},
		{"https endpoint with path", func(c *Config) { c.ObjectStore.Endpoint = "https://gw.example.org:8443/s3" }},
		{"ipv6 endpoint", func(c *Config) { c.ObjectStore.Endpoint = "http://[::1]:7070" }},
		{"bucket with dots", func(c *Config) { c.ObjectStore.Bucket = "evidence.depot-a.example" }},
		{"bucket 3 chars", func(c *Config) { c.ObjectStore.Bucket = "ev1" }},
		{"prefix with slash", func(c *Config) { c.ObjectStore.Prefix = "depot-a/2025/" }},
		{"multipart 5MiB", func(c *Config) { c.ObjectStore.MultipartThreshold = 5 * MiB }},
		{"multipart 5GiB", func(c *Config) { c.ObjectStore.MultipartThreshold = 5 * GiB }},
		{"no watch", func(c *Config) { c.Sources.Watch = nil }},
		{"no cameras", func(c *Config) { c.Cameras = nil }},
		{"vault_reserve zero", func(c *Config) { c.VaultReserve = 0 }},
		{"io_budget one buffer", func(c *Config) { c.Vault.IOBudget = MiB }},
		{"retry_min == retry_max", func(c *Config) { c.Upload.RetryMax = c.Upload.RetryMin }},
		{"sibling of state_dir", func(c *Config) { c.Sources.Watch = []string{"/var/lib/evidenced-media"} }},
		{"days 36500", func(c *Config) { c.Retention.Classes[1].Days = 36500 }},
		{"serial 64", func(c *Config) { c.Cameras[0].Serial = strings.Repeat("S", 64) }},
		{"assigned_to unicode", func(c *Config) { c.Cameras[0].AssignedTo = "Sgt. Nomsa Dlamini-Müller" }},
		{"log level warn", func(c *Config) { c.LogLevel = "WARN" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, full)
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

// A Config built in code (no file) still gets key-named errors.
func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.StateDir = "/var/lib/evidenced"
	c.Retention.Classes = []Class{{Name: "uncategorized", Days: 1, Mode: ModeGovernance}}
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "config: host_id: required") {
		t.Fatalf("Validate() = %v", err)
	}
	c.HostID = "h"
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}
