package config

import (
	"errors"
	"strings"
	"testing"
)

// metrics.listen is off by default and, when set, must be an address the
// daemon can bind as written: a typo must stop the start, not leave the
// monitoring blind.
func TestMetricsListen(t *testing.T) {
	if c := mustParse(t, minimal); c.Metrics.Listen != "" {
		t.Errorf("metrics.listen defaults to %q, want off", c.Metrics.Listen)
	}
	for _, ok := range []string{"127.0.0.1:9464", "[::1]:9464", "localhost:9464", ":9464"} {
		if c := mustParse(t, minimal+"metrics: {listen: \""+ok+"\"}\n"); c.Metrics.Listen != ok {
			t.Errorf("listen %q parsed as %q", ok, c.Metrics.Listen)
		}
	}
	for _, bad := range []string{"9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", "monitoring.example:9464", "127.0.0.1:70000"} {
		_, err := Parse([]byte(minimal+"metrics: {listen: \""+bad+"\"}\n"), "t.yaml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "metrics.listen") {
			t.Errorf("listen %q: got %v, want an error naming metrics.listen", bad, err)
		}
	}
}
