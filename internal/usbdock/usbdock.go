// Package usbdock notices cameras docked over USB and presents each one's
// storage, mounted read-only, to a Handler — the Settled / Removed shape of
// package watch, so the daemon treats a USB bay and a watched folder alike,
// plus Arrived, because a USB camera is seen well before its storage is
// readable.
//
// It owns USB detection (poll and diff the device list every Poll), the
// mapping of a device to its block device and file system through sysfs,
// and the read-only mounts under the mount directory. Invariants:
//
//   - Detection only reads descriptors: the serial comes from sysfs (the
//     string the kernel read at enumeration) or, where sysfs lacks it, from
//     one GET_DESCRIPTOR on the control endpoint. No interface is ever
//     claimed, so the kernel's usb-storage driver is never disturbed.
//   - A device whose vendor:product matches no profile is not a camera and is
//     ignored (logged once at debug). A camera model is reported to
//     Handler.Arrived at once; one it does not admit (a serial not in the
//     inventory) is never mounted: unknown media is not read.
//   - Camera media is only ever mounted ro,nosuid,nodev,noexec (with UTF-8
//     names for vfat and exfat), or an existing mount (udisks, systemd) is
//     used as it is. Every mount this package made is undone, lazily when
//     busy, when the camera's Settled call returns or the camera goes.
//   - A device is believed about its serial only so far: a serial already
//     docked in one bay arriving in another (ErrDuplicateSerial, naming both
//     bays), or a serial the inventory pins to another vendor:product
//     (ErrWrongModel), is refused: never reported to Arrived, never mounted,
//     and reported to a Handler that implements Refuser, with the bays
//     already holding that serial so they can be flagged too.
//   - For one device, Arrived, Settled (or Failed), then Removed, run one
//     after another and never overlap; Removed is called once per
//     disappearance of a device that was reported to Arrived. Calls for different devices run concurrently, but
//     at most PerBus Settled calls per USB bus at a time, because the bays of
//     one hub share its bandwidth. Run returns only after every call it
//     started has returned.
//
// Privilege: reading descriptors needs none (sysfs is world-readable; usbfs
// is opened only for a device without a sysfs serial). Mounting needs
// CAP_SYS_ADMIN, and nothing else does: the systemd unit runs the daemon as
// its own user with
//
//	AmbientCapabilities=CAP_SYS_ADMIN
//	CapabilityBoundingSet=CAP_SYS_ADMIN
//	NoNewPrivileges=yes
//	SupplementaryGroups=disk
//	PrivateMounts=yes
//
// The disk group lets DetectFS read a camera's boot sector (block devices
// are only ever opened O_RDONLY). PrivateMounts keeps the camera mounts in
// the daemon's mount namespace, out of the rest of the host's view, while
// mounts the host makes (udisks) still propagate in. A host that prefers udisks or
// systemd-mount to mount cameras read-only needs no capability at all: an
// existing read-only mount of the camera's block device is used as it is.
package usbdock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidenced/evidenced/internal/config"
)

// Errors reported through Handler.Failed.
var (
	// ErrNoVolume: the camera presented no block device with a file system
	// its profile allows (or none appeared in time).
	ErrNoVolume = errors.New("no readable camera volume")
	// ErrMount: the volume was found but the kernel refused to mount it
	// (a corrupt file system, a missing driver, no privilege).
	ErrMount = errors.New("cannot mount camera volume")
	// ErrDuplicateSerial: a device presents a serial that a device in
	// another bay presents too. One of them lies; neither new one is read.
	ErrDuplicateSerial = errors.New("serial already docked in another bay")
	// ErrWrongModel: a device presents a serial the inventory pins to
	// another vendor:product.
	ErrWrongModel = errors.New("serial arrived as another camera model than the inventory says")
)

// Refuser is implemented by a Handler that is told of refused devices
// (ErrDuplicateSerial, ErrWrongModel). Refused is called instead of
// Arrived, once per attachment; the device is never mounted and no other
// call follows for it. others are the devices already docked with the same
// serial (their sessions go on: they were admitted first), so the handler
// can show the problem on every bay concerned. RefusedGone follows, after
// Refused returned, when that device leaves its bay.
type Refuser interface {
	Refused(d Dock, others []Dock, err error)
	RefusedGone(d Dock)
}

