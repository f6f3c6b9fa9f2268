// Package ingest takes the recordings off one docked camera into the vault and
// records every step in the custody ledger. It owns the dock session: DOCKED,
// then per file COPIED and VAULTED (or REFUSED / COPY_FAILED), then
// SAFE_TO_UNDOCK once every recording on the camera is vaulted and read back.
//
// Invariants:
//   - The camera is read-only to us and every byte of a file is read from it once
//     per copy: camfs opens it O_RDONLY|O_NOFOLLOW and the same read feeds the
//     vault file and the hash (vault.Store).
//   - An item exists in the ledger (state "vaulted") only after the vault copy was
//     fsynced, renamed, re-read cold and found to hash the same as the stream.
//   - A file that changed while it was copied is never vaulted; it is left on the
//     camera and retried on the next pass.
//   - A file's cold read-back runs while the next file is copied (one read-back
//     in flight at most), but its VAULTED or COPY_FAILED is recorded before the
//     next file's first record: the ledger reads as a pass done one file at a
//     time, and SAFE_TO_UNDOCK follows the last read-back.
//   - Identity is camera serial + source path + size + mtime (custody.ItemID). A re-dock of
//     the same files finds their items and copies nothing again.
//   - A serial that is not in the inventory is never ingested: UNKNOWN_DEVICE.
//   - The camera is walked once per pass: the admission check (free space) and
//     the copy both work from that one listing.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/camfs"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/hostclock"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/vault"
)

// Ledger is what ingest needs of the custody ledger.
//
// Append must be durable when it returns nil (synced transaction) and must write
// the event and the item projection atomically; Item returns custody.ErrNotFound
// for an unknown id.
type Ledger interface {
	Append(ctx context.Context, ev custody.Event, item *custody.Item) (custody.Event, error)
	Item(ctx context.Context, id string) (custody.Item, error)
}

// Vault is what ingest needs of the local vault (see package vault for the
// durability contract of Store and the cold read of ReadBack).
type Vault interface {
	// StoreRecorded copies src into the vault; record runs once the copy
	// is durable and before it is published under items/ (ingest records
	// COPIED there, so no published copy is unknown to the ledger).
	StoreRecorded(ctx context.Context, id string, src io.Reader, size int64, progress func(int64), record func(vault.Stored) error) (vault.Stored, error)
	// ReadBackParts reads the copy back cold and hashes it whole and in
	// parts of partSize bytes (the upload's parts) in the same pass.
	ReadBackParts(ctx context.Context, id string, partSize int64) (digest.Sum, int64, []digest.Sum, error)
	// WritePartSums keeps the part sums beside the copy, durably, before
	// VAULTED names their composite (see vault.WritePartSums).
	WritePartSums(id string, partSize int64, sums []digest.Sum) error
	Path(id string) string
}

var (
	_ Ledger = (*custody.Ledger)(nil)
	_ Vault  = (*vault.Vault)(nil)
)

// Sentinel errors callers map to user-facing outcomes.
var (
	// ErrUnknownDevice: the serial is not in the camera inventory.
	ErrUnknownDevice = errors.New("camera serial not in the inventory")
	// ErrIncomplete: the dock finished but some file was refused, failed or
	// changed during the copy; Result says which.
	ErrIncomplete = errors.New("not every file on the camera was vaulted")
	// ErrTooManyFiles: the camera presents more entries than
	// sources.max_files_per_dock; it was refused whole and nothing of it
	// was ingested (each file would add ledger records that are never
	// deleted).
	ErrTooManyFiles = errors.New("camera presents more files than sources.max_files_per_dock")
	// ErrNotAdmitted: the Admitter refused the dock (its error, which this
	// wraps, says why); nothing was copied.
	ErrNotAdmitted = errors.New("dock not admitted")
	// errChanged: the source changed while it was copied.
	errChanged = errors.New("file changed while it was being copied")
)

// Progress is told what a dock is doing, for a terminal or the bay status.
// Calls come from the goroutine running Dock; implementations must be cheap.
type Progress interface {
	Start(serial string, files int, bytes int64)
	File(serial, rel string, done, size int64)
	Done(serial string, r Result)
}

// HeldProgress is a Progress that is also told, right after Start, how
// many of the files and bytes are in the vault already and will not be
// copied again: a re-docked camera that still holds old footage shows its
// true progress and speed.
type HeldProgress interface {
	Held(serial string, files int, bytes int64)
}

