// Package watch notices docked cameras: each directory that appears directly
// inside a watched directory is one camera folder, named by the camera's
// serial, and the package tells a Handler when that folder has settled
// (nothing in it changed for the settle period) and when it is gone.
//
// It owns the fsnotify state. Invariants:
//
//   - One goroutine (the one running Run) owns every piece of state: the
//     fsnotify watcher, the set of watched directories and each folder's
//     timers and flags. Handlers run in their own goroutines and report back
//     over a channel; nothing is shared under a lock.
//   - fsnotify is not recursive, so every directory below a camera folder
//     (DCIM/100MEDIA/…) gets its own watch, added before the directory is
//     listed so nothing created in between is missed.
//   - Handler calls for one folder never overlap: Settled and Removed for
//     the same path run one after another. Calls for different folders run
//     concurrently. Run returns only after every call it started returned.
//   - Changes are tracked per folder, not per file: any create, write,
//     remove or rename anywhere below a folder restarts its quiet period.
//     Attribute-only changes (chmod, touch) are ignored, as fsnotify
//     advises: they are frequent and say nothing about content.
//
// Entries that are not directories (files, symlinks), hidden folders
// (".name", so a copy can be staged as .BWC-0001 and renamed into place) and
// lost+found are ignored. A folder counts as gone when its directory entry
// disappears from the watched directory; an automounter that unmounts a
// camera must also remove its mount point directory, as udisks and
// systemd-mount do.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Errors Run and New return.
var (
	// ErrNotDir: a watched path exists but is not a directory.
	ErrNotDir = errors.New("not a directory")
	// ErrDirGone: a watched directory was removed or renamed while being
	// watched; no dock can be noticed there any more, so Run stops.
	ErrDirGone = errors.New("watched directory removed")
)

// maxDepth bounds how deep below a camera folder directories are watched: a
// camera's layout is a few levels deep, and a pathological tree must not
// exhaust the inotify watch limit.
const maxDepth = 16

// Dock is one camera folder.
type Dock struct {
	Serial string // the folder's name
	Path   string // absolute path of the folder
}

// Handler is told about camera folders.
type Handler interface {
	// Settled is called when a camera folder has first appeared (also for
	// folders already present when Run starts) and nothing in it changed for
	// the settle period, and again each time its contents stop changing
	// for the settle period. It is never called concurrently for the same
	// folder; the watcher keeps watching while it runs, and if anything
	// changed during the call it calls Settled again after the next quiet
	// period. ctx is cancelled when Run's context is done or the folder
	// disappears.
	Settled(ctx context.Context, d Dock)
	// Removed is called when a folder for which Settled was called
	// disappears (the camera was undocked, the card pulled). It is called
	// after any Settled call for the folder has returned, and once per
	// disappearance.
	Removed(d Dock)
}

// Watcher watches directories for camera folders.
type Watcher struct {
	dirs    []string
	settle  time.Duration
	log     *slog.Logger
	started atomic.Bool
	// ready, when set (by tests), is called once every watched directory
	// has its watch and the initial scan is done.
	ready func()
}

// New checks dirs and returns a Watcher for them. Each directory must exist:
// it is not created, because a missing mount or runtime directory is a
// set-up mistake to report, not to paper over.
func New(dirs []string, settle time.Duration, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(dirs) == 0 {
		return nil, errors.New("watch: no directories to watch")
	}
	if settle <= 0 {
		return nil, fmt.Errorf("watch: settle period must be more than 0, got %s", settle)
	}
	var clean []string
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("watch directory %s: %w", d, err)
		}
		if err := checkDir(abs); err != nil {
			return nil, err
		}
		dup := false
		for _, o := range clean {
			if o == abs {
				dup = true
				break
			}
			if within(abs, o) || within(o, abs) {
				return nil, fmt.Errorf("watch directories %s and %s overlap: one would be a camera folder of the other", o, abs)
			}
		}
		if !dup {
			clean = append(clean, abs)
		}
	}
	return &Watcher{dirs: clean, settle: settle, log: log}, nil
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("watch directory %s does not exist (it is not created automatically; create it or fix sources.watch): %w", dir, err)
	case err != nil:
		return fmt.Errorf("watch directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("watch directory %s: %w", dir, ErrNotDir)
	}
	return nil
}

