package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/ingest"
)

func ingestCommand() *command {
	return &command{
		name: "ingest", creates: true, summary: "ingest one camera's files now, exactly as the daemon does when it docks; upload and verify",
		setup: func(fs *flag.FlagSet) runner {
			camera := fs.String("camera", "", "camera serial (must be in the inventory)")
			from := fs.String("from", "", "the camera's root folder or mount point")
			asJSON := fs.Bool("json", false, "print the result as JSON")
			return func(ctx context.Context, e *env) error {
				if *camera == "" || *from == "" {
					return usageErrorf("ingest needs --camera and --from")
				}
				return runIngest(ctx, e, *camera, *from, *asJSON)
			}
		},
	}
}

type ingestOutput struct {
	ingest.Result
	Upload   []string       `json:"upload_errors,omitempty"`
	Recorded []custody.Item `json:"items_detail"`
	OK       bool           `json:"ok"`
}

func runIngest(ctx context.Context, e *env, serial, from string, asJSON bool) error {
	if e.inDaemon {
		// The daemon reads with its own rights (the host key, the vault):
		// a client may point it only at configured sources.
		real, err := e.svc.Config.ResolveIngestSource(from)
		if err != nil {
			e.svc.Bays.Problem(serial, "REFUSED: "+err.Error())
			return fmt.Errorf("ingest --from: %w", err)
		}
		from = real
	}
	var p ingest.Progress
	if e.progress && !asJSON {
		p = newTermProgress(e.stderr)
	} else if e.inDaemon {
		// The daemon's bays show this dock in `evidenced status` too.
		p = e.svc.Bays
	}
	if err := e.svc.Wiper.AdmitDock(ctx, serial, from, e.actor, "cli"); err != nil {
		if e.inDaemon {
			e.svc.Bays.Problem(serial, err.Error())
		}
		return err
	}
	res, err := e.svc.Ingester.Dock(ctx, ingest.Request{Serial: serial, Root: from, Actor: e.actor, Via: "cli", Identity: e.withBehalf(map[string]string{})}, p)
	out := ingestOutput{Result: res}
	var upErr error
	if e.svc.Uploader != nil && len(res.Items) > 0 {
		upErr = e.svc.Uploader.Sync(ctx, res.Items, 5)
		if upErr != nil {
			for _, u := range unwrapJoined(upErr) {
				out.Upload = append(out.Upload, u.Error())
			}
		}
	}
	// The dock session ended: its records are anchored off-host now (in the
	// daemon, by its anchor loop; here, directly). A failed anchor is a
	// warning, not a failed ingest: the records are signed locally and the
	// next anchor covers them.
	if res.DockSeq != 0 {
		if err := e.svc.AnchorNow(ctx, e.inDaemon); err != nil {
			fmt.Fprintf(e.stderr, "warning: custody checkpoint not anchored yet: %v\n", err)
		}
	}
	for _, id := range res.Items {
		if it, err := e.svc.Ledger.Item(ctx, id); err == nil {
			out.Recorded = append(out.Recorded, it)
		}
	}
	out.OK = err == nil && upErr == nil
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
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
	if err != nil {
		if errors.Is(err, ingest.ErrUnknownDevice) {
			return fmt.Errorf("camera %q is not in the inventory: not ingested (recorded as UNKNOWN_DEVICE)", serial)
		}
		return err
	}
	if upErr != nil {
		return fmt.Errorf("vaulted, but not every item is verified in the object store: %w", upErr)
	}
	return nil
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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

func (t *termProgress) Done(serial string, r ingest.Result) {
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
