package systemd

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/evidenced/evidenced/internal/testutil/hosttool"
)

// The shipped alerting rules load (`promtool check rules`) and each alert
// fires when its condition has held long enough, and not before
// (`promtool test rules` on evidenced.rules.test.yml).
func TestAlertRules(t *testing.T) {
	tool := hosttool.Find(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "evidenced.rules.yml"},
		{"test", "rules", "evidenced.rules.test.yml"},
	} {
		if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// metricSources define every metric the daemon exports: a dock host's and,
// at a console, the fleet's.
var metricSources = []string{"../internal/service/metrics.go", "../internal/service/fleetmetrics.go"}

// Every metric the rules use is one the daemon exports: a renamed metric
// would otherwise leave an alert that can never fire.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	rules := read(t, "evidenced.rules.yml")
	exported := map[string]bool{}
	for _, f := range metricSources {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := len(exported)
		for _, m := range regexp.MustCompile(`desc\("([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			exported["evidenced_"+m[1]] = true
		}
		if len(exported)-n < 5 {
			t.Fatalf("found only %d metrics in %s: the pattern is stale", len(exported)-n, f)
		}
	}
	used := regexp.MustCompile(`evidenced_[a-z_]+`).FindAllString(rules, -1)
	if len(used) < 6 {
		t.Fatalf("the rules use only %d metrics", len(used))
	}
	for _, m := range used {
		if !exported[m] {
			t.Errorf("evidenced.rules.yml uses %s, which neither of %v exports", m, metricSources)
		}
	}
}
