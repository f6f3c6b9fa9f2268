package dock

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/testutil/benchstat"
)

// TestBenchDockFanout is the dock page's fan-out benchmark of
// scripts/bench-web.sh, skipped unless EVIDENCED_BENCH_CLIENTS is set: that
// many clients hold GET /api/events open on the page as the daemon serves
// it (default options: at most one snapshot per client every 250 ms, the
// rest coalesced) while a simulated dock copies a camera, reporting
// progress EVIDENCED_BENCH_RATE times a second (default 10) for
// EVIDENCED_BENCH_SECONDS (default 30), beside three bays that do not
// change. Each progress report carries its own byte count, so a client
// knows which report a snapshot shows: the delivery latency is from that
// report to the client reading it, and the reports no snapshot showed are
// the coalesced ones. It prints RESULT lines; it asserts only that every
// client receives the copy's end (SAFE TO UNDOCK) and that no snapshot goes
// back in time.
func TestBenchDockFanout(t *testing.T) {
	clients, _ := strconv.Atoi(os.Getenv("EVIDENCED_BENCH_CLIENTS"))
	if clients <= 0 {
		t.Skip("EVIDENCED_BENCH_CLIENTS not set")
	}
	rate := benchstat.EnvInt("EVIDENCED_BENCH_RATE", 10)
	dur := time.Duration(benchstat.EnvInt("EVIDENCED_BENCH_SECONDS", 30)) * time.Second
	var o Options
	o.defaults()
	if clients > o.MaxStreams {
		// The daemon's limit is not configurable: more clients than it
		// admits would be answered 503, which is not what is measured.
		t.Fatalf("%d clients: the dock page admits %d event streams", clients, o.MaxStreams)
	}
	src := newSource(t)
	srv := server(t, src, config.DockPage{ShowAssignedTo: true}, Options{})
	const cam = "BWC-0001"
	src.bays.Arrived("BWC-0002", "1-1.2")
	src.bays.Start("BWC-0002", 1, 10)
	src.bays.Done("BWC-0002", ingest.Result{SafeToUndock: true})
	src.bays.Arrived("BWC-0003", "1-1.3")
	src.bays.Unknown("ZZ-9", "1-1.4")
	reports := int(dur.Seconds() * float64(rate))
	total := int64(reports + 1)
	src.bays.Arrived(cam, "1-1.1")
	src.bays.Start(cam, 1, total)

	// sent[k] is when the report of k bytes done was made.
	var mu sync.Mutex
	sent := make([]time.Time, reports+1)
	type snap struct {
		v  int64
		at time.Time
	}
	type client struct {
		lat     []time.Duration
		snaps   []snap
		seen    int
		done    bool
		backErr string
	}
	results := make([]client, clients)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ready, wg sync.WaitGroup
	ready.Add(clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &results[i]
			first := true
			defer func() {
				if first {
					ready.Done()
				}
			}()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
			if err != nil {
				t.Error(err)
				return
			}
			res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("client %d: %s", i, res.Status)
				return
			}
			last := int64(-1)
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				at := time.Now()
				var bays []BayView
				if err := json.Unmarshal([]byte(data), &bays); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				if first {
					first = false
					ready.Done()
				}
				for _, b := range bays {
					if b.Camera != cam {
						continue
					}
					switch {
					case b.SafeToUndock:
						c.snaps = append(c.snaps, snap{total, at})
						c.done = true
						return
					case b.BytesDone < last:
						c.backErr = fmt.Sprintf("bytes_done %d after %d", b.BytesDone, last)
						return
					case b.BytesDone > last && b.BytesDone > 0:
						mu.Lock()
						c.lat = append(c.lat, at.Sub(sent[b.BytesDone]))
						mu.Unlock()
						c.seen++
						c.snaps = append(c.snaps, snap{b.BytesDone, at})
					}
					last = b.BytesDone
				}
			}
		}()
	}
	ready.Wait()

	cpu0 := benchstat.CPU()
	t0 := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for k := 1; k <= reports; k++ {
		<-tick.C
		mu.Lock()
		sent[k] = time.Now()
		mu.Unlock()
		src.bays.File(cam, "DCIM/100MEDIA/VID_0001.MP4", int64(k), total)
	}
	tick.Stop()
	// The copy's end comes through the coalescing path on every stream:
	// a change to another bay first, so that each stream has just sent a
	// snapshot or holds one back, then the end within MinInterval of it.
	// A held-back snapshot that is never sent loses the end.
	src.bays.Arrived("BWC-0003", "1-1.3")
	time.Sleep(o.MinInterval / 5)
	src.bays.Done(cam, ingest.Result{SafeToUndock: true})
	wall, cpu := time.Since(t0), benchstat.CPU()-cpu0
	// Every client gets the end with the next snapshot, at most
	// MinInterval later. One still waiting when the periodic refresh
	// (Refresh) would have sent it anyway has lost the change.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(o.Refresh * 2 / 3):
		cancel()
		<-waited
	}

	// wait: for every report and client, how long until a snapshot
	// showing it, or a later report that includes it, reached the client.
	var all, wait []time.Duration
	var seen, ended []int
	for i, c := range results {
		j := 0
		for k := 1; k <= reports && len(c.snaps) > 0; k++ {
			for j < len(c.snaps) && c.snaps[j].v < int64(k) {
				j++
			}
			if j == len(c.snaps) {
				break
			}
			wait = append(wait, c.snaps[j].at.Sub(sent[k]))
		}
		if !c.done {
			t.Errorf("client %d never received SAFE TO UNDOCK", i)
		}
		if c.backErr != "" {
			t.Errorf("client %d: %s", i, c.backErr)
		}
		all = append(all, c.lat...)
		seen = append(seen, c.seen)
		if c.done {
			ended = append(ended, i)
		}
	}
	slices.Sort(seen)
	if len(all) == 0 || len(wait) == 0 {
		t.Fatal("no snapshot delivered")
	}
	t.Logf("RESULT fan-out: %d clients, %d progress reports at %d/s over %s; stream limit %d, at most one snapshot per %s per client",
		clients, reports, rate, wall.Round(time.Millisecond), o.MaxStreams, o.MinInterval)
	t.Logf("RESULT latency of the report a snapshot shows, to the client: %s", benchstat.Percentiles(all))
	t.Logf("RESULT every report until a client sees it (or a later one): %s", benchstat.Percentiles(wait))
	t.Logf("RESULT reports shown per client: min %d median %d max %d of %d (the rest coalesced into a later snapshot); %d of %d clients received SAFE TO UNDOCK",
		seen[0], seen[len(seen)/2], seen[len(seen)-1], reports, len(ended), clients)
	rss, peak := benchstat.RSS()
	t.Logf("RESULT process CPU %s over %s (%.0f%% of one core; the clients are in the process), RSS %d MiB, peak %d MiB",
		cpu.Round(time.Millisecond), wall.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), rss, peak)
}
