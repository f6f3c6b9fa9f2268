package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const consoleExamplePath = "../../configs/console.example.yaml"

// consoleMinimal is the smallest valid console configuration.
const consoleMinimal = `role: console
host_id: hq
state_dir: /var/lib/evidenced
object_store: {bucket: evidence}
retention:
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
console:
  hosts:
    - {id: dock-01, public_key_file: keys/dock-01.pem}
`

func TestConsoleDefaults(t *testing.T) {
	c := mustParse(t, consoleMinimal)
	if !c.IsConsole() {
		t.Fatal("role: console is not a console")
	}
	if c.Console.Poll.Duration != 10*time.Second || c.Console.Scrub.Cycle.Duration != 90*24*time.Hour || c.Console.UnverifiedAfter.Duration != 24*time.Hour {
		t.Errorf("defaults: poll %s, scrub.cycle %s", c.Console.Poll, c.Console.Scrub.Cycle)
	}
	if got := c.Console.Hosts[0].PublicKeyFile; got != "/etc/evidenced/keys/dock-01.pem" {
		t.Errorf("public_key_file not resolved against the config's directory: %s", got)
	}
	if h, ok := c.ConsoleHost("dock-01"); !ok || h.ID != "dock-01" {
		t.Error("ConsoleHost(dock-01) not found")
	}
	if _, ok := c.ConsoleHost("dock-02"); ok {
		t.Error("ConsoleHost found an unlisted host")
	}
	if c.CatalogPath() != "/var/lib/evidenced/catalog.db" {
		t.Errorf("catalog path %s", c.CatalogPath())
	}
	d := mustParse(t, minimal)
	if d.Role != RoleDock || d.IsConsole() || d.Console != nil {
		t.Errorf("default role %q console %v", d.Role, d.Console)
	}
}

func TestConsoleInvalid(t *testing.T) {
	cases := []struct {
		name, yml, key string
	}{
		{"bad role", strings.Replace(minimal, "host_id:", "role: hq\nhost_id:", 1), "role"},
		{"console on a dock", minimal + "console: {poll: 10s}\n", "console"},
		{"console without section", "role: console\n" + minimal + "object_store: {bucket: b}\n", "console"},
		{"console without store", strings.Replace(consoleMinimal, "object_store: {bucket: evidence}\n", "", 1), "object_store"},
		{"no hosts", strings.Replace(consoleMinimal, "  hosts:\n    - {id: dock-01, public_key_file: keys/dock-01.pem}\n", "  poll: 5s\n", 1), "console.hosts"},
		{"poll too short", consoleMinimal + "  poll: 100ms\n", "console.poll"},
		{"poll bare number", consoleMinimal + "  poll: 10\n", "console.poll"},
		{"unverified_after zero", consoleMinimal + "  unverified_after: 0\n", "console.unverified_after"},
		{"cycle too short", consoleMinimal + "  scrub: {cycle: 1h}\n", "console.scrub.cycle"},
		{"cycle not days", consoleMinimal + "  scrub: {cycle: 9x}\n", "console.scrub.cycle"},
		{"unknown key", consoleMinimal + "  pol: 10s\n", "console.pol"},
		{"host no key", consoleMinimal + "    - {id: dock-02}\n", "console.hosts[1].public_key_file"},
		{"host bad id", consoleMinimal + "    - {id: 'a b', public_key_file: /k.pem}\n", "console.hosts[1].id"},
		{"host twice", consoleMinimal + "    - {id: DOCK-01, public_key_file: /k.pem}\n", "console.hosts[1].id"},
		{"host is self", consoleMinimal + "    - {id: hq, public_key_file: /k.pem}\n", "console.hosts[1].id"},
		{"console with watch", consoleMinimal + "sources: {watch: [/srv/media]}\n", "sources.watch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "/etc/evidenced/evidenced.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error does not name %s: %v", tc.key, err)
			}
			for _, fe := range fieldErrors(err) {
				if fe.Key == tc.key || strings.HasPrefix(fe.Key, tc.key) {
					return
				}
			}
			if !strings.Contains(err.Error(), tc.key+":") && !strings.Contains(err.Error(), tc.key+" ") {
				t.Errorf("no error for key %s: %v", tc.key, err)
			}
		})
	}
}

func TestParseDurationDays(t *testing.T) {
	d, err := ParseDuration("90d")
	if err != nil || d.Duration != 90*24*time.Hour {
		t.Fatalf("90d = %v, %v", d, err)
	}
	for _, bad := range []string{"d", "1.5d", "-1d", "99999999999d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The console example loads, shows every console key, and has only keys
// Config knows.
func TestConsoleExample(t *testing.T) {
	c, err := Load(consoleExamplePath)
	if err != nil {
		t.Fatalf("console example does not load: %v", err)
	}
	if !c.IsConsole() || len(c.Console.Hosts) == 0 {
		t.Errorf("console example is not a console with hosts: %+v", c.Console)
	}
	data, err := os.ReadFile(consoleExamplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	exampleKeys(doc.Content[0], "", inExample)
	inStruct := map[string]bool{}
	structKeys(reflect.TypeOf(Config{}), "", inStruct)
	for _, k := range sortedKeys(inStruct) {
		if (k == "console" || strings.HasPrefix(k, "console.") || k == "oidc" || strings.HasPrefix(k, "oidc.") || k == "role") && !inExample[k] {
			t.Errorf("key %s is missing from the console example", k)
		}
	}
	for _, k := range sortedKeys(inExample) {
		if !inStruct[k] {
			t.Errorf("console example has key %s that Config does not know", k)
		}
	}
}
