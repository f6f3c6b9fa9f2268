package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/catalog/fleetgen"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/benchstat"
	"github.com/evidenced/evidenced/internal/testutil/oidcprovider"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/web"
	"github.com/evidenced/evidenced/internal/web/console"
)

// Shape of the generated fleet: benchHosts dock hosts, each with
// benchCameras cameras issued to one officer each, one recording a minute
// per host, anchored every benchAnchor recordings.
const (
	benchHosts   = 20
	benchCameras = 20
	benchAnchor  = 500
)

var benchStart = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// TestBenchWebSearch is the search load benchmark of scripts/bench-web.sh,
// skipped unless EVIDENCED_BENCH_ITEMS is set. It writes a fleet of that
// many recordings with fleetgen into a real S3 server (versitygw), opens a
// console service on it (the real service, catalog and ledger) and indexes
// the fleet, serves the console's web handler in this process, signs
// EVIDENCED_BENCH_USERS people in (default 20) through the real OIDC flow
// against the in-process provider, and lets them search /api/items for
// EVIDENCED_BENCH_SECONDS (default 30) without pause: by officer (paged),
// by officer and one day, by camera, by camera and one day. It prints
// RESULT lines (latency percentiles per kind and overall, throughput, the
// process's CPU and RSS); it asserts only that every search returns what
// the generator put there for it.
func TestBenchWebSearch(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EVIDENCED_BENCH_ITEMS"))
	if n <= 0 {
		t.Skip("EVIDENCED_BENCH_ITEMS not set")
	}
	users := benchstat.EnvInt("EVIDENCED_BENCH_USERS", 20)
	dur := time.Duration(benchstat.EnvInt("EVIDENCED_BENCH_SECONDS", 30)) * time.Second
	perHost := max(1, n/benchHosts)
	ctx := t.Context()

	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0, cpu0 := time.Now(), benchstat.CPU()
	hosts, err := fleetgen.Generate(ctx, st, fleetgen.Options{Hosts: benchHosts, ItemsPerHost: perHost, ItemsPerAnchor: benchAnchor, CamerasPerHost: benchCameras, Start: benchStart})
	if err != nil {
		t.Fatal(err)
	}
	result(t, "generate: %d hosts × %d recordings (%d items) into versitygw in %s wall, %s CPU",
		benchHosts, perHost, benchHosts*perHost, since(t0), (benchstat.CPU() - cpu0).Round(time.Second))

	dir := t.TempDir()
	var trusted strings.Builder
	for _, h := range hosts {
		pem, err := signing.PublicPEM(h.Key)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, h.ID+".pub")
		if err := os.WriteFile(f, pem, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&trusted, "    - {id: %s, public_key_file: %s}\n", h.ID, f)
	}
	idp := oidcprovider.Start(t, nil)
	secret := filepath.Join(dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(idp.Config().ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	bins := benchBinaries(t)
	if len(bins) > 0 {
		// The server is the built binary in its own process: its port
		// is the test server's, which is closed unstarted.
		ts.Listener.Close()
	}
	yml := fmt.Appendf(nil, `host_id: hq
role: console
state_dir: %s
object_store: {endpoint: %q, bucket: %s, region: %s, path_style: true}
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 1, mode: GOVERNANCE}
vault_reserve: 0
console:
  poll: 30s
  hosts:
%soidc:
  issuer: %s
  client_id: %s
  client_secret_file: %s
  redirect_url: %s/auth/callback
  roles_claim: groups
  roles: {investigator: [evidence-investigators]}
`, filepath.Join(dir, "state"), srv.Endpoint, bucket, s3srv.Region, trusted.String(), idp.Issuer(), idp.Config().ClientID, secret, base)
	if len(bins) > 0 {
		benchBinarySearch(t, bins, yml, dir, base, srv, idp, users, perHost, dur)
		return
	}
	cfg, err := config.Parse(yml, filepath.Join(dir, "evidenced.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.Open(ctx, cfg, nil, service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()

	// The first search indexes the whole fleet (the console's rebuild).
	t1, cpu1 := time.Now(), benchstat.CPU()
	found, err := svc.Find(ctx, service.Caller{Actor: "bench"}, service.FindOptions{Filter: custody.Filter{AssignedTo: "officer-01000"}})
	if err != nil || len(found) != countWant(perHost, 0, time.Time{}, time.Time{}) {
		t.Fatalf("first search: %d items, %v", len(found), err)
	}
	rss, _ := benchstat.RSS()
	result(t, "index: %d items in %s wall, %s CPU; RSS %d MiB", benchHosts*perHost, since(t1), (benchstat.CPU() - cpu1).Round(time.Second), rss)

	// The daemon from here on: its catalog loop keeps the index live, so
	// a search does not read the store first, as at a running console.
	intake, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(intake, ctx, nil) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()

	// Every sign-in is started and completed from this one address: the
	// per-address limit (20 a minute) would refuse the twentieth user.
	h, err := console.New(ctx, svc, cfg.OIDC, slog.New(slog.DiscardHandler), console.Options{LoginsPerMinute: 10 * users})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = web.Handler(h)
	ts.Start()
	defer ts.Close()

	t2 := time.Now()
	clients := make([]*benchClient, users)
	for u := range users {
		login := fmt.Sprintf("investigator-%02d", u)
		idp.SetGroups(login, []string{"evidence-investigators"})
		clients[u] = signIn(t, base, login, u)
	}
	result(t, "sign-in: %d people through the OIDC flow (authorize, code, token, ID token check) in %s", users, since(t2))

	// The daemon's start-up work runs to its end before the load: its
	// sidecar step lists every item of the fleet once to parse what its
	// index lacks (seconds of CPU at a million items), which is a start's
	// cost, not a search's. Quiet is three seconds in a row in which the
	// process used under a tenth of a second of CPU; how long that took is
	// printed.
	t5, cpu5 := time.Now(), benchstat.CPU()
	for quiet := 0; quiet < 3 && time.Since(t5) < 5*time.Minute; {
		c0 := benchstat.CPU()
		time.Sleep(time.Second)
		if benchstat.CPU()-c0 < 100*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
	}
	result(t, "settle: the daemon's start-up work (the sidecar step's catch-up over every item) quiet after %s wall, %s CPU", since(t5), (benchstat.CPU() - cpu5).Round(100*time.Millisecond))

	if f := os.Getenv("EVIDENCED_BENCH_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	if f := os.Getenv("EVIDENCED_BENCH_BLOCKPROFILE"); f != "" {
		// Where the searches wait (locks, channels, the ledger's write
		// transaction), which a CPU profile does not show.
		runtime.SetBlockProfileRate(int(time.Millisecond))
		runtime.SetMutexProfileFraction(1)
		defer func() {
			pf, err := os.Create(f)
			if err != nil {
				t.Error(err)
				return
			}
			defer pf.Close()
			if err := pprof.Lookup("block").WriteTo(pf, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	s3cpu0 := benchstat.ProcCPU(srv.PID())
	t3, cpu3 := time.Now(), benchstat.CPU()
	lats, conns := searchLoad(t, clients, base, perHost, dur)
	wall, cpu := time.Since(t3), benchstat.CPU()-cpu3
	s3cpu := benchstat.ProcCPU(srv.PID()) - s3cpu0
	all := printLatencies(t, "", lats)
	rss, peak := benchstat.RSS()
	result(t, "throughput: %d searches in %s by %d users = %.1f/s; process CPU %s (%.0f%% of one core; the load loop is in the process), %s per search; versitygw CPU %s; %d connections; RSS %d MiB, peak %d MiB",
		len(all), wall.Round(time.Millisecond), users, float64(len(all))/wall.Seconds(), cpu.Round(time.Millisecond),
		100*cpu.Seconds()/wall.Seconds(), perSearch(cpu, len(all)), s3cpu.Round(time.Millisecond), conns.Load(), rss, peak)
}

// searchLoad lets every client search without pause for dur, each its
// own turn of kinds (newSearch), and returns the latencies of the
// searches that answered what the generator put there, by kind, and
// how many connections the clients opened.
func searchLoad(t *testing.T, clients []*benchClient, base string, perHost int, dur time.Duration) (map[string][]time.Duration, *atomic.Int64) {
	var (
		mu    sync.Mutex
		lats  = map[string][]time.Duration{}
		conns atomic.Int64
	)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for u, c := range clients {
		c.dials.Store(0)
		wg.Go(func() {
			for q := 0; time.Now().Before(deadline) && !t.Failed(); q++ {
				s := newSearch(u, q, perHost)
				t4 := time.Now()
				if s.run(t, c.Client, base) {
					d := time.Since(t4)
					mu.Lock()
					lats[s.kind] = append(lats[s.kind], d)
					mu.Unlock()
				}
			}
			conns.Add(c.dials.Load())
		})
	}
	wg.Wait()
	return lats, &conns
}

// printLatencies prints the percentiles of each kind and of all, and
// returns all.
func printLatencies(t *testing.T, label string, lats map[string][]time.Duration) []time.Duration {
	var all []time.Duration
	kinds := make([]string, 0, len(lats))
	for k := range lats {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		all = append(all, lats[k]...)
		result(t, "%ssearch %-22s %s", label, k, benchstat.Percentiles(lats[k]))
	}
	result(t, "%ssearch %-22s %s", label, "all", benchstat.Percentiles(all))
	return all
}

func perSearch(cpu time.Duration, n int) time.Duration {
	if n == 0 {
		return 0
	}
	return (cpu / time.Duration(n)).Round(10 * time.Microsecond)
}

// search is one person's query, built so that its answer is known from
// the generator's layout.
type search struct {
	kind         string
	host, cam    int
	since, until time.Time
	page, want   int
}

// newSearch is user u's q-th search: the kinds take turns, the officers
// and days are spread over the fleet.
func newSearch(u, q, perHost int) search {
	s := search{host: (u*7+q)%benchHosts + 1, cam: (u + q*3) % benchCameras}
	days := max(1, perHost/(24*60))
	day := benchStart.Add(-time.Hour).Truncate(24 * time.Hour).Add(time.Duration((u+q)%days) * 24 * time.Hour)
	switch q % 4 {
	case 0:
		s.kind = "officer, paged"
	case 1:
		s.kind, s.since, s.until = "officer, one day", day, day.Add(24*time.Hour)
	case 2:
		s.kind = "camera"
	case 3:
		s.kind, s.since, s.until = "camera, one day", day, day.Add(24*time.Hour)
	}
	s.want = countWant(perHost, s.cam, s.since, s.until)
	s.page = 1
	if pages := (s.want + 49) / 50; q%4 == 0 && pages > 1 {
		s.page = 1 + (u+q)%pages
	}
	return s
}

// countWant is how many recordings of camera cam one host holds between
// since and until (zero: open), as fleetgen lays them out: recording i at
// Start+i minutes (recorded an hour before), on camera i % cameras.
func countWant(perHost, cam int, since, until time.Time) int {
	n := 0
	for i := cam; i < perHost; i += benchCameras {
		at := benchStart.Add(time.Duration(i)*time.Minute - time.Hour)
		if (since.IsZero() || !at.Before(since)) && (until.IsZero() || at.Before(until)) {
			n++
		}
	}
	return n
}

// run sends the search and checks the answer: the total the generator
// implies, a full page (or the last one's rest), every item on it of the
// camera and officer asked for. It reports whether the search succeeded.
func (s search) run(t *testing.T, c *http.Client, base string) bool {
	serial := fmt.Sprintf("BWC-%02d%03d", s.host, s.cam)
	officer := fmt.Sprintf("officer-%02d%03d", s.host, s.cam)
	v := url.Values{"page": {strconv.Itoa(s.page)}}
	if strings.HasPrefix(s.kind, "officer") {
		v.Set("officer", officer)
	} else {
		v.Set("camera", serial)
	}
	if !s.since.IsZero() {
		v.Set("since", s.since.Format(time.RFC3339))
		v.Set("until", s.until.Format(time.RFC3339))
	}
	res, err := c.Get(base + "/api/items?" + v.Encode())
	if err != nil {
		t.Errorf("search %s: %v", v.Encode(), err)
		return false
	}
	defer res.Body.Close()
	var body struct {
		Items []custody.Item `json:"items"`
		Total int            `json:"total"`
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Errorf("search %s: %s %s", v.Encode(), res.Status, b)
		return false
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Errorf("search %s: %v", v.Encode(), err)
		return false
	}
	// Read to the end, so that the connection is kept for the next
	// search, as a browser's is (the decoder stops before the last
	// newline and the chunked body's end).
	_, _ = io.Copy(io.Discard, res.Body)
	wantPage := min(50, s.want-(s.page-1)*50)
	if body.Total != s.want || len(body.Items) != wantPage {
		t.Errorf("search %s: %d items of %d, want %d of %d", v.Encode(), len(body.Items), body.Total, wantPage, s.want)
		return false
	}
	for _, it := range body.Items {
		if it.Camera != serial || it.AssignedTo != officer || it.Host != fmt.Sprintf("dock-%02d", s.host) {
			t.Errorf("search %s: found %s of %s (%s, %s)", v.Encode(), it.ID, it.Host, it.Camera, it.AssignedTo)
			return false
		}
	}
	return true
}

// signIn goes through the console's sign-in as a browser does: the
// console sends it to the provider's authorization endpoint (PKCE, state,
// nonce), the provider's form is answered with the login, the provider
// redirects back with a code, which the console exchanges and checks. The
// client returned holds the session cookie.
func signIn(t *testing.T, base, login string, u int) *benchClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	bc := &benchClient{}
	// Each person has a browser of their own: its own connections, kept
	// between searches. (The default transport keeps two idle
	// connections per host for the whole process: 18 of 20 people would
	// open a new connection for every search.)
	// And its own address (127.0.0.2, 127.0.0.3, …: loopback is the
	// whole 127/8): the console limits sign-ins per address, as it would
	// 20 people at 20 desks.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+u%250))}}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		bc.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	first := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := first.Get(base + "/search")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	at := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || at == "" {
		t.Fatalf("sign-in of %s: /search answered %s, want a redirect to the provider", login, res.Status)
	}
	// No timeout: a slow search is a number to report, not a failure.
	c := &http.Client{Jar: jar, Transport: tr}
	res, err = c.Get(at + "&login_name=" + url.QueryEscape(login))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.String() != base+"/search" {
		t.Fatalf("sign-in of %s ended at %s with %s", login, res.Request.URL, res.Status)
	}
	bc.Client = c
	return bc
}

// benchClient is one person's browser: a client with its own cookie jar
// and connections, and how many connections it opened.
type benchClient struct {
	*http.Client
	dials atomic.Int64
}

func result(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("RESULT "+format, args...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
