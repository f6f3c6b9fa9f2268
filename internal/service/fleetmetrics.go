package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidenced/evidenced/internal/catalog"
)

var (
	descFleetHosts          = desc("fleet_hosts", "Hosts anchoring in the store, as the console sees them: trusted (listed in console.hosts), untrusted (not listed; never served), broken (a trusted host whose history broke; nothing after the break is served), withheld (broken behind what was followed; nothing of it is served).", "state")
	descFleetHostBroken     = desc("fleet_host_broken", "1 when a trusted host's anchored history broke or the audit withheld it, else 0.", "host")
	descFleetHostLag        = desc("fleet_host_last_record_age_seconds", "Seconds since the last record of each trusted host the console has followed and indexed (its catalog lag; absent until a checkpoint is followed).", "host")
	descFleetHostCheckpoint = desc("fleet_host_checkpoint_size", "Tree size of the last checkpoint of each trusted host the console followed and checked (the seq of its last record indexed; 0 for none).", "host")
	descFleetHostRecords    = desc("fleet_host_records", "Records of each trusted host indexed by the console.", "host")
	descFleetHostItems      = desc("fleet_host_items", "Recordings of each trusted host indexed by the console.", "host")
	descFleetHostUnverified = desc("fleet_host_unverified_items", "Recordings of each trusted host indexed by the console and not yet verified in the object store, as its anchored records say: the dock host's upload queue, seen from HQ.", "host")
	descFleetHostUnvOldest  = desc("fleet_host_unverified_oldest_age_seconds", "Seconds since the oldest recording of each trusted host not yet verified in the store was vaulted (0 when none): the dock host's upload_queue_oldest_age_seconds, seen from HQ.", "host")
	descFleetItems          = desc("fleet_items", "Recordings indexed by the console, every trusted host's.")
	descFleetSyncAge        = desc("fleet_sync_age_seconds", "Seconds since the console's last complete read of the store (since the daemon started, if none yet).")
	descFleetSyncDuration   = desc("fleet_sync_duration_seconds", "How long the console's last read of the store took (reading, checking and indexing every host's new anchors; absent before the first).")
	descFleetScrubbed       = desc("fleet_scrubbed_objects_total", "Stored objects the console's scrub re-read and found holding what their host recorded (SCRUBBED records).")
	descFleetCameraDock     = desc("fleet_camera_last_dock_age_seconds", "Seconds since each camera's last dock anchored by a trusted host, wherever it docked (host: where; a broken or withheld host's dock counts: the camera came back, though that host's records are not served); the fleet's view, which a single dock host's camera_last_dock_age_seconds is not.", "camera", "host")
	descFleetCameraNever    = desc("fleet_camera_never_docked_age_seconds", "Seconds since the console's published inventory began listing each camera that no trusted host has recorded docking (the oldest version of the unbroken run of versions listing it): a camera that never came back.", "camera")
	descFleetCameras        = desc("fleet_cameras", "Cameras by state, as `evidenced fleet` shows them: docked (within a week), not_docked (a week or more since the last dock, as EvidencedFleetCameraNotDocked), never_docked (listed in the published inventory, docked nowhere).", "state")
	descInventoryBytes      = desc("inventory_document_bytes", "Bytes of the console's newest published inventory document, as its last read of the store listed it (absent before the first read, 0 when none is published): the history grows with every hand-over, and a console refuses to publish past evidenced_inventory_document_max_bytes.")
	descInventoryMaxBytes   = desc("inventory_document_max_bytes", "The most bytes of an inventory document a dock host reads, and so the most a console publishes (a constant of the build).")
	descFleetScrubFailures  = desc("fleet_scrub_failures_total", "Stored objects the console's scrub found changed or gone (SCRUB_FAILED records, each an alert naming the object).")
)

// fleetMetrics are the console's metrics: the hosts and cameras read from
// the catalog at scrape time (no item is read), the scrub's results
// from the console's ledger (tallied with the other counters by m).
type fleetMetrics struct {
	s *Service
	m *metrics
}