// Device is one USB device as the enumerator sees it.
type Device struct {
	VendorID, ProductID uint16
	Serial              string // iSerial; "" when the device has none
	Bus                 int
	Address             int    // changes at every re-plug, even on the same port
	PortPath            []int  // ports from the root hub: [1] or [1, 3]
	SysPath             string // /sys/bus/usb/devices/<bus>-<port path>
}

// Name is the kernel's name for the device, "<bus>-<p1>.<p2>…": the bay.
func (d Device) Name() string {
	if len(d.PortPath) == 0 {
		return fmt.Sprintf("usb%d", d.Bus)
	}
	p := make([]string, len(d.PortPath))
	for i, v := range d.PortPath {
		p[i] = strconv.Itoa(v)
	}
	return fmt.Sprintf("%d-%s", d.Bus, strings.Join(p, "."))
}

// key tells attachments apart: the same port re-plugged gets a new address.
func (d Device) key() string { return d.Name() + "@" + strconv.Itoa(d.Address) }

// Enumerator lists the USB devices present now.
//
// Devices must not claim interfaces or otherwise disturb kernel drivers. It
// returns every device it could identify; a device it cannot identify yet
// (its serial is not readable in the moment after it appears) is left out
// and listed on a later call. A non-nil error means the list as a whole is
// not to be trusted, and the caller keeps its previous view.
type Enumerator interface {
	Devices(ctx context.Context) ([]Device, error)
}

// Dock is one docked camera: a Device matching a profile, with its storage.
type Dock struct {
	Serial  string
	Path    string // root of the mounted volume; "" when not mounted
	Device  Device
	Profile string // the profile (model) name
	Source  string // the block device, e.g. /dev/sda1
	FS      string // vfat or exfat
}

// Bus is the key of the bandwidth domain the camera's copy shares: cameras
// with the same Bus sit behind one host controller root port tree.
func (d Dock) Bus() string { return "usb" + strconv.Itoa(d.Device.Bus) }

// Bay is the physical port the camera is docked in.
func (d Dock) Bay() string { return d.Device.Name() }

// Handler is told about docked cameras. For one attachment the calls are
// Arrived, then (if it admitted the camera) Settled or Failed, then Removed,
// each after the previous one returned.
type Handler interface {
	// Arrived is called as soon as a device of a camera model is seen on a
	// bay, before its storage is looked for or its bus has a free copy
	// slot: the arrival can be put on record within one poll, however long
	// the kernel takes to present the volume or other cameras on the same
	// hub keep this one waiting. It returns false for a camera that must
	// not be read (a serial not in the inventory, or one whose arrival
	// could not be recorded): it is never mounted, and only Removed follows.
	Arrived(ctx context.Context, d Dock) bool
	// Settled is called once the camera's volume is mounted (Path set).
	// ctx is cancelled when the camera is yanked or Run stops. When it
	// returns, the volume is unmounted: a USB camera's content does not
	// change while it is docked, so there is no second call.
	Settled(ctx context.Context, d Dock)
	// Failed is called instead of Settled when the camera's storage cannot
	// be read (err wraps ErrNoVolume or ErrMount).
	Failed(d Dock, err error)
	// Removed is called when a camera for which Arrived was called is gone,
	// after the handler's other calls for it returned. It is not called
	// when Run stops with the camera still docked: it was not undocked.
	Removed(d Dock)
}

// Volume is a camera's file system made readable.
type Volume struct {
	Path   string // where it is mounted
	Source string // block device
	FS     string
	Ours   bool // mounted by us: Detach unmounts it
}

// Storage finds a docked device's volume and mounts it read-only.
type Storage interface {
	// Attach waits (until ctx is done) for the device's block device, picks
	// the volume with a file system the profile allows, preferring one that
	// holds a recordings folder, and returns it mounted read-only.
	Attach(ctx context.Context, d Device, p config.Profile) (Volume, error)
	// Detach unmounts a volume Attach mounted (lazily if busy) and removes
	// its mount point; for a volume it found mounted it does nothing.
	Detach(v Volume) error
}