// Ingester runs dock sessions. It is safe for concurrent use by docks of
// different cameras; two docks of the same serial are serialised.
type Ingester struct {
	ledger Ledger
	vault  Vault
	cfg    *config.Config
	log    *slog.Logger
	now    func() time.Time
	clock  func() hostclock.Status

	admit Admitter // nil admits every dock

	mu   sync.Mutex
	busy map[string]*sync.Mutex // per-serial dock lock
}

// Admitter decides whether a dock may start copying, from what the dock's
// own walk of the camera found: need is the bytes of the regular files not
// yet held (by item identity). A non-nil error refuses the dock before any
// copy starts; the Admitter records the refusal itself and Dock returns its
// error as is. The camera is walked once per pass, by Dock: admission reads
// the same listing the copy then works through.
type Admitter interface {
	AdmitDock(ctx context.Context, serial, root, actor, via string, need uint64) error
}

// Admit sets the admission check every later Dock runs (the wipe rule's
// free-space check in the daemon and the CLI). Call it before the first Dock.
func (in *Ingester) Admit(a Admitter) { in.admit = a }

// New returns an Ingester. log may be nil.
func New(cfg *config.Config, l Ledger, v Vault, log *slog.Logger) *Ingester {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{ledger: l, vault: v, cfg: cfg, log: log, now: time.Now, clock: hostclock.Read, busy: map[string]*sync.Mutex{}}
}

// Request describes one dock.
type Request struct {
	Serial string
	Root   string // camera root: a mounted file system or a watched folder
	Actor  string // who or what initiated it (the daemon's watcher, a custodian's CLI)
	Via    string // "watch", "cli", "usb"
	// Identity is recorded in DOCKED beside the camera's inventory entry:
	// what the source knows of the device (for USB: bay, vendor and product
	// id, profile).
	Identity map[string]string
	// Session, when opened (Arrive's, when the camera appeared), is the
	// session the pass continues instead of opening one: its DOCKED record
	// and the camera and retirement it resolved.
	Session Session
}

// Session is one dock session as Arrive opened it: its DOCKED record, and
// the camera's inventory entry and retirement as the inventory in force at
// that moment resolved them. Everything the session records follows this
// one resolution (DOCKED, RETIRED_DOCKED, each VAULTED's holder and
// never_wipe, Result.Retired): an inventory that changes while the camera
// is docked (a reload, a newly published version, a retirement whose time
// falls between arrival and vaulting) cannot make the session record
// RETIRED_DOCKED and vault items a wipe may clear, or the reverse. The
// zero Session is none: Dock opens its own.
type Session struct {
	seq     uint64
	cam     config.Camera
	retired time.Time // the camera's retirement when it was in force at arrival; zero: not retired
}

// Seq is the session's DOCKED record (0: no session).
func (s Session) Seq() uint64 { return s.seq }

// Retired is when the camera was retired, if the inventory in force at
// arrival had retired it by then (zero otherwise).
func (s Session) Retired() time.Time { return s.retired }

// FileError names a file that was not vaulted and why.
type FileError struct {
	Rel    string `json:"source_path"`
	Reason string `json:"reason"`
}

// Result summarises a dock.
type Result struct {
	Camera      string   `json:"camera"`
	DockSeq     uint64   `json:"dock_seq"`
	Files       int      `json:"files"`        // regular files found
	Vaulted     int      `json:"vaulted"`      // newly vaulted in this dock
	AlreadyHeld int      `json:"already_held"` // found already vaulted (re-dock)
	Bytes       int64    `json:"bytes"`        // bytes copied in this dock
	Items       []string `json:"items"`        // ids of every recording on the camera that is vaulted
	// Retired is when the camera was retired, when the session found it
	// retired at arrival (zero otherwise): its footage is vaulted and
	// never wiped, and the camera belongs with the evidence custodian.
	Retired      time.Time   `json:"retired,omitzero"`
	Refused      []FileError `json:"refused"`        // non-regular entries, never followed
	Failed       []FileError `json:"failed"`         // copy failures; left on the camera
	SafeToUndock bool        `json:"safe_to_undock"` // every regular file is vaulted and read back
}

