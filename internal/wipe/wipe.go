package wipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/camfs"
	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/vault"
)

// Ledger is what the wipe rule needs of the custody ledger. Append must be
// durable when it returns nil: the wipe relies on every step being on disk
// before the next one starts.
type Ledger interface {
	Append(ctx context.Context, ev custody.Event, item *custody.Item) (custody.Event, error)
	Item(ctx context.Context, id string) (custody.Item, error)
	Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error
	Custody(ctx context.Context, id string) ([]custody.Event, error)
}

// Vault is what the wipe rule and the buffer policy need of the vault.
type Vault interface {
	ReadBack(ctx context.Context, id string) (digest.Sum, int64, error)
	Open(id string) (*os.File, error)
	Path(id string) string
	Exists(id string) (bool, error)
	Free() (uint64, error)
}

var (
	_ Ledger = (*custody.Ledger)(nil)
	_ Vault  = (*vault.Vault)(nil)
)

// Checks, as WIPE_CHECKED details name them.
const (
	CheckStreamVault = "stream_vault"
	CheckStore       = "store"
	CheckLock        = "lock"
	CheckSource      = "source"
)

// Step names a point in an attempt; Options.BeforeStep sees them.
type Step string

// Steps in order. StepSource is skipped unless verify_source_before_wipe.
const (
	StepStart       Step = "start"
	StepStreamVault Step = CheckStreamVault
	StepStore       Step = CheckStore
	StepLock        Step = CheckLock
	StepSource      Step = CheckSource
	StepIntent      Step = "intent"
	StepUnlink      Step = "unlink"
	// StepRecord comes after the unlink, before WIPED is recorded.
	StepRecord Step = "record"
)

// Steps lists every step of an attempt with verify_source_before_wipe, in
// order.
var Steps = []Step{StepStart, StepStreamVault, StepStore, StepLock, StepSource, StepIntent, StepUnlink, StepRecord}

// maxAttempts bounds how often a wipe is retried after WIPE_REFUSED with
// retry=true, so an entry whose identity keeps moving never spins.
const maxAttempts = 3

// Errors Wipe returns; each is wrapped with the item.
var (
	// ErrNotEnabled: the wipe rule is off for the item's camera.
	ErrNotEnabled = errors.New("the wipe rule is not enabled for this camera")
	// ErrNotVerified: the item is not verified in the object store yet.
	ErrNotVerified = errors.New("not verified in the object store yet")
	// ErrRefused: a condition did not hold; WIPE_REFUSED is recorded and the
	// file stays on the camera.
	ErrRefused = errors.New("wipe refused")
	// ErrSourceAbsent: the camera file is not there (the camera is not
	// docked). Nothing is recorded; a later run tries again.
	ErrSourceAbsent = errors.New("the file is not on the docked camera")
	// ErrGaveUp: the wipe was refused for good before (retry=false), or
	// after maxAttempts attempts. A person must look.
	ErrGaveUp = errors.New("wipe given up")
)

// Settled reports whether err means Wipe has nothing more to do for the
// item, now or later (wiped, given up, refused for good, not enabled).
func Settled(err error) bool {
	return err == nil || errors.Is(err, ErrNotEnabled) || errors.Is(err, ErrGaveUp)
}

// Options tune a Wiper.
type Options struct {
	// Actor is recorded on every event the Wiper writes.
	Actor string
	Log   *slog.Logger
	// Now is the clock for retention checks and the grace; default time.Now.
	Now func() time.Time
	// BeforeStep, when set, is called before each step of an attempt; an
	// error stops Wipe there (as a kill would) and is returned. For tests.
	BeforeStep func(id string, s Step) error
	// Interval is how often Run rescans the ledger; default 1 minute, or
	// half of vault.grace when that is shorter (at least 1 second).
	Interval time.Duration
}

// Wiper applies the wipe rule and the vault buffer policy. Safe for
// concurrent use; one item is worked on by one goroutine at a time.
type Wiper struct {
	cfg    *config.Config
	ledger Ledger
	vault  Vault
	store  objstore.Store
	o      Options
	log    *slog.Logger

	mu      sync.Mutex
	locks   map[string]*sync.Mutex
	queue   chan string
	running bool
	waiting map[string]waitingDock // serial → a watched dock refused for space
	retry   func(serial, root string)
}

