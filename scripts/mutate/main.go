// Command mutate is evidenced's mutation gate (run it as scripts/mutate.sh).
//
// It applies each curated mutant of mutants.go, one at a time, to a scratch
// copy of the source tree and runs the tests of the packages that own the
// broken guarantee, with the real S3 server (EVIDENCED_REQUIRE_S3=1). A
// mutant is:
//
//	killed    the tests failed: some test notices the guarantee is gone
//	survived  the tests passed without the guarantee: a missing test
//	invalid   it did not compile, a -run filter matched no test, or the
//	          tests could not be set up: a broken mutant, not a result
//
// Before any mutant runs, every selected Original must occur exactly once in
// its file (a stale mutant must never count as killed), and the unmutated
// tree must pass the same tests (so a kill is the mutant's doing). The exit
// status is 0 only when every mutant was killed; 1 on a survivor or an
// invalid mutant; 2 when the run could not be done (stale mutant, failing
// baseline, bad arguments).
//
// The scratch copy lives at a fixed place ($TMPDIR/evidenced-mutate/tree) so
// that the Go build cache is reused from one run to the next; a lock keeps
// two runs from sharing it. Each mutant's full `go test` output is kept in
// $TMPDIR/evidenced-mutate/logs/<id>.log.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Mutant is one deliberate bug: in File (relative to the module root),
// replace the single occurrence of Original by Replacement.
type Mutant struct {
	ID          string
	File        string
	Desc        string // the guarantee it removes, in a phrase
	Original    string
	Replacement string
	Packages    []string      // the packages that own the guarantee ("./internal/x"), cheapest first: run in order until one kills
	Run         string        // optional -run filter
	Timeout     time.Duration // per-mutant go test -timeout; 0: the default
}

// Outcome classifies a mutant's run.
type Outcome string

const (
	Killed   Outcome = "killed"
	Survived Outcome = "survived"
	Invalid  Outcome = "invalid"
)

// Result is one mutant's run.
type Result struct {
	Mutant  Mutant
	Outcome Outcome
	Killers []string // failing top-level tests ("vault.TestX"), or why it is invalid
	Elapsed time.Duration
	Log     string
}

const defaultTimeout = 4 * time.Minute

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("mutate", flag.ContinueOnError)
	fl.SetOutput(stderr)
	list := fl.Bool("list", false, "list the mutants and exit")
	noBaseline := fl.Bool("no-baseline", false, "skip the run of the unmutated tree (only when it is known to pass)")
	markdown := fl.Bool("markdown", false, "also print the result table as Markdown")
	keep := fl.Bool("keep", false, "keep the scratch tree after the run")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: scripts/mutate.sh [--list] [--no-baseline] [--markdown] [--keep] [ID...]\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	selected, err := selectMutants(mutants, fl.Args())
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tFILE\tPACKAGES\tDESCRIPTION")
		for _, m := range selected {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, m.File, strings.Join(m.Packages, " "), m.Desc)
		}
		tw.Flush()
		return 0
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}
	if stale := checkAll(root, selected); len(stale) > 0 {
		fmt.Fprintln(stderr, "mutate: STALE MUTANTS: the code they break has changed; update scripts/mutate/mutants.go:")
		for _, e := range stale {
			fmt.Fprintln(stderr, "  ", e)
		}
		return 2
	}

	base := filepath.Join(os.TempDir(), "evidenced-mutate")
	if err := os.MkdirAll(base, 0o755); err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}
	unlock, err := lockDir(base)
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}
	defer unlock()
	tree, logs := filepath.Join(base, "tree"), filepath.Join(base, "logs")
	if err := os.RemoveAll(tree); err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}
	if err := copyTree(root, tree); err != nil {
		fmt.Fprintln(stderr, "mutate: copy the source tree:", err)
		return 2
	}
	if !*keep {
		defer os.RemoveAll(tree)
	}
	if err := os.RemoveAll(logs); err == nil {
		err = os.MkdirAll(logs, 0o755)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mutate:", err)
		return 2
	}

	ctx := context.Background()
	start := time.Now()
	fmt.Fprintf(stdout, "mutate: %d mutants; scratch tree %s; logs in %s\n", len(selected), tree, logs)
	if !*noBaseline {
		fmt.Fprintf(stdout, "== baseline: the unmutated tree must pass the tests the mutants use\n")
		r := runBaseline(ctx, tree, logs, selected)
		if r.Outcome != Survived {
			fmt.Fprintf(stderr, "mutate: the unmutated tree does not pass (%s: %s); see %s\n",
				r.Outcome, strings.Join(r.Killers, ", "), r.Log)
			return 2
		}
		fmt.Fprintf(stdout, "   baseline passes (%.0fs)\n", r.Elapsed.Seconds())
	}
	var results []Result
	for i, m := range selected {
		fmt.Fprintf(stdout, "== [%d/%d] %s: %s\n", i+1, len(selected), m.ID, m.Desc)
		r, err := runMutant(ctx, tree, logs, m)
		if err != nil {
			fmt.Fprintln(stderr, "mutate:", err)
			return 2
		}
		fmt.Fprintf(stdout, "   %s (%.0fs) %s\n", r.Outcome, r.Elapsed.Seconds(), strings.Join(r.Killers, ", "))
		results = append(results, r)
	}
	fmt.Fprintln(stdout)
	printTable(stdout, results)
	if *markdown {
		fmt.Fprintln(stdout)
		printMarkdown(stdout, results)
	}
	counts := map[Outcome]int{}
	for _, r := range results {
		counts[r.Outcome]++
	}
	fmt.Fprintf(stdout, "\nmutate: %d killed, %d survived, %d invalid of %d, in %s\n",
		counts[Killed], counts[Survived], counts[Invalid], len(results), time.Since(start).Round(time.Second))
	if counts[Survived]+counts[Invalid] > 0 {
		fmt.Fprintln(stdout, "mutate: FAIL: every mutant must be killed by the tests of the packages that own its guarantee")
		return 1
	}
	fmt.Fprintln(stdout, "mutate: ok")
	return 0
}

var idRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// selectMutants returns the mutants named by ids (all when none), in list
// order; an unknown id is an error.
func selectMutants(all []Mutant, ids []string) ([]Mutant, error) {
	if len(ids) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		if !slices.ContainsFunc(all, func(m Mutant) bool { return m.ID == id }) {
			return nil, fmt.Errorf("no mutant %q (see --list)", id)
		}
		want[id] = true
	}
	var out []Mutant
	for _, m := range all {
		if want[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}

// moduleRoot is the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above")
		}
		dir = parent
	}
}

// apply returns src with m applied, or an error when m is not well formed
// or its Original does not occur in src exactly once.
func apply(src string, m Mutant) (string, error) {
	switch {
	case m.Original == "":
		return "", fmt.Errorf("%s: empty Original", m.ID)
	case m.Original == m.Replacement:
		return "", fmt.Errorf("%s: Replacement equals Original", m.ID)
	}
	if n := strings.Count(src, m.Original); n != 1 {
		return "", fmt.Errorf("%s: %s holds its Original %d times, want exactly once: %q", m.ID, m.File, n, m.Original)
	}
	return strings.Replace(src, m.Original, m.Replacement, 1), nil
}

// checkAll checks every mutant against the tree at root: well formed, a
// unique id, its Original found exactly once, its packages present.
func checkAll(root string, ms []Mutant) []error {
	var errs []error
	seen := map[string]bool{}
	for _, m := range ms {
		if !idRE.MatchString(m.ID) || seen[m.ID] {
			errs = append(errs, fmt.Errorf("%q: id must be unique and [a-z0-9-]", m.ID))
		}
		seen[m.ID] = true
		if m.Desc == "" || len(m.Packages) == 0 {
			errs = append(errs, fmt.Errorf("%s: needs a description and its packages", m.ID))
		}
		for _, p := range m.Packages {
			if !strings.HasPrefix(p, "./") || strings.Contains(p, "...") {
				errs = append(errs, fmt.Errorf("%s: package %q: name one package as ./path", m.ID, p))
			} else if fi, err := os.Stat(filepath.Join(root, p)); err != nil || !fi.IsDir() {
				errs = append(errs, fmt.Errorf("%s: package %s is not a directory", m.ID, p))
			}
		}
		src, err := os.ReadFile(filepath.Join(root, m.File))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ID, err))
			continue
		}
		if _, err := apply(string(src), m); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// copyTree copies the source tree at src to dst, keeping modes and
// symbolic links: the files git lists as tracked or untracked-but-not-
// ignored (so uncommitted changes are tested, and build output, soak
// artefacts and the like are not copied), or, outside a git checkout,
// everything but .git.
func copyTree(src, dst string) error {
	files, err := gitFiles(src)
	if err != nil {
		files, err = walkFiles(src)
	}
	if err != nil {
		return err
	}
	for _, rel := range files {
		if err := copyEntry(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			return err
		}
	}
	return nil
}

func gitFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, f)); errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree, not yet committed
		}
		files = append(files, f)
	}
	return files, nil
}

func walkFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

// copyEntry copies one regular file or symbolic link, creating its
// directory.
func copyEntry(from, to string) error {
	fi, err := os.Lstat(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(link, to)
	case fi.Mode().IsRegular():
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, fi.Mode().Perm())
	}
	return nil // sockets and the like are no source
}

// runMutant applies m in tree, runs its tests and restores the file.
func runMutant(ctx context.Context, tree, logs string, m Mutant) (Result, error) {
	file := filepath.Join(tree, m.File)
	orig, err := os.ReadFile(file)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", m.ID, err)
	}
	mutated, err := apply(string(orig), m)
	if err != nil {
		return Result{}, err
	}
	info, err := os.Stat(file)
	if err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(file, []byte(mutated), info.Mode().Perm()); err != nil {
		return Result{}, fmt.Errorf("%s: apply: %w", m.ID, err)
	}
	r := testPackages(ctx, tree, logs, m)
	r.Mutant = m
	if err := os.WriteFile(file, orig, info.Mode().Perm()); err != nil {
		return r, fmt.Errorf("%s: restore %s: %w", m.ID, m.File, err)
	}
	return r, nil
}

// testPackages runs m's packages one at a time, in the order listed, and
// stops at the first that kills the mutant (or cannot run it): a mutant is
// killed once any owning package's tests fail, and the packages are listed
// cheapest first (a unit test package before ./cmd/evidenced's end-to-end
// tests), so a mutant its unit tests kill does not also wait for a build
// and run of the end-to-end package. A package after the first is logged
// to <ID>-<n>.log.
func testPackages(ctx context.Context, tree, logs string, m Mutant) Result {
	var r Result
	var elapsed time.Duration
	for i, p := range m.Packages {
		log := filepath.Join(logs, m.ID+".log")
		if i > 0 {
			log = filepath.Join(logs, fmt.Sprintf("%s-%d.log", m.ID, i))
		}
		r = goTest(ctx, tree, log, []string{p}, m.Run, m.Timeout)
		elapsed += r.Elapsed
		if r.Outcome != Survived {
			break
		}
	}
	r.Elapsed = elapsed
	return r
}

// runBaseline runs, on the unmutated tree, every package and filter the
// mutants use, one go test per distinct filter.
func runBaseline(ctx context.Context, tree, logs string, ms []Mutant) Result {
	byRun := map[string][]string{}
	var runs []string
	maxT := time.Duration(0)
	for _, m := range ms {
		if _, ok := byRun[m.Run]; !ok {
			runs = append(runs, m.Run)
		}
		for _, p := range m.Packages {
			if !slices.Contains(byRun[m.Run], p) {
				byRun[m.Run] = append(byRun[m.Run], p)
			}
		}
		maxT = max(maxT, m.Timeout)
	}
	total := Result{Outcome: Survived, Log: filepath.Join(logs, "baseline.log")}
	for i, run := range runs {
		log := total.Log
		if i > 0 {
			log = filepath.Join(logs, fmt.Sprintf("baseline-%d.log", i))
		}
		r := goTest(ctx, tree, log, byRun[run], run, maxT)
		total.Elapsed += r.Elapsed
		if r.Outcome != Survived {
			r.Elapsed = total.Elapsed
			return r
		}
	}
	return total
}

// testEvent is one line of `go test -json` (cmd/test2json), with the build
// events of go 1.24 and later.
type testEvent struct {
	Action      string
	Package     string
	Test        string
	Output      string
	ImportPath  string
	FailedBuild string
}