func (in *Ingester) serialLock(serial string) *sync.Mutex {
	in.mu.Lock()
	defer in.mu.Unlock()
	m, ok := in.busy[serial]
	if !ok {
		m = &sync.Mutex{}
		in.busy[serial] = m
	}
	return m
}

// Arrive opens a dock session: it records DOCKED (the camera's inventory
// entry, req.Identity, how far the host clock can be trusted) and returns
// the session for Request.Session. A USB source calls it the moment the
// camera appears, so the arrival is on record within a poll, however long
// the mount or a busy hub keeps the copy waiting; Dock opens the session
// itself when Request.Session is the zero Session.
//
// The camera is looked up here once, and whether it is retired decided
// here once (RETIRED_DOCKED): the returned Session carries both to the
// pass, which never looks them up again.
//
// A serial not in the inventory is recorded as UNKNOWN_DEVICE and returns
// ErrUnknownDevice: nothing of that camera is read.
func (in *Ingester) Arrive(ctx context.Context, req Request) (Session, error) {
	cam, ok := in.cfg.Camera(req.Serial)
	return in.open(ctx, req, cam, ok)
}

// open records the arrival of cam (known: found in the inventory) and
// decides, at that moment and only then, whether it is retired.
func (in *Ingester) open(ctx context.Context, req Request, cam config.Camera, known bool) (Session, error) {
	if !known {
		details := map[string]string{"source": req.Root, "via": req.Via}
		for k, v := range req.Identity {
			details[k] = v
		}
		if _, err := in.ledger.Append(ctx, custody.Event{
			Type: custody.UnknownDevice, Actor: req.Actor, Camera: displaySerial(req.Serial), Details: details,
		}, nil); err != nil {
			return Session{}, fmt.Errorf("record unknown device %q: %w", req.Serial, err)
		}
		return Session{}, fmt.Errorf("dock %q at %s: %w", req.Serial, req.Root, ErrUnknownDevice)
	}
	// The dock records how far the host's clock can be trusted at that
	// moment; every later time in this session leans on it.
	details := in.clock().Details()
	for k, v := range req.Identity {
		details[k] = v
	}
	// Pooled cameras change hands: the dock names whoever holds the
	// camera now, by the published inventory's history, and which entry
	// of which version said so.
	now := in.now().UTC()
	holder, which := cam.AssignedAt(now)
	if which != "" {
		details["assignment"] = which
		details["inventory_version"] = strconv.FormatUint(cam.InventoryVersion, 10)
	}
	for k, v := range map[string]string{
		"source": req.Root, "via": req.Via, "kind": cam.Kind, "assigned_to": holder,
		// A folder or mass-storage camera exposes no clock of its own to
		// compare; USB profiles that do will add camera_clock_offset.
		"camera_clock": "not exposed",
	} {
		details[k] = v
	}
	docked, err := in.ledger.Append(ctx, custody.Event{
		Type: custody.Docked, Actor: req.Actor, Camera: cam.Serial, Details: details,
	}, nil)
	if err != nil {
		return Session{}, fmt.Errorf("record dock of %s: %w", cam.Serial, err)
	}
	in.log.Info("docked", "camera", cam.Serial, "via", req.Via, "seq", docked.Seq)
	sess := Session{seq: docked.Seq, cam: cam}
	if cam.RetiredAt(now) {
		// Footage on a retired camera is evidence nobody expected: it is
		// ingested as any other, never wiped (config.WipePolicy, and each
		// VAULTED of this session says so), and the dock is an alert
		// naming the camera and its retirement.
		sess.retired = cam.Published.Retired.UTC()
		retired := sess.retired.Format(time.RFC3339)
		if _, err := in.ledger.Append(ctx, custody.Event{
			Type: custody.RetiredDocked, Actor: req.Actor, Camera: cam.Serial,
			Details: map[string]string{
				"retired": retired, "inventory_version": strconv.FormatUint(cam.InventoryVersion, 10),
				"dock_seq": strconv.FormatUint(docked.Seq, 10), "wipe": "never: the camera is retired",
			},
		}, nil); err != nil {
			return Session{}, fmt.Errorf("record the dock of retired camera %s: %w", cam.Serial, err)
		}
		in.log.Error("ALERT: a retired camera docked; its footage is ingested and never wiped", "camera", cam.Serial, "retired", retired)
	}
	return sess, nil
}

