package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCustodyKeys(t *testing.T) {
	d := mustParse(t, minimal)
	if d.CheckpointInterval() != DefaultCheckpointInterval || d.Custody.TSAURL != "" || d.KeyPath() != filepath.Join(d.StateDir, "host.key") {
		t.Errorf("defaults: interval %s, custody %+v, key %s", d.CheckpointInterval(), d.Custody, d.KeyPath())
	}
	var longest int
	for _, cl := range d.Retention.Classes {
		longest = max(longest, cl.Days)
	}
	if d.CustodyRetention() != time.Duration(longest)*24*time.Hour || longest == 0 {
		t.Errorf("default custody retention %s, want the longest class (%d days)", d.CustodyRetention(), longest)
	}

	c := mustParse(t, minimal+`custody:
  checkpoint_interval: 2m
  tsa_url: https://tsa.example.org/tsr
  tsa_ca: /etc/evidenced/tsa-ca.pem
  key_file: /etc/evidenced/host.key
  retention_days: 3650
`)
	want := Custody{CheckpointInterval: Duration{2 * time.Minute}, TSAURL: "https://tsa.example.org/tsr",
		TSACA: "/etc/evidenced/tsa-ca.pem", KeyFile: "/etc/evidenced/host.key", RetentionDays: 3650}
	if c.Custody != want {
		t.Errorf("custody = %+v, want %+v", c.Custody, want)
	}
	if c.CheckpointInterval() != 2*time.Minute || c.KeyPath() != "/etc/evidenced/host.key" || c.CustodyRetention() != 3650*24*time.Hour {
		t.Errorf("accessors: %s %s %s", c.CheckpointInterval(), c.KeyPath(), c.CustodyRetention())
	}
}

func TestCustodyKeysInvalid(t *testing.T) {
	tests := []struct {
		name, yml, key, msg string
	}{
		{"zero interval", "custody: {checkpoint_interval: 0s}\n", "custody.checkpoint_interval", "between"},
		{"short interval", "custody: {checkpoint_interval: 10s}\n", "custody.checkpoint_interval", "between"},
		{"long interval", "custody: {checkpoint_interval: 48h}\n", "custody.checkpoint_interval", "between"},
		{"not a duration", "custody: {checkpoint_interval: often}\n", "custody.checkpoint_interval", ""},
		{"ftp tsa", "custody: {tsa_url: ftp://tsa.example.org}\n", "custody.tsa_url", "http"},
		{"tsa without host", "custody: {tsa_url: \"https://\"}\n", "custody.tsa_url", "host"},
		{"tsa with password", "custody: {tsa_url: \"https://u:p@tsa.example.org\"}\n", "custody.tsa_url", "password"},
		{"ca without tsa", "custody: {tsa_ca: /etc/ca.pem}\n", "custody.tsa_ca", "without custody.tsa_url"},
		{"relative ca", "custody: {tsa_url: \"http://tsa\", tsa_ca: ca.pem}\n", "custody.tsa_ca", "absolute"},
		{"relative key", "custody: {key_file: host.key}\n", "custody.key_file", "absolute"},
		{"key is a directory above state", "custody: {key_file: /}\n", "custody.key_file", "state_dir"},
		{"negative retention", "custody: {retention_days: -1}\n", "custody.retention_days", "between"},
		{"unknown key", "custody: {checkpoint_every: 5m}\n", "custody.checkpoint_every", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tt.yml), "/etc/evidenced/evidenced.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to name %s (%q)", err, tt.key, tt.msg)
			}
		})
	}
}
