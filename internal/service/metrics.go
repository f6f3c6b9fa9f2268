package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
)

// scrapeTimeout bounds the ledger reads of one scrape.
const scrapeTimeout = 20 * time.Second

// bayStateLabel is the short label of each bay state (the long forms are
// for people at the dock).
var bayStateLabel = map[BayState]string{
	BayDocked: "docked", BayCopying: "copying", BaySafe: "safe_to_undock", BayProblem: "problem", BayUnknown: "unknown_camera",
}

var itemStates = []custody.State{custody.StateVaulted, custody.StateUploaded, custody.StateVerified}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("evidenced_"+name, help, labels, nil)
}

var (
	descBays             = desc("bays", "Docked cameras by bay state.", "state")
	descCopied           = desc("copied_bytes_total", "Bytes copied off cameras and hashed (COPIED records).")
	descReadBack         = desc("vault_read_back_bytes_total", "Bytes read back cold from the vault and found identical (VAULTED records).")
	descUploaded         = desc("uploaded_bytes_total", "Bytes the object store acknowledged (UPLOADED records).")
	descStoreVerified    = desc("store_verified_bytes_total", "Bytes read back from the object store and found identical (VERIFIED records).")
	descUploadErrors     = desc("upload_errors_total", "Upload and store verification failures by step and kind: permanent ones as the ledger records them (UPLOAD_FAILED, VERIFY_FAILED; the host's whole history), transient ones (retried with backoff; not in the ledger) since the daemon started.", "step", "kind")
	descIntegrity        = desc("integrity_failures_total", "Objects whose read-back from the object store did not match or that vanished (VERIFY_FAILED records).")
	descInventoryRefused = desc("inventory_refused_total", "Inventory documents from the console this dock host refused: bad signature, an older version, or unreadable (INVENTORY_REFUSED records).")
	descInventoryFailed  = desc("inventory_refresh_failures_total", "Reads of the console's inventory since the daemon started (a dock host with inventory:, and the console reading its own) that did not find the newest document in the store in force, by reason: store (the store did not answer), refused (the newest document is one that is refused: unsigned, badly signed, undecodable, not the console's, or an older version put back; counted at every read while it is there), missing (deleted from the store, though a version was published). The version in force stays.", "reason")
	descInventoryAge     = desc("inventory_read_age_seconds", "Seconds since a read of the console's inventory (a dock host with inventory:, or the console) last found the newest document in the store in force, or none published and none in force (since the daemon started, if none yet). Read at start and every inventory.poll (a dock host) or console.poll (the console: on its own timer, not after the catalog's indexing, which may take hours), so the age grows only while the reads fail.")
	descRecordings       = desc("recordings", "Recordings in the ledger by state.", "state")
	descQueue            = desc("upload_queue_items", "Recordings not yet verified in the object store.")
	descQueueOldest      = desc("upload_queue_oldest_age_seconds", "Age of the oldest recording not yet verified in the object store (0 when the queue is empty).")
	descQueueFailed      = desc("upload_queue_failed_items", "Recordings not verified whose last upload or verification failed permanently.")
	descAnchorAge        = desc("custody_anchor_age_seconds", "Seconds since the last successful custody anchor in the object store (since the daemon started, if none yet).")
	descLedger           = desc("ledger_records", "Records in the custody ledger.")
	descVaultFree        = desc("vault_free_bytes", "Bytes free for the vault on its file system, above vault_reserve.")
	descLastDock         = desc("camera_last_dock_age_seconds", "Seconds since each camera was last docked (cameras docked at least once).", "camera")
)

// metrics computes the Prometheus metrics from the ledger and the bays at
// scrape time: the ledger is the record, so a counter can never disagree
// with it (the byte counters count the whole ledger, history included).
type metrics struct {
	s       *Service
	started time.Time
	// lastAnchor is the UnixNano of the last successful anchor (0: none).
	lastAnchor atomic.Int64

	mu sync.Mutex // guards the tally below
	// next is the first ledger seq not yet tallied.
	next                                      uint64
	copied, readBack, uploaded, storeVerified float64
	uploadErrors                              map[string]float64
	integrity                                 float64
	// inventoryRefused counts INVENTORY_REFUSED records: a console's
	// inventory document this host would not take.
	inventoryRefused float64
	lastDock         map[string]time.Time
	// scrubbed and scrubFailed count a console's SCRUBBED and
	// SCRUB_FAILED records (fleetMetrics exports them).
	scrubbed, scrubFailed float64
}

func newMetrics(s *Service) *metrics {
	m := &metrics{s: s, started: time.Now(), next: 1, uploadErrors: map[string]float64{}, lastDock: map[string]time.Time{}}
	if s.anchors != nil {
		prev := s.anchors.OnAnchor
		s.anchors.OnAnchor = func(r anchor.Result, err error) {
			if err == nil {
				m.lastAnchor.Store(time.Now().UnixNano())
			}
			if prev != nil {
				prev(r, err)
			}
		}
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBays, descCopied, descReadBack, descUploaded, descStoreVerified,
		descUploadErrors, descIntegrity, descInventoryRefused, descInventoryFailed, descInventoryAge, descRecordings, descQueue, descQueueOldest, descQueueFailed,
		descAnchorAge, descLedger, descVaultFree, descLastDock} {
		ch <- d
	}
}

