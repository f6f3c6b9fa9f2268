// Package browser starts a real headless Chromium for the web tests, driven
// over the DevTools protocol by chromedp. Tests use it instead of an HTTP
// client wherever what matters is what a person at the screen sees: the
// dock page following an ingest, a sign-in over OpenID Connect, a video that
// plays.
//
// Chromium comes from Debian's chromium package (scripts/setup.sh installs
// it). Without it a test skips, unless EVIDENCED_REQUIRE_BROWSER=1 (set by
// scripts/test.sh), when it fails: CI never passes by skipping the browser.
package browser

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StepTimeout bounds each Do: a wrong cookie or a missing element shows up
// as a wait that never ends, so every wait has its own deadline and its
// failure says where the browser was and what the page said.
const StepTimeout = 20 * time.Second

// Path returns Chromium's path: $CHROMIUM if set, else the first of the
// usual names on PATH. It skips the test when there is none, or fails it
// under EVIDENCED_REQUIRE_BROWSER=1.
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("EVIDENCED_REQUIRE_BROWSER") == "1" {
		t.Fatal("EVIDENCED_REQUIRE_BROWSER=1 but no chromium on PATH (run scripts/setup.sh)")
	}
	t.Skip("no chromium on PATH (scripts/setup.sh installs it; EVIDENCED_REQUIRE_BROWSER=1 makes this a failure)")
	return ""
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	// Ctx is the tab's context: pass it to chromedp.Run and friends.
	Ctx     context.Context
	t       testing.TB
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// Start launches Chromium with a window of w×h pixels; it is closed when
// the test ends. Console messages (including CSP violations, which arrive
// as log entries) are collected for Problems.
//
// One Chromium runs at a time across every test process of a run (a lock
// file in the temporary directory, held until the test ends): the test run
// builds and tests packages in parallel on two cores, and several browsers
// starting at once under that load is when Chromium has been seen to die
// by a signal. A browser that dies while starting (before it has shown
// about:blank, before any page of ours) is started once more, and the log
// says so; one that dies later fails the test. A test (or subtest) starts
// one browser: a second Start in the same test would wait for the first's
// lock until the test's timeout.
func Start(t testing.TB, w, h int) *Browser {
	t.Helper()
	exe := Path(t)
	lockChromium(t)
	var ctx context.Context
	for attempt := 1; ; attempt++ {
		var err error
		ctx, err = launch(t, exe, w, h)
		if err == nil {
			break
		}
		if attempt == 2 || !strings.Contains(err.Error(), "browser process exited") {
			t.Fatalf("starting %s: %v", exe, err)
		}
		t.Logf("Chromium died while starting (%v); starting it once more", err)
	}
	b := &Browser{Ctx: ctx, t: t}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// Do runs steps under StepTimeout and fails the test with the browser's
// location and the start of the page's text when they do not complete.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := b.Try(what, steps...); err != nil {
		b.t.Fatal(err)
	}
}

// Try is Do that returns the failure instead of ending the test.
func (b *Browser) Try(what string, steps ...chromedp.Action[chromedp.Void]) error {
	sctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		return &StepError{What: what, Err: err, At: b.Location(), Page: b.Text()}
	}
	return nil
}

// StepError says which browser step failed, where, and what the page said.
type StepError struct {
	What, At, Page string
	Err            error
}

func (e *StepError) Error() string {
	return e.What + ": " + e.Err.Error() + "\nbrowser at " + e.At + ", page says " + quote(e.Page)
}

func (e *StepError) Unwrap() error { return e.Err }

func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\n", "\\n") + "\"" }

// Location is the tab's URL ("" if it cannot be read).
func (b *Browser) Location() string {
	ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// Text is the first 500 characters of the page's visible text.
func (b *Browser) Text() string {
	ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 500) : ""`))
	return s
}

// Screenshot saves the tab as name (a file name, e.g. "dock-page.png") in
// ArtifactDir and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := ArtifactDir(b.t)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatalf("saving screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", p, len(png))
	return p
}

// ArtifactDir is where tests leave what a person may want to look at after
// a run: $EVIDENCED_ARTIFACTS if set, else <os.TempDir>/evidenced-artifacts.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EVIDENCED_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "evidenced-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}

// launch starts one Chromium and shows about:blank in its tab. On success
// the browser is closed when the test ends; on failure it is already closed.
func launch(t testing.TB, exe string, w, h int) (context.Context, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		// Chromium refuses to run as root without it; tests here run as root.
		chromedp.NoSandbox,
		chromedp.Flag("headless", "new"),
		chromedp.WindowSize(w, h),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The first action starts Chromium and binds it to the context it runs
	// in, so it runs in ctx itself: a derived context with a deadline would
	// close the browser when cancelled.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		return nil, err
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx, nil
}

// lockChromium waits for the run-wide Chromium lock and holds it until the
// test ends (its cleanup runs after the browser's, which was registered
// later, so the browser is closed first).
func lockChromium(t testing.TB) {
	t.Helper()
	p := filepath.Join(os.TempDir(), "evidenced-chromium.lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("opening the Chromium lock %s: %v", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("taking the Chromium lock %s: %v", p, err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// Problems returns the console's uncaught exceptions and Content Security
// Policy violations so far: a page that breaks its own CSP or throws is a
// defect even when the test's own checks pass.
func (b *Browser) Problems() []string {
	time.Sleep(200 * time.Millisecond) // let the last events arrive
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// navigationCut reports whether err is Chrome saying the page the poll ran
// in went away under it. The wording depends on the instant: while the old
// document unloads chromedp says "navigated or closed"; once the new one
// exists, a poll still addressed to the old JavaScript context gets
// "Cannot find context with specified id" or "Execution context was
// destroyed" from the DevTools protocol.
func navigationCut(err error) bool {
	msg := err.Error()
	for _, s := range []string{"navigated or closed", "Cannot find context with specified id", "Execution context was destroyed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// WaitTrue polls the JavaScript expression until it is true, under
// StepTimeout, and fails the test like Do when it never is. A poll cut
// short because the page navigated (the usual reason to wait: a form was
// submitted) is polled again on the new page, not taken as a failure.
func (b *Browser) WaitTrue(what, expr string) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.Ctx, StepTimeout)
	defer cancel()
	for {
		_, err := chromedp.Run(sctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil {
			return
		}
		if sctx.Err() != nil || !navigationCut(err) {
			b.t.Fatal(&StepError{What: what, Err: err, At: b.Location(), Page: b.Text()})
		}
		time.Sleep(50 * time.Millisecond)
	}
}
