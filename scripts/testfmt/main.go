// Command testfmt turns `go test -json` into the text `go test` prints,
// as it happens: scripts/test.sh pipes the whole run through it.
//
// A plain `go test ./...` prints each package's result in package order,
// so one slow package early in the list holds back every line after it
// and the run looks stalled for minutes. With -json the go command streams
// every package's events as they come; testfmt prints from them:
//
//   - each package's closing line as `go test` prints it (`ok  pkg  12.3s`,
//     `FAIL pkg 4.5s`, `?   pkg [no test files]`), when the package ends;
//   - the whole output of every test that failed (its logs and `--- FAIL`),
//     of the tests a dying test binary left unfinished, and build errors,
//     as they come;
//   - every -every (default 60s) without another line, which packages are
//     still running, for how long and in which test, longest first.
//
// Lines that are not JSON events (a `go vet` message, a panic of the go
// command) pass through unchanged. It exits 0: the run's own exit status is
// the go command's (scripts/test.sh sets pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent; the
// build-output action names its package in ImportPath).
type event struct {
	Action     string
	Package    string
	ImportPath string
	Test       string
	Output     string
}

// formatter keeps what a failure needs printed (each running test's
// output) and which packages are running.
type formatter struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	last    time.Time            // when something was last printed
	running map[string]time.Time // package → when it started
	inTest  map[string][]string  // package → its tests running now, in the order they started
	tests   map[string][]string  // package + "\x00" + test → its output so far
}

func newFormatter(w io.Writer, now func() time.Time) *formatter {
	return &formatter{w: w, now: now, last: now(), running: map[string]time.Time{}, inTest: map[string][]string{}, tests: map[string][]string{}}
}

func (f *formatter) print(s string) {
	io.WriteString(f.w, s)
	f.last = f.now()
}

// line handles one line of the stream.
func (f *formatter) line(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e event
	if !strings.HasPrefix(raw, "{") || json.Unmarshal([]byte(raw), &e) != nil || e.Action == "" {
		f.print(raw + "\n")
		return
	}
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == "build-output":
		f.print(e.Output)
	case e.Test != "" && e.Action == "run":
		f.inTest[e.Package] = append(f.inTest[e.Package], e.Test)
	case e.Test != "" && e.Action == "output":
		f.tests[key] = append(f.tests[key], e.Output)
	case e.Test != "" && e.Action == "fail":
		f.ended(e.Package, e.Test)
		// The parents' lines so far first (their === RUN and logs), so a
		// failed subtest reads in the order it ran.
		name := ""
		for part := range strings.SplitSeq(e.Test, "/") {
			name += part
			k := e.Package + "\x00" + name
			f.print(strings.Join(f.tests[k], ""))
			delete(f.tests, k)
			name += "/"
		}
	case e.Test != "" && (e.Action == "pass" || e.Action == "skip"):
		f.ended(e.Package, e.Test)
		delete(f.tests, key)
	case e.Action == "start":
		f.running[e.Package] = f.now()
	case e.Action == "output":
		// The package's own lines: its closing line, a FAIL, a panic
		// outside any test. The -v framing test2json asks the test binary
		// for is not what plain `go test` shows.
		o := e.Output
		if strings.HasPrefix(o, "FAIL") {
			// A test binary that died (a panic, a timeout) ends no test:
			// what its unfinished tests said is the story.
			f.flush(e.Package, true)
		}
		if o != "PASS\n" && !strings.HasPrefix(o, "=== ") {
			f.print(o)
		}
	case e.Action == "pass" || e.Action == "fail" || e.Action == "skip":
		f.flush(e.Package, false)
		delete(f.running, e.Package)
		delete(f.inTest, e.Package)
	}
}

// ended forgets test as running in pkg.
func (f *formatter) ended(pkg, test string) {
	f.inTest[pkg] = slices.DeleteFunc(f.inTest[pkg], func(t string) bool { return t == test })
}

// flush prints (when show) and forgets the output of pkg's tests that
// have not ended, by test name.
func (f *formatter) flush(pkg string, show bool) {
	var keys []string
	for k := range f.tests {
		if strings.HasPrefix(k, pkg+"\x00") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if show {
			f.print(strings.Join(f.tests[k], ""))
		}
		delete(f.tests, k)
	}
}

// heartbeat says which packages are running when nothing was printed for
// quiet.
func (f *formatter) heartbeat(quiet time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if len(f.running) == 0 || now.Sub(f.last) < quiet {
		return
	}
	pkgs := make([]string, 0, len(f.running))
	for p := range f.running {
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b string) int {
		if c := f.running[a].Compare(f.running[b]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(pkgs))
	for i, p := range pkgs {
		parts[i] = fmt.Sprintf("%s (%s", p, now.Sub(f.running[p]).Truncate(time.Second))
		if ts := f.inTest[p]; len(ts) > 0 {
			parts[i] += ", in " + ts[len(ts)-1] // the latest to start: where it is now
		}
		parts[i] += ")"
	}
	f.print("… still running: " + strings.Join(parts, ", ") + "\n")
}

func main() {
	every := flag.Duration("every", time.Minute, "say which packages are still running after this long without output")
	flag.Parse()
	f := newFormatter(os.Stdout, time.Now)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(*every / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f.heartbeat(*every)
			}
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		f.line(sc.Text())
	}
	close(done)
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "testfmt: reading go test's output: %v\n", err)
	}
}
