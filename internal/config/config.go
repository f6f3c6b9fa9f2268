package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every error Load, Parse and Validate return: the
// configuration cannot be used as it is, and retrying will not help.
var ErrInvalid = errors.New("invalid configuration")

// maxFileSize bounds what Load reads: a config is a few kilobytes, and a
// --config pointing at a recording by mistake should fail fast and clearly.
const maxFileSize = 1 << 20

// Config is one host's configuration. The yaml tags are the file's key names
// and are a contract: configs/evidenced.example.yaml documents every one.
type Config struct {
	// Role is dock (the default) or console (see Console).
	Role string `yaml:"role"`
	// HostID names this docking-station host in every custody record.
	HostID string `yaml:"host_id"`
	// StateDir holds the ledger (bbolt) and the vault.
	StateDir string `yaml:"state_dir"`
	// Sources are where docked cameras appear.
	Sources Sources `yaml:"sources"`
	// ObjectStore is nil when the section is absent: vault only, uploads
	// wait until a store is configured.
	ObjectStore *ObjectStore `yaml:"object_store"`
	// Retention is the policy applied to uploaded objects.
	Retention Retention `yaml:"retention"`
	// Cameras is the inventory: a camera not listed is reported, never
	// ingested.
	Cameras []Camera `yaml:"cameras"`
	// ShutdownTimeout bounds the drain after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// VaultReserve is free space kept on the vault's file system.
	VaultReserve ByteSize `yaml:"vault_reserve"`
	// Vault is the vault's buffer policy: how long verified copies are kept
	// and when new docks are refused for lack of space.
	Vault VaultPolicy `yaml:"vault"`
	// WipeAfterVerify deletes a camera's file once it is verified in the
	// object store and every condition of the wipe rule holds (package
	// wipe). Off by default; a cameras: entry may override it.
	WipeAfterVerify bool `yaml:"wipe_after_verify"`
	// VerifySourceBeforeWipe re-reads the camera file before a wipe and
	// requires it to hash as it did when copied. A cameras: entry may
	// override it.
	VerifySourceBeforeWipe bool `yaml:"verify_source_before_wipe"`
	// Upload tunes the uploader.
	Upload Upload `yaml:"upload"`
	// Custody configures the off-host anchoring of the custody ledger
	// (package anchor): checkpoints, time-stamps and the host key.
	Custody Custody `yaml:"custody"`
	// ControlSocket is the daemon's Unix socket; empty means
	// <state_dir>/evidenced.sock (see SocketPath).
	ControlSocket string `yaml:"control_socket"`
	// Control says which Unix groups may use the control socket besides
	// root and the daemon's user.
	Control Control `yaml:"control"`
	// LogLevel is debug, info, warn or error (slog.Level text).
	LogLevel string `yaml:"log_level"`
	// Console is nil unless role is console: the dock hosts it trusts.
	Console *Console `yaml:"console"`
	// Inventory is nil unless a dock host takes its camera inventory from
	// the one a console publishes in the store (inventory.go).
	Inventory *Inventory `yaml:"inventory"`
	// Metrics is the Prometheus endpoint (off unless metrics.listen is set).
	Metrics Metrics `yaml:"metrics"`
	// HTTP is the web listener (off unless http.listen is set): the dock
	// page, or the console's web UI.
	HTTP HTTP `yaml:"http"`
	// OIDC is the sign-in of a console's web UI (nil: no web UI sign-in).
	OIDC *OIDC `yaml:"oidc"`
	// Sidecars say which files on a camera are GPS logs, plate-read logs or
	// recordings whose headers are read (glob → parser), for every camera
	// or for one camera kind; none: nothing is parsed.
	Sidecars []SidecarRule `yaml:"sidecars"`

	// Path is the file the configuration came from (absolute when it came
	// through Load), for messages and for resolving relative paths.
	Path string `yaml:"-"`

	// lines maps key paths ("cameras[3].serial") to the line they were
	// written on, so Validate can point at the file.
	lines map[string]int
	// live is the newest config accepted by Reload (live.go).
	live *live
}