// refuseWhole records one REFUSED record for a camera over
// sources.max_files_per_dock, naming it and its counts, and ingests nothing.
func (in *Ingester) refuseWhole(ctx context.Context, req Request, sess Session, res Result, files, others, capped int, walkErr error) (Result, error) {
	cam := sess.cam
	reason := fmt.Sprintf("camera %s presents %d files and %d other entries, more than sources.max_files_per_dock (%d): REFUSED, nothing ingested",
		cam.Serial, files, others, capped)
	if walkErr != nil {
		reason += " (the walk also failed: " + walkErr.Error() + ")"
	}
	res.Files = files
	res.Refused = []FileError{{Rel: ".", Reason: reason}}
	if _, err := in.ledger.Append(ctx, custody.Event{
		Type: custody.Refused, Actor: req.Actor, Camera: cam.Serial,
		Details: map[string]string{
			"source_path": ".", "reason": reason, "dock_seq": strconv.FormatUint(sess.seq, 10),
			"files": strconv.Itoa(files), "other_entries": strconv.Itoa(others), "max_files_per_dock": strconv.Itoa(capped),
		},
	}, nil); err != nil {
		return res, fmt.Errorf("record refusal of %s: %w", cam.Serial, err)
	}
	in.log.Warn("camera refused: too many files", "camera", cam.Serial, "files", files, "other_entries", others, "max", capped)
	return res, fmt.Errorf("dock %s: %w (%w): %s", cam.Serial, ErrTooManyFiles, ErrIncomplete, reason)
}

