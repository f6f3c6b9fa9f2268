package custody_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
)

// TestBenchLedgerMeasure times, on the ledger at EVIDENCED_BENCH_LEDGER
// (TestBenchLedgerBuild writes one), what issue #15 sets goals for: Verify
// of the whole ledger, one inclusion proof, and an export of one item
// (records, signatures, proofs; no footage). It prints one RESULT line
// with wall and CPU time (of the read-only Open, which checks the file's
// structure, and of Verify) and the load average, and uses only the exported
// API, so scripts/bench-ledger.sh can run the same file against an older
// release's code. Skipped without the variable.
func TestBenchLedgerMeasure(t *testing.T) {
	path := os.Getenv("EVIDENCED_BENCH_LEDGER")
	if path == "" {
		t.Skip("EVIDENCED_BENCH_LEDGER not set")
	}
	ctx := context.Background()
	load := loadAvg()
	// Open is timed too: a read-only Open walks every page of the file
	// (the structure check a writable ledger's Verify runs first), so it
	// is part of what `evidenced verify` waits for.
	w, c := time.Now(), cpuTime()
	l, err := custody.Open(path, custody.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ow, oc := time.Since(w), cpuTime()-c
	defer func() { _ = l.Close() }()
	head, _, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{fmt.Sprintf("records=%d", head), "load_before=" + load,
		fmt.Sprintf("open_wall_s=%.2f open_cpu_s=%.2f", ow.Seconds(), oc.Seconds())}

	var problems int
	w, c = time.Now(), cpuTime()
	st, err := l.Verify(ctx, func(p custody.Problem) {
		if problems < 5 {
			t.Errorf("problem: %+v", p)
		}
		problems++
	})
	vw, vc := time.Since(w), cpuTime()-c
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("verify_wall_s=%.2f verify_cpu_s=%.2f verify_ns_per_record=%.0f verify_cpu_us_per_record=%.1f signed=%d problems=%d goal_10s_ratio=%.2f",
		vw.Seconds(), vc.Seconds(), float64(vw.Nanoseconds())/float64(st.Events), float64(vc.Microseconds())/float64(st.Events),
		st.Signed, problems, vw.Seconds()/10*1_000_000/float64(st.Events)))

	w = time.Now()
	if _, err := l.InclusionProof(ctx, head/2, 0); err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("inclusion_ms=%.1f", float64(time.Since(w).Microseconds())/1000))

	var id string
	stop := errors.New("stop")
	if err := l.Items(ctx, custody.Filter{}, func(it custody.Item) error { id = it.ID; return stop }); err != nil && !errors.Is(err, stop) {
		t.Fatal(err)
	}
	w = time.Now()
	sum, err := export.Build(ctx, l, nil, export.NewDirSink(t.TempDir()+"/pkg"), export.Options{
		IDs: []string{id}, ExportedBy: "bench", Reason: "bench", Tool: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("export_one_item_ms=%.1f export_records=%d", float64(time.Since(w).Microseconds())/1000, sum.Records),
		"load_after="+loadAvg())
	fmt.Println("RESULT " + strings.Join(out, " "))
}

func cpuTime() time.Duration {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], "/")
}