// Sources are the places docked cameras appear.
type Sources struct {
	// Watch lists directories whose direct subdirectories are docked
	// cameras, each named by its serial.
	Watch []string `yaml:"watch"`
	// Settle is how long a camera folder must be unchanged before it is
	// ingested (again).
	Settle Duration `yaml:"settle"`
	// USB is direct USB detection of docked cameras (mass storage).
	USB USB `yaml:"usb"`
	// Manual lists the further directories `evidenced ingest --from` may
	// read through the daemon (a card reader's mount, an offload share).
	// The daemon reads with its own rights, so --from is confined to these,
	// the watched directories and the USB mount directory: never state_dir
	// (the host key, the vault) or the config's directory.
	Manual []string `yaml:"manual"`
	// MaxFilesPerDock caps the regular files one camera may present: each
	// file becomes ledger records that are never deleted, so a camera with
	// more is refused by name with its count and nothing of it is ingested.
	MaxFilesPerDock int `yaml:"max_files_per_dock"`
	// MaxDepth is how many directory levels below a camera's root are
	// read; a deeper directory is refused by name (cameras use two or
	// three: DCIM/100MEDIA).
	MaxDepth int `yaml:"max_depth"`
}

// USB configures detection of cameras docked over USB: which device models
// are cameras (Profiles), how often the bus is looked at, and where their
// storage is mounted read-only.
type USB struct {
	// Enabled turns USB detection on; off, the other keys are still checked
	// but nothing is polled or mounted.
	Enabled bool `yaml:"enabled"`
	// Poll is how often the USB device list is read through libusb and
	// compared with the last one. libusb on a host without udevd has no
	// hot-plug events, so polling is what notices a dock; between reads a
	// change of the sysfs USB tree (checked every 100ms) triggers a read at
	// once (usbdock.Options.Topology).
	Poll Duration `yaml:"poll"`
	// MountDir holds a private, read-only mount point per docked camera.
	MountDir string `yaml:"mount_dir"`
	// PerBus is how many cameras on one USB bus copy at the same time: the
	// bays of one hub share its bandwidth, so more only makes them thrash.
	// Cameras on different buses always copy in parallel.
	PerBus int `yaml:"per_bus"`
	// Profiles are the camera models, by vendor:product id. A USB device
	// that matches none is not a camera and is ignored.
	Profiles []Profile `yaml:"profiles"`
}

// Profile is one camera model.
type Profile struct {
	// Name names the model in logs and custody details.
	Name string `yaml:"name"`
	// VendorID and ProductID identify the model on USB (hex, as lsusb
	// prints them).
	VendorID  USBID `yaml:"vendor_id"`
	ProductID USBID `yaml:"product_id"`
	// Recordings are the folders (relative to the volume root) that hold
	// recordings and sidecars; the volume that has one is the one mounted
	// when a camera presents several.
	Recordings []string `yaml:"recordings"`
	// FS are the file system types the camera may present: vfat, exfat.
	// Anything else on the device is not mounted. Empty means both.
	FS []string `yaml:"fs"`
}

// FileSystems is FS with its default applied.
func (p Profile) FileSystems() []string {
	if len(p.FS) == 0 {
		return []string{FSVFAT, FSExFAT}
	}
	return p.FS
}

// File system types a camera profile may name (Linux mount type names).
const (
	FSVFAT  = "vfat"
	FSExFAT = "exfat"
)

// ObjectStore is the S3-compatible store of record.
type ObjectStore struct {
	// Endpoint is the store's base URL; empty means AWS's own endpoint for
	// Region.
	Endpoint string `yaml:"endpoint"`
	// Bucket must exist with versioning and Object Lock enabled.
	Bucket string `yaml:"bucket"`
	// Region is the signing region.
	Region string `yaml:"region"`
	// PathStyle addresses the bucket in the URL path (most self-hosted
	// stores) instead of as a host name.
	PathStyle bool `yaml:"path_style"`
	// Prefix is prepended to every object key.
	Prefix string `yaml:"prefix"`
	// MultipartThreshold is the size from which uploads are multipart.
	MultipartThreshold ByteSize `yaml:"multipart_threshold"`
}

