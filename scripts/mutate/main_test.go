package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMutantsApply keeps the curated list in step with the code: every
// mutant must still find its Original exactly once, so the default test
// command fails as soon as a change moves code a mutant breaks (instead of
// the mutation run, later, or never).
func TestMutantsApply(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkAll(root, mutants) {
		t.Error(err)
	}
	if len(mutants) < 20 {
		t.Errorf("%d mutants; the gate keeps at least 20", len(mutants))
	}
}

func TestApplyRefusesStaleOrAmbiguous(t *testing.T) {
	m := Mutant{ID: "x", File: "f.go", Original: "a != b", Replacement: "false"}
	if got, err := apply("if a != b {", m); err != nil || got != "if false {" {
		t.Fatalf("apply = %q, %v", got, err)
	}
	for _, src := range []string{"if a == b {", "a != b; a != b"} {
		if _, err := apply(src, m); err == nil {
			t.Errorf("apply on %q: no error, want one (Original must occur exactly once)", src)
		}
	}
	same := m
	same.Replacement = m.Original
	if _, err := apply("if a != b {", same); err == nil {
		t.Error("a mutant that changes nothing was accepted")
	}
}

func TestCheckAllNamesStaleMutant(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", "f.go"), []byte("package p\nvar x = 1 != 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := Mutant{ID: "good", File: "p/f.go", Desc: "d", Original: "1 != 2", Replacement: "false", Packages: []string{"./p"}}
	stale := Mutant{ID: "stale", File: "p/f.go", Desc: "d", Original: "3 != 4", Replacement: "false", Packages: []string{"./p"}}
	nopkg := Mutant{ID: "nopkg", File: "p/f.go", Desc: "d", Original: "1 != 2", Replacement: "true", Packages: []string{"./q"}}
	if errs := checkAll(dir, []Mutant{good}); len(errs) != 0 {
		t.Fatalf("good mutant: %v", errs)
	}
	errs := checkAll(dir, []Mutant{good, stale, nopkg, good})
	text := errors.Join(errs...).Error()
	for _, want := range []string{"stale: p/f.go holds its Original 0 times", "nopkg: package ./q", `"good": id must be unique`} {
		if !strings.Contains(text, want) {
			t.Errorf("checkAll errors %q do not mention %q", text, want)
		}
	}
}

func TestSelectMutants(t *testing.T) {
	all := []Mutant{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	got, err := selectMutants(all, []string{"c", "a"})
	if err != nil || len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Fatalf("selectMutants = %v, %v; want a, c in list order", got, err)
	}
	if _, err := selectMutants(all, []string{"zz"}); err == nil {
		t.Error("an unknown id was accepted")
	}
}

// The go test -json lines below are abridged from real runs (go 1.26).
func TestClassify(t *testing.T) {
	const pass = `{"Action":"start","Package":"github.com/evidenced/evidenced/internal/vault"}
{"Action":"run","Package":"github.com/evidenced/evidenced/internal/vault","Test":"TestA"}
{"Action":"pass","Package":"github.com/evidenced/evidenced/internal/vault","Test":"TestA"}
{"Action":"pass","Package":"github.com/evidenced/evidenced/internal/vault"}
`
	const fail = `{"Action":"run","Package":"github.com/evidenced/evidenced/internal/wipe","Test":"TestW"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/wipe","Test":"TestW/case_c"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/wipe","Test":"TestW"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/wipe","Test":"TestB"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/wipe"}
{"Action":"pass","Package":"github.com/evidenced/evidenced/internal/vault"}
`
	const build = `{"ImportPath":"github.com/evidenced/evidenced/internal/vault [github.com/evidenced/evidenced/internal/vault.test]","Action":"build-output","Output":"internal/vault/store.go:1:1: undefined: x\n"}
{"ImportPath":"github.com/evidenced/evidenced/internal/vault [github.com/evidenced/evidenced/internal/vault.test]","Action":"build-fail"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/vault","FailedBuild":"github.com/evidenced/evidenced/internal/vault [github.com/evidenced/evidenced/internal/vault.test]"}
`
	const norun = `{"Action":"output","Package":"github.com/evidenced/evidenced/internal/camfs","Output":"testing: warning: no tests to run\n"}
{"Action":"pass","Package":"github.com/evidenced/evidenced/internal/camfs"}
`
	const pkgOnly = `{"Action":"output","Package":"github.com/evidenced/evidenced/internal/anchor","Output":"panic: boom\n"}
{"Action":"fail","Package":"github.com/evidenced/evidenced/internal/anchor"}
`
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		name    string
		out     string
		err     error
		want    Outcome
		killers []string
	}{
		{"pass", pass, nil, Survived, nil},
		{"fail", fail, exit1, Killed, []string{"wipe.TestB", "wipe.TestW"}},
		{"build", build, exit1, Invalid, []string{"does not build: vault"}},
		{"no tests", norun, nil, Invalid, []string{"-run matches no test in camfs"}},
		{"package only", pkgOnly, exit1, Killed, []string{"anchor: package failed"}},
		{"no json", "go: unknown flag\n", exit1, Invalid, []string{"go test failed without a test result (see the log)"}},
	} {
		r := classify([]byte(tc.out), tc.err)
		if r.Outcome != tc.want || !slices.Equal(r.Killers, tc.killers) {
			t.Errorf("%s: classify = %s %q, want %s %q", tc.name, r.Outcome, r.Killers, tc.want, tc.killers)
		}
	}
}
