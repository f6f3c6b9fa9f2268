// Package service wires one host's evidenced together: the custody ledger, the
// vault, the object store, the ingester and the uploader, opened from one
// config. The daemon (Run) and every CLI command use the same Service, so a
// command does exactly the same thing whether it runs inside the daemon (over
// the control socket) or in its own process when no daemon is up.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/catalog"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/iobuf"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tsa"
	"github.com/evidenced/evidenced/internal/upload"
	"github.com/evidenced/evidenced/internal/usbdock"
	"github.com/evidenced/evidenced/internal/vault"
	"github.com/evidenced/evidenced/internal/watch"
	"github.com/evidenced/evidenced/internal/wipe"
	"github.com/evidenced/evidenced/internal/witness"
)

// Version is stamped into HOST_STARTED events; set at build time with
// -ldflags "-X github.com/evidenced/evidenced/internal/service.Version=...".
var Version = "dev"

// Service is one host's open evidenced state.
//
// Its parts are unexported: whoever drives evidenced (the CLI, the control
// socket, a console) goes through the operations below, so every caller
// records the same custody and applies the same checks.
type Service struct {
	config   *config.Config
	ledger   *custody.Ledger
	vault    *vault.Vault
	store    objstore.Store // nil: no object store configured (vault only)
	ingester *ingest.Ingester
	uploader *upload.Uploader // nil when store is nil
	wiper    *wipe.Wiper      // wipe rule after VERIFIED, vault release, dock admission
	// key is the host key that signs every custody record (hostKey);
	// a rotation swaps it while the daemon runs.
	key atomic.Pointer[signing.Key]
	// keyVerifiers are the checkpoint verifiers of every host key the
	// ledger vouches for (anchor.Options.Verifiers); rotateMu orders
	// rotations (keyrotate.go).
	keyVerifiers atomic.Pointer[[]note.Verifier]
	rotateMu     sync.Mutex
	// inventory follows the console's inventory on a dock host that takes
	// one (nil: none, or its key did not load at Open; Run then tries
	// again and fails on it).
	inventory *inventoryFollower
	// invEdit serialises the console's inventory edits made through this
	// process (the daemon's control socket), so two of them never race
	// between publishNext's check and its write.
	invEdit sync.Mutex
	// cursorKey keys the MAC of find's page cursors (cursor.go,
	// findCursorKey); a rotation derives it again from the new key.
	cursorKey atomic.Pointer[[]byte]
	// anchors writes signed checkpoints to the object store (nil: vault
	// only); anchorStore is where they are, for verify and export.
	anchors     *anchor.Runner
	anchorStore anchor.Store
	bays        *Bays
	log         *slog.Logger
	// catalog is the fleet index at a console (nil on a dock host);
	// catalogLive is true while Run keeps it up to date.
	catalog     *catalog.Catalog
	catalogLive atomic.Bool
	// lastSync is the UnixNano of the daemon's last catalog pass that
	// read the store without error (0: none yet).
	lastSync atomic.Int64
	// lastSyncTook is how long the daemon's last catalog pass took, in
	// nanoseconds (0: none yet).
	lastSyncTook atomic.Int64
	// synced is closed after the daemon's first catalog pass (the scrub
	// waits for it).
	synced chan struct{}
	// invVersions and fleetInv are the console's published inventory as
	// the fleet reads it (fleetcameras.go).
	invVersions inventoryVersions
	fleetInv    atomic.Pointer[fleetInventory]
	firstSync   sync.Once
	level       *slog.LevelVar // set by Reload (log_level); nil: fixed

	// invReads is how a dock host's reads of its console's inventory
	// went, for the metrics (inventory.go).
	invReads inventoryReads

	// facts is the sidecar facts index and parser its parse step (nil on
	// a dock host for a command that must create nothing on a host that
	// never parsed). At a console they are built from the store's objects
	// of the items the catalog serves.
	facts  *facts.Index
	parser *facts.Step
	// witness holds a copy of every signed head outside state_dir (nil:
	// none configured and no journald).
	witness witness.Witness
}

