package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The upload engine keys of issue #5: part_concurrency, bandwidth, windows,
// abandoned_after.
func TestUploadEngineKeys(t *testing.T) {
	c := mustParse(t, full)
	if c.Upload.PartConcurrency != DefaultPartConcurrency || c.Upload.Bandwidth != 0 || c.Upload.AbandonedAfter.Duration != DefaultAbandonedAfter {
		t.Errorf("defaults: %+v", c.Upload)
	}
	bad := []struct {
		name   string
		mutate func(*Config)
		key    string
		msg    string
	}{
		{"part_concurrency zero", func(c *Config) { c.Upload.PartConcurrency = 0 }, "upload.part_concurrency", "between 1 and 32"},
		{"part_concurrency huge", func(c *Config) { c.Upload.PartConcurrency = 33 }, "upload.part_concurrency", "between 1 and 32"},
		{"bandwidth tiny", func(c *Config) { c.Upload.Bandwidth = 1000 }, "upload.bandwidth", "at least"},
		{"abandoned_after negative", func(c *Config) { c.Upload.AbandonedAfter = Duration{-time.Hour} }, "upload.abandoned_after", "negative"},
		{"window from", func(c *Config) { c.Upload.Windows = []Window{{From: "25:00", To: "06:00"}} }, "upload.windows[0].from", "HH:MM"},
		{"window to", func(c *Config) { c.Upload.Windows = []Window{{From: "22:00", To: "6am"}} }, "upload.windows[0].to", "HH:MM"},
		{"window empty", func(c *Config) { c.Upload.Windows = []Window{{From: "22:00", To: "22:00"}} }, "upload.windows[0].to", "empty window"},
		{"window bandwidth", func(c *Config) { c.Upload.Windows = []Window{{From: "22:00", To: "06:00", Bandwidth: 10}} }, "upload.windows[0].bandwidth", "at least"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, full)
			tt.mutate(c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Validate() = %v, want %s: ...%s...", err, tt.key, tt.msg)
			}
		})
	}
	c = mustParse(t, full)
	c.Upload.Bandwidth = 5 * MiB
	c.Upload.Windows = []Window{{From: "22:00", To: "06:00", Bandwidth: 0}, {From: "12:00", To: "13:00", Bandwidth: 64 * KiB}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   string
		want int64
	}{{"21:59", 5 << 20}, {"22:00", 0}, {"00:30", 0}, {"06:00", 5 << 20}, {"12:30", 64 << 10}, {"13:00", 5 << 20}} {
		tm, _ := time.Parse("15:04", tc.at)
		if got := c.Upload.BandwidthAt(tm); got != tc.want {
			t.Errorf("bandwidth at %s = %d, want %d", tc.at, got, tc.want)
		}
	}
}

// TestPartSumsAtIngestKey: on unless the config says false, which must win
// over the default (a host that keeps the ingest's read-back to the whole).
func TestPartSumsAtIngestKey(t *testing.T) {
	if c := mustParse(t, minimal); !c.Upload.PartSumsAtIngest {
		t.Error("upload.part_sums_at_ingest is off by default, want on")
	}
	if c := mustParse(t, minimal+"upload:\n  part_sums_at_ingest: false\n"); c.Upload.PartSumsAtIngest {
		t.Error("upload.part_sums_at_ingest: false is ignored")
	}
}
