package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits Validate enforces, with the reason for each.
const (
	// maxSocketPath is sun_path's size on Linux: a longer control socket
	// path cannot be bound at all.
	maxSocketPath = 108
	// maxRetentionDays is the longest retention S3 Object Lock accepts
	// (100 years); a longer value is a typo.
	maxRetentionDays = 36500
	// S3 multipart parts are at least 5 MiB, and a single PUT is at most
	// 5 GiB, so the threshold must lie between the two.
	minMultipartThreshold = 5 * MiB
	maxMultipartThreshold = 5 * GiB
	// maxPrefix leaves room for the keys evidenced appends in S3's
	// 1024-byte key limit.
	maxPrefix = 512
	// maxUploadConcurrency bounds parallel uploads: more only splits the
	// uplink further and holds more files open.
	maxUploadConcurrency = 64
	// maxPartConcurrency: parts beyond this only queue in the same uplink.
	maxPartConcurrency = 32
	// minBandwidth: below 64 KiB/s a single 8 MiB part takes minutes and
	// request timeouts start to fail uploads that are merely slow.
	minBandwidth  = 64 * KiB
	maxAssignedTo = 128
	// USB polling: faster than minUSBPoll costs CPU for nothing a person
	// can notice; slower than maxUSBPoll misses the one-second promise
	// from dock to DOCKED by a wide margin.
	minUSBPoll = 50 * time.Millisecond
	maxUSBPoll = 5 * time.Second
	// maxPerBus: even a USB 3 bus gains nothing from more parallel copies.
	maxPerBus = 16
	// maxFilesPerDock: each file costs ledger records kept forever; ten
	// million is far beyond any camera and still bounds the damage.
	maxFilesPerDock = 10_000_000
	// maxDepth is camfs.MaxDepth: the walk holds one descriptor per level.
	maxDepth = 64
)

