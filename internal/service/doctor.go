package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/hostclock"
	"github.com/evidenced/evidenced/internal/signing"
)

// Check is one line of `evidenced doctor`: what was checked, whether it
// passed, what was found and, when it failed, how to fix it.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // CheckOK, CheckFail or CheckSkip
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Check outcomes.
const (
	CheckOK   = "ok"
	CheckFail = "FAIL"
	CheckSkip = "skip" // not applicable to this configuration
)

// DoctorReport is every check, in the order run.
type DoctorReport struct {
	Checks []Check `json:"checks"`
	// NotChecked says what doctor cannot tell from here.
	NotChecked []string `json:"not_checked"`
}

// Failed reports whether any check failed.
func (r DoctorReport) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			return true
		}
	}
	return false
}

func (r *DoctorReport) add(name, status, detail, fix string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: detail, Fix: fix})
}

func (r *DoctorReport) ok(name, detail string)        { r.add(name, CheckOK, detail, "") }
func (r *DoctorReport) fail(name, detail, fix string) { r.add(name, CheckFail, detail, fix) }
func (r *DoctorReport) skip(name, detail string)      { r.add(name, CheckSkip, detail, "") }

// serviceUser is the account the packaged unit runs evidenced as.
const serviceUser = "evidenced"

// Doctor checks that this host can run evidenced as configured in path:
// the config, the state directory, the host key, the object store, the
// host clock and USB access. It never opens the ledger (a running daemon
// holds its lock) and leaves nothing behind in the store.
func Doctor(ctx context.Context, path string) DoctorReport {
	var r DoctorReport
	cfg, err := config.Load(path)
	if err != nil {
		r.fail("config", err.Error(), "edit "+path+" (configs/evidenced.example.yaml documents every key)")
		r.NotChecked = append(r.NotChecked, "everything else: the config did not load")
		return r
	}
	r.ok("config", fmt.Sprintf("%s loads (host %s, %d cameras)", cfg.Path, cfg.HostID, len(cfg.Cameras)))
	owner := doctorStateDir(&r, cfg)
	doctorHostKey(&r, cfg, owner)
	doctorStore(ctx, &r, cfg)
	doctorClock(&r, hostclock.Read())
	doctorUSB(&r, cfg)
	doctorInventory(&r, cfg)
	r.NotChecked = append(r.NotChecked, doctorNotChecked...)
	return r
}

// expectedOwner is who should own state_dir: the service account when it
// exists on this host, otherwise whoever runs doctor (a development host).
func expectedOwner() (uid int, name string) {
	if u, err := user.Lookup(serviceUser); err == nil {
		if id, err := strconv.Atoi(u.Uid); err == nil {
			return id, serviceUser
		}
	}
	name = strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return os.Getuid(), name
}

func ownerName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return "uid " + strconv.FormatUint(uint64(uid), 10)
}