// New returns a Wiper. store may be nil (vault only): nothing is then ever
// verified, so nothing is wiped or released.
func New(cfg *config.Config, l Ledger, v Vault, s objstore.Store, o Options) *Wiper {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		// Often enough that a short grace is honoured about on time.
		o.Interval = time.Minute
		if g := cfg.Vault.Grace.Duration; g > 0 {
			o.Interval = min(o.Interval, max(g/2, time.Second))
		}
	}
	return &Wiper{cfg: cfg, ledger: l, vault: v, store: s, o: o, log: o.Log,
		locks: map[string]*sync.Mutex{}, queue: make(chan string, 256), waiting: map[string]waitingDock{}}
}

func (w *Wiper) itemLock(id string) *sync.Mutex {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.locks[id]
	if !ok {
		m = &sync.Mutex{}
		w.locks[id] = m
	}
	return m
}

// history is what the ledger says about one item's wipe and vault copy.
type history struct {
	dockSource string // the DOCKED event's source: the camera root
	neverWipe  string // why the item's camera file is never wiped (VAULTED's custody.NeverWipe)
	streamed   string // SHA-256 of the COPIED event the VAULTED one names
	verifiedAt time.Time
	wiped      bool
	gaveUp     string // reason, when refused with retry=false
	attempts   int
	open       *attempt
	released   bool
}

// attempt is the open wipe attempt: WIPE_STARTED with no WIPE_REFUSED or
// WIPED after it.
type attempt struct {
	started custody.Event
	checks  map[string]bool
	intent  bool
}

func readHistory(evs []custody.Event, it custody.Item) history {
	var h history
	copied := map[string]string{}
	copiedSeq := ""
	for _, ev := range evs {
		switch ev.Type {
		case custody.Docked:
			if ev.Seq == it.DockSeq {
				h.dockSource = ev.Details["source"]
			}
		case custody.Copied:
			copied[strconv.FormatUint(ev.Seq, 10)] = ev.SHA256
		case custody.Vaulted:
			copiedSeq = ev.Details["copied_seq"]
			// A promise once recorded stays: a later VAULTED of the item
			// without it does not lift it.
			if v := ev.Details[custody.NeverWipe]; v != "" {
				h.neverWipe = v
			}
		case custody.Verified:
			h.verifiedAt = ev.At
		case custody.WipeStarted:
			h.attempts++
			h.open = &attempt{started: ev, checks: map[string]bool{}}
		case custody.WipeChecked:
			if h.open != nil {
				h.open.checks[ev.Details["check"]] = true
			}
		case custody.WipeUnlinking:
			if h.open != nil {
				h.open.intent = true
			}
		case custody.WipeRefused:
			h.open = nil
			if ev.Details["retry"] != "true" {
				h.gaveUp = ev.Details["reason"]
			}
		case custody.Wiped:
			h.wiped, h.open = true, nil
		case custody.VaultReleased:
			h.released = true
		}
	}
	h.streamed = copied[copiedSeq]
	return h
}

// Wipe takes item id's wipe as far as it can: it resumes the open attempt
// (or starts one) at the first step the ledger does not record, and runs
// the remaining steps in order, recording each. It returns nil once the
// item is WIPED (now or earlier); ErrRefused when a condition failed now;
// ErrGaveUp, ErrNotEnabled, ErrNotVerified, ErrSourceAbsent as documented;
// any other error is transient (the store, the ledger) and leaves the
// attempt where the ledger says it is.
func (w *Wiper) Wipe(ctx context.Context, id string) error {
	lock := w.itemLock(id)
	lock.Lock()
	defer lock.Unlock()

	it, err := w.ledger.Item(ctx, id)
	if err != nil {
		return fmt.Errorf("wipe %s: %w", id, err)
	}
	pol := w.cfg.WipePolicy(it.Camera)
	if !pol.Enabled {
		return fmt.Errorf("wipe %s (camera %s): %w", id, it.Camera, ErrNotEnabled)
	}
	if it.State != custody.StateVerified || w.store == nil {
		return fmt.Errorf("wipe %s: %w", id, ErrNotVerified)
	}
	evs, err := w.ledger.Custody(ctx, id)
	if err != nil {
		return fmt.Errorf("wipe %s: %w", id, err)
	}
	h := readHistory(evs, it)
	switch {
	case h.wiped:
		return nil
	case h.gaveUp != "":
		return fmt.Errorf("wipe %s: refused before (%s): %w", id, h.gaveUp, ErrGaveUp)
	case h.open == nil && h.attempts >= maxAttempts:
		return fmt.Errorf("wipe %s: %d attempts: %w", id, h.attempts, ErrGaveUp)
	case h.neverWipe != "":
		// Promised at ingest (RETIRED_DOCKED, VAULTED): the wipe rule in
		// force now does not undo it. Given up for good, so the vault
		// copy's release no longer waits for a wipe.
		return w.refuse(ctx, it, string(StepStart), "never wiped: "+h.neverWipe, false)
	}
	rel, err := camfs.ParseDisplayPath(it.SourcePath)
	if err != nil {
		return w.refuse(ctx, it, string(StepStart), "source path: "+err.Error(), false)
	}
	s := &run{w: w, it: it, h: h, pol: pol, root: h.dockSource, rel: rel}
	return s.steps(ctx)
}

