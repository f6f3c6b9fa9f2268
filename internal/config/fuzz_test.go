package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: whatever the bytes, Parse returns a valid Config or an
// ErrInvalid, and never panics.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile(examplePath); err == nil {
		f.Add(ex)
	}
	for _, s := range []string{
		minimal, full, "", "~", "- a", "a: b: c", "\t", "host_id: &a [*a]",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\ncameras: [*c, *c]\n",
		minimal + "cameras: [{<<: [{serial: X}], kind: body}]\n",
		minimal + "object_store: {bucket: evidence, multipart_threshold: 9999999TiB}\n",
		minimal + "---\n---\n",
		"? [a]\n: b\n",
		"host_id: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "/etc/evidenced/fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if c != nil {
				t.Fatal("non-nil Config with an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse returned a Config that does not validate: %v", err)
		}
	})
}