// Retention is the policy: which class new footage gets, and what each class
// means as S3 Object Lock retention.
type Retention struct {
	DefaultClass string  `yaml:"default_class"`
	Classes      []Class `yaml:"classes"`
}

// Class is one retention class.
type Class struct {
	Name string `yaml:"name"`
	// Days is the Object Lock retention period from upload.
	Days int `yaml:"days"`
	// Mode is GOVERNANCE or COMPLIANCE (S3 Object Lock modes).
	Mode string `yaml:"mode"`
}

// Object Lock modes, spelled as S3 spells them.
const (
	ModeGovernance = "GOVERNANCE"
	ModeCompliance = "COMPLIANCE"
)

// Camera is one inventory entry.
type Camera struct {
	// Serial is the camera's identity (USB iSerial) and its folder name.
	Serial string `yaml:"serial"`
	// Kind is body or vehicle.
	Kind string `yaml:"kind"`
	// AssignedTo is the officer or vehicle the camera is issued to.
	AssignedTo string `yaml:"assigned_to"`
	// WipeAfterVerify and VerifySourceBeforeWipe override the top-level
	// keys of the same name for this camera; nil keeps them.
	WipeAfterVerify        *bool `yaml:"wipe_after_verify"`
	VerifySourceBeforeWipe *bool `yaml:"verify_source_before_wipe"`
	// USBID, when set, pins the camera to one USB model (vendor:product,
	// as lsusb prints it): a device presenting this serial as another
	// model is refused, never mounted. nil: any configured profile.
	USBID *USBPair `yaml:"usb_id"`
	// Published is the console's inventory entry the camera was looked up
	// in (nil: from cameras:), and InventoryVersion its document's
	// version: the assignment history and retirement come from it.
	Published        *InventoryCamera `yaml:"-"`
	InventoryVersion uint64           `yaml:"-"`
}

// AssignedAt is to whom the camera was issued at t and which entry of the
// published inventory said so ("assigned_to", or "assignments[N]"; "" for
// a camera of cameras:, which has no history).
func (c Camera) AssignedAt(t time.Time) (who, which string) {
	if c.Published == nil {
		return c.AssignedTo, ""
	}
	who, i := c.Published.AssignedAt(t)
	if i < 0 {
		return who, "assigned_to"
	}
	return who, fmt.Sprintf("assignments[%d]", i)
}

// RetiredAt reports whether the published inventory retired the camera at
// or before t (a camera of cameras: is never retired).
func (c Camera) RetiredAt(t time.Time) bool {
	return c.Published != nil && c.Published.RetiredAt(t)
}

// VaultPolicy makes the vault a buffer rather than an archive.
type VaultPolicy struct {
	// Grace is how long a vault copy is kept after its item is VERIFIED in
	// the object store; then it is removed (VAULT_RELEASED). 0 keeps every
	// copy for good.
	Grace Duration `yaml:"grace"`
	// MinFree is the free space a dock must leave on the vault's file
	// system once all its new footage is copied; a dock that would not is
	// refused before any copy starts. 0 leaves only vault_reserve.
	MinFree ByteSize `yaml:"min_free"`
	// IOBudget is the memory every vault copy and cold read-back of the
	// daemon share for their 1 MiB I/O buffers (package iobuf): with more
	// cameras docked at once than it serves at full speed, copies wait for
	// a buffer rather than the daemon's memory growing. At least 1MiB.
	IOBudget ByteSize `yaml:"io_budget"`
}

// WipePolicy is the wipe rule as it applies to one camera.
type WipePolicy struct {
	// Enabled: delete the camera's file once the wipe rule holds.
	Enabled bool
	// VerifySource: re-read the camera file first (condition e).
	VerifySource bool
}

