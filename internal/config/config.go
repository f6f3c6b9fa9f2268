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
	// Upload tunes the uploader.
	Upload Upload `yaml:"upload"`
	// ControlSocket is the daemon's Unix socket; empty means
	// <state_dir>/evidenced.sock (see SocketPath).
	ControlSocket string `yaml:"control_socket"`
	// LogLevel is debug, info, warn or error (slog.Level text).
	LogLevel string `yaml:"log_level"`

	// Path is the file the configuration came from (absolute when it came
	// through Load), for messages and for resolving relative paths.
	Path string `yaml:"-"`

	// lines maps key paths ("cameras[3].serial") to the line they were
	// written on, so Validate can point at the file.
	lines map[string]int
}

// Sources are the places docked cameras appear.
type Sources struct {
	// Watch lists directories whose direct subdirectories are docked
	// cameras, each named by its serial.
	Watch []string `yaml:"watch"`
	// Settle is how long a camera folder must be unchanged before it is
	// ingested (again).
	Settle Duration `yaml:"settle"`
}

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
	DefaultUploadConcurrency  = 2
	DefaultRetryMin           = time.Second
	DefaultRetryMax           = 5 * time.Minute
	DefaultLogLevel           = "info"
)

// Default returns a configuration holding every default. It is not valid on
// its own: host_id and the retention classes have no default, because a
// host's identity and a retention policy are decisions, not defaults.
func Default() *Config {
	return &Config{
		StateDir:        DefaultStateDir,
		Sources:         Sources{Settle: Duration{DefaultSettle}},
		Retention:       Retention{DefaultClass: DefaultClass},
		ShutdownTimeout: Duration{DefaultShutdownTimeout},
		VaultReserve:    DefaultVaultReserve,
		Upload: Upload{
			Concurrency: DefaultUploadConcurrency,
			RetryMin:    Duration{DefaultRetryMin},
			RetryMax:    Duration{DefaultRetryMax},
		},
		LogLevel: DefaultLogLevel,
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
	c.ControlSocket = abs(c.ControlSocket)
	return nil
}

// Camera returns the inventory entry for serial (exact match).
func (c *Config) Camera(serial string) (Camera, bool) {
	for _, cam := range c.Cameras {
		if cam.Serial == serial {
			return cam, true
		}
	}
	return Camera{}, false
}

// Class returns the retention class called name.
func (c *Config) Class(name string) (Class, bool) {
	for _, cl := range c.Retention.Classes {
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
