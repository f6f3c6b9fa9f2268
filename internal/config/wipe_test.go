package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const withStore = minimal + `object_store: {bucket: evidence}
`

func TestWipePolicy(t *testing.T) {
	c := mustParse(t, withStore+`wipe_after_verify: true
vault:
  grace: 72h
  min_free: 5GiB
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: a}
  - {serial: BWC-0002, kind: body, assigned_to: b, wipe_after_verify: false}
  - {serial: CAR-0001, kind: vehicle, assigned_to: c, verify_source_before_wipe: true}
`)
	tests := []struct {
		serial string
		want   WipePolicy
	}{
		{"BWC-0001", WipePolicy{Enabled: true}},
		{"BWC-0002", WipePolicy{}},
		{"CAR-0001", WipePolicy{Enabled: true, VerifySource: true}},
		{"NOT-LISTED", WipePolicy{}},
	}
	for _, tt := range tests {
		if got := c.WipePolicy(tt.serial); got != tt.want {
			t.Errorf("WipePolicy(%s) = %+v, want %+v", tt.serial, got, tt.want)
		}
	}
	if !c.AnyWipe() {
		t.Error("AnyWipe = false")
	}
	if c.Vault.Grace.Duration != 72*time.Hour || c.Vault.MinFree != 5*GiB {
		t.Errorf("vault = %+v", c.Vault)
	}

	d := mustParse(t, minimal+`cameras:
  - {serial: BWC-0001, kind: body, assigned_to: a}
`)
	if d.AnyWipe() || d.WipePolicy("BWC-0001") != (WipePolicy{}) || d.Vault.Grace.Duration != 0 || d.Vault.MinFree != 0 {
		t.Errorf("defaults: wipe %+v vault %+v, want everything off", d.WipePolicy("BWC-0001"), d.Vault)
	}
}

func TestWipeKeysInvalid(t *testing.T) {
	tests := []struct {
		name, yml, key, msg string
	}{
		{"wipe without a store", minimal + "wipe_after_verify: true\n", "wipe_after_verify", "needs object_store"},
		{"camera wipe without a store", minimal + "cameras:\n  - {serial: A, kind: body, assigned_to: x, wipe_after_verify: true}\n",
			"cameras[0].wipe_after_verify", "needs object_store"},
		{"negative grace", withStore + "vault: {grace: -1h}\n", "vault.grace", "negative"},
		{"not a bool", withStore + "wipe_after_verify: yes please\n", "wipe_after_verify", "expected"},
		{"camera not a bool", withStore + "cameras:\n  - {serial: A, kind: body, assigned_to: x, verify_source_before_wipe: 1}\n",
			"cameras[0].verify_source_before_wipe", "expected"},
		{"unknown vault key", withStore + "vault: {grace_period: 1h}\n", "vault.grace_period", ""},
		{"bad size", withStore + "vault: {min_free: lots}\n", "vault.min_free", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml), "/etc/evidenced/evidenced.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to name %s (%q)", err, tt.key, tt.msg)
			}
		})
	}
}