// run is one call of Wipe on one item.
type run struct {
	w    *Wiper
	it   custody.Item
	h    history
	pol  config.WipePolicy
	root string
	rel  string
	pin  identity
	sum  digest.Sum
}

func (r *run) before(s Step) error {
	if f := r.w.o.BeforeStep; f != nil {
		if err := f(r.it.ID, s); err != nil {
			return fmt.Errorf("wipe %s stopped before step %s: %w", r.it.ID, s, err)
		}
	}
	return nil
}

func (r *run) steps(ctx context.Context) error {
	it := r.it
	var err error
	if r.sum, err = digest.ParseHex(it.SHA256); err != nil {
		return r.w.refuse(ctx, it, string(StepStart), "item sha256: "+err.Error(), false)
	}
	if r.h.open == nil {
		if err := r.before(StepStart); err != nil {
			return err
		}
		if err := r.start(ctx); err != nil {
			return err
		}
	} else {
		if r.pin, err = identityFrom(r.h.open.started.Details); err != nil {
			return r.w.refuse(ctx, it, string(StepStart), "WIPE_STARTED identity unreadable: "+err.Error(), true)
		}
	}
	checks := []struct {
		step Step
		fn   func(context.Context) (map[string]string, string, error)
	}{
		{StepStreamVault, r.streamVault},
		{StepStore, r.storeCheck},
		{StepLock, r.lockCheck},
	}
	if r.pol.VerifySource {
		checks = append(checks, struct {
			step Step
			fn   func(context.Context) (map[string]string, string, error)
		}{StepSource, r.sourceCheck})
	}
	for _, c := range checks {
		if r.h.open.checks[string(c.step)] {
			continue
		}
		if err := r.before(c.step); err != nil {
			return err
		}
		details, refusal, err := c.fn(ctx)
		if err != nil {
			return fmt.Errorf("wipe %s: check %s: %w", it.ID, c.step, err)
		}
		if refusal != "" {
			return r.w.refuse(ctx, it, string(c.step), refusal, false)
		}
		details["check"] = string(c.step)
		details["attempt_seq"] = strconv.FormatUint(r.h.open.started.Seq, 10)
		if _, err := r.w.ledger.Append(ctx, custody.Event{
			Type: custody.WipeChecked, Actor: r.w.o.Actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256, Details: details,
		}, nil); err != nil {
			return fmt.Errorf("wipe %s: record check %s: %w", it.ID, c.step, err)
		}
		r.h.open.checks[string(c.step)] = true
	}
	display := camfs.DisplayPath(r.rel)
	if !r.h.open.intent {
		if err := r.before(StepIntent); err != nil {
			return err
		}
		d := map[string]string{"source_root": r.root, "source_path": display, "attempt_seq": strconv.FormatUint(r.h.open.started.Seq, 10)}
		r.pin.details(d)
		if _, err := r.w.ledger.Append(ctx, custody.Event{
			Type: custody.WipeUnlinking, Actor: r.w.o.Actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256, Details: d,
		}, nil); err != nil {
			return fmt.Errorf("wipe %s: record intent: %w", it.ID, err)
		}
	}
	if err := r.before(StepUnlink); err != nil {
		return err
	}
	d := map[string]string{"source_root": r.root, "source_path": display, "attempt_seq": strconv.FormatUint(r.h.open.started.Seq, 10)}
	err = unlinkSource(r.root, r.rel, r.pin)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// WIPE_UNLINKING is on record, so this is most likely our own
		// unlink that a crash kept from being recorded; say so plainly.
		d["note"] = "the file was already gone when the unlink was retried after WIPE_UNLINKING (an interrupted earlier unlink, or removed by someone else)"
	case errors.Is(err, errIdentity), errors.Is(err, errNotRegular):
		return r.w.refuse(ctx, it, string(StepUnlink), "the file changed after it was checked: "+err.Error(), true)
	case err != nil:
		return fmt.Errorf("wipe %s: %w", it.ID, err)
	}
	if err := r.before(StepRecord); err != nil {
		return err
	}
	if _, err := r.w.ledger.Append(ctx, custody.Event{
		Type: custody.Wiped, Actor: r.w.o.Actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256, Details: d,
	}, nil); err != nil {
		return fmt.Errorf("wipe %s: record WIPED: %w", it.ID, err)
	}
	r.w.log.Info("camera file wiped", "item", it.ID, "camera", it.Camera)
	return nil
}

