package config

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"1073741824", GiB, true},
		{"64MiB", 64 * MiB, true},
		{"64 MiB", 64 * MiB, true},
		{"64mib", 64 * MiB, true},
		{"1GiB", GiB, true},
		{"2TiB", 2 * TiB, true},
		{"512KiB", 512 * KiB, true},
		{"100MB", 100_000_000, true},
		{"1kB", 1000, true},
		{"1GB", 1_000_000_000, true},
		{"10B", 10, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"1.5GiB", 0, false},
		{"10G", 0, false},
		{"10M", 0, false},
		{"10 parsecs", 0, false},
		{"99999999999999999999", 0, false},
		{"9999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestByteSizeRoundTrip(t *testing.T) {
	for _, b := range []ByteSize{0, 1, 1000, KiB, 64 * MiB, 1536 * MiB, GiB, 3 * TiB, 1<<40 + 1} {
		got, err := ParseByteSize(b.String())
		if err != nil || got != b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", b.String(), got, err, b)
		}
	}
	if s := (64 * MiB).String(); s != "64MiB" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2s", 2 * time.Second, true},
		{"500ms", 500 * time.Millisecond, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, true},
		{"30", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"2 days", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got.Duration != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// Status output and reports serialise these as text, not raw integers.
func TestUnitsJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		D Duration
		B ByteSize
	}{Duration{5 * time.Minute}, 64 * MiB})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"D":"5m0s","B":"64MiB"}` {
		t.Errorf("json = %s", b)
	}
	var back struct {
		D Duration
		B ByteSize
	}
	if err := json.Unmarshal(b, &back); err != nil || back.D.Duration != 5*time.Minute || back.B != 64*MiB {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}
