package config

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../../configs/evidenced.example.yaml"

// The shipped example must load as it is.
func TestExampleValid(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	if c.ObjectStore == nil || len(c.Cameras) == 0 || len(c.Retention.Classes) == 0 || len(c.Sources.Watch) == 0 {
		t.Errorf("example should show every section filled in: %+v", c)
	}
}

// Every key Config knows appears in the example, so the example stays the
// complete reference, and the example has no key Config does not know.
func TestExampleComplete(t *testing.T) {
	data, err := os.ReadFile(examplePath)
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
	if len(inStruct) < 25 {
		t.Fatalf("found only %d keys in Config: the walk is broken", len(inStruct))
	}
	for _, k := range sortedKeys(inStruct) {
		// The console: section is a console's; configs/console.example.yaml
		// shows it (TestConsoleExample).
		// So does the oidc: section, a console's only.
		if !inExample[k] && k != "console" && !strings.HasPrefix(k, "console.") && k != "oidc" && !strings.HasPrefix(k, "oidc.") {
			t.Errorf("key %s is missing from %s", k, filepath.Base(examplePath))
		}
	}
	for _, k := range sortedKeys(inExample) {
		if !inStruct[k] {
			t.Errorf("example has key %s that Config does not know", k)
		}
	}

	// Each key has a comment saying what it does and its default: on its
	// line, or above it with no blank line between (so one comment may
	// cover a pair such as retry_min/retry_max, and the comment above a
	// list of flow mappings covers their keys).
	lines := strings.Split(string(data), "\n")
	commentsAbove := func(line int) bool { // line is 1-based
		for i := line - 2; i >= 0; i-- {
			l := strings.TrimSpace(lines[i])
			switch {
			case l == "":
				return false
			case strings.HasPrefix(l, "#"):
				return true
			}
		}
		return false
	}
	var walk func(n *yaml.Node, top bool)
	walk = func(n *yaml.Node, top bool) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !top || v.Kind != yaml.MappingNode {
				if !commentsAbove(k.Line) && k.LineComment == "" {
					t.Errorf("key %s (line %d) has no comment", k.Value, k.Line)
				}
			}
			walk(v, false)
		}
	}
	walk(doc.Content[0], true)
}

func exampleKeys(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinKey(path, n.Content[i].Value)
			out[p] = true
			exampleKeys(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			exampleKeys(item, path+"[]", out)
		}
	}
}

func structKeys(t reflect.Type, path string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return
	case t.Kind() == reflect.Slice:
		structKeys(t.Elem(), path+"[]", out)
	case t.Kind() == reflect.Struct:
		for name, f := range yamlFields(t) {
			p := joinKey(path, name)
			out[p] = true
			structKeys(f.Type, p, out)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