// Options tune Open.
type Options struct {
	// LockTimeout is how long to wait for the ledger's file lock. The daemon
	// waits longer than a CLI command, which holds it only briefly.
	LockTimeout time.Duration
	// Actor names who drives automatic steps (uploads) in this process.
	Actor string
	// MustExist opens only what is there: no state dir, host key or ledger
	// is created, and a missing ledger is custody.ErrNoLedger ("no ledger
	// at PATH"). Every command but run and ingest sets it: reading a
	// deleted ledger must not mint a new host identity and report it
	// intact.
	MustExist bool
	// LogLevel, when set, is the level of log's handler: Reload sets it
	// from log_level.
	LogLevel *slog.LevelVar
}

// Open opens everything cfg describes. The caller must Close it.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, o Options) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = 5 * time.Second
	}
	// Before any component holds cfg: Reload then only swaps a pointer.
	cfg.EnableReload()
	var key *signing.Key
	var created bool
	var err error
	if o.MustExist {
		// The ledger first: "no ledger" is the finding, a missing key
		// beside it only its consequence.
		if _, err := os.Lstat(cfg.LedgerPath()); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no ledger at %s: %w", cfg.LedgerPath(), custody.ErrNoLedger)
		}
		key, err = signing.Load(cfg.KeyPath(), cfg.HostID)
	} else {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("create state dir %s: %w", cfg.StateDir, err)
		}
		// Every record is signed with the host key; the first start creates
		// it (0600) and the ledger records it in a signed HOST_KEY event.
		key, created, err = signing.LoadOrCreate(cfg.KeyPath(), cfg.HostID)
	}
	if err != nil {
		return nil, fmt.Errorf("host signing key: %w", err)
	}
	if created {
		log.Info("created host signing key", "path", cfg.KeyPath(), "key_id", key.KeyID())
	}
	w := openWitness(cfg)
	openLedger := func(key *signing.Key) (*custody.Ledger, error) {
		l, err := custody.Open(cfg.LedgerPath(), custody.Options{Host: cfg.HostID, Timeout: o.LockTimeout, Logger: log, Signer: key, MustExist: o.MustExist,
			Witness: witnessFunc(w, cfg.HostID)})
		if err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		return l, nil
	}
	l, err := openLedger(key)
	if err != nil {
		return nil, err
	}
	// Under the ledger's lock, before anything signs: a rotation a crash
	// cut short is finished or undone (keyrotate.go).
	if key, l, err = finishRotation(ctx, cfg, log, key, l, openLedger); err != nil {
		if l != nil {
			l.Close()
		}
		return nil, err
	}
	v, err := vault.Open(cfg.VaultDir(), log, vaultOptions(cfg))
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("open vault: %w", err)
	}
	s := &Service{config: cfg, ledger: l, vault: v, log: log, bays: NewBays(), level: o.LogLevel, witness: w}
	if err := s.setKey(key); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.loadKeyVerifiers(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.ingester = ingest.New(cfg, l, v, log)
	if cfg.ObjectStore != nil {
		st, err := s3store.New(ctx, storeConfig(cfg), log)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("object store: %w", err)
		}
		s.store = st
		actor := o.Actor
		if actor == "" {
			actor = "evidenced@" + cfg.HostID
		}
		ao := anchor.Options{Logger: log, Verifier: key.NoteVerifier(), Verifiers: s.ledgerKeyVerifiers}
		if cfg.Custody.TSAURL != "" {
			c := &tsa.Client{URL: cfg.Custody.TSAURL}
			if cfg.Custody.TSACA != "" {
				if c.Roots, err = tsa.LoadRoots(cfg.Custody.TSACA); err != nil {
					s.Close()
					return nil, fmt.Errorf("custody.tsa_ca: %w", err)
				}
			}
			ao.TSA = c
		}
		s.anchorStore = st
		s.anchors = anchor.NewRunner(l, s.anchorStore, cfg.HostID, cfg.CheckpointInterval(), cfg.CustodyRetention(), ao)
		s.wiper = wipe.New(cfg, l, v, st, wipe.Options{Actor: actor, Log: log})
		// The uploader's VERIFIED appends go through a hook that hands the
		// item to the wipe rule; the uploader itself knows nothing of it.
		s.uploader = upload.New(cfg, wipe.OnVerified(l, s.wiper.Notify), v, st, actor, log)
	}
	if s.wiper == nil {
		s.wiper = wipe.New(cfg, l, v, nil, wipe.Options{Actor: "evidenced@" + cfg.HostID, Log: log})
	}
	// Every dock, from whatever source, is admitted by free space on the
	// ingester's own walk of the camera.
	s.ingester.Admit(s.wiper)
	if cfg.Inventory != nil && s.store != nil {
		// The last accepted inventory is in force from Open, for every
		// process: its retirements keep the wipe rule off (a one-shot
		// `evidenced ingest` wipes in its own goroutine, and a restarted
		// daemon's wipe loop scans VERIFIED items as soon as Run starts,
		// before the store is read) and its assignments name the holder.
		if s.inventory, err = s.newInventoryFollower(); err != nil {
			log.Error("the console's inventory key does not load; cameras: is in force", "err", err)
		}
	}
	if cfg.IsConsole() {
		if err := s.openConsole(); err != nil {
			s.Close()
			return nil, err
		}
	}
	// After the catalog: at a console the facts are parsed from the items
	// it serves.
	if err := s.openFacts(o.MustExist); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the vault and the ledger (the ledger's file lock last, so
// that a second process never sees the ledger free while this one still
// writes to the vault).
func (s *Service) Close() error {
	var errs []error
	if s.facts != nil {
		if err := s.facts.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close facts index: %w", err))
		}
	}
	if s.catalog != nil {
		if err := s.catalog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close catalog: %w", err))
		}
	}
	if s.vault != nil {
		if err := s.vault.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close vault: %w", err))
		}
	}
	if s.ledger != nil {
		if err := s.ledger.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close ledger: %w", err))
		}
	}
	return errors.Join(errs...)
}

