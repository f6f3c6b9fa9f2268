package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// feed runs lines through a formatter and returns what it printed.
func feed(f *formatter, out *bytes.Buffer, stream string) string {
	for _, l := range strings.Split(strings.TrimRight(stream, "\n"), "\n") {
		f.line(l)
	}
	return out.String()
}

// A real `go test -json` run of two packages, one failing: the closing
// lines as go test prints them, the failing test's whole story (parent
// first), nothing of the tests that passed or skipped.
func TestFormatsARealRun(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"go.mod": "module tf\n\ngo 1.22\n",
		"a/a_test.go": `package a

import "testing"

func TestPass(t *testing.T) { t.Log("quiet pass") }
func TestFail(t *testing.T) {
	t.Log("why it failed")
	t.Run("sub", func(t *testing.T) { t.Error("sub broke") })
}
func TestSkip(t *testing.T) { t.Skip("quiet skip") }
`,
		"b/b_test.go": "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n",
		"c/c.go":      "package c\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	js, err := cmd.Output()
	if _, failed := err.(*exec.ExitError); !failed {
		t.Fatalf("go test of a failing package: %v\n%s", err, js)
	}
	var out bytes.Buffer
	got := feed(newFormatter(&out, time.Now), &out, "a line that is not JSON\n"+string(js))

	for _, want := range []string{"a line that is not JSON\n", "ok  \ttf/b\t", "FAIL\ttf/a\t", "?   \ttf/c\t[no test files]", "--- FAIL: TestFail/sub", "--- FAIL: TestFail ("} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if i, j := strings.Index(got, "why it failed"), strings.Index(got, "sub broke"); i < 0 || j < i {
		t.Errorf("the failed test's own log does not come before its subtest's:\n%s", got)
	}
	for _, not := range []string{"quiet pass", "quiet skip", "=== RUN   TestB", "\nPASS\n", "{\"Time\""} {
		if strings.Contains(got, not) {
			t.Errorf("output has %q:\n%s", not, got)
		}
	}
}

// A test binary that dies (panic, timeout) ends no test: what its
// unfinished tests said is printed with the package's FAIL.
func TestDyingBinaryShowsUnfinishedTests(t *testing.T) {
	var out bytes.Buffer
	got := feed(newFormatter(&out, time.Now), &out, `{"Action":"start","Package":"p"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    h_test.go:9: waiting for the store\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 20m0s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1200.1s\n"}
{"Action":"fail","Package":"p"}`)
	want := "panic: test timed out after 20m0s\n=== RUN   TestHang\n    h_test.go:9: waiting for the store\nFAIL\tp\t1200.1s\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// After a quiet stretch the formatter says what is still running, longest
// first; not while output flows, and not once the packages ended.
func TestHeartbeat(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	f := newFormatter(&out, func() time.Time { return now })
	feed(f, &out, `{"Action":"start","Package":"slow"}`)
	now = now.Add(30 * time.Second)
	feed(f, &out, `{"Action":"start","Package":"fast"}
{"Action":"run","Package":"slow","Test":"TestA"}
{"Action":"pass","Package":"slow","Test":"TestA"}
{"Action":"run","Package":"slow","Test":"TestUSB"}
{"Action":"run","Package":"slow","Test":"TestUSB/exfat"}`)
	f.heartbeat(time.Minute)
	if out.Len() != 0 {
		t.Fatalf("heartbeat before a quiet minute: %q", out.String())
	}
	now = now.Add(45 * time.Second)
	f.heartbeat(time.Minute)
	if got, want := out.String(), "… still running: slow (1m15s, in TestUSB/exfat), fast (45s)\n"; got != want {
		t.Fatalf("heartbeat %q, want %q", got, want)
	}
	out.Reset()
	now = now.Add(30 * time.Second)
	f.heartbeat(time.Minute) // printed 30 s ago
	feed(f, &out, `{"Action":"output","Package":"slow","Output":"ok  \tslow\t105s\n"}
{"Action":"pass","Package":"slow"}
{"Action":"skip","Package":"fast"}`)
	now = now.Add(5 * time.Minute)
	f.heartbeat(time.Minute)
	if got := out.String(); got != "ok  \tslow\t105s\n" {
		t.Errorf("after the packages ended: %q", got)
	}
}
