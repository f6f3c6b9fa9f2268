package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
)

func ingestCommand() *command {
	return &command{
		name: "ingest", creates: true, required: []string{"camera", "from"}, summary: "ingest one camera's files now, exactly as the daemon does when it docks; upload and verify",
		setup: func(fs *flag.FlagSet) runner {
			camera := fs.String("camera", "", "camera serial (must be in the inventory)")
			from := fs.String("from", "", "the camera's root folder or mount point")
			asJSON := fs.Bool("json", false, "print the result as JSON")
			return func(ctx context.Context, e *env) error {
				return runIngest(ctx, e, *camera, *from, *asJSON)
			}
		},
	}
}

func runIngest(ctx context.Context, e *env, serial, from string, asJSON bool) error {
	o := service.IngestOptions{Camera: serial, From: from, InDaemon: e.inDaemon}
	if e.progress && !asJSON {
		o.Progress = newTermProgress(e.stderr)
	}
	out, err := e.svc.Ingest(ctx, e.caller(), o)
	if out.AnchorWarning != "" {
		fmt.Fprintf(e.stderr, "warning: custody checkpoint not anchored yet: %s\n", out.AnchorWarning)
	}
	res := out.IngestResult
	if asJSON {
		if !out.Ran {
			return err // refused before the copy: no report to print
		}
		if jerr := printJSON(e.stdout, out); jerr != nil {
			return jerr
		}
	} else if res.DockSeq != 0 {
		fmt.Fprintf(e.stdout, "camera %s: %d file(s), %d vaulted now, %d already held, %d refused, %d failed, %s copied\n",
			res.Camera, res.Files, res.Vaulted, res.AlreadyHeld, len(res.Refused), len(res.Failed), humanBytes(res.Bytes))
		for _, r := range res.Refused {
			fmt.Fprintf(e.stdout, "  REFUSED %s: %s\n", printable(r.Rel), r.Reason)
		}
		for _, f := range res.Failed {
			fmt.Fprintf(e.stdout, "  FAILED  %s: %s\n", printable(f.Rel), f.Reason)
		}
		for _, u := range out.Upload {
			fmt.Fprintf(e.stdout, "  UPLOAD  %s\n", u)
		}
		states := map[custody.State]int{}
		for _, it := range out.Recorded {
			states[it.State]++
		}
		fmt.Fprintf(e.stdout, "items: %d verified, %d uploaded, %d vaulted\n", states[custody.StateVerified], states[custody.StateUploaded], states[custody.StateVaulted])
		if res.SafeToUndock {
			fmt.Fprintf(e.stdout, "SAFE TO UNDOCK: every recording on %s is vaulted and read back\n", res.Camera)
		} else {
			fmt.Fprintf(e.stdout, "NOT SAFE TO UNDOCK: leave %s docked or dock it again\n", res.Camera)
		}
	}
	return err
}

// termProgress draws one status line on a terminal.
type termProgress struct {
	mu    sync.Mutex
	w     io.Writer
	files int
	total int64
	done  int64
	base  int64
	cur   string
	n     int
	start time.Time
	last  time.Time
}

func newTermProgress(w io.Writer) *termProgress { return &termProgress{w: w} }

func (t *termProgress) Start(serial string, files int, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.files, t.total, t.start = files, bytes, time.Now()
	fmt.Fprintf(t.w, "%s: %d file(s), %s\n", serial, files, humanBytes(bytes))
}

func (t *termProgress) File(serial, rel string, done, size int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rel != t.cur {
		t.base, t.cur = t.done, rel
		t.n++
	}
	t.done = t.base + done
	if time.Since(t.last) < 200*time.Millisecond && done != size {
		return
	}
	t.last = time.Now()
	rate := float64(t.done) / max(time.Since(t.start).Seconds(), 0.001)
	fmt.Fprintf(t.w, "\r\033[K[%d/%d] %s  %s / %s  %s/s", t.n, t.files, printable(rel), humanBytes(t.done), humanBytes(t.total), humanBytes(int64(rate)))
}

func (t *termProgress) Done(serial string, r service.IngestResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprint(t.w, "\r\033[K")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