// Dock ingests every regular file under req.Root for camera req.Serial.
// It walks the camera once; the Admitter (if set) sees what that walk
// found before the session is opened (DOCKED, unless req.Session is the
// one its source opened at arrival) and anything is copied. The camera and
// its retirement are resolved once per session: by the Arrive that opened
// req.Session, else by one lookup here, which the session's DOCKED then
// records.
//
// It returns ErrUnknownDevice for a serial not in the inventory (recorded as
// UNKNOWN_DEVICE), ErrNotAdmitted (wrapping the Admitter's error) when the
// dock was refused, ErrIncomplete (wrapped) when anything was refused or not
// copied, ErrTooManyFiles (wrapped, with ErrIncomplete) when the camera
// presents more entries than sources.max_files_per_dock (one REFUSED record
// with the counts; nothing ingested), and other errors when the ledger or the
// vault itself fails. The Result is meaningful whenever DockSeq != 0.
func (in *Ingester) Dock(ctx context.Context, req Request, p Progress) (Result, error) {
	sess := req.Session
	res := Result{Camera: req.Serial, DockSeq: sess.seq, Retired: sess.retired}
	if sess.seq == 0 {
		cam, ok := in.cfg.Camera(req.Serial)
		if !ok {
			_, err := in.open(ctx, req, cam, false)
			return res, err
		}
		sess.cam = cam
	} else if sess.cam.Serial != req.Serial {
		return res, fmt.Errorf("dock %q: the session opened at arrival (seq %d) is camera %q's", req.Serial, sess.seq, sess.cam.Serial)
	}
	// openSession opens the session, when the source did not at arrival,
	// with the camera looked up above.
	openSession := func() error {
		if sess.seq == 0 {
			opened, err := in.open(ctx, req, sess.cam, true)
			if err != nil {
				return err
			}
			sess = opened
		}
		res.DockSeq, res.Retired = sess.seq, sess.retired
		return nil
	}
	cam := sess.cam
	lock := in.serialLock(cam.Serial)
	lock.Lock()
	defer lock.Unlock()

	// The one walk of the camera: admission and the copy both work from it.
	var entries []camfs.Entry
	var total int64
	unexamined := 0
	// Past the cap nothing more is kept, only counted: the camera is
	// refused whole, and a hostile one cannot make the walk hold millions
	// of entries.
	capped := in.cfg.Sources.MaxFilesPerDock
	if capped <= 0 {
		capped = config.DefaultMaxFilesPerDock
	}
	seen, refusedN := 0, 0
	walkErr := camfs.WalkDepth(ctx, req.Root, in.cfg.Sources.MaxDepth, func(e camfs.Entry) error {
		if seen++; seen+refusedN <= capped {
			entries = append(entries, e)
			total += e.Size
		}
		return nil
	}, func(r camfs.Refusal) {
		if refusedN++; seen+refusedN <= capped {
			res.Refused = append(res.Refused, FileError{Rel: camfs.DisplayPath(r.Rel), Reason: r.Reason})
		}
		if r.Err != nil {
			// Not a link or a device refused for what it is: something could
			// not be examined, and recordings may be hiding behind it.
			unexamined++
		}
	})
	if n := seen + refusedN; n > capped {
		// Refused whole, on the record of an opened session: the counts say
		// why nothing of this camera was taken.
		if err := openSession(); err != nil {
			return Result{Camera: req.Serial}, err
		}
		return in.refuseWhole(ctx, req, sess, res, seen, refusedN, capped, walkErr)
	}
	ids := make([]string, len(entries))
	held := make([]bool, len(entries))
	var need uint64
	for i, e := range entries {
		ids[i] = custody.ItemID(cam.Serial, e.Rel, e.Size, e.ModTime)
		if _, err := in.ledger.Item(ctx, ids[i]); err == nil {
			held[i] = true
		} else if !errors.Is(err, custody.ErrNotFound) {
			return res, fmt.Errorf("look up item %s: %w", ids[i], err)
		} else {
			need += uint64(e.Size)
		}
	}
	if in.admit != nil {
		// A dock refused here was never opened (unless its source opened it
		// at arrival): the refusal is its only record, and nothing is copied.
		if err := in.admit.AdmitDock(ctx, cam.Serial, req.Root, req.Actor, req.Via, need); err != nil {
			return Result{Camera: req.Serial, DockSeq: sess.seq, Retired: sess.retired}, notAdmitted{err}
		}
	}
	if err := openSession(); err != nil {
		return Result{Camera: req.Serial}, err
	}
	in.log.Info("dock pass started", "camera", cam.Serial, "via", req.Via, "dock_seq", sess.seq)

	for _, r := range res.Refused {
		if _, err := in.ledger.Append(ctx, custody.Event{
			Type: custody.Refused, Actor: req.Actor, Camera: cam.Serial,
			Details: map[string]string{"source_path": r.Rel, "reason": r.Reason, "dock_seq": strconv.FormatUint(sess.seq, 10)},
		}, nil); err != nil {
			return res, fmt.Errorf("record refusal of %q on %s: %w", r.Rel, cam.Serial, err)
		}
	}
	if walkErr != nil {
		// A walk error (yanked camera, corrupt file system) still leaves what was
		// listed so far worth copying; it is reported as a failure of the dock.
		res.Failed = append(res.Failed, FileError{Rel: ".", Reason: walkErr.Error()})
		in.log.Warn("camera walk failed", "camera", cam.Serial, "err", walkErr)
	}
	res.Files = len(entries)
	if p != nil {
		p.Start(cam.Serial, len(entries), total)
		if hp, ok := p.(HeldProgress); ok {
			var files int
			var bytes int64
			for i, e := range entries {
				if held[i] {
					files++
					bytes += e.Size
				}
			}
			hp.Held(cam.Serial, files, bytes)
		}
	}

	// The cold read-back of one file runs on its own goroutine while the
	// next one is copied: the read-back reads the vault's device and hashes
	// on one core while the copy reads the camera, hashes on the other and
	// writes. At most one read-back is in flight. Its outcome is taken
	// (settle) before the next file's first ledger record (its COPIED, or
	// its COPY_FAILED), so the ledger reads exactly as a pass that does one
	// file at a time: COPIED A, VAULTED A, COPIED B, ... A ledger failure
	// met while settling ends the pass before the next COPIED, and a copy
	// without its COPIED is never published. Results are taken in file
	// order, and the pass never ends (nor records SAFE_TO_UNDOCK) with a
	// read-back in flight.
	var (
		back chan fileResult // the read-back in flight, if any
		stop error           // the ledger failure a settle met: ends the pass
	)
	settle := func() error {
		if back == nil {
			return stop
		}
		r := <-back
		back = nil
		stop = in.tally(&res, cam, r)
		return stop
	}
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			if err := settle(); err != nil {
				return res, err
			}
			res.Failed = append(res.Failed, FileError{Rel: camfs.DisplayPath(e.Rel), Reason: "not copied: " + err.Error()})
			continue
		}
		id := ids[i]
		if held[i] {
			if err := settle(); err != nil {
				return res, err
			}
			res.AlreadyHeld++
			res.Items = append(res.Items, id)
			continue
		}
		c, n, err := in.copyOne(ctx, req, cam, sess.seq, id, e, p, settle)
		res.Bytes += n
		if serr := settle(); serr != nil {
			return res, serr
		}
		if err != nil {
			if err := in.tally(&res, cam, fileResult{id: id, rel: e.Rel, err: err}); err != nil {
				return res, err
			}
			continue
		}
		back = make(chan fileResult, 1)
		go func(ch chan<- fileResult) {
			ch <- fileResult{id: id, rel: e.Rel, err: in.readBackOne(ctx, req, sess, c)}
		}(back)
	}
	if err := settle(); err != nil {
		return res, err
	}

	if len(res.Failed) == 0 && unexamined == 0 {
		// Entries refused for what they are (links, FIFOs, devices) are not
		// recordings we can take; every regular file is vaulted, so the
		// camera may go.
		res.SafeToUndock = true
		if _, err := in.ledger.Append(ctx, custody.Event{
			Type: custody.SafeToUndock, Actor: req.Actor, Camera: cam.Serial,
			Details: map[string]string{
				"dock_seq": strconv.FormatUint(sess.seq, 10), "files": strconv.Itoa(res.Files),
				"vaulted": strconv.Itoa(res.Vaulted), "already_held": strconv.Itoa(res.AlreadyHeld),
				"refused": strconv.Itoa(len(res.Refused)),
			},
		}, nil); err != nil {
			return res, fmt.Errorf("record safe-to-undock of %s: %w", cam.Serial, err)
		}
	}
	if p != nil {
		p.Done(cam.Serial, res)
	}
	in.log.Info("dock pass done", "camera", cam.Serial, "files", res.Files, "vaulted", res.Vaulted,
		"already_held", res.AlreadyHeld, "refused", len(res.Refused), "failed", len(res.Failed), "bytes", res.Bytes)
	if len(res.Failed) > 0 || len(res.Refused) > 0 {
		return res, fmt.Errorf("dock %s: %d refused, %d failed: %w", cam.Serial, len(res.Refused), len(res.Failed), ErrIncomplete)
	}
	return res, nil
}