// goTest runs go test -json on pkgs in dir, writes the readable output to
// logPath and classifies it: Killed when tests failed, Survived when all
// passed, Invalid when something did not build or a filter ran no test.
func goTest(ctx context.Context, dir, logPath string, pkgs []string, run string, timeout time.Duration) Result {
	if timeout == 0 {
		timeout = defaultTimeout
	}
	args := []string{"test", "-json", "-count=1", "-short", "-timeout", timeout.String()}
	if run != "" {
		args = append(args, "-run", run)
	}
	args = append(args, pkgs...)
	// go test's own -timeout ends a hung test binary with a stack dump; the
	// outer limit only catches a go command that never gets that far.
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EVIDENCED_REQUIRE_S3=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	runErr := cmd.Run()
	r := classify(out.Bytes(), runErr)
	r.Elapsed = time.Since(start)
	r.Log = logPath
	var text strings.Builder
	fmt.Fprintf(&text, "$ (cd %s && EVIDENCED_REQUIRE_S3=1 go %s)\n", dir, strings.Join(args, " "))
	text.WriteString(readable(out.Bytes()))
	if runErr != nil {
		fmt.Fprintf(&text, "\n(go test: %v)\n", runErr)
	}
	if ctx.Err() != nil {
		r.Outcome, r.Killers = Invalid, []string{"go test did not finish within " + (timeout + 2*time.Minute).String()}
	}
	_ = os.WriteFile(logPath, []byte(text.String()), 0o644)
	return r
}

// classify reads go test -json output.
func classify(out []byte, runErr error) Result {
	var failed, invalid []string
	pkgFailed := map[string]bool{}
	pkgWithTestFail := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	sawJSON := false
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			continue // go's own messages on stderr
		}
		sawJSON = true
		short := shortPkg(ev.Package)
		switch {
		case ev.Action == "build-fail":
			invalid = appendNew(invalid, "does not build: "+shortPkg(ev.ImportPath))
		case ev.Action == "fail" && ev.FailedBuild != "":
			invalid = appendNew(invalid, "does not build: "+shortPkg(ev.FailedBuild))
		case ev.Action == "fail" && ev.Test != "":
			top, _, _ := strings.Cut(ev.Test, "/")
			failed = appendNew(failed, short+"."+top)
			pkgWithTestFail[ev.Package] = true
		case ev.Action == "fail":
			pkgFailed[ev.Package] = true
		case ev.Action == "output" && strings.Contains(ev.Output, "[setup failed]"):
			invalid = appendNew(invalid, "setup failed: "+short)
		case ev.Action == "output" && strings.HasPrefix(ev.Output, "testing: warning: no tests to run"):
			invalid = appendNew(invalid, "-run matches no test in "+short)
		case ev.Action == "output" && strings.HasPrefix(ev.Output, "panic: test timed out"):
			failed = appendNew(failed, short+": timed out")
			pkgWithTestFail[ev.Package] = true
		}
	}
	for p := range pkgFailed {
		if !pkgWithTestFail[p] {
			// Failed outside any test (TestMain, a panic in init, a
			// crash the test binary could not attribute).
			failed = appendNew(failed, shortPkg(p)+": package failed")
		}
	}
	slices.Sort(failed)
	switch {
	case len(invalid) > 0:
		return Result{Outcome: Invalid, Killers: invalid}
	case len(failed) > 0:
		return Result{Outcome: Killed, Killers: failed}
	case !sawJSON || runErr != nil:
		// go test failed before running anything it could report (a
		// package pattern that matches nothing, a broken go.mod).
		return Result{Outcome: Invalid, Killers: []string{"go test failed without a test result (see the log)"}}
	}
	return Result{Outcome: Survived}
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// shortPkg is the package's name as a test name prefix: "vault" for
// ".../internal/vault [.../internal/vault.test]".
func shortPkg(p string) string {
	p, _, _ = strings.Cut(p, " ")
	return path.Base(p)
}

// readable turns go test -json output back into the usual text.
func readable(out []byte) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Action == "" {
			b.Write(sc.Bytes())
			b.WriteByte('\n')
			continue
		}
		if ev.Action == "output" || ev.Action == "build-output" {
			b.WriteString(ev.Output)
		}
	}
	return b.String()
}

func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESULT\tSECS\tFILE\tDESCRIPTION\tFAILING TESTS")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\n", r.Mutant.ID, r.Outcome, r.Elapsed.Seconds(),
			r.Mutant.File, r.Mutant.Desc, strings.Join(r.Killers, ", "))
	}
	tw.Flush()
}

func printMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| mutant | file | what it breaks | result | killed by | s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rs {
		var ks []string
		for _, k := range r.Killers {
			ks = append(ks, "`"+k+"`")
		}
		fmt.Fprintf(w, "| `%s` | `%s` | %s | %s | %s | %.0f |\n", r.Mutant.ID, r.Mutant.File, r.Mutant.Desc,
			r.Outcome, strings.Join(ks, ", "), r.Elapsed.Seconds())
	}
}

// lockDir takes an exclusive lock on dir/lock for the run.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another mutation run holds %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