func (f *fleetMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFleetHosts, descFleetHostBroken, descFleetHostLag, descFleetHostCheckpoint,
		descFleetHostRecords, descFleetHostItems, descFleetHostUnverified, descFleetHostUnvOldest, descFleetItems, descFleetSyncAge, descFleetSyncDuration,
		descFleetCameraDock, descFleetCameraNever, descFleetCameras, descFleetScrubbed, descFleetScrubFailures,
		descInventoryBytes, descInventoryMaxBytes} {
		ch <- d
	}
}

func (f *fleetMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	now := time.Now()
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}

	f.m.mu.Lock()
	if err := f.m.tally(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(descFleetScrubFailures, fmt.Errorf("read the ledger: %w", err))
	}
	counter(descFleetScrubbed, f.m.scrubbed)
	counter(descFleetScrubFailures, f.m.scrubFailed)
	f.m.mu.Unlock()

	since := f.m.started
	if ns := f.s.lastSync.Load(); ns != 0 {
		since = time.Unix(0, ns)
	}
	gauge(descFleetSyncAge, now.Sub(since).Seconds())
	if took := f.s.lastSyncTook.Load(); took != 0 {
		gauge(descFleetSyncDuration, time.Duration(took).Seconds())
	}
	gauge(descInventoryMaxBytes, maxInventory)
	inv := f.s.fleetInventoryNow()
	if inv != nil {
		gauge(descInventoryBytes, float64(inv.Bytes))
	}

	fl, err := f.s.catalog.Fleet(ctx, now, catalog.FleetOptions{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descFleetHosts, fmt.Errorf("read the catalog: %w", err))
		return
	}
	states := map[string]float64{"trusted": 0, "untrusted": 0, "broken": 0, "withheld": 0}
	var items float64
	for _, h := range fl.Hosts {
		if !h.Trusted {
			states["untrusted"]++
			continue
		}
		states["trusted"]++
		broken := 0.0
		switch {
		case h.Withheld:
			states["withheld"]++
			broken = 1
		case h.Broken:
			states["broken"]++
			broken = 1
		}
		gauge(descFleetHostBroken, broken, h.ID)
		if !h.LastRecordAt.IsZero() {
			gauge(descFleetHostLag, max(0, now.Sub(h.LastRecordAt).Seconds()), h.ID)
		}
		gauge(descFleetHostCheckpoint, float64(h.Checkpoint), h.ID)
		gauge(descFleetHostRecords, float64(h.Records), h.ID)
		gauge(descFleetHostItems, float64(h.Items), h.ID)
		gauge(descFleetHostUnverified, float64(h.NotVerified), h.ID)
		oldest := 0.0
		if !h.OldestNotVerifiedAt.IsZero() {
			oldest = max(0, now.Sub(h.OldestNotVerifiedAt).Seconds())
		}
		gauge(descFleetHostUnvOldest, oldest, h.ID)
		items += float64(h.Items)
	}
	for st, n := range states {
		gauge(descFleetHosts, n, st)
	}
	gauge(descFleetItems, items)
	if inv != nil {
		withInventory(&fl, *inv)
	}
	cams := map[string]float64{catalog.CameraDocked: 0, catalog.CameraNotDocked: 0, catalog.CameraNeverDocked: 0}
	for _, cam := range fl.Cameras {
		cams[cam.State]++
		if cam.State == catalog.CameraNeverDocked {
			gauge(descFleetCameraNever, max(0, now.Sub(cam.ListedSince).Seconds()), cam.Serial)
			continue
		}
		gauge(descFleetCameraDock, max(0, now.Sub(cam.LastDockedAt).Seconds()), cam.Serial, cam.Host)
	}
	for st, n := range cams {
		gauge(descFleetCameras, n, strings.ReplaceAll(st, " ", "_"))
	}
}
