package config

import "testing"

// TestBackstopRetention: the bucket default is the shortest class's days in
// the weakest mode any class uses, so it never outlasts or out-ranks a
// recording's own lock.
func TestBackstopRetention(t *testing.T) {
	for _, c := range []struct {
		name    string
		classes []Class
		mode    string
		days    int
		ok      bool
	}{
		{"none", nil, "", 0, false},
		{"one", []Class{{Name: "a", Days: 30, Mode: ModeCompliance}}, ModeCompliance, 30, true},
		{"shortest days, weakest mode", []Class{
			{Name: "long", Days: 3650, Mode: ModeCompliance},
			{Name: "short", Days: 90, Mode: ModeCompliance},
			{Name: "gov", Days: 365, Mode: ModeGovernance},
		}, ModeGovernance, 90, true},
	} {
		cfg := Default()
		cfg.Retention.Classes = c.classes
		mode, days, ok := cfg.BackstopRetention()
		if mode != c.mode || days != c.days || ok != c.ok {
			t.Errorf("%s: %s %d %v, want %s %d %v", c.name, mode, days, ok, c.mode, c.days, c.ok)
		}
	}
}