// Run watches until ctx is done (it then returns nil) or the watch fails
// (a watched directory disappears, fsnotify stops). Either way it returns
// only after every handler call it started has returned. Run may be called
// once.
func (w *Watcher) Run(ctx context.Context, h Handler) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("watch: Run called more than once")
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: start fsnotify: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	l := &loop{
		settle:  w.settle,
		log:     w.log,
		fsw:     fsw,
		h:       h,
		ctx:     runCtx,
		roots:   map[string]bool{},
		cams:    map[string]*camera{},
		watched: map[string]bool{},
		done:    make(chan *camera),
		stop:    make(chan struct{}),
	}
	defer func() {
		cancel()
		close(l.stop)
		l.wg.Wait()
		fsw.Close()
	}()
	for _, d := range w.dirs {
		if err := checkDir(d); err != nil {
			return err
		}
		if err := fsw.Add(d); err != nil {
			return fmt.Errorf("watch directory %s: %w", d, err)
		}
		l.roots[d] = true
		w.log.Info("watching for docked cameras", "dir", d)
	}
	if err := l.rescan(); err != nil {
		return err
	}
	if w.ready != nil {
		w.ready()
	}
	return l.run(ctx)
}

// camera is one folder's state, owned by the loop goroutine.
type camera struct {
	dock      Dock
	present   bool      // the folder exists now
	dirty     bool      // changed since the last Settled call started
	due       time.Time // when dirty: the end of the quiet period
	running   bool      // a handler call is in progress
	announced bool      // Settled was called since it (re)appeared: Removed is owed on disappearance
	owed      bool      // Removed is owed once the running call returns
	cancel    context.CancelFunc
}

type loop struct {
	settle  time.Duration
	log     *slog.Logger
	fsw     *fsnotify.Watcher
	h       Handler
	ctx     context.Context // parent of every handler call's context
	roots   map[string]bool
	cams    map[string]*camera // by folder path
	watched map[string]bool    // directories below roots holding an fsnotify watch
	done    chan *camera       // a handler call returned
	stop    chan struct{}      // closed when the loop has exited
	wg      sync.WaitGroup
}

func (l *loop) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var fire <-chan time.Time
		if next, ok := l.nextDue(); ok {
			timer.Reset(time.Until(next))
			fire = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-l.fsw.Events:
			if !ok {
				return errors.New("watch: fsnotify stopped delivering events")
			}
			if err := l.event(ev); err != nil {
				return err
			}
		case err, ok := <-l.fsw.Errors:
			if !ok {
				return errors.New("watch: fsnotify stopped delivering events")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: look at everything again.
				l.log.Warn("file system event queue overflowed; rescanning (raise fs.inotify.max_queued_events if this repeats)")
				if err := l.rescan(); err != nil {
					return err
				}
				continue
			}
			l.log.Error("file system watch error", "err", err)
		case cam := <-l.done:
			l.finished(cam)
		case <-fire:
			// Events already queued happened before the quiet period
			// ended: count them first, so a busy loop does not settle a
			// folder that is still being written.
			for drained := false; !drained; {
				select {
				case ev, ok := <-l.fsw.Events:
					if !ok {
						return errors.New("watch: fsnotify stopped delivering events")
					}
					if err := l.event(ev); err != nil {
						return err
					}
				default:
					drained = true
				}
			}
			l.fireDue()
		}
	}
}

// event handles one fsnotify event.
func (l *loop) event(ev fsnotify.Event) error {
	path := filepath.Clean(ev.Name)
	if l.roots[path] {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			return fmt.Errorf("watch directory %s: %w", path, ErrDirGone)
		}
		return nil
	}
	root, name, rest := l.locate(path)
	if root == "" || !candidate(name) {
		return nil
	}
	folder := filepath.Join(root, name)
	if rest == "" {
		// The folder itself: whether it exists decides, whatever the op.
		if ev.Op == fsnotify.Chmod {
			return nil
		}
		l.reconcile(folder)
		return nil
	}
	cam := l.cams[folder]
	if cam == nil || !cam.present {
		return nil // an event for a folder already gone
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		l.unwatchTree(path)
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
			l.watchTree(path)
		}
	}
	if ev.Op&^fsnotify.Chmod != 0 {
		l.changed(cam)
	}
	return nil
}

// locate splits a path below a root into the root, the folder name and the
// rest ("" for the folder itself).
func (l *loop) locate(path string) (root, name, rest string) {
	for r := range l.roots {
		if strings.HasPrefix(path, r+string(filepath.Separator)) {
			name, rest, _ = strings.Cut(path[len(r)+1:], string(filepath.Separator))
			return r, name, rest
		}
	}
	return "", "", ""
}

// candidate reports whether a directory name inside a root can be a camera.
func candidate(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && name != "lost+found"
}

// reconcile brings a folder's state in line with what is on disk.
func (l *loop) reconcile(folder string) {
	fi, err := os.Lstat(folder)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.log.Error("inspect camera folder", "path", folder, "err", err)
		return
	}
	isDir := err == nil && fi.IsDir()
	cam := l.cams[folder]
	switch {
	case isDir && (cam == nil || !cam.present):
		l.appear(folder)
	case !isDir && cam != nil && cam.present:
		l.disappear(cam)
	}
}