// WipePolicy returns the wipe rule for camera serial: the top-level keys,
// overridden by the camera's own. A serial not in the inventory is never
// wiped.
func (c *Config) WipePolicy(serial string) WipePolicy {
	// The wipe rule deletes camera files: it follows the config the
	// daemon started with, never a reloaded one (a camera added by a
	// reload is not wiped until the next start).
	cam, ok := cameraIn(c.Cameras, serial)
	if !ok {
		return WipePolicy{}
	}
	p := WipePolicy{Enabled: c.WipeAfterVerify, VerifySource: c.VerifySourceBeforeWipe}
	if cam.WipeAfterVerify != nil {
		p.Enabled = *cam.WipeAfterVerify
	}
	if cam.VerifySourceBeforeWipe != nil {
		p.VerifySource = *cam.VerifySourceBeforeWipe
	}
	// A camera the console's inventory retires (now, or at a time to
	// come) is never wiped: whatever it still holds is evidence nobody
	// expected, and the camera itself may be wanted.
	if pub := c.published(); pub != nil {
		for _, pc := range pub.Cameras {
			if pc.Serial == cam.Serial && pc.Retired != nil {
				p.Enabled = false
			}
		}
	}
	return p
}

// AnyWipe reports whether the wipe rule is on for any camera.
func (c *Config) AnyWipe() bool {
	for _, cam := range c.Cameras {
		if c.WipePolicy(cam.Serial).Enabled {
			return true
		}
	}
	return false
}

// Camera kinds.
const (
	KindBody    = "body"
	KindVehicle = "vehicle"
)

// Upload tunes the uploader.
type Upload struct {
	// Concurrency is how many recordings upload at once.
	Concurrency int `yaml:"concurrency"`
	// RetryMin and RetryMax bound the exponential back-off between attempts
	// after a transient failure.
	RetryMin Duration `yaml:"retry_min"`
	RetryMax Duration `yaml:"retry_max"`
	// PartConcurrency is how many parts of one multipart recording are in
	// flight at once; concurrency × part_concurrency bounds the requests.
	PartConcurrency int `yaml:"part_concurrency"`
	// PartSumsAtIngest makes the ingest's cold read-back also hash each
	// upload part and sign their composite in VAULTED, so that the upload
	// hashes nothing (one SHA-256 per byte more at ingest, two fewer at
	// upload; docs/BENCHMARKS.md). On by default: on an idle host the
	// ingest keeps its goal with it and the upload meets its goals only
	// with it. Off: the read-back hashes the whole only and the upload
	// hashes the vault copy, as for records from before part sums. Only
	// the ingest reads it: the upload goes by each item's VAULTED record,
	// so turning it either way leaves items already vaulted uploadable.
	PartSumsAtIngest bool `yaml:"part_sums_at_ingest"`
	// Bandwidth caps the bytes per second all uploads together send, outside
	// Windows; 0 means unlimited.
	Bandwidth ByteSize `yaml:"bandwidth"`
	// Windows are times of day (host local time) with their own bandwidth
	// cap, e.g. full speed at night.
	Windows []Window `yaml:"windows"`
	// AbandonedAfter is the age from which a multipart upload in the bucket
	// that this host's ledger does not know is aborted at start-up; 0 means
	// never (uploads of this host's own items are always reconciled, and
	// one at objstore.PartProbeKey is always aborted).
	AbandonedAfter Duration `yaml:"abandoned_after"`
}

// Window is a daily time range [From, To) in the host's local time; it may
// wrap past midnight (22:00-06:00).
type Window struct {
	From string `yaml:"from"` // HH:MM
	To   string `yaml:"to"`   // HH:MM
	// Bandwidth is the cap inside the window; 0 means unlimited.
	Bandwidth ByteSize `yaml:"bandwidth"`
}

// ParseClock parses "HH:MM" (00:00-23:59) into minutes after midnight.
func ParseClock(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time of day; write HH:MM, e.g. 22:00", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("%q is not a time of day; write HH:MM, e.g. 22:00", s)
	}
	return h*60 + m, nil
}

