package main

import (
	"errors"
	"os"
	"os/exec"
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

// TestCopyTreeTakesWhatGitSees: the scratch copy holds committed and
// uncommitted source, but not what .gitignore leaves out (build output, large
// artefacts) nor .git itself.
func TestCopyTreeTakesWhatGitSees(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "tree")
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".gitignore", "/evidenced\n*.test\n")
	write("go.mod", "module x\n")
	write("p/committed.go", "package p\n")
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "x")
	write("p/committed.go", "package p // changed\n")
	write("p/new.go", "package p\n")
	write("evidenced", "a build")
	write("p/p.test", "a test binary")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{"p/committed.go": "package p // changed\n", "p/new.go": "package p\n", "go.mod": "module x\n"} {
		if b, err := os.ReadFile(filepath.Join(dst, rel)); err != nil || string(b) != want {
			t.Errorf("%s in the copy: %q, %v; want %q", rel, b, err, want)
		}
	}
	for _, rel := range []string{"evidenced", "p/p.test", ".git"} {
		if _, err := os.Lstat(filepath.Join(dst, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was copied (%v)", rel, err)
		}
	}
}