// start pins the camera file and records WIPE_STARTED.
func (r *run) start(ctx context.Context) error {
	it := r.it
	if r.root == "" {
		return r.w.refuse(ctx, it, string(StepStart), "the item's DOCKED record names no source folder", false)
	}
	id, err := statSource(r.root, r.rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("wipe %s: %w", it.ID, ErrSourceAbsent)
	case errors.Is(err, errNotRegular):
		return r.w.refuse(ctx, it, string(StepStart), "the camera entry is no longer a regular file", false)
	case err != nil:
		return fmt.Errorf("wipe %s: look at the camera file: %w", it.ID, err)
	}
	if id.Size != it.Size || id.MtimeNS != it.RecordedAt.UnixNano() {
		return r.w.refuse(ctx, it, string(StepStart), fmt.Sprintf(
			"the camera file is not the one copied: size %d mtime %s, copied size %d mtime %s",
			id.Size, time.Unix(0, id.MtimeNS).UTC().Format(time.RFC3339Nano), it.Size, it.RecordedAt.UTC().Format(time.RFC3339Nano)), false)
	}
	r.pin = id
	d := map[string]string{"source_root": r.root, "source_path": camfs.DisplayPath(r.rel),
		"attempt": strconv.Itoa(r.h.attempts + 1), "verify_source": strconv.FormatBool(r.pol.VerifySource)}
	id.details(d)
	ev, err := r.w.ledger.Append(ctx, custody.Event{
		Type: custody.WipeStarted, Actor: r.w.o.Actor, Camera: it.Camera, Item: it.ID, SHA256: it.SHA256, Details: d,
	}, nil)
	if err != nil {
		return fmt.Errorf("wipe %s: record start: %w", it.ID, err)
	}
	r.h.attempts++
	r.h.open = &attempt{started: ev, checks: map[string]bool{}}
	return nil
}

// streamVault is conditions (a) and (b).
func (r *run) streamVault(ctx context.Context) (map[string]string, string, error) {
	it := r.it
	if r.h.streamed == "" {
		return nil, "no COPIED record names the streamed hash of the vaulted copy", nil
	}
	if r.h.streamed != it.SHA256 {
		return nil, fmt.Sprintf("streamed sha256 %s differs from the item's %s", r.h.streamed, it.SHA256), nil
	}
	if r.h.released || it.VaultPath == "" {
		return nil, "the vault copy was already released, so it cannot be read back", nil
	}
	cold, n, err := r.w.vault.ReadBack(ctx, it.ID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "the vault copy is missing", nil
	case err != nil:
		return nil, "", fmt.Errorf("read back vault copy: %w", err)
	}
	if cold != r.sum || n != it.Size {
		return nil, fmt.Sprintf("the vault copy reads back as sha256 %s (%d bytes), streamed %s (%d bytes)", cold.Hex(), n, r.h.streamed, it.Size), nil
	}
	return map[string]string{"streamed_sha256": r.h.streamed, "vault_sha256": cold.Hex(), "read_back": "cold"}, "", nil
}