// Contains reports whether t (taken in its own location) falls in w. A
// window whose times do not parse contains nothing (Validate refuses it).
func (w Window) Contains(t time.Time) bool {
	from, err1 := ParseClock(w.From)
	to, err2 := ParseClock(w.To)
	if err1 != nil || err2 != nil || from == to {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	if from < to {
		return m >= from && m < to
	}
	return m >= from || m < to
}

// BandwidthAt is the upload cap in bytes per second at t: the first window
// containing t, else Bandwidth. 0 means unlimited.
func (u Upload) BandwidthAt(t time.Time) int64 {
	for _, w := range u.Windows {
		if w.Contains(t) {
			return int64(w.Bandwidth)
		}
	}
	return int64(u.Bandwidth)
}

// Defaults for keys the file leaves out.
const (
	DefaultStateDir           = "/var/lib/evidenced"
	DefaultSettle             = 2 * time.Second
	DefaultRegion             = "us-east-1"
	DefaultMultipartThreshold = 64 * MiB
	DefaultClass              = "uncategorized"
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultVaultReserve       = 1 * GiB
	DefaultVaultIOBudget      = 32 * MiB // iobuf.DefaultBudget
	DefaultUploadConcurrency  = 2
	DefaultRetryMin           = time.Second
	DefaultRetryMax           = 5 * time.Minute
	DefaultPartConcurrency    = 4
	DefaultAbandonedAfter     = 7 * 24 * time.Hour
	DefaultLogLevel           = "info"
	DefaultUSBPoll            = 500 * time.Millisecond
	DefaultUSBMountDir        = "/run/evidenced/mnt"
	DefaultUSBPerBus          = 1
	DefaultMaxFilesPerDock    = 100000
	DefaultMaxDepth           = 16
)

// Default returns a configuration holding every default. It is not valid on
// its own: host_id and the retention classes have no default, because a
// host's identity and a retention policy are decisions, not defaults.
func Default() *Config {
	return &Config{
		Role:     RoleDock,
		StateDir: DefaultStateDir,
		Sources: Sources{Settle: Duration{DefaultSettle}, MaxFilesPerDock: DefaultMaxFilesPerDock, MaxDepth: DefaultMaxDepth, USB: USB{
			Poll: Duration{DefaultUSBPoll}, MountDir: DefaultUSBMountDir, PerBus: DefaultUSBPerBus,
		}},
		Retention:       Retention{DefaultClass: DefaultClass},
		ShutdownTimeout: Duration{DefaultShutdownTimeout},
		VaultReserve:    DefaultVaultReserve,
		Vault:           VaultPolicy{IOBudget: DefaultVaultIOBudget},
		Upload: Upload{
			Concurrency: DefaultUploadConcurrency,
			RetryMin:    Duration{DefaultRetryMin},
			RetryMax:    Duration{DefaultRetryMax},

			PartConcurrency:  DefaultPartConcurrency,
			PartSumsAtIngest: true,
			AbandonedAfter:   Duration{DefaultAbandonedAfter},
		},
		LogLevel: DefaultLogLevel,
		HTTP:     HTTP{DockPage: DockPage{ShowAssignedTo: true}},
	}
}

// defaultObjectStore is what an object_store section starts from.
func defaultObjectStore() *ObjectStore {
	return &ObjectStore{Region: DefaultRegion, MultipartThreshold: DefaultMultipartThreshold}
}

// Load reads, decodes and validates the configuration file at path.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %w", ErrInvalid, path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %w", ErrInvalid, abs, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: config %s: not a regular file", ErrInvalid, abs)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %w", ErrInvalid, abs, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: config %s: larger than %s; is this the right file?", ErrInvalid, abs, ByteSize(maxFileSize))
	}
	return Parse(data, abs)
}