// Options configure a Source.
type Options struct {
	Profiles []config.Profile
	// Poll is the enumeration interval (default 500ms).
	Poll time.Duration
	// Topology, when set, returns a cheap fingerprint of the USB device
	// tree (production: the names under /sys/bus/usb/devices). It is read
	// every Poll/5 (at most every 100ms), and the Enumerator runs as soon as
	// it changes, besides every Poll: a libusb enumeration costs far more
	// than a readdir, so the detection delay drops from Poll/2 on average
	// to about Poll/10 without enumerating more often.
	Topology func() string
	// PerBus bounds concurrent Settled calls per bus (default 1).
	PerBus int
	// Work is the parent of every Settled call's context (default: Run's
	// ctx). A daemon passes its drain context here: when Run's ctx ends,
	// polling stops and no new copy starts, but copies in progress run on
	// until their camera is yanked or Work ends.
	Work context.Context
	// Pinned returns the vendor:product the inventory pins serial to, if
	// any (cameras[].usb_id): a device presenting that serial as another
	// model is refused (ErrWrongModel).
	Pinned     func(serial string) (vendor, product uint16, ok bool)
	Enumerator Enumerator
	Storage    Storage
	Log        *slog.Logger
}

// Source polls an Enumerator and drives a Handler.
type Source struct {
	o       Options
	log     *slog.Logger
	started sync.Once
}