// tally adds the ledger records appended since the last scrape.
func (m *metrics) tally(ctx context.Context) error {
	l := m.s.ledger
	size := func(ev custody.Event) float64 {
		if n, err := strconv.ParseInt(ev.Details["size"], 10, 64); err == nil {
			return float64(n)
		}
		if it, err := l.Item(ctx, ev.Item); err == nil {
			return float64(it.Size)
		}
		return 0
	}
	return l.Events(ctx, m.next, func(ev custody.Event) error {
		switch ev.Type {
		case custody.Copied:
			m.copied += size(ev)
		case custody.Vaulted:
			m.readBack += size(ev)
		case custody.Uploaded:
			m.uploaded += size(ev)
		case custody.Verified:
			m.storeVerified += size(ev)
		case custody.UploadFailed:
			m.uploadErrors[stepLabel(ev)]++
		case custody.VerifyFailed:
			m.uploadErrors[stepLabel(ev)]++
			m.integrity++
		case InventoryRefused:
			m.inventoryRefused++
		case Scrubbed:
			m.scrubbed++
		case ScrubFailed:
			m.scrubFailed++
		case custody.Docked:
			if ev.Camera != "" && ev.At.After(m.lastDock[ev.Camera]) {
				m.lastDock[ev.Camera] = ev.At
			}
		}
		m.next = ev.Seq + 1
		return nil
	})
}

func stepLabel(ev custody.Event) string {
	if s := ev.Details["step"]; s != "" {
		return s
	}
	return "unknown"
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, lv...)
	}
	fail := func(d *prometheus.Desc, err error) { ch <- prometheus.NewInvalidMetric(d, err) }

	bays := map[string]float64{}
	for _, l := range bayStateLabel {
		bays[l] = 0
	}
	for _, b := range m.s.bays.List() {
		bays[bayStateLabel[b.State]]++
	}
	for l, n := range bays {
		gauge(descBays, n, l)
	}

	m.mu.Lock()
	if err := m.tally(ctx); err != nil {
		fail(descCopied, fmt.Errorf("read the ledger: %w", err))
	}
	counter(descCopied, m.copied)
	counter(descReadBack, m.readBack)
	counter(descUploaded, m.uploaded)
	counter(descStoreVerified, m.storeVerified)
	for _, step := range []string{"upload", "verify"} {
		if _, ok := m.uploadErrors[step]; !ok {
			m.uploadErrors[step] = 0 // present from the start, so rate() and increase() see the first error
		}
	}
	for step, n := range m.uploadErrors {
		counter(descUploadErrors, n, step, "permanent")
	}
	transient := map[string]uint64{"upload": 0, "verify": 0}
	if m.s.uploader != nil {
		maps.Copy(transient, m.s.uploader.TransientFailures())
	}
	for step, n := range transient {
		counter(descUploadErrors, float64(n), step, "transient")
	}
	counter(descIntegrity, m.integrity)
	counter(descInventoryRefused, m.inventoryRefused)
	if m.s.config.Inventory != nil || m.s.config.IsConsole() {
		r := &m.s.invReads
		for reason, label := range invReadLabels {
			counter(descInventoryFailed, float64(r.failures[reason].Load()), label)
		}
		since := m.started
		if ns := r.confirmed.Load(); ns != 0 {
			since = time.Unix(0, ns)
		}
		gauge(descInventoryAge, max(0, now.Sub(since).Seconds()))
	}
	for cam, at := range m.lastDock {
		gauge(descLastDock, now.Sub(at).Seconds(), cam)
	}
	records := float64(m.next - 1)
	m.mu.Unlock()
	gauge(descLedger, records)

	byState := map[custody.State]float64{}
	var failed float64
	var oldest time.Time
	err := m.s.ledger.Items(ctx, custody.Filter{}, func(it custody.Item) error {
		byState[it.State]++
		if it.State != custody.StateVerified {
			if it.LastError != "" {
				failed++
			}
			if oldest.IsZero() || it.IngestedAt.Before(oldest) {
				oldest = it.IngestedAt
			}
		}
		return nil
	})
	if err != nil {
		fail(descRecordings, fmt.Errorf("read the ledger's items: %w", err))
	} else {
		for _, st := range itemStates {
			gauge(descRecordings, byState[st], string(st))
		}
		gauge(descQueue, byState[custody.StateVaulted]+byState[custody.StateUploaded])
		gauge(descQueueFailed, failed)
		age := 0.0
		if !oldest.IsZero() {
			age = max(0, now.Sub(oldest).Seconds())
		}
		gauge(descQueueOldest, age)
	}

	if m.s.anchors != nil {
		since := m.started
		if ns := m.lastAnchor.Load(); ns != 0 {
			since = time.Unix(0, ns)
		}
		gauge(descAnchorAge, now.Sub(since).Seconds())
	}
	if free, err := m.s.vault.Free(); err != nil {
		fail(descVaultFree, err)
	} else {
		gauge(descVaultFree, float64(free))
	}
}

// serveMetrics binds metrics.listen and serves GET /metrics until the
// returned stop is called. A bind failure is returned at once: the daemon
// does not start with its monitoring silently missing.
func (s *Service) serveMetrics(m *metrics) (stop func(), err error) {
	ln, err := net.Listen("tcp", s.config.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.catalog != nil {
		reg.MustRegister(&fleetMetrics{s: s, m: m})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	s.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
