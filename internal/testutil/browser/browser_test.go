package browser_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/internal/testutil/browser"
)

// TestBrowserSeesScriptAndReportsCSPViolations starts the real Chromium on a
// page whose CSP allows only same-origin scripts: the same-origin script
// runs (its text appears), the inline one is blocked, and Problems reports
// that violation — so a web test that checks Problems would catch a page
// that relies on inline script.
func TestBrowserSeesScriptAndReportsCSPViolations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		switch r.URL.Path {
		case "/app.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, `document.getElementById('out').textContent = 'script ran';`)
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><title>t</title><p id=out>no script</p>
<script>document.title = 'inline ran'</script><script src="/app.js"></script>`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	b := browser.Start(t, 800, 480)
	b.Do("opening the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("out")))
	b.WaitTrue("waiting for the same-origin script", `document.getElementById("out").textContent === "script ran"`)
	if title, _ := chromedp.Run(b.Ctx, chromedp.Title()); title == "inline ran" {
		t.Errorf("the inline script ran despite the CSP")
	}
	problems := b.Problems()
	if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "Content Security Policy") {
		t.Errorf("Problems() = %q, want the inline script's CSP violation", problems)
	}
	if p := b.Screenshot("browser-selftest.png"); !strings.HasSuffix(p, "browser-selftest.png") {
		t.Errorf("screenshot path %q", p)
	}
}

// TestWaitTrueSurvivesNavigations polls across a chain of pages that each
// move on to the next within a few milliseconds: every poll can be cut by a
// navigation at any instant (old document unloading, or a new one whose
// JavaScript context replaced the poll's), and WaitTrue must poll again on
// the new page rather than fail the test.
func TestWaitTrueSurvivesNavigations(t *testing.T) {
	const last = 30
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/n/%d", &n); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if n >= last {
			fmt.Fprintf(w, `<!doctype html><title>t</title><p id=out>page %d</p>`, n)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>t</title><p id=out>page %d</p>
<script>setTimeout(function(){ location.href = "/n/%d" }, %d)</script>`, n, n+1, n%4)
	}))
	defer srv.Close()
	b := browser.Start(t, 800, 480)
	b.Do("opening the first page", chromedp.Navigate(srv.URL+"/n/0"))
	b.WaitTrue("the last page of the chain", fmt.Sprintf(`location.pathname === "/n/%d" && document.readyState === "complete"`, last))
	if txt, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("out"))); !strings.Contains(txt, fmt.Sprintf("page %d", last)) {
		t.Errorf("after the chain the page says %q", txt)
	}
}