// New returns a Source. Enumerator and Storage are required.
func New(o Options) (*Source, error) {
	if o.Enumerator == nil || o.Storage == nil {
		return nil, errors.New("usbdock: an Enumerator and a Storage are required")
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.PerBus <= 0 {
		o.PerBus = 1
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Source{o: o, log: o.Log}, nil
}

// FromConfig builds the production Source for cfg.Sources.USB: gousb
// enumeration, sysfs mapping and read-only mounts under mount_dir, the
// inventory checked by the Handler's Arrived.
// work is Options.Work: copies in progress run on it after Run's ctx ends.
func FromConfig(work context.Context, cfg *config.Config, log *slog.Logger) (*Source, error) {
	u := cfg.Sources.USB
	en, err := NewGoUSB(log)
	if err != nil {
		return nil, err
	}
	return New(Options{
		Pinned:     PinnedFromConfig(cfg),
		Profiles:   u.Profiles,
		Poll:       u.Poll.Duration,
		Topology:   SysfsTopology("/sys/bus/usb/devices"),
		PerBus:     u.PerBus,
		Enumerator: en,
		Storage:    NewSysfsStorage(u.MountDir, log),
		Work:       work,
		Log:        log,
	})
}

// PinnedFromConfig is Options.Pinned for the inventory's usb_id pins.
func PinnedFromConfig(cfg *config.Config) func(string) (uint16, uint16, bool) {
	return func(serial string) (uint16, uint16, bool) {
		cam, ok := cfg.Camera(serial)
		if !ok || cam.USBID == nil {
			return 0, 0, false
		}
		return uint16(cam.USBID.Vendor), uint16(cam.USBID.Product), true
	}
}

// refusal says why a new device d must not be read, or nil. present are
// the devices being served; listed counts each serial's devices in this
// listing (a serial on two bays at once).
func (s *Source) refusal(d Device, present map[string]*attached, listed map[string][]Device) ([]Dock, error) {
	if s.o.Pinned != nil {
		if v, p, ok := s.o.Pinned(d.Serial); ok && (v != d.VendorID || p != d.ProductID) {
			return nil, fmt.Errorf("%w: %s is %04x:%04x in the inventory, but the device on bay %s presents itself as %04x:%04x; not mounted",
				ErrWrongModel, d.Serial, v, p, d.Name(), d.VendorID, d.ProductID)
		}
	}
	if d.Serial == "" {
		return nil, nil // no identity to duplicate; the inventory check refuses it
	}
	var others []Dock
	var bays []string
	for _, a := range present {
		if sameSerial(a.dev.Serial, d.Serial) {
			others = append(others, Dock{Serial: a.dev.Serial, Device: a.dev})
			bays = append(bays, a.dev.Name())
		}
	}
	for _, o := range listed[strings.ToLower(d.Serial)] {
		if o.key() != d.key() && present[o.key()] == nil {
			bays = append(bays, o.Name()) // arrived in the same listing: refused too
		}
	}
	if len(bays) == 0 {
		return nil, nil
	}
	slices.Sort(bays)
	return others, fmt.Errorf("%w: %s arrived on bay %s while also on bay %s; one device lies about its serial, not mounted",
		ErrDuplicateSerial, d.Serial, d.Name(), strings.Join(slices.Compact(bays), ", "))
}

// sameSerial compares serials as the inventory and camera folders do
// (case-insensitively: FAT and exFAT names ignore case).
func sameSerial(a, b string) bool { return a != "" && strings.EqualFold(a, b) }

func (s *Source) profile(d Device) (config.Profile, bool) {
	for _, p := range s.o.Profiles {
		if uint16(p.VendorID) == d.VendorID && uint16(p.ProductID) == d.ProductID {
			return p, true
		}
	}
	return config.Profile{}, false
}

// refusedAttach is a refused device still on its bay; told is closed once
// the Handler's Refused call returned.
type refusedAttach struct {
	dev  Device
	told chan struct{}
}

// attached is one present device matching a profile.
type attached struct {
	dev    Device
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine (Settled…Removed) ended
	gone   chan struct{} // closed when the device disappeared
}

// Run polls until ctx is done (then returns nil, after every Handler call
// it started has returned). It may be called once.
func (s *Source) Run(ctx context.Context, h Handler) error {
	first := false
	s.started.Do(func() { first = true })
	if !first {
		return errors.New("usbdock: Run called more than once")
	}
	var wg sync.WaitGroup
	buses := map[int]chan struct{}{}
	present := map[string]*attached{}
	ignored := map[string]bool{}
	refused := map[string]*refusedAttach{} // until they leave
	work := s.o.Work
	if work == nil {
		work = ctx
	}
	defer func() {
		wg.Wait()
		for _, a := range present {
			a.cancel()
		}
	}()
	s.log.Info("watching USB for docked cameras", "poll", s.o.Poll, "profiles", len(s.o.Profiles), "topology_check", s.o.Topology != nil)
	tick := s.o.Poll
	if s.o.Topology != nil {
		tick = min(max(s.o.Poll/5, 10*time.Millisecond), 100*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var topo string
	var listed time.Time
	for {
		if !s.due(&topo, listed) {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			continue
		}
		listed = time.Now()
		devs, err := s.o.Enumerator.Devices(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("list USB devices", "err", err)
		} else {
			// Departures first: a camera moved to another bay between two
			// listings is gone from the first before it is judged in the
			// second, not refused as its own duplicate.
			seen := map[string]bool{}
			listed := map[string][]Device{}
			for _, d := range devs {
				seen[d.key()] = true
				if _, ok := s.profile(d); ok && d.Serial != "" {
					listed[strings.ToLower(d.Serial)] = append(listed[strings.ToLower(d.Serial)], d)
				}
			}
			for k, a := range present {
				if !seen[k] {
					s.log.Info("camera undocked", "camera", a.dev.Serial, "bay", a.dev.Name())
					close(a.gone)
					a.cancel()
					delete(present, k)
				}
			}
			for k := range ignored {
				if !seen[k] {
					delete(ignored, k)
				}
			}
			for k, ra := range refused {
				if seen[k] {
					continue
				}
				delete(refused, k)
				s.log.Info("refused device left", "camera", ra.dev.Serial, "bay", ra.dev.Name())
				if r, ok := h.(Refuser); ok {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-ra.told
						r.RefusedGone(Dock{Serial: ra.dev.Serial, Device: ra.dev})
					}()
				}
			}
			for _, d := range devs {
				k := d.key()
				if present[k] != nil || ignored[k] || refused[k] != nil {
					continue
				}
				p, ok := s.profile(d)
				if !ok {
					ignored[k] = true
					s.log.Debug("USB device is not a camera model; ignored", "bay", d.Name(),
						"vendor_id", fmt.Sprintf("%04x", d.VendorID), "product_id", fmt.Sprintf("%04x", d.ProductID))
					continue
				}
				if others, err := s.refusal(d, present, listed); err != nil {
					told := make(chan struct{})
					refused[k] = &refusedAttach{dev: d, told: told}
					s.log.Error("camera refused; not mounted", "camera", d.Serial, "bay", d.Name(), "err", err)
					if r, ok := h.(Refuser); ok {
						dock := Dock{Serial: d.Serial, Device: d, Profile: p.Name}
						wg.Add(1)
						go func() {
							defer wg.Done()
							defer close(told)
							r.Refused(dock, others, err)
						}()
					} else {
						close(told)
					}
					continue
				}
				sem, ok := buses[d.Bus]
				if !ok {
					sem = make(chan struct{}, s.o.PerBus)
					buses[d.Bus] = sem
				}
				dctx, cancel := context.WithCancel(work)
				a := &attached{dev: d, cancel: cancel, done: make(chan struct{}), gone: make(chan struct{})}
				present[k] = a
				s.log.Info("camera docked", "camera", d.Serial, "bay", d.Name(), "profile", p.Name)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer close(a.done)
					s.session(ctx, dctx, h, a, p, sem)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// due reports whether the device list is to be read now: always without a
// Topology; with one, when the fingerprint differs from the one taken at the
// last listing (*last, updated) or Poll has passed since (listed). The
// fingerprint is taken before the listing, so a change during it is seen
// at the next check.
func (s *Source) due(last *string, listed time.Time) bool {
	if s.o.Topology == nil {
		return true
	}
	topo := s.o.Topology()
	if listed.IsZero() || topo != *last || time.Since(listed) >= s.o.Poll {
		*last = topo
		return true
	}
	return false
}

// SysfsTopology returns a Topology reading the entry names of dir
// (/sys/bus/usb/devices): a device or interface arriving or leaving adds or
// removes one. A read error is part of the fingerprint, so an error that
// comes or goes triggers a listing too.
func SysfsTopology(dir string) func() string {
	return func() string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "error: " + err.Error()
		}
		var b strings.Builder
		for _, e := range ents {
			b.WriteString(e.Name())
			b.WriteByte(' ')
		}
		return b.String()
	}
}

// session is one device's life: Arrived, attach, Settled (or Failed),
// detach, and Removed once the device is gone.
//
// runCtx is Run's context: when it ends while the camera is still docked,
// the camera was not undocked and Removed is not called.
func (s *Source) session(runCtx, ctx context.Context, h Handler, a *attached, p config.Profile, sem chan struct{}) {
	d := Dock{Serial: a.dev.Serial, Device: a.dev, Profile: p.Name}
	defer func() {
		select {
		case <-a.gone:
			h.Removed(d)
		case <-runCtx.Done():
		}
	}()
	if !h.Arrived(ctx, d) {
		s.log.Warn("camera not admitted; not mounted", "camera", d.Serial, "bay", d.Bay())
		return
	}
	// Waiting for the volume and for a bus slot also ends when Run stops:
	// no new copy starts after that.
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(runCtx, cancel)()
	v, err := s.o.Storage.Attach(wait, a.dev, p)
	if err != nil {
		if wait.Err() != nil {
			return // yanked (or stopping) before the volume was readable
		}
		s.log.Error("camera storage not readable", "camera", d.Serial, "bay", d.Bay(), "err", err)
		h.Failed(d, err)
		return
	}
	d.Path, d.Source, d.FS = v.Path, v.Source, v.FS
	s.log.Info("camera volume mounted read-only", "camera", d.Serial, "bay", d.Bay(), "source", v.Source,
		"fs", v.FS, "path", v.Path, "ours", v.Ours)
	defer func() {
		if err := s.o.Storage.Detach(v); err != nil {
			s.log.Error("unmount camera volume", "camera", d.Serial, "path", v.Path, "err", err)
		}
	}()
	select {
	case sem <- struct{}{}:
	case <-wait.Done():
		return
	}
	defer func() { <-sem }()
	if wait.Err() != nil {
		return // both were ready: stopping wins
	}
	h.Settled(ctx, d)
}