// Identifiers (host id, serials, class names) become folder names, object
// key segments and ledger fields: keep them to a portable alphabet.
var identRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate reports every problem with c, each naming its key. A Config that
// passes is safe to act on. Paths must already be absolute: Parse and Load
// resolve relative ones against the config file's directory first.
func (c *Config) Validate() error {
	v := &validator{c: c}

	v.ident("host_id", c.HostID, "host id")
	v.absPath("state_dir", c.StateDir)

	watched := map[string]string{}
	for i, w := range c.Sources.Watch {
		key := fmt.Sprintf("sources.watch[%d]", i)
		if !v.absPath(key, w) {
			continue
		}
		if prev, dup := watched[w]; dup {
			v.add(key, "%s is already watched (%s)", w, prev)
			continue
		}
		for other, okey := range watched {
			if within(w, other) || within(other, w) {
				v.add(key, "%s overlaps %s (%s): a watched directory's subdirectories are cameras, so one cannot hold the other", w, okey, other)
			}
		}
		watched[w] = key
		if c.StateDir != "" && (within(w, c.StateDir) || within(c.StateDir, w)) {
			v.add(key, "%s overlaps state_dir %s: evidenced would ingest its own vault or see it as a camera", w, c.StateDir)
		}
	}
	if c.Sources.Settle.Duration <= 0 {
		v.add("sources.settle", "must be more than 0, got %s", c.Sources.Settle)
	}
	v.manual(c)
	if n := c.Sources.MaxFilesPerDock; n < 1 || n > maxFilesPerDock {
		v.add("sources.max_files_per_dock", "must be 1-%d, got %d", maxFilesPerDock, n)
	}
	if d := c.Sources.MaxDepth; d < 1 || d > maxDepth {
		v.add("sources.max_depth", "must be 1-%d, got %d", maxDepth, d)
	}
	v.usb(&c.Sources.USB, watched)

	if o := c.ObjectStore; o != nil {
		v.objectStore(o)
	}

	v.retention(&c.Retention)

	v.cameras("cameras", c.Cameras)
	for i, cam := range c.Cameras {
		if pin := cam.USBID; pin != nil && !slices.ContainsFunc(c.Sources.USB.Profiles, func(p Profile) bool {
			return p.VendorID == pin.Vendor && p.ProductID == pin.Product
		}) {
			v.add(fmt.Sprintf("cameras[%d].usb_id", i), "%s is the model of no sources.usb.profiles entry: the camera could never dock over USB", pin)
		}
	}
	v.inventory(c)

	if c.ShutdownTimeout.Duration <= 0 {
		v.add("shutdown_timeout", "must be more than 0, got %s", c.ShutdownTimeout)
	}
	if c.VaultReserve < 0 {
		v.add("vault_reserve", "must not be negative, got %d", int64(c.VaultReserve))
	}
	v.wipe(c)
	v.custody(c)
	v.control(c)
	v.console(c)
	v.metrics(c.Metrics)
	v.http(c.HTTP)
	v.oidc(c)
	v.sidecars(c.Sidecars)

	u := c.Upload
	if u.Concurrency < 1 || u.Concurrency > maxUploadConcurrency {
		v.add("upload.concurrency", "must be between 1 and %d, got %d", maxUploadConcurrency, u.Concurrency)
	}
	if u.RetryMin.Duration <= 0 {
		v.add("upload.retry_min", "must be more than 0, got %s", u.RetryMin)
	}
	if u.RetryMax.Duration < u.RetryMin.Duration {
		v.add("upload.retry_max", "must not be less than upload.retry_min (%s), got %s", u.RetryMin, u.RetryMax)
	}
	if u.PartConcurrency < 1 || u.PartConcurrency > maxPartConcurrency {
		v.add("upload.part_concurrency", "must be between 1 and %d, got %d", maxPartConcurrency, u.PartConcurrency)
	}
	if u.Bandwidth != 0 && (u.Bandwidth < minBandwidth) {
		v.add("upload.bandwidth", "must be 0 (unlimited) or at least %s per second, got %d", minBandwidth, int64(u.Bandwidth))
	}
	if u.AbandonedAfter.Duration < 0 {
		v.add("upload.abandoned_after", "must not be negative, got %s", u.AbandonedAfter)
	}
	for i, w := range u.Windows {
		key := fmt.Sprintf("upload.windows[%d]", i)
		from, err := ParseClock(w.From)
		if err != nil {
			v.add(key+".from", "%v", err)
		}
		to, err2 := ParseClock(w.To)
		if err2 != nil {
			v.add(key+".to", "%v", err2)
		}
		if err == nil && err2 == nil && from == to {
			v.add(key+".to", "must differ from from (%s): an empty window", w.From)
		}
		if w.Bandwidth != 0 && w.Bandwidth < minBandwidth {
			v.add(key+".bandwidth", "must be 0 (unlimited) or at least %s per second, got %d", minBandwidth, int64(w.Bandwidth))
		}
	}

	if c.ControlSocket != "" {
		v.absPath("control_socket", c.ControlSocket)
	}
	if sp := c.SocketPath(); len(sp) > maxSocketPath && filepath.IsAbs(sp) {
		key := "control_socket"
		if c.ControlSocket == "" {
			key = "state_dir"
		}
		v.add(key, "the control socket path %s is %d bytes; Unix sockets allow at most %d (set control_socket to a shorter path)", sp, len(sp), maxSocketPath)
	}
	v.socketDir(c)

	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		v.add("log_level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return joinErrors(v.errs)
}

// cameras checks an inventory list (the config's cameras:, or a published
// inventory's), each entry's key under key.
func (v *validator) cameras(key string, cams []Camera) {
	serials := map[string]string{} // lower-cased serial → key
	for i, cam := range cams {
		key := fmt.Sprintf("%s[%d]", key, i)
		if v.ident(key+".serial", cam.Serial, "serial") {
			// Case-insensitive: the serial is a folder name, and camera
			// media (FAT, exFAT) ignores case.
			if prev, dup := serials[strings.ToLower(cam.Serial)]; dup {
				v.add(key+".serial", "%q is already listed at %s", cam.Serial, prev)
			} else {
				serials[strings.ToLower(cam.Serial)] = key
			}
		}
		if cam.Kind != KindBody && cam.Kind != KindVehicle {
			v.add(key+".kind", "must be %s or %s, got %q", KindBody, KindVehicle, cam.Kind)
		}
		v.text(key+".assigned_to", cam.AssignedTo, maxAssignedTo)
	}
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{File: v.c.Path, Line: v.c.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// lineOf is the line key was written on, or the nearest enclosing key's
// (a missing object_store.bucket points at object_store).
func (c *Config) lineOf(key string) int {
	for key != "" {
		if l, ok := c.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

func (v *validator) ident(key, s, what string) bool {
	switch {
	case s == "":
		v.add(key, "required")
	case s == "." || s == "..":
		v.add(key, "%q cannot be a %s", s, what)
	case !identRE.MatchString(s):
		v.add(key, "%q is not a valid %s: use 1-64 of A-Z a-z 0-9 . _ -", s, what)
	default:
		return true
	}
	return false
}

func (v *validator) absPath(key, p string) bool {
	switch {
	case p == "":
		v.add(key, "required")
	case strings.HasPrefix(p, "~"):
		v.add(key, "%q: ~ is not expanded; write the absolute path", p)
	case strings.ContainsRune(p, 0):
		v.add(key, "contains a NUL byte")
	case !filepath.IsAbs(p):
		// Only a Config built in code gets here: Parse resolves relative
		// paths against the config file's directory.
		v.add(key, "%q must be an absolute path", p)
	default:
		return true
	}
	return false
}

// text checks a required free-text field: printable, bounded.
func (v *validator) text(key, s string, max int) {
	switch {
	case strings.TrimSpace(s) == "":
		v.add(key, "required")
	case len(s) > max:
		v.add(key, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		v.add(key, "not valid UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		v.add(key, "contains control characters")
	}
}

// usb checks sources.usb; watched maps watched directories to their keys.
func (v *validator) usb(u *USB, watched map[string]string) {
	if d := u.Poll.Duration; d < minUSBPoll || d > maxUSBPoll {
		v.add("sources.usb.poll", "must be between %s and %s, got %s", minUSBPoll, maxUSBPoll, u.Poll)
	}
	if u.PerBus < 1 || u.PerBus > maxPerBus {
		v.add("sources.usb.per_bus", "must be between 1 and %d, got %d", maxPerBus, u.PerBus)
	}
	if v.absPath("sources.usb.mount_dir", u.MountDir) {
		sd := v.c.StateDir
		if sd != "" && (within(u.MountDir, sd) || within(sd, u.MountDir)) {
			v.add("sources.usb.mount_dir", "%s overlaps state_dir %s: camera mounts and the vault must stay apart", u.MountDir, sd)
		}
		for w, key := range watched {
			if within(u.MountDir, w) || within(w, u.MountDir) {
				v.add("sources.usb.mount_dir", "%s overlaps %s (%s): a USB camera would be ingested twice", u.MountDir, key, w)
			}
		}
	}
	if u.Enabled && len(u.Profiles) == 0 {
		v.add("sources.usb.profiles", "at least one camera profile is required when USB is enabled: without one no device is a camera")
	}
	names := map[string]string{}
	ids := map[[2]USBID]string{}
	for i, p := range u.Profiles {
		key := fmt.Sprintf("sources.usb.profiles[%d]", i)
		if v.ident(key+".name", p.Name, "profile name") {
			if prev, dup := names[p.Name]; dup {
				v.add(key+".name", "%q is already defined at %s", p.Name, prev)
			} else {
				names[p.Name] = key
			}
		}
		if p.VendorID == 0 {
			v.add(key+".vendor_id", "required (and 0000 is not a vendor)")
		}
		// A product id of 0000 is real for some vendors: only the pair
		// must be unique.
		id := [2]USBID{p.VendorID, p.ProductID}
		if prev, dup := ids[id]; dup && p.VendorID != 0 {
			v.add(key, "%s:%s is already the model of %s", p.VendorID, p.ProductID, prev)
		} else {
			ids[id] = key
		}
		if len(p.Recordings) == 0 {
			v.add(key+".recordings", "at least one folder is required, e.g. [DCIM]")
		}
		for j, r := range p.Recordings {
			rkey := fmt.Sprintf("%s.recordings[%d]", key, j)
			switch {
			case r == "" || strings.ContainsRune(r, 0):
				v.add(rkey, "required")
			case strings.HasPrefix(r, "/") || strings.Contains(r, "\\"):
				v.add(rkey, "%q must be relative to the volume root, with / between folders", r)
			case path.Clean(r) != r || r == "." || r == ".." || strings.HasPrefix(r, "../"):
				v.add(rkey, "%q must be a clean path inside the volume (no ., .., or //)", r)
			}
		}
		seen := map[string]bool{}
		for j, fs := range p.FS {
			fkey := fmt.Sprintf("%s.fs[%d]", key, j)
			switch {
			case fs != FSVFAT && fs != FSExFAT:
				v.add(fkey, "must be %s or %s, got %q", FSVFAT, FSExFAT, fs)
			case seen[fs]:
				v.add(fkey, "%s is listed twice", fs)
			}
			seen[fs] = true
		}
	}
}

func (v *validator) objectStore(o *ObjectStore) {
	if o.Endpoint != "" {
		if msg := checkEndpoint(o.Endpoint); msg != "" {
			v.add("object_store.endpoint", "%s", msg)
		}
	}
	if o.Bucket == "" {
		v.add("object_store.bucket", "required")
	} else if msg := checkBucket(o.Bucket); msg != "" {
		v.add("object_store.bucket", "%q %s", o.Bucket, msg)
	}
	if o.Region == "" {
		v.add("object_store.region", "required (us-east-1 suits most self-hosted stores)")
	} else if strings.IndexFunc(o.Region, func(r rune) bool {
		return !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) >= 0 || len(o.Region) > 64 {
		v.add("object_store.region", "%q is not a region name", o.Region)
	}
	switch p := o.Prefix; {
	case len(p) > maxPrefix:
		v.add("object_store.prefix", "longer than %d bytes", maxPrefix)
	case !utf8.ValidString(p):
		v.add("object_store.prefix", "not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		v.add("object_store.prefix", "%q must not start with /", p)
	case strings.Contains(p, "//"):
		v.add("object_store.prefix", "%q must not contain //", p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		v.add("object_store.prefix", "contains control characters")
	default:
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				v.add("object_store.prefix", "%q must not contain . or .. segments", p)
				break
			}
		}
	}
	if t := o.MultipartThreshold; t < minMultipartThreshold || t > maxMultipartThreshold {
		v.add("object_store.multipart_threshold", "must be between %s and %s (S3's part and single-upload limits), got %s", minMultipartThreshold, maxMultipartThreshold, t)
	}
}

// checkEndpoint returns what is wrong with an endpoint URL, or "".
func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	switch {
	case !strings.Contains(s, "://"):
		return fmt.Sprintf("%q must start with http:// or https://", s)
	case err != nil:
		return fmt.Sprintf("%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q must start with http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return "must not contain a user or password: credentials are never read from the config file; give them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not have a query or fragment", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("%q has an invalid port", s)
		}
	}
	return ""
}

// checkBucket applies S3's general-purpose bucket naming rules and returns
// the one broken, or "".
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
func checkBucket(b string) string {
	if len(b) < 3 || len(b) > 63 {
		return "must be 3-63 characters long"
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return "may only contain lower-case letters, digits, dots and hyphens"
		}
	}
	isAlnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return "must begin and end with a letter or digit"
	}
	if strings.Contains(b, "..") {
		return "must not contain two dots in a row"
	}
	if net.ParseIP(b) != nil {
		return "must not look like an IP address"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return "must not start with " + p
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return "must not end with " + s
		}
	}
	return ""
}

func (v *validator) retention(r *Retention) {
	if len(r.Classes) == 0 {
		v.add("retention.classes", "at least one class is required: retention is policy, so there is no built-in default")
	}
	names := map[string]string{}
	for i, cl := range r.Classes {
		key := fmt.Sprintf("retention.classes[%d]", i)
		if v.ident(key+".name", cl.Name, "class name") {
			if prev, dup := names[cl.Name]; dup {
				v.add(key+".name", "%q is already defined at %s", cl.Name, prev)
			} else {
				names[cl.Name] = key
			}
		}
		if cl.Days <= 0 || cl.Days > maxRetentionDays {
			v.add(key+".days", "must be between 1 and %d, got %d", maxRetentionDays, cl.Days)
		}
		if cl.Mode != ModeGovernance && cl.Mode != ModeCompliance {
			v.add(key+".mode", "must be %s or %s (upper case, as S3 spells them), got %q", ModeGovernance, ModeCompliance, cl.Mode)
		}
	}
	switch {
	case r.DefaultClass == "":
		v.add("retention.default_class", "required")
	case len(r.Classes) > 0 && names[r.DefaultClass] == "":
		v.add("retention.default_class", "%q is not one of retention.classes", r.DefaultClass)
	}
}

// within reports whether path p is dir or inside it (both clean, absolute).
func within(p, dir string) bool {
	if p == dir {
		return true
	}
	if dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// wipe checks the vault buffer policy and the wipe rule keys.
func (v *validator) wipe(c *Config) {
	if c.Vault.Grace.Duration < 0 {
		v.add("vault.grace", "must not be negative, got %s", c.Vault.Grace)
	}
	if c.Vault.MinFree < 0 {
		v.add("vault.min_free", "must not be negative, got %d", int64(c.Vault.MinFree))
	}
	if c.Vault.IOBudget < MiB {
		v.add("vault.io_budget", "must be at least 1MiB (one I/O buffer; default %s), got %d bytes", ByteSize(DefaultVaultIOBudget), int64(c.Vault.IOBudget))
	}
	if c.ObjectStore != nil {
		return
	}
	// Without an object store nothing is ever verified, so a wipe could
	// never happen: a config asking for one is a mistake worth stopping on.
	if c.WipeAfterVerify {
		v.add("wipe_after_verify", "needs object_store: a camera file is deleted only once verified in the object store")
	}
	for i, cam := range c.Cameras {
		if cam.WipeAfterVerify != nil && *cam.WipeAfterVerify {
			v.add(fmt.Sprintf("cameras[%d].wipe_after_verify", i), "needs object_store: a camera file is deleted only once verified in the object store")
		}
	}
}