// DaemonActor is the actor recorded for what the daemon does on its own.
func (s *Service) DaemonActor() string { return "evidenced@" + s.config.HostID }

// Run is the daemon: it watches the configured folders for docked cameras,
// ingests them, uploads and verifies, until intake is cancelled (first
// SIGTERM). Then it stops taking new docks and lets work in flight finish
// until the shutdown timeout passes or hard is cancelled (second signal).
// serve, when non-nil, runs beside it (the control socket) with the same
// stop and work contexts.
func (s *Service) Run(intake, hard context.Context, serve func(stop, work context.Context) error) error {
	work, cancelWork := context.WithCancel(hard)
	defer cancelWork()
	sv := newSupervisor(s)
	go func() {
		select {
		case <-intake.Done():
			s.log.Info("stopping intake; draining", "timeout", s.config.ShutdownTimeout.Duration)
			sv.stopping(s, s.config.ShutdownTimeout.Duration)
			t := time.NewTimer(s.config.ShutdownTimeout.Duration)
			defer t.Stop()
			select {
			case <-t.C:
				s.log.Warn("drain deadline passed; cancelling work in flight")
			case <-work.Done():
			}
			cancelWork()
		case <-work.Done():
		}
	}()

	if err := s.checkNotBehind(work); err != nil {
		return err
	}
	if s.config.Metrics.Listen != "" {
		stopMetrics, err := s.serveMetrics(newMetrics(s))
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	if _, err := s.ledger.Append(work, custody.Event{
		Type: custody.HostStarted, Actor: s.DaemonActor(),
		Details: map[string]string{"version": Version, "pid": strconv.Itoa(os.Getpid())},
	}, nil); err != nil {
		return fmt.Errorf("record host start: %w", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancelWork()
			}
		}()
	}
	if s.uploader != nil {
		start("uploader", func() error { return s.uploader.Run(intake, work) })
	} else {
		s.log.Warn("no object_store configured: recordings stay in the vault until one is")
	}
	start("wiper", func() error { return s.wiper.Run(intake) })
	if s.parser != nil {
		// Sidecars are parsed beside the copies and uploads, never in
		// their way; a parse cut short by the stop is caught up at the
		// next start.
		start("sidecars", func() error { return s.parser.Run(intake) })
	}
	if s.anchors != nil {
		// Anchors at start, after each dock session and every
		// custody.checkpoint_interval; an anchor that fails is retried at the
		// next one and does not stop the daemon. On the way out, once the
		// other work has drained, one last anchor covers the final records.
		start("anchor", func() error {
			_ = s.anchors.Run(intake)
			return nil
		})
		defer s.finalAnchor(work)
	}
	if s.config.Inventory != nil && s.store != nil {
		// The console's inventory is read once before any dock is taken,
		// then every inventory.poll.
		f := s.inventory
		if f == nil {
			var err error
			if f, err = s.newInventoryFollower(); err != nil {
				return err
			}
		}
		first, cancel := context.WithTimeout(work, 15*time.Second)
		s.pollInventory(first, f)
		cancel()
		start("inventory", func() error { return s.runInventory(intake, f) })
	}
	if len(s.config.Sources.Watch) > 0 {
		w, err := watch.New(s.config.Sources.Watch, s.config.Sources.Settle.Duration, s.log)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		dh := &dockHandler{s: s, work: work}
		// A dock refused for lack of vault space resumes once there is room.
		s.wiper.RetryDocks(func(serial, root string) { dh.Settled(work, watch.Dock{Serial: serial, Path: root}) })
		start("watcher", func() error { return w.Run(intake, dh) })
	}
	if s.config.Sources.USB.Enabled {
		src, err := usbdock.FromConfig(work, s.config, s.log)
		if err != nil {
			return fmt.Errorf("usb: %w", err)
		}
		start("usb", func() error { return src.Run(intake, &usbHandler{s: s, work: work}) })
	}
	if s.catalog != nil {
		start("catalog", func() error { return s.runCatalog(intake) })
		start("fleet inventory", func() error { return s.runFleetInventory(intake) })
		start("scrub", func() error { return s.runScrub(intake) })
	}
	if serve != nil {
		start("control socket", func() error { return serve(intake, work) })
	}
	// Everything is started: tell systemd, then keep telling it the
	// daemon is alive until Run returns (not part of wg: it has no work
	// of its own to drain).
	sv.ready(work, s)
	beat, stopBeat := context.WithCancel(work)
	defer stopBeat()
	go sv.heartbeat(beat, s, s.statusLine)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// ErrBehindAnchor: at start, the ledger is not an extension of the newest
// checkpoint anchored off the host: records were trimmed from its tail, or
// an older copy was put back. The daemon signs nothing on top of it.
var ErrBehindAnchor = errors.New("the custody ledger does not extend the checkpoint anchored off the host (trimmed or restored?); refusing to write")

// ErrBehindWitness: at start, the ledger does not reproduce the newest
// signed head its witness holds (package witness): records were trimmed,
// anchored or not, or an older copy was put back.
var ErrBehindWitness = errors.New("the custody ledger does not reproduce the newest signed head its witness holds (trimmed or restored?); refusing to write")

// checkNotBehind runs before the daemon writes anything. It compares the
// ledger with the newest signed head its witness holds, then anchors once:
// a ledger behind (or forked off) either stops the start, so a trimmed tail
// is not papered over with a new, signed history. A witness or store that
// cannot be read does not stop it (logged: the comparison is made at the
// next verify; the anchor runner retries).
func (s *Service) checkNotBehind(ctx context.Context) error {
	if _, problem, _, err := s.checkWitness(ctx); err != nil {
		s.log.Warn("custody witness could not be read at start; the ledger is compared with it at the next verify", "err", err)
	} else if problem != "" {
		s.log.Error("ALERT: custody ledger behind its witnessed head; not starting", "witness", s.witness.String(), "problem", problem)
		return fmt.Errorf("%w: %s", ErrBehindWitness, problem)
	}
	if s.anchors == nil {
		return nil
	}
	r := s.anchors
	_, err := anchor.Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
	switch {
	case errors.Is(err, anchor.ErrDiverged):
		s.log.Error("ALERT: custody ledger behind or off the anchored checkpoint; not starting", "err", err)
		return fmt.Errorf("%w: %w", ErrBehindAnchor, err)
	case err != nil:
		s.log.Warn("custody anchor at start failed; the ledger is checked against the anchors at the next one", "err", err)
	}
	return nil
}

// anchorBeforeRelease anchors, and waits for, everything the ledger holds
// now, before an access releases data (get, export): the access's own
// record is then off the host, and trimming it from the ledger shows
// (the daemon refuses to start on a ledger behind its anchors, verify
// --remote names the checkpoint). Inside the daemon it goes through the
// anchor loop (one writer of checkpoints). Without an object store there
// is nothing to anchor to and it returns nil.
func (s *Service) anchorBeforeRelease(ctx context.Context, inDaemon bool) error {
	if s.anchors == nil {
		return nil
	}
	if inDaemon {
		return s.anchors.Sync(ctx)
	}
	r := s.anchors
	_, err := anchor.Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
	return err
}

// AnchorNow anchors the ledger's records in the object store: inside the
// daemon by kicking its anchor loop (one writer of checkpoints), otherwise
// directly. It does nothing without an object store.
func (s *Service) AnchorNow(ctx context.Context, inDaemon bool) error {
	if s.anchors == nil {
		return nil
	}
	if inDaemon {
		s.anchors.Kick()
		return nil
	}
	r := s.anchors
	_, err := anchor.Anchor(ctx, r.Ledger, r.Store, r.Host, time.Now().Add(r.RetainFor), r.Options)
	return err
}

// finalAnchor anchors what the daemon recorded since the last checkpoint,
// within the drain deadline (work). A failure is logged: the records stay in
// the signed local ledger and are anchored at the next start.
func (s *Service) finalAnchor(work context.Context) {
	r := s.anchors
	until := time.Now().Add(r.RetainFor)
	if _, err := anchor.Anchor(work, r.Ledger, r.Store, r.Host, until, r.Options); err != nil {
		s.log.Warn("final custody anchor failed; it is retried at the next start", "err", err)
	}
}

// dockHandler turns watched camera folders into dock sessions.
type dockHandler struct {
	s    *Service
	work context.Context

	mu     sync.Mutex
	opened map[string]bool // folders a dock session was opened for (DOCKED on record), until Removed
}

func (h *dockHandler) Settled(_ context.Context, d watch.Dock) {
	// Docks run under the work context, not intake: a dock in progress when
	// SIGTERM arrives finishes (within the drain deadline) instead of leaving
	// a half-copied camera.
	res := h.s.dock(h.work, ingest.Request{Serial: d.Serial, Root: d.Path, Via: "watch"})
	if res.DockSeq != 0 {
		h.mu.Lock()
		if h.opened == nil {
			h.opened = map[string]bool{}
		}
		h.opened[d.Path] = true
		h.mu.Unlock()
	}
}

// Removed records UNDOCKED as the USB handler does: for a folder whose
// session was opened, whatever the inventory says by now, and for any
// camera the inventory lists.
func (h *dockHandler) Removed(d watch.Dock) {
	h.mu.Lock()
	opened := h.opened[d.Path]
	delete(h.opened, d.Path)
	h.mu.Unlock()
	h.s.undocked(h.work, d.Serial, map[string]string{"source": d.Path, "via": "watch"}, opened)
}

// dock runs one dock session's copy pass for a camera whose media is
// readable at req.Root, whatever the source (req.Session set when the source
// opened the session at arrival), and returns what Dock returned (DockSeq
// set when a session is on record).
func (s *Service) dock(ctx context.Context, req ingest.Request) ingest.Result {
	serial := req.Serial
	req.Actor = s.DaemonActor()
	log := s.log.With("camera", serial, "via", req.Via)
	if bay := req.Identity["bay"]; bay != "" {
		log = log.With("bay", bay)
	}
	if req.Via == "watch" {
		// The watched folder is the camera's bay on the dock page.
		s.bays.Watched(serial, filepath.Dir(req.Root))
	}
	res, err := s.ingester.Dock(ctx, req, s.bays)
	switch {
	case errors.Is(err, ingest.ErrNotAdmitted):
		s.bays.Problem(serial, err.Error())
		log.Error("dock refused", "err", err)
		return res
	case errors.Is(err, ingest.ErrUnknownDevice):
		s.bays.Unknown(serial, req.Identity["bay"])
		log.Error("unknown camera docked; not ingested")
	case err != nil:
		s.bays.Problem(serial, err.Error())
		log.Error("dock incomplete", "err", err)
	default:
		log.Info("dock complete", "vaulted", res.Vaulted, "already_held", res.AlreadyHeld,
			"bytes", res.Bytes, "safe_to_undock", res.SafeToUndock)
		s.retiredBay(serial, res)
	}
	if res.Vaulted > 0 && s.uploader != nil {
		s.uploader.Wake()
	}
	if s.parser != nil && len(res.Items) > 0 {
		s.parser.Queue(res.Items)
	}
	if s.anchors != nil {
		s.anchors.Kick() // a dock session ended: anchor its records
	}
	return res
}

// undocked records UNDOCKED for a camera that left its bay: clean when the
// bay said "safe to undock", and its last state either way. opened says
// its dock session is on record (DOCKED): that session is closed whatever
// the inventory says now, since a camera the inventory dropped after its
// arrival was still copied. Without one, only a camera in the inventory
// is recorded: an unknown device has its UNKNOWN_DEVICE and nothing else.
func (s *Service) undocked(ctx context.Context, serial string, details map[string]string, opened bool) {
	st := s.bays.Remove(serial)
	if _, ok := s.config.Camera(serial); !ok && !opened {
		return
	}
	clean := st.State == BaySafe
	d := map[string]string{"clean": strconv.FormatBool(clean), "last_state": string(st.State)}
	for k, v := range details {
		d[k] = v
	}
	if _, err := s.ledger.Append(ctx, custody.Event{
		Type: custody.Undocked, Actor: s.DaemonActor(), Camera: serial, Details: d,
	}, nil); err != nil {
		s.log.Error("record undock", "camera", serial, "err", err)
	}
	s.log.Info("camera undocked", "camera", serial, "clean", clean)
}

// retiredBay shows a camera its dock session found retired as a problem
// once its copy is done: its footage is vaulted (and never wiped), but the
// camera is out of service and belongs with the evidence custodian, not
// back on an officer. RETIRED_DOCKED is already on record: the bay follows
// the session's decision (res.Retired), not the inventory in force now.
func (s *Service) retiredBay(serial string, res ingest.Result) {
	if res.Retired.IsZero() {
		return
	}
	s.bays.Problem(serial, fmt.Sprintf("retired camera (since %s): footage vaulted, not wiped; hand it to the evidence custodian",
		res.Retired.Format(time.RFC3339)))
}

// BayState is what an officer glancing at the dock needs to know.
type BayState string

// Bay states.
const (
	BayDocked  BayState = "docked, waiting to copy"
	BayCopying BayState = "copying"
	BaySafe    BayState = "safe to undock"
	BayProblem BayState = "problem"
	// BayUnknown: a camera that is not in the inventory; it is never
	// read, so there is no progress to show.
	BayUnknown BayState = "not in the inventory"
)

// Bay is one docked camera's status.
type Bay struct {
	Camera string   `json:"camera"`
	Bay    string   `json:"bay,omitempty"` // USB bus-port path; "" for a watched folder
	State  BayState `json:"state"`
	Files  int      `json:"files"`
	Bytes  int64    `json:"bytes"`
	Done   int64    `json:"done_bytes"`
	// FilesDone counts the files copied (or already held) so far in this
	// pass.
	FilesDone int       `json:"files_done"`
	Current   string    `json:"current,omitempty"`
	Problem   string    `json:"problem,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// Folder is the watched folder a camera docked in ("" for USB).
	Folder string `json:"folder,omitempty"`
	// StartedAt is when this pass's copy started; heldBytes of its Bytes
	// were already in the vault then (the ETA measures the rest).
	StartedAt time.Time `json:"started_at,omitzero"`
	heldBytes int64
	// doneFiles is the bytes of the files done before Current, whose size
	// is curSize.
	doneFiles, curSize int64
	// conflict is a refusal that concerns this serial (another device
	// presenting it): it stays the bay's problem until the camera leaves,
	// whatever its own copy does.
	conflict string
}

// HasProgress reports whether the bay's copy has a size to measure against:
// one on record but not listed yet, or a camera never read (not in the
// inventory, refused before its copy), has none.
func (b Bay) HasProgress() bool {
	switch b.State {
	case BayCopying, BaySafe:
		return true
	case BayProblem:
		return b.Bytes > 0
	}
	return false
}

// Percent is the share of bytes copied or already held.
func (b Bay) Percent() float64 {
	if b.Bytes == 0 {
		return 100
	}
	return 100 * float64(b.Done) / float64(b.Bytes)
}

// Bays tracks docked cameras for `evidenced status` and the dock page; it
// is the ingest Progress of the daemon. Every change is announced to the
// subscribers (Subscribe) without ever waiting for them: ingest never
// blocks on a screen.
type Bays struct {
	mu   sync.Mutex
	bays map[string]*Bay
	subs map[chan struct{}]struct{}
}

// NewBays returns an empty tracker.
func NewBays() *Bays { return &Bays{bays: map[string]*Bay{}, subs: map[chan struct{}]struct{}{}} }

var _ ingest.Progress = (*Bays)(nil)

func (b *Bays) get(serial string) *Bay {
	x, ok := b.bays[serial]
	if !ok {
		x = &Bay{Camera: serial}
		b.bays[serial] = x
	}
	x.UpdatedAt = time.Now().UTC()
	return x
}

// Arrived shows a camera whose dock is on record but whose copy has not
// started (its volume is not readable yet, or its hub is busy), and where it
// sits (the USB bay, "" for a folder), so an officer at a multi-bay dock
// knows which camera the line is about.
func (b *Bays) Arrived(serial, bay string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.State, x.Problem, x.Bay = BayDocked, "", bay
	x.keepConflict()
}

// keepConflict puts a standing conflict back over whatever state a step set.
func (x *Bay) keepConflict() {
	if x.conflict != "" {
		x.State, x.Problem = BayProblem, x.conflict
	}
}

// conflictKey is the entry of a device refused on bay for presenting
// serial: its own line, so both bays show.
func conflictKey(serial, bay string) string { return serial + "\x00" + bay }

// Conflict shows a device refused on bay for presenting serial
// (usbdock.ErrDuplicateSerial, ErrWrongModel) as a problem on its own
// line, and on the line of the camera already docked with that serial, if
// any, until each leaves.
func (b *Bays) Conflict(serial, bay, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	if x, ok := b.bays[serial]; ok {
		x.conflict = why
		x.keepConflict()
	}
	y := b.get(conflictKey(serial, bay))
	y.Camera, y.Bay, y.conflict = serial, bay, why
	y.keepConflict()
}

// Cleared forgets the refused device's line once it left bay.
func (b *Bays) Cleared(serial, bay string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	delete(b.bays, conflictKey(serial, bay))
}

// Start implements ingest.Progress.
func (b *Bays) Start(serial string, files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.State, x.Files, x.Bytes, x.Done, x.doneFiles, x.Problem = BayCopying, files, bytes, 0, 0, ""
	x.FilesDone, x.heldBytes, x.curSize, x.Current, x.StartedAt = 0, 0, 0, "", x.UpdatedAt
	x.keepConflict()
}

// File implements ingest.Progress.
func (b *Bays) File(serial, rel string, done, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	if x.Current != rel {
		if x.Current != "" {
			// The file before this one is done, whole: its last bytes
			// may have gone unreported (progress is throttled).
			x.FilesDone++
			x.doneFiles += x.curSize
		}
		x.curSize = size
	}
	x.Current, x.Done = rel, x.doneFiles+done
}

// Held implements ingest.HeldProgress: of the files Start announced, these
// are in the vault already and are not copied again.
func (b *Bays) Held(serial string, files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.FilesDone, x.Done, x.doneFiles, x.heldBytes = files, bytes, bytes, bytes
}

// Watched places a camera that docked in a watched folder before its copy
// starts: the folder is its bay.
func (b *Bays) Watched(serial, folder string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.State, x.Problem, x.Folder = BayDocked, "", folder
	x.keepConflict()
}

// Done implements ingest.Progress.
func (b *Bays) Done(serial string, r ingest.Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.Current = ""
	if r.SafeToUndock {
		x.State, x.Done, x.FilesDone = BaySafe, x.Bytes, x.Files
	} else {
		x.State = BayProblem
		x.Problem = fmt.Sprintf("%d file(s) not vaulted; leave the camera docked or re-dock it", len(r.Failed))
	}
	x.keepConflict()
}

// Unknown shows a camera that is not in the inventory and is not read.
func (b *Bays) Unknown(serial, bay string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.State, x.Bay, x.Problem = BayUnknown, bay, "not ingested: add it to cameras in the config to take its footage"
}

// Problem marks a bay as needing attention.
func (b *Bays) Problem(serial, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	x.State, x.Problem = BayProblem, why
}

// Remove forgets a bay and returns its last status.
func (b *Bays) Remove(serial string) Bay {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.changed()
	x := b.get(serial)
	delete(b.bays, serial)
	return *x
}

// List returns the bays by camera.
func (b *Bays) List() []Bay {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Bay, 0, len(b.bays))
	for _, x := range b.bays {
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Camera != out[j].Camera {
			return out[i].Camera < out[j].Camera
		}
		return out[i].Bay < out[j].Bay
	})
	return out
}

func vaultOptions(cfg *config.Config) vault.Options {
	// One buffer budget for the daemon: every copy and read-back of every
	// camera draws from it (the daemon opens its vault once).
	return vault.Options{Reserve: int64(cfg.VaultReserve), Buffers: iobuf.New(int64(cfg.Vault.IOBudget))}
}

// Abs makes p absolute against the working directory.
func Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