// doctorStateDir checks that state_dir exists (or can be made), belongs to
// the account evidenced runs as, is writable by this process and has room
// beyond vault_reserve. It returns the expected owner's name.
func doctorStateDir(r *DoctorReport, cfg *config.Config) string {
	const name = "state_dir"
	dir := cfg.StateDir
	uid, owner := expectedOwner()
	fix := fmt.Sprintf("install -d -o %[1]s -g %[1]s -m 0750 %[2]s (or chown -R %[1]s: %[2]s)", owner, dir)
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// The daemon creates it (0750) at its first start, as does the
		// unit's StateDirectory=; only a parent it cannot write is a fault.
		if unix.Access(filepath.Dir(dir), unix.W_OK|unix.X_OK) == nil {
			r.ok(name, dir+" does not exist yet; the first start creates it")
			return owner
		}
		r.fail(name, dir+" does not exist and its parent is not writable", fix)
		return owner
	}
	if err != nil {
		r.fail(name, err.Error(), fix)
		return owner
	}
	if !st.IsDir() {
		r.fail(name, dir+" is not a directory", "point state_dir at a directory; "+fix)
		return owner
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != uid {
		r.fail(name, fmt.Sprintf("%s is owned by %s, not %s", dir, ownerName(sys.Uid), owner), fix)
		return owner
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		r.fail(name, fmt.Sprintf("%s is not writable by %s: %v", dir, currentUser(), err), fix)
		return owner
	}
	f.Close()
	os.Remove(f.Name())
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		r.fail(name, fmt.Sprintf("free space of %s: %v", dir, err), "")
		return owner
	}
	free := int64(sfs.Bavail) * sfs.Frsize
	reserve := int64(cfg.VaultReserve)
	if free <= reserve {
		r.fail(name, fmt.Sprintf("%s has %s free, not more than vault_reserve %s: every dock would be refused", dir, bytesText(free), bytesText(reserve)),
			"free space on "+dir+" (or lower vault_reserve)")
		return owner
	}
	r.ok(name, fmt.Sprintf("%s owned by %s, writable, %s free (vault_reserve %s)", dir, owner, bytesText(free), bytesText(reserve)))
	return owner
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// bytesText is n in GiB, the scale of a vault.
func bytesText(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// doctorHostKey checks the host signing key without creating it: absent is
// fine before the first start; present, it must load and be private.
func doctorHostKey(r *DoctorReport, cfg *config.Config, owner string) {
	const name = "host key"
	p := cfg.KeyPath()
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		r.ok(name, p+" does not exist yet; the first start creates it (0600)")
		return
	}
	if err != nil {
		r.fail(name, err.Error(), "")
		return
	}
	if st.Mode().Perm()&0o077 != 0 {
		// A copy may have been taken: a dock host replaces the key with
		// key rotate; a console's key cannot be rotated (RotateKey).
		fix := fmt.Sprintf("chmod 600 %s; it may have been copied: evidenced key rotate --reason TEXT replaces it from the next record on (docs/THREAT-MODEL.md)", p)
		if cfg.IsConsole() {
			fix = fmt.Sprintf("chmod 600 %s; it may have been copied, and a console's key cannot be rotated: a copied key means a new host_id and state_dir (docs/THREAT-MODEL.md)", p)
		}
		r.fail(name, fmt.Sprintf("%s has mode %04o: others can read the key that signs custody", p, st.Mode().Perm()), fix)
		return
	}
	k, err := signing.Load(p, cfg.HostID)
	if errors.Is(err, fs.ErrPermission) {
		r.fail(name, err.Error(), fmt.Sprintf("chown %s %s (evidenced runs as %[1]s)", owner, p))
		return
	}
	if err != nil {
		r.fail(name, err.Error(), "restore the key from its backup; a lost key cannot be replaced by a new one")
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && ownerName(sys.Uid) != owner {
		r.fail(name, fmt.Sprintf("%s is owned by %s, not %s", p, ownerName(sys.Uid), owner), fmt.Sprintf("chown %s %s", owner, p))
		return
	}
	r.ok(name, fmt.Sprintf("%s loads, key id %s", p, k.KeyID()))
}

// doctorInventory checks that the console key inventory: pins loads: the
// daemon refuses to start without it.
func doctorInventory(r *DoctorReport, cfg *config.Config) {
	in := cfg.Inventory
	if in == nil {
		return
	}
	const name = "console inventory key"
	fix := fmt.Sprintf("at console %s run `evidenced key --public` and copy its output to %s", in.FromConsole, in.PublicKeyFile)
	pem, err := os.ReadFile(in.PublicKeyFile)
	if err != nil {
		r.fail(name, err.Error(), fix)
		return
	}
	pub, err := signing.ParsePublicPEM(pem)
	if err != nil {
		r.fail(name, fmt.Sprintf("%s: %v", in.PublicKeyFile, err), fix)
		return
	}
	r.ok(name, fmt.Sprintf("%s loads: console %s, key id %s", in.PublicKeyFile, in.FromConsole, signing.KeyID(pub)))
}

// doctorClock checks that a time service disciplines the host clock: every
// custody record carries its time, and Object Lock dates follow it. st is
// the kernel's answer (hostclock.Read), given so that a test can bring
// about a state this host is not in.
func doctorClock(r *DoctorReport, st hostclock.Status) {
	const name = "clock"
	switch {
	case !st.Known:
		r.fail(name, "cannot ask the kernel: "+st.Err, "run doctor where adjtimex is allowed (the unit allows it)")
	case !st.Synced:
		r.fail(name, "the host clock is not synchronised ("+st.Method+")",
			"enable a time service: timedatectl set-ntp true (systemd-timesyncd) or install chrony")
	default:
		r.ok(name, fmt.Sprintf("synchronised (%s, estimated error %s)", st.Method, st.EstError))
	}
}

// udevRule is the rule file the package installs for USB docks.
const udevRule = "99-evidenced-cameras.rules"

// Where doctorUSB looks: the directories udev reads rules from, the unit's
// USB drop-in, and where the dynamic loader finds libraries. Variables so
// that a unit test can point them at a directory it made.
var (
	udevRuleDirs = []string{"/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"}
	usbDropIn    = "/etc/systemd/system/evidenced.service.d/usb.conf"
	libDirs      = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"}
)

// doctorUSB checks what USB docks need: libusb, the mount capability, the
// udev rule. Skipped when sources.usb is off.
func doctorUSB(r *DoctorReport, cfg *config.Config) {
	if !cfg.Sources.USB.Enabled {
		r.skip("usb", "sources.usb.enabled is false")
		return
	}
	if lib := findLib("libusb-1.0.so.0"); lib == "" {
		r.fail("usb: libusb", "libusb-1.0.so.0 not found", "apt install libusb-1.0-0")
	} else {
		r.ok("usb: libusb", lib)
	}
	dropin := usbDropIn
	if data, err := os.ReadFile(dropin); err == nil && strings.Contains(string(data), "CAP_SYS_ADMIN") {
		r.ok("usb: mount capability", dropin+" grants CAP_SYS_ADMIN to the service")
	} else if hasCapSysAdmin() {
		r.ok("usb: mount capability", "this process has CAP_SYS_ADMIN (no unit drop-in found at "+dropin+")")
	} else {
		r.fail("usb: mount capability", "no CAP_SYS_ADMIN: cameras cannot be mounted",
			"install systemd/evidenced-usb.conf as "+dropin+" and systemctl daemon-reload")
	}
	for _, d := range udevRuleDirs {
		if _, err := os.Stat(filepath.Join(d, udevRule)); err == nil {
			r.ok("usb: udev rule", filepath.Join(d, udevRule))
			return
		}
	}
	r.fail("usb: udev rule", udevRule+" is not installed: desktop automounters may write to cameras",
		"install -m 0644 systemd/"+udevRule+" /etc/udev/rules.d/ && udevadm control --reload")
}

// findLib looks for a shared library where the dynamic loader does.
func findLib(name string) string {
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// hasCapSysAdmin reads this process's effective capabilities.
func hasCapSysAdmin() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return false
}