// storeCheck is condition (c).
func (r *run) storeCheck(ctx context.Context) (map[string]string, string, error) {
	it := r.it
	latest, err := r.w.store.Stat(ctx, it.ObjectKey, "")
	if err != nil {
		if objstore.IsPermanent(err) || errors.Is(err, objstore.ErrNotFound) {
			return nil, "object store: " + err.Error(), nil
		}
		return nil, "", err
	}
	if latest.VersionID != it.VersionID {
		return nil, fmt.Sprintf("the newest version of %s is %s, not the recorded %s: something else wrote to the key", it.ObjectKey, latest.VersionID, it.VersionID), nil
	}
	if latest.SHA256 != it.SHA256 {
		return nil, fmt.Sprintf("object %s version %s carries sha256 metadata %q, recorded %s", it.ObjectKey, it.VersionID, latest.SHA256, it.SHA256), nil
	}
	var local io.ReaderAt
	if f, err := r.w.vault.Open(it.ID); err == nil {
		defer f.Close()
		local = f
	}
	method, err := objstore.Verify(ctx, r.w.store, it.ObjectKey, it.VersionID, it.Size, r.sum, local)
	if err != nil {
		if objstore.IsPermanent(err) || errors.Is(err, objstore.ErrNotFound) {
			return nil, "object store: " + err.Error(), nil
		}
		return nil, "", err
	}
	return map[string]string{"key": it.ObjectKey, "version_id": it.VersionID, "method": method,
		"store_checksum_sha256": latest.ChecksumSHA256}, "", nil
}

// lockCheck is condition (d).
func (r *run) lockCheck(ctx context.Context) (map[string]string, string, error) {
	it := r.it
	info, err := r.w.store.Stat(ctx, it.ObjectKey, it.VersionID)
	if err != nil {
		if objstore.IsPermanent(err) || errors.Is(err, objstore.ErrNotFound) {
			return nil, "object store: " + err.Error(), nil
		}
		return nil, "", err
	}
	now := r.w.o.Now()
	locked := (info.LockMode == objstore.LockGovernance || info.LockMode == objstore.LockCompliance) && info.RetainUntil.After(now)
	if !locked && !info.LegalHold {
		return nil, fmt.Sprintf("object %s version %s is not protected: lock mode %q retained until %s, legal hold %v",
			it.ObjectKey, it.VersionID, info.LockMode, fmtTime(info.RetainUntil), info.LegalHold), nil
	}
	return map[string]string{"lock_mode": info.LockMode, "retain_until": fmtTime(info.RetainUntil),
		"legal_hold": strconv.FormatBool(info.LegalHold), "version_id": it.VersionID}, "", nil
}

// sourceCheck is condition (e): a fresh read of the camera file.
func (r *run) sourceCheck(ctx context.Context) (map[string]string, string, error) {
	it := r.it
	f, err := camfs.Open(r.root, r.rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", ErrSourceAbsent
	}
	if err != nil {
		if errors.Is(err, camfs.ErrNotRegular) {
			return nil, "the camera entry is no longer a regular file", nil
		}
		return nil, "", fmt.Errorf("open camera file: %w", err)
	}
	defer f.Close()
	got, n, err := digest.Reader(ctxReader{ctx, f})
	if err != nil {
		return nil, "", fmt.Errorf("re-read camera file: %w", err)
	}
	if got != r.sum || n != it.Size {
		return nil, fmt.Sprintf("the camera file now reads as sha256 %s (%d bytes), streamed %s (%d bytes)", got.Hex(), n, it.SHA256, it.Size), nil
	}
	now, err := statSource(r.root, r.rel)
	if err != nil {
		return nil, "", fmt.Errorf("look at the camera file: %w", err)
	}
	if now != r.pin {
		return nil, "the camera file's identity changed while it was re-read", nil
	}
	return map[string]string{"source_sha256": got.Hex(), "size": strconv.FormatInt(n, 10)}, "", nil
}

// refuse ends the open attempt (if any) with WIPE_REFUSED.
func (w *Wiper) refuse(ctx context.Context, it custody.Item, step, reason string, retry bool) error {
	if _, err := w.ledger.Append(ctx, custody.Event{
		Type: custody.WipeRefused, Actor: w.o.Actor, Camera: it.Camera, Item: it.ID,
		Details: map[string]string{"check": step, "reason": reason, "retry": strconv.FormatBool(retry)},
	}, nil); err != nil {
		return fmt.Errorf("wipe %s: record refusal (%s): %w", it.ID, reason, err)
	}
	w.log.Warn("wipe refused; the file stays on the camera", "item", it.ID, "camera", it.Camera, "check", step, "retry", retry)
	return fmt.Errorf("wipe %s: %s: %s: %w", it.ID, step, reason, ErrRefused)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ctxReader stops a long hash when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