// notAdmitted is the Admitter's refusal, its message unchanged, marked as
// ErrNotAdmitted.
type notAdmitted struct{ err error }

func (e notAdmitted) Error() string        { return e.err.Error() }
func (e notAdmitted) Unwrap() error        { return e.err }
func (e notAdmitted) Is(target error) bool { return target == ErrNotAdmitted }

// ledgerError marks failures of the ledger itself: the dock cannot go on
// without its record, unlike a single file that failed to copy.
type ledgerError struct{ err error }

func (e ledgerError) Error() string { return e.err.Error() }
func (e ledgerError) Unwrap() error { return e.err }

func isLedgerErr(err error) bool {
	var le ledgerError
	return errors.As(err, &le)
}

// fileResult is how one file's pass ended: err is nil once it is VAULTED.
type fileResult struct {
	id, rel string
	err     error
}

// tally adds one file's outcome to res; a ledger failure ends the pass
// and is returned.
func (in *Ingester) tally(res *Result, cam config.Camera, r fileResult) error {
	if r.err == nil {
		res.Vaulted++
		res.Items = append(res.Items, r.id)
		return nil
	}
	if isLedgerErr(r.err) {
		return r.err
	}
	res.Failed = append(res.Failed, FileError{Rel: camfs.DisplayPath(r.rel), Reason: r.err.Error()})
	in.log.Warn("file not vaulted", "camera", cam.Serial, "item", r.id, "err", r.err)
	return nil
}

// copied is a file copyOne has stored and recorded COPIED, waiting for its
// cold read-back.
type copied struct {
	id, display string
	e           camfs.Entry
	dockSeq     uint64
	stored      vault.Stored
	copied      custody.Event
}

