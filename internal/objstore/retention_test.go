package objstore

import (
	"errors"
	"testing"
	"time"
)

func TestCheckExtension(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	later := now.Add(24 * time.Hour)
	tests := []struct {
		name           string
		oldMode        string
		oldUntil       time.Time
		mode           string
		until          time.Time
		shortened, bad bool
	}{
		{"extend governance", LockGovernance, now, LockGovernance, later, false, false},
		{"same", LockCompliance, now, LockCompliance, now, false, false},
		{"same to the second", LockCompliance, now.Add(300 * time.Millisecond), LockCompliance, now, false, false},
		{"governance to compliance", LockGovernance, now, LockCompliance, later, false, false},
		{"none to governance", "", time.Time{}, LockGovernance, now, false, false},
		{"shorter", LockGovernance, later, LockGovernance, now, true, false},
		{"compliance to governance", LockCompliance, now, LockGovernance, later, true, false},
		{"no mode", LockGovernance, now, "", later, false, true},
		{"no date", LockGovernance, now, LockGovernance, time.Time{}, false, true},
		{"unknown mode", LockGovernance, now, "FOREVER", later, false, true},
	}
	for _, tt := range tests {
		err := CheckExtension(tt.oldMode, tt.oldUntil, tt.mode, tt.until)
		if got := errors.Is(err, ErrRetentionShortened); got != tt.shortened {
			t.Errorf("%s: %v, shortened = %v, want %v", tt.name, err, got, tt.shortened)
		}
		if got := err != nil && !tt.shortened; got != tt.bad {
			t.Errorf("%s: %v, want invalid = %v", tt.name, err, tt.bad)
		}
		if err != nil && !IsPermanent(err) {
			t.Errorf("%s: %v is not permanent", tt.name, err)
		}
	}
}
