package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testutil/benchstat"
	"github.com/evidenced/evidenced/internal/testutil/oidcprovider"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// benchBin is one built evidenced binary the search benchmark serves
// from, and what its numbers are labelled.
type benchBin struct{ label, path string }

// benchBinaries are the binaries in EVIDENCED_BENCH_BINS
// ("before=/tmp/a,after=/tmp/b"; a path alone is labelled "binary"):
// TestBenchWebSearch then serves from each of them in turn, on the same
// fleet and index, instead of in its own process.
func benchBinaries(t *testing.T) []benchBin {
	var out []benchBin
	for _, f := range strings.Split(os.Getenv("EVIDENCED_BENCH_BINS"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		label, path, ok := strings.Cut(f, "=")
		if !ok {
			label, path = "binary", f
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("EVIDENCED_BENCH_BINS: %v", err)
		}
		out = append(out, benchBin{label, path})
	}
	return out
}

// benchBinarySearch is the search load against built binaries: the
// server's CPU is then the server's alone (read from /proc), and the 20
// people's browsers (this process) are measured apart. The first binary's
// command line indexes the fleet (`find`, as an operator's first search
// at a new console does); then each binary runs as the daemon (`run`,
// the console role with http.listen), the people sign in through the
// real OIDC flow, and once the daemon's start-up work is quiet they
// search as in the in-process run. EVIDENCED_BENCH_PERF=DIR records the
// server with perf (DIR/LABEL.perf.data) during the load.
func benchBinarySearch(t *testing.T, bins []benchBin, yml []byte, dir, base string, srv *s3srv.Server, idp *oidcprovider.Provider, users, perHost int, dur time.Duration) {
	cfg := filepath.Join(dir, "evidenced.yaml")
	yml = fmt.Appendf(yml, "http:\n  listen: %s\nshutdown_timeout: 60s\n", strings.TrimPrefix(base, "http://"))
	if err := os.WriteFile(cfg, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	// As an operator sets a console up: its key and ledger, the bucket
	// checked.
	if out, err := exec.Command(bins[0].path, "store-init", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("store-init: %v\n%s", err, out)
	}
	t1 := time.Now()
	find := exec.Command(bins[0].path, "find", "--config", cfg, "--assigned-to", "officer-01000", "--json")
	var stderr bytes.Buffer
	find.Stderr = &stderr
	out, err := find.Output()
	var found []json.RawMessage
	if err == nil {
		err = json.Unmarshal(out, &found)
	}
	if want := countWant(perHost, 0, time.Time{}, time.Time{}); err != nil || len(found) != want {
		t.Fatalf("first search (indexing): %d items, want %d: %v\n%s", len(found), want, err, stderr.Bytes())
	}
	result(t, "index: %d items by `%s find` in %s wall, %s CPU, peak RSS %d MiB", benchHosts*perHost, bins[0].label, since(t1),
		(find.ProcessState.UserTime() + find.ProcessState.SystemTime()).Round(time.Second), maxRSS(find.ProcessState))

	for i, b := range bins {
		label := "[" + b.label + "] "
		logf, err := os.Create(filepath.Join(dir, b.label+".log"))
		if err != nil {
			t.Fatal(err)
		}
		daemon := exec.Command(b.path, "run", "--config", cfg)
		daemon.Stdout, daemon.Stderr = logf, logf
		t2 := time.Now()
		if err := daemon.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			_ = daemon.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- daemon.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%sdaemon: %v (log %s)", label, err, logf.Name())
				}
			case <-time.After(2 * time.Minute):
				_ = daemon.Process.Kill()
				t.Errorf("%sdaemon did not stop within 2 min of SIGTERM (log %s)", label, logf.Name())
				<-done
			}
			logf.Close()
		}
		defer stop()
		pid := daemon.Process.Pid
		peaks := benchstat.SamplePeaks(pid, 50*time.Millisecond)
		for {
			res, err := http.Get(base + "/api/me")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusUnauthorized {
					break
				}
			}
			if time.Since(t2) > 10*time.Minute {
				t.Fatalf("%sthe console did not answer /api/me with 401 within 10 min: %v (log %s)", label, err, logf.Name())
			}
			time.Sleep(200 * time.Millisecond)
		}
		result(t, "%sdaemon listening after %s", label, since(t2))
		clients := make([]*benchClient, users)
		for u := range users {
			login := fmt.Sprintf("investigator-%02d", u)
			if i == 0 {
				idp.SetGroups(login, []string{"evidence-investigators"})
			}
			clients[u] = signIn(t, base, login, u)
		}
		// Quiet: three seconds in a row in which the daemon used under a
		// tenth of a second of CPU.
		t5, cpu5 := time.Now(), benchstat.ProcCPU(pid)
		for quiet := 0; quiet < 3 && time.Since(t5) < 5*time.Minute; {
			c0 := benchstat.ProcCPU(pid)
			time.Sleep(time.Second)
			if benchstat.ProcCPU(pid)-c0 < 100*time.Millisecond {
				quiet++
			} else {
				quiet = 0
			}
		}
		result(t, "%ssettle: the daemon's start-up work quiet after %s wall, %s CPU", label, since(t5), (benchstat.ProcCPU(pid) - cpu5).Round(100*time.Millisecond))
		anon, file, hwm := peaks.Stop()
		result(t, "%sstart-up memory (sampled every 50 ms from the start to settled): VmHWM %d MiB; peaks RssAnon %d MiB, RssFile %d MiB", label, hwm, anon, file)

		// With EVIDENCED_BENCH_PERF: a CPU profile of the server, and how
		// many times it synced a file (each ledger commit syncs twice):
		// whether concurrent searches' access records share commits.
		var perfs []*exec.Cmd
		syncs := filepath.Join(dir, b.label+".syncs")
		if d := os.Getenv("EVIDENCED_BENCH_PERF"); d != "" {
			secs := fmt.Sprint(int(dur.Seconds()))
			for _, args := range [][]string{
				{"record", "-q", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", filepath.Join(d, b.label+".perf.data"), "--", "sleep", secs},
				{"stat", "-x", ",", "-o", syncs, "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync", "-p", fmt.Sprint(pid), "--", "sleep", secs},
			} {
				perf := exec.Command("perf", args...)
				if err := perf.Start(); err != nil {
					t.Errorf("perf %s: %v", args[0], err)
					continue
				}
				perfs = append(perfs, perf)
			}
		}
		load0 := benchstat.LoadAvg()
		s3cpu0, srv0, cli0 := benchstat.ProcCPU(srv.PID()), benchstat.ProcCPU(pid), benchstat.CPU()
		t3 := time.Now()
		lats, conns := searchLoad(t, clients, base, perHost, dur)
		wall := time.Since(t3)
		srvCPU, cliCPU := benchstat.ProcCPU(pid)-srv0, benchstat.CPU()-cli0
		s3cpu := benchstat.ProcCPU(srv.PID()) - s3cpu0
		for _, perf := range perfs {
			_ = perf.Wait()
		}
		all := printLatencies(t, label, lats)
		if out, err := os.ReadFile(syncs); err == nil {
			n := 0
			for _, l := range strings.Split(string(out), "\n") {
				if f := strings.Split(l, ","); len(f) > 2 && strings.HasPrefix(f[2], "syscalls:") {
					c, _ := strconv.Atoi(f[0])
					n += c
				}
			}
			result(t, "%sfile syncs during the load: %d (fdatasync and fsync) for %d searches, each recorded: %.2f per search", label, n, len(all), float64(n)/float64(max(1, len(all))))
		}
		rss, peak := benchstat.ProcRSS(pid)
		result(t, "%sthroughput: %d searches in %s by %d users = %.1f/s; load average %s → %s", label,
			len(all), wall.Round(time.Millisecond), users, float64(len(all))/wall.Seconds(), load0, benchstat.LoadAvg())
		result(t, "%sserver (the evidenced process) CPU %s (%.0f%% of one core), %s per search; RSS %d MiB, peak %d MiB", label,
			srvCPU.Round(time.Millisecond), 100*srvCPU.Seconds()/wall.Seconds(), perSearch(srvCPU, len(all)), rss, peak)
		result(t, "%sclients (the test process) CPU %s (%.0f%% of one core), %s per search; %d connections; versitygw CPU %s", label,
			cliCPU.Round(time.Millisecond), 100*cliCPU.Seconds()/wall.Seconds(), perSearch(cliCPU, len(all)), conns.Load(), s3cpu.Round(time.Millisecond))
		stop()
	}
}

// maxRSS is a finished process's peak resident memory (getrusage's
// ru_maxrss, kB on Linux) in MiB; 0 when the system does not say.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss >> 10
	}
	return 0
}