// copyOne copies one file: open read-only, stream into the vault while hashing,
// check the source did not change and record COPIED. readBackOne then reads
// the vault copy back cold and records VAULTED with the item. It returns the
// bytes read.
//
// settle runs before copyOne appends anything to the ledger: it takes the
// outcome of the previous file's read-back, so that file's VAULTED (or
// COPY_FAILED) precedes this one's records; its error (the ledger failed)
// is returned and nothing of this file is recorded or published.
func (in *Ingester) copyOne(ctx context.Context, req Request, cam config.Camera, dockSeq uint64, id string, e camfs.Entry, p Progress, settle func() error) (copied, int64, error) {
	display := camfs.DisplayPath(e.Rel)
	f, err := camfs.Open(req.Root, e.Rel)
	if err != nil {
		return copied{}, 0, fmt.Errorf("open on camera: %w", err)
	}
	defer f.Close()
	if f.Size() != e.Size || !f.ModTime().Equal(e.ModTime) {
		return copied{}, 0, fmt.Errorf("%w (between listing and opening)", errChanged)
	}
	src := &guardedReader{f: f}
	var progress func(int64)
	if p != nil {
		progress = func(n int64) { p.File(cam.Serial, display, n, e.Size) }
	}
	// COPIED is recorded when the copy is durable and before it appears
	// under items/: a file there is always on record.
	var rec custody.Event
	stored, err := in.vault.StoreRecorded(ctx, id, src, e.Size, progress, func(st vault.Stored) error {
		if err := settle(); err != nil {
			return err
		}
		ev, err := in.ledger.Append(ctx, custody.Event{
			Type: custody.Copied, Actor: req.Actor, Camera: cam.Serial, Item: id, SHA256: st.SHA256.Hex(),
			Details: map[string]string{
				"source_path": display, "size": strconv.FormatInt(st.Size, 10),
				"recorded_at": e.ModTime.UTC().Format(time.RFC3339Nano), "dock_seq": strconv.FormatUint(dockSeq, 10),
			},
		}, nil)
		if err != nil {
			return ledgerError{fmt.Errorf("record copy of %s: %w", id, err)}
		}
		rec = ev
		return nil
	})
	if isLedgerErr(err) {
		return copied{}, src.n, err
	}
	if errors.Is(err, vault.ErrShortCopy) || errors.Is(err, vault.ErrLongCopy) {
		// The file's size moved under us: it is still being written, or the
		// device lies about it. Either way it stays on the camera.
		err = fmt.Errorf("%w: %w", errChanged, err)
	}
	if err != nil {
		if serr := settle(); serr != nil {
			return copied{}, src.n, serr
		}
		in.recordCopyFailed(ctx, req, cam, id, display, err)
		return copied{}, src.n, fmt.Errorf("copy to vault: %w", err)
	}
	return copied{id: id, display: display, e: e, dockSeq: dockSeq, stored: stored, copied: rec}, src.n, nil
}