// rescan lists every root and reconciles every folder; used at start and
// after lost events. Folders already known are marked changed, since what
// happened in them may have been missed.
func (l *loop) rescan() error {
	seen := map[string]bool{}
	for root := range l.roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			return fmt.Errorf("watch directory %s: %w", root, err)
		}
		for _, e := range entries {
			if !e.IsDir() || !candidate(e.Name()) {
				continue
			}
			folder := filepath.Join(root, e.Name())
			seen[folder] = true
			if cam := l.cams[folder]; cam != nil && cam.present {
				l.watchTree(folder)
				l.changed(cam)
				continue
			}
			l.appear(folder)
		}
	}
	for folder, cam := range l.cams {
		if cam.present && !seen[folder] {
			l.disappear(cam)
		}
	}
	return nil
}

func (l *loop) appear(folder string) {
	cam := l.cams[folder]
	if cam == nil {
		cam = &camera{dock: Dock{Serial: filepath.Base(folder), Path: folder}}
		l.cams[folder] = cam
	}
	cam.present = true
	l.watchTree(folder)
	l.changed(cam)
	l.log.Info("camera folder appeared", "camera", cam.dock.Serial, "dir", filepath.Dir(folder))
}

func (l *loop) disappear(cam *camera) {
	cam.present = false
	cam.dirty = false
	l.unwatchTree(cam.dock.Path)
	l.log.Info("camera folder gone", "camera", cam.dock.Serial, "dir", filepath.Dir(cam.dock.Path))
	switch {
	case cam.running:
		cam.cancel()
		cam.owed = cam.owed || cam.announced
		cam.announced = false
	case cam.announced:
		cam.announced = false
		l.start(cam, false)
	default:
		delete(l.cams, cam.dock.Path)
	}
}

func (l *loop) changed(cam *camera) {
	cam.dirty = true
	cam.due = time.Now().Add(l.settle)
}

func (l *loop) nextDue() (time.Time, bool) {
	var next time.Time
	ok := false
	for _, cam := range l.cams {
		if cam.present && cam.dirty && !cam.running && (!ok || cam.due.Before(next)) {
			next, ok = cam.due, true
		}
	}
	return next, ok
}

func (l *loop) fireDue() {
	now := time.Now()
	for _, cam := range l.cams {
		if cam.present && cam.dirty && !cam.running && !now.Before(cam.due) {
			cam.dirty = false
			cam.announced = true
			l.start(cam, true)
		}
	}
}

// start runs Settled (settled) or Removed for cam in its own goroutine.
func (l *loop) start(cam *camera, settled bool) {
	cam.running = true
	ctx, cancel := context.WithCancel(l.ctx)
	cam.cancel = cancel
	d := cam.dock
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if settled {
			l.log.Debug("camera folder settled", "camera", d.Serial)
			l.h.Settled(ctx, d)
		} else {
			l.h.Removed(d)
		}
		select {
		case l.done <- cam:
		case <-l.stop:
		}
	}()
}

// finished is a handler call for cam returning.
func (l *loop) finished(cam *camera) {
	cam.running = false
	cam.cancel()
	switch {
	case cam.owed:
		cam.owed = false
		l.start(cam, false)
	case !cam.present:
		if l.cams[cam.dock.Path] == cam {
			delete(l.cams, cam.dock.Path)
		}
	}
	// Present and dirty: the timer picks it up at cam.due (at once if the
	// quiet period already passed during the call).
}

// watchTree adds a watch to dir and every directory below it. The watch is
// added before a directory is listed, so an entry created in between raises
// an event instead of being missed.
func (l *loop) watchTree(dir string) {
	base := strings.Count(dir, string(filepath.Separator))
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			// Vanished while walking: its removal is its own event.
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if strings.Count(p, string(filepath.Separator))-base > maxDepth {
			return fs.SkipDir
		}
		if l.watched[p] {
			return nil
		}
		if err := l.fsw.Add(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipDir
			}
			if errors.Is(err, syscall.ENOSPC) {
				l.log.Error("cannot watch camera directory: inotify watch limit reached (raise fs.inotify.max_user_watches)", "path", p)
			} else {
				l.log.Error("cannot watch camera directory", "path", p, "err", err)
			}
			return fs.SkipDir
		}
		l.watched[p] = true
		return nil
	})
}

// unwatchTree drops the watches on dir and below: after a rename, inotify
// would otherwise keep reporting under the old path.
func (l *loop) unwatchTree(dir string) {
	for p := range l.watched {
		if within(p, dir) {
			_ = l.fsw.Remove(p) // may already be gone with the directory
			delete(l.watched, p)
		}
	}
}

// within reports whether p is dir or below it (both clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) || dir == string(filepath.Separator)
}
