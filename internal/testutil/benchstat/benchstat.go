// Package benchstat holds what the scale benchmarks (skipped unless their
// environment variable is set) measure beside wall time: the process's CPU
// time and resident memory, and latency percentiles. On a shared machine
// the wall time measures the other tenants as much as the code, so the
// benchmarks print CPU beside it.
package benchstat

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvInt is the positive integer in the environment variable name, or def.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// CPU is this process's user and system CPU time.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU is another process's user and system CPU time, from
// /proc/PID/stat (clock ticks of 10 ms); 0 when it cannot be read.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11]) // utime, field 14
	s, _ := strconv.Atoi(f[12]) // stime, field 15
	return time.Duration(u+s) * 10 * time.Millisecond
}

// RSS is this process's resident memory now (VmRSS) and at its peak
// (VmHWM), in MiB; 0 when /proc/self/status cannot be read.
func RSS() (now, peak int) { return rssOf("/proc/self/status") }

func rssOf(status string) (now, peak int) {
	st := procStatusKB(status)
	return st["VmRSS"] >> 10, st["VmHWM"] >> 10
}

// Percentiles describes latencies: count, p50, p95, p99 and max. It sorts d.
func Percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "n=0"
	}
	slices.Sort(d)
	at := func(p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)].Round(100 * time.Microsecond) }
	return fmt.Sprintf("n=%-6d p50 %-9s p95 %-9s p99 %-9s max %s", len(d), at(50), at(95), at(99), d[len(d)-1].Round(100*time.Microsecond))
}

// ProcRSS is another process's resident memory now (VmRSS) and at its
// peak (VmHWM), in MiB; 0 when /proc/PID/status cannot be read.
func ProcRSS(pid int) (now, peak int) {
	return rssOf(fmt.Sprintf("/proc/%d/status", pid))
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages ("?" when
// /proc/loadavg cannot be read): a number measured on a shared machine
// means little without it.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Peaks samples another process's /proc/PID/status every interval until
// Stop: the peak of its resident anonymous memory (RssAnon: the heap,
// stacks, the runtime's own) and, apart, of its resident file pages
// (RssFile: a mapped bbolt file's pages read through the map, which the
// kernel reclaims under pressure but counts in RSS). VmHWM alone cannot
// tell the two apart, and they call for different fixes.
type Peaks struct {
	stop chan struct{}
	done chan struct{}
	anon int
	file int
	pid  int
}

// SamplePeaks starts sampling pid every interval.
func SamplePeaks(pid int, interval time.Duration) *Peaks {
	p := &Peaks{stop: make(chan struct{}), done: make(chan struct{}), pid: pid}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			p.sample()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *Peaks) sample() {
	st := procStatusKB(fmt.Sprintf("/proc/%d/status", p.pid))
	p.anon, p.file = max(p.anon, st["RssAnon"]>>10), max(p.file, st["RssFile"]>>10)
}

// Stop ends the sampling and returns the peaks and the process's VmHWM,
// in MiB (the peaks are of samples: a spike shorter than the interval can
// be missed, VmHWM's cannot).
func (p *Peaks) Stop() (anon, file, hwm int) {
	close(p.stop)
	<-p.done
	p.sample()
	return p.anon, p.file, procStatusKB(fmt.Sprintf("/proc/%d/status", p.pid))["VmHWM"] >> 10
}

// procStatusKB is the "kB" fields of a /proc/PID/status file.
func procStatusKB(status string) map[string]int {
	out := map[string]int{}
	b, err := os.ReadFile(status)
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if v = strings.TrimSpace(v); ok && strings.HasSuffix(v, " kB") {
			out[k], _ = strconv.Atoi(strings.TrimSuffix(v, " kB"))
		}
	}
	return out
}