// readBackOne reads the vault copy c back cold and records VAULTED with the
// item if it reads back as it was streamed; otherwise it records the copy
// as failed and removes it.
func (in *Ingester) readBackOne(ctx context.Context, req Request, sess Session, c copied) error {
	cam := sess.cam
	id, display, e, dockSeq, stored := c.id, c.display, c.e, c.dockSeq, c.stored
	// The upload's part sums come from this same cold read: one more
	// SHA-256 per byte here, on the core the read-back's I/O leaves idle,
	// instead of two per byte on the upload (docs/BENCHMARKS.md).
	var ps int64 // 0: no part sums (upload.part_sums_at_ingest off)
	if in.cfg.Upload.PartSumsAtIngest {
		ps = objstore.PartSize(stored.Size)
	}
	cold, n, partSums, err := in.vault.ReadBackParts(ctx, id, ps)
	if err == nil && (cold != stored.SHA256 || n != stored.Size) {
		err = fmt.Errorf("vault copy reads back as %s (%d bytes), streamed %s (%d bytes)", cold.Hex(), n, stored.SHA256.Hex(), stored.Size)
	} else if err != nil {
		err = fmt.Errorf("read back vault copy: %w", err)
	}
	if err != nil {
		// A copy that did not read back as streamed, or could not be read
		// back at all, is not a copy: it is recorded as failed and removed,
		// so that nothing later mistakes it for a good one. The camera
		// still holds the recording and the next pass copies it again.
		in.recordCopyFailed(ctx, req, cam, id, display, err)
		in.discard(id)
		return err
	}
	now := in.now().UTC()
	class := in.cfg.Retention.DefaultClass
	// The recording belongs to whoever held the camera when it recorded:
	// its file time (RecordedAt, the camera's clock) picks the assignment
	// from the published inventory's history. A file time after now is a
	// clock running ahead (the recording was made by now): it is resolved
	// at now, so a hand-over the console dated in the future never claims
	// a recording made before it.
	at := e.ModTime.UTC()
	if at.After(now) {
		at = now
	}
	holder, which := cam.AssignedAt(at)
	item := &custody.Item{
		ID: id, Camera: cam.Serial, Kind: cam.Kind, AssignedTo: holder,
		SourcePath: display, Size: stored.Size, SHA256: stored.SHA256.Hex(),
		RecordedAt: e.ModTime.UTC(), IngestedAt: now, State: custody.StateVaulted,
		VaultPath: in.vault.Path(id), RetentionClass: class, Host: in.cfg.HostID, DockSeq: dockSeq,
	}
	details := map[string]string{
		"read_back": "cold", "copied_seq": strconv.FormatUint(c.copied.Seq, 10), "vault_path": item.VaultPath,
	}
	if which != "" {
		details["assignment"] = which
		details["inventory_version"] = strconv.FormatUint(cam.InventoryVersion, 10)
	}
	if !sess.retired.IsZero() {
		// RETIRED_DOCKED's promise rides with the item: the wipe keeps it
		// whatever inventory is in force later (package wipe, NeverWipe).
		// It is the session's decision, taken once at arrival, not the
		// inventory in force now: the two records always agree.
		details[custody.NeverWipe] = "the camera was retired (since " + sess.retired.Format(time.RFC3339) + ") when it docked"
	}
	// The part sums are kept before the record that vouches for them; a
	// crash in between leaves a file no record names, which the upload
	// ignores. Failing to keep them costs only speed: the upload hashes.
	if ps == 0 {
		// Not asked for: VAULTED names no part sums.
	} else if err := in.vault.WritePartSums(id, ps, partSums); err != nil {
		in.log.Warn("part sums not kept; the upload will hash the vault copy", "item", id, "err", err)
	} else {
		maps.Copy(details, vault.PartSumsDetails(ps, partSums))
	}
	if _, err := in.ledger.Append(ctx, custody.Event{
		Type: custody.Vaulted, Actor: req.Actor, Camera: cam.Serial, Item: id, SHA256: cold.Hex(),
		Details: details,
	}, item); err != nil {
		return ledgerError{fmt.Errorf("record vaulting of %s: %w", id, err)}
	}
	return nil
}

func (in *Ingester) recordCopyFailed(ctx context.Context, req Request, cam config.Camera, id, display string, cause error) {
	// A yank or shutdown cancels ctx; the failure it caused must still be
	// recorded, or the custody would show a copy that began and never ended.
	ctx = context.WithoutCancel(ctx)
	if _, err := in.ledger.Append(ctx, custody.Event{
		Type: custody.CopyFailed, Actor: req.Actor, Camera: cam.Serial, Item: id,
		Details: map[string]string{"source_path": display, "reason": cause.Error()},
	}, nil); err != nil {
		in.log.Error("record copy failure", "camera", cam.Serial, "item", id, "err", err)
	}
}

// discard removes the vault copy of id, which is not (or no longer) known
// to hold what was streamed.
func (in *Ingester) discard(id string) {
	if err := os.Remove(in.vault.Path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		in.log.Error("remove vault copy that failed its read-back", "item", id, "path", in.vault.Path(id), "err", err)
	}
}

// guardedReader passes the camera file through and, at end of file, checks
// that the file did not change while it was read: a recording still being
// written (or a device that lies) turns the clean EOF into an error, so the
// vault discards the copy instead of keeping a mix of old and new bytes.
type guardedReader struct {
	f *camfs.File
	n int64
}

func (g *guardedReader) Read(b []byte) (int, error) {
	n, err := g.f.Read(b)
	g.n += int64(n)
	if errors.Is(err, io.EOF) {
		same, serr := g.f.Unchanged()
		if serr != nil {
			return n, fmt.Errorf("re-check source: %w", serr)
		}
		if !same {
			return n, errChanged
		}
	}
	return n, err
}

// displaySerial keeps an arbitrary folder or device name printable in the
// ledger (which refuses invalid UTF-8).
func displaySerial(s string) string { return camfs.DisplayPath(s) }
