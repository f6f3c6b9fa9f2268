package systemd

import (
	"regexp"
	"testing"
	"time"
)

// The daemon speaks sd_notify (internal/sdnotify): the unit must wait for
// its READY=1, accept its messages, and restart it when its watchdog pings
// stop. Without WatchdogSec= a hung daemon would sit "active" forever.
func TestUnitIsNotifyWithWatchdog(t *testing.T) {
	unit := read(t, "evidenced.service")
	val := func(key string) string {
		m := regexp.MustCompile(`(?m)^`+key+`=(.*)$`).FindAllStringSubmatch(unit, -1)
		if len(m) != 1 {
			t.Fatalf("evidenced.service sets %s= %d times, want once", key, len(m))
		}
		return m[0][1]
	}
	if v := val("Type"); v != "notify" {
		t.Errorf("Type=%s, want notify", v)
	}
	if v := val("NotifyAccess"); v != "main" {
		t.Errorf("NotifyAccess=%s, want main (only the daemon itself reports)", v)
	}
	wd, err := time.ParseDuration(val("WatchdogSec"))
	if err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec=%s: want a duration of at least 10s (the heartbeat reads the ledger), err %v", val("WatchdogSec"), err)
	}
	if v := val("Restart"); v != "on-failure" && v != "always" {
		t.Errorf("Restart=%s: a watchdog timeout would not restart the daemon", v)
	}
}