// Parse decodes and validates a configuration. name is the file it came
// from: it appears in errors, becomes Config.Path, and relative paths in the
// configuration are resolved against its directory.
func Parse(data []byte, name string) (*Config, error) {
	root, err := parseDocument(data, name)
	if err != nil {
		return nil, err
	}
	lines := map[string]int{}
	if err := checkTree(root, name, lines); err != nil {
		return nil, err
	}

	c := Default()
	c.Path = name
	c.lines = lines
	if hasKey(root, "object_store") {
		// Decoding into a non-nil pointer keeps the fields the section
		// leaves out at their defaults.
		c.ObjectStore = defaultObjectStore()
	}
	if hasKey(root, "console") {
		c.Console = defaultConsole()
	}
	if hasKey(root, "inventory") {
		c.Inventory = defaultInventory()
	}
	if hasKey(root, "oidc") {
		c.OIDC = defaultOIDC()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		// checkTree accepts only what the strict decode accepts, so this
		// is a disagreement between the two; still report it usefully.
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, displayName(name), strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := c.resolvePaths(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// resolvePaths makes relative paths relative to the config file's directory.
func (c *Config) resolvePaths() error {
	base := filepath.Dir(c.Path)
	if c.Path == "" {
		base = "."
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("%w: %s: resolve relative paths: %w", ErrInvalid, displayName(c.Path), err)
	}
	abs := func(p string) string {
		if p == "" || strings.HasPrefix(p, "~") {
			return p // Validate says why "~" is refused
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		return filepath.Clean(p)
	}
	c.StateDir = abs(c.StateDir)
	for i, w := range c.Sources.Watch {
		c.Sources.Watch[i] = abs(w)
	}
	for i, m := range c.Sources.Manual {
		c.Sources.Manual[i] = abs(m)
	}
	c.ControlSocket = abs(c.ControlSocket)
	c.Custody.WitnessFile = abs(c.Custody.WitnessFile)
	c.Sources.USB.MountDir = abs(c.Sources.USB.MountDir)
	c.resolveConsolePaths(abs)
	if c.Inventory != nil {
		c.Inventory.PublicKeyFile = abs(c.Inventory.PublicKeyFile)
	}
	c.HTTP.TLSCertFile = abs(c.HTTP.TLSCertFile)
	c.HTTP.TLSKeyFile = abs(c.HTTP.TLSKeyFile)
	if c.OIDC != nil {
		c.OIDC.ClientSecretFile = abs(c.OIDC.ClientSecretFile)
	}
	return nil
}

// Camera returns the inventory entry for serial (exact match): from the
// inventory published by the console once one is in force
// (SetPublished), else from the newest cameras: list.
func (c *Config) Camera(serial string) (Camera, bool) {
	if pub := c.published(); pub != nil {
		return pub.camera(c.current().Cameras, serial)
	}
	return cameraIn(c.current().Cameras, serial)
}

func cameraIn(cams []Camera, serial string) (Camera, bool) {
	for _, cam := range cams {
		if cam.Serial == serial {
			return cam, true
		}
	}
	return Camera{}, false
}

// Profile returns the camera profile for a USB vendor:product id.
func (c *Config) Profile(vendor, product uint16) (Profile, bool) {
	for _, p := range c.Sources.USB.Profiles {
		if uint16(p.VendorID) == vendor && uint16(p.ProductID) == product {
			return p, true
		}
	}
	return Profile{}, false
}

// Class returns the retention class called name.
// BackstopRetention is the bucket default retention store-init sets: the
// shortest class's days, in the weaker of the classes' modes (GOVERNANCE
// when any class uses it), so that the default never outlasts or
// out-ranks the lock any recording's own class asks for — it only keeps a
// version from being unlocked when a store drops the lock an upload named
// (Ceph RGW does on multipart uploads). ok is false without classes.
func (c *Config) BackstopRetention() (mode string, days int, ok bool) {
	for _, cl := range c.Retention.Classes {
		if cl.Days <= 0 {
			continue
		}
		if !ok || cl.Days < days {
			days = cl.Days
		}
		if !ok || cl.Mode == ModeGovernance {
			mode = cl.Mode
		}
		ok = true
	}
	return mode, days, ok
}

func (c *Config) Class(name string) (Class, bool) {
	for _, cl := range c.current().Retention.Classes {
		if cl.Name == name {
			return cl, true
		}
	}
	return Class{}, false
}

// LedgerPath is the custody ledger's bbolt file.
func (c *Config) LedgerPath() string { return filepath.Join(c.StateDir, "ledger.db") }

// VaultDir is the root of the local vault.
func (c *Config) VaultDir() string { return filepath.Join(c.StateDir, "vault") }

// SocketPath is the control socket: control_socket, or
// <state_dir>/evidenced.sock when that is empty.
func (c *Config) SocketPath() string {
	if c.ControlSocket != "" {
		return c.ControlSocket
	}
	return filepath.Join(c.StateDir, "evidenced.sock")
}

// SlogLevel is LogLevel as a slog.Level (info when it does not parse, which
// Validate prevents).
func (c *Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func displayName(name string) string {
	if name == "" {
		return "config"
	}
	return name
}
