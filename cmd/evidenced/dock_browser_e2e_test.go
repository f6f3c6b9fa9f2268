package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evidenced/evidenced/internal/testutil/browser"
)

// bigFileSize makes one copy last long enough (a second or more: SHA-256,
// fsync and a cold read-back of every byte) for the page, which sends at
// most four snapshots a second, to show it in progress. The file is
// sparse: it costs the test no random data.
const bigFileSize = 384 << 20

// watchTiles records, for each camera, the states its tile has shown in
// order, as the page's own script changes them, and marks the document:
// a reload would lose both.
const watchTiles = `(() => {
  window.__seen = {};
  window.__noReload = true;
  const note = () => {
    for (const t of document.querySelectorAll("#bays .tile")) {
      const s = (window.__seen[t.dataset.camera] ||= []);
      if (s[s.length - 1] !== t.dataset.state) s.push(t.dataset.state);
    }
  };
  new MutationObserver(note).observe(document.getElementById("bays"), {childList: true, subtree: true, attributes: true});
  note();
  return true;
})()`

// tileState is the expression of one camera's tile state ("" if none).
func tileState(camera string) string {
	return `((document.querySelector('#bays .tile[data-camera="` + camera + `"]') || {dataset: {}}).dataset.state || "")`
}

func eval[T any](t *testing.T, b *browser.Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, browser.StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// TestDockPageInBrowser is the officer's view of a real dock: a real
// Chromium on the built daemon's dock page, at a kiosk's 800×480, while
// the daemon ingests from its watched folder. The tile of a camera goes
// from copying to SAFE TO UNDOCK by the event stream alone (the document
// is never reloaded), the page breaks no rule of its CSP, throws nothing,
// needs no scrolling (three bays on one screen), offers nothing to click, and its state
// reads large; when the daemon stops, the page says it is out of date.
// Screenshots are left in the artifact directory;
// EVIDENCED_UPDATE_DOCS=1 also writes docs/dock-page.png.
func TestDockPageInBrowser(t *testing.T) {
	b := browser.Start(t, 800, 480) // skips (or fails, when required) before anything else starts
	addr := freeAddr(t)
	// The watched folder sits deep, as on a station's file server: the
	// tiles must still tell the bays apart at 800×480.
	h := newHarness(t, harnessOpts{noStore: true, extra: "http:\n  listen: " + addr + "\n",
		media: "srv/evidence/stations/north-district/dock-kiosk-02/watched-folders/body-worn"})
	stop, logs := h.daemon(t)
	base := "http://" + addr

	b.Do("opening the dock page", chromedp.EmulateViewport(800, 480), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#bays .empty"))
	if !eval[bool](t, b, watchTiles) {
		t.Fatal("the tile watcher did not start")
	}

	// A camera not in the inventory and a small one first: the page shows
	// several states at once, as a dock with several bays does.
	h.dockCamera(t, "ZZ-0009", map[string]int{"DCIM/A.MP4": 1000})
	h.dockCamera(t, "BWC-0001", map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 1 << 20})
	b.WaitTrue("BWC-0001 safe and ZZ-0009 not in the inventory",
		tileState("BWC-0001")+` === "safe_to_undock" && `+tileState("ZZ-0009")+` === "not_in_inventory"`)

	// The large camera: its tile must be seen copying, then safe.
	staging := filepath.Join(h.dir, "staging", "BWC-0002")
	big := filepath.Join(staging, "DCIM", "100MEDIA", "VID_0002.MP4")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(bigFileSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Rename(staging, filepath.Join(h.media, "BWC-0002")); err != nil {
		t.Fatal(err)
	}
	b.WaitTrue("BWC-0002 copying", tileState("BWC-0002")+` === "copying"`)
	copying := eval[string](t, b, `document.querySelector('#bays .tile[data-camera="BWC-0002"] .state').textContent`)
	shot := b.Screenshot("dock-page.png")
	began := time.Now()
	b.WaitTrue("BWC-0002 safe to undock", tileState("BWC-0002")+` === "safe_to_undock"`)
	t.Logf("BWC-0002 showed %q, safe %s later", copying, time.Since(began).Round(time.Millisecond))
	b.Screenshot("dock-page-safe.png")

	if len(copying) < len("copying ") || copying[:len("copying ")] != "copying " {
		t.Errorf("the copying tile says %q", copying)
	}
	if got := eval[string](t, b, `document.querySelector('#bays .tile[data-camera="BWC-0002"] .state').textContent`); got != "SAFE TO UNDOCK" {
		t.Errorf("the safe tile says %q", got)
	}
	var seen []string
	ctx, cancel := context.WithTimeout(b.Ctx, browser.StepTimeout)
	defer cancel()
	seen, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__seen["BWC-0002"] || []`))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(seen, "copying"); i < 0 || seen[len(seen)-1] != "safe_to_undock" {
		t.Errorf("BWC-0002's tile went through %v; want copying, then safe_to_undock last", seen)
	}
	if !eval[bool](t, b, `document.getElementById("stale").classList.contains("hidden")`) {
		t.Error("a live page says it is not connected")
	}
	if !eval[bool](t, b, `window.__noReload === true`) {
		t.Error("the page was reloaded: the states did not arrive live")
	}
	if who := eval[string](t, b, `document.querySelector('#bays .tile[data-camera="BWC-0002"] .who').textContent`); who != "officer-0815" {
		t.Errorf("BWC-0002 is shown issued to %q", who)
	}

	// Readable at 800×480 from two metres, and only to read.
	if !eval[bool](t, b, `document.documentElement.scrollWidth <= window.innerWidth`) {
		t.Errorf("the page scrolls sideways at 800x480: %v px wide", eval[float64](t, b, `document.documentElement.scrollWidth`))
	}
	if off := eval[[]string](t, b, `[...document.querySelectorAll("#bays .tile")].filter(e => e.getBoundingClientRect().bottom > window.innerHeight).map(e => e.dataset.camera)`); len(off) != 0 {
		t.Errorf("at 800x480 the tiles of %v are below the screen's edge", off)
	}
	if px := eval[float64](t, b, `Math.min(...[...document.querySelectorAll("#bays .tile .state")].map(e => parseFloat(getComputedStyle(e).fontSize)))`); px < 28 {
		t.Errorf("the smallest state text is %vpx at 800x480, want 28px or more", px)
	}
	checkWhere(t, b, h.media)
	if n := eval[float64](t, b, `document.querySelectorAll("form, button, input, select, textarea, a[href]").length`); n != 0 {
		t.Errorf("the dock page offers %v controls; it only reads", n)
	}
	if p := b.Problems(); len(p) != 0 {
		t.Errorf("the browser reported: %q", p)
	}

	updateDocs(t, shot)
	// The daemon goes: the screen must say it is out of date rather than
	// keep showing SAFE TO UNDOCK.
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
	b.WaitTrue("the page saying it lost the daemon", `!document.getElementById("stale").classList.contains("hidden") && document.body.classList.contains("stale")`)
	b.Screenshot("dock-page-stale.png")
}

// whereBox is how a tile shows its watched folder (checkWhere).
type whereBox struct {
	Camera, Title, Leaf                 string
	LeafLines                           int
	LeafInside, WhereInside             bool
	DirCut, DirEndShown, DirStartHidden bool
}

// checkWhere: every tile names its watched folder (media) so that the
// folder's own name, which tells the bays apart, is whole, on one line and
// inside the tile; the directory before it, too long for the tile,
// gives way from its start (its end, next to the name, is what shows);
// the whole path is the tile's title.
func checkWhere(t *testing.T, b *browser.Browser, media string) {
	t.Helper()
	boxes := eval[[]whereBox](t, b, `[...document.querySelectorAll("#bays .tile")].map(t => {
  const w = t.querySelector(".where"), l = w.querySelector(".leaf"), d = w.querySelector(".dir");
  const tr = t.getBoundingClientRect(), wr = w.getBoundingClientRect(), dr = d ? d.getBoundingClientRect() : null;
  const chars = (node, i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect(); };
  const lr = document.createRange(); lr.selectNodeContents(l);
  const text = d ? d.querySelector("bdi").firstChild : null;
  return {Camera: t.dataset.camera, Title: w.title, Leaf: l.textContent, LeafLines: new Set([...lr.getClientRects()].map(r => Math.round(r.top))).size,
    LeafInside: l.getBoundingClientRect().left >= tr.left && l.getBoundingClientRect().right <= tr.right + 0.5,
    WhereInside: wr.right <= tr.right + 0.5 && w.scrollWidth <= w.clientWidth + 1,
    DirCut: !!d && d.scrollWidth > d.clientWidth + 1,
    DirEndShown: !!d && chars(text, text.length - 1).right <= dr.right + 1 && chars(text, text.length - 1).left >= dr.left - 1,
    DirStartHidden: !!d && chars(text, 0).right <= dr.left + 1};
})`)
	if len(boxes) == 0 {
		t.Fatal("no tiles to check the watched folder on")
	}
	for _, w := range boxes {
		if w.Title != media || w.Leaf != filepath.Base(media) {
			t.Errorf("%s's tile: title %q, folder name %q; want %q and %q", w.Camera, w.Title, w.Leaf, media, filepath.Base(media))
		}
		if w.LeafLines != 1 || !w.LeafInside || !w.WhereInside {
			t.Errorf("%s's folder name is not whole inside its tile: %+v", w.Camera, w)
		}
		if !w.DirCut || !w.DirEndShown || !w.DirStartHidden {
			t.Errorf("%s's long folder path is not cut at its start: %+v", w.Camera, w)
		}
	}
}
