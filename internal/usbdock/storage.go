package usbdock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/config"
)

// MountFlags are the only flags camera media is ever mounted with: read-only,
// and nothing on it is trusted as a device, a set-uid program or executable.
const MountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// MountData is the file-system-specific option string per type: names on
// the card are decoded as UTF-8 (Debian's FAT default iocharset is ascii,
// which mangles non-ASCII names, and fails outright when nls_ascii is not
// loaded), and vfat short 8.3 names keep their case. exfat defaults to
// UTF-8 but is told so explicitly all the same.
var MountData = map[string]string{
	config.FSVFAT:  "iocharset=utf8,shortname=mixed",
	config.FSExFAT: "iocharset=utf8",
}

// SysfsStorage maps a USB device to its block devices through sysfs and
// mounts them with unix.Mount (CAP_SYS_ADMIN).
type SysfsStorage struct {
	MountDir string
	// Sys and Dev are "/sys" and "/dev" (tests point them elsewhere).
	Sys, Dev string
	// MountInfo is /proc/self/mountinfo.
	MountInfo string
	// Retry is how often a device that is not ready yet is looked at again.
	Retry time.Duration
	// UnreadableGrace is how long a device node may stay unreadable (udev
	// not done setting its group yet) before a warning says so.
	UnreadableGrace time.Duration
	// Mount and Unmount default to unix.Mount / unix.Unmount.
	Mount   func(source, target, fstype string, flags uintptr, data string) error
	Unmount func(target string, flags int) error
	log     *slog.Logger
}

var _ Storage = (*SysfsStorage)(nil)

// NewSysfsStorage returns the production Storage mounting under mountDir.
func NewSysfsStorage(mountDir string, log *slog.Logger) *SysfsStorage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SysfsStorage{
		MountDir: mountDir, Sys: "/sys", Dev: "/dev", MountInfo: "/proc/self/mountinfo",
		Retry: 50 * time.Millisecond, UnreadableGrace: 2 * time.Second, Mount: unix.Mount, Unmount: unix.Unmount, log: log,
	}
}

// candidate is one block device that may hold the camera's volume.
type candidate struct {
	name string // sda1, or sda for a superfloppy (no partition table)
	fs   string
}

// Attach implements Storage.
func (s *SysfsStorage) Attach(ctx context.Context, d Device, p config.Profile) (Volume, error) {
	allowed := p.FileSystems()
	var last string
	var unreadableSince time.Time
	warned := false
	for {
		cands, why := s.candidates(d, allowed)
		if len(cands) > 0 {
			return s.attach(d, p, cands)
		}
		// A device node that stays unreadable is not the kernel being slow
		// but a host set up wrongly (the daemon's user lacks the group udev
		// gives disks): once it outlasts udev's usual delay it is said where
		// an operator looks, and still retried.
		if !strings.Contains(why, "unreadable") {
			unreadableSince, warned = time.Time{}, false
		} else if unreadableSince.IsZero() {
			unreadableSince = time.Now()
		}
		if !unreadableSince.IsZero() && !warned && time.Since(unreadableSince) >= s.UnreadableGrace {
			s.log.Warn("camera volume not readable", "camera", d.Serial, "bay", d.Name(), "why", why)
			warned = true
		}
		if why != last {
			s.log.Debug("camera volume not ready", "camera", d.Serial, "bay", d.Name(), "why", why)
			last = why
		}
		select {
		case <-ctx.Done():
			return Volume{}, fmt.Errorf("camera %s at %s: %w (%s): %w", d.Serial, d.Name(), ErrNoVolume, why, ctx.Err())
		case <-time.After(s.Retry):
		}
	}
}

// candidates lists the device's block devices whose first sector shows a
// file system the profile allows. why says what is missing when none.
func (s *SysfsStorage) candidates(d Device, allowed []string) ([]candidate, string) {
	disks := BlockDevices(filepath.Join(s.Sys, "bus/usb/devices", d.Name()))
	if len(disks) == 0 {
		return nil, "no block device yet"
	}
	var out []candidate
	var seen []string
	for _, disk := range disks {
		for _, name := range Partitions(filepath.Join(s.Sys, "class/block"), disk) {
			fs, err := DetectFS(filepath.Join(s.Dev, name))
			if err != nil {
				seen = append(seen, name+" unreadable: "+err.Error())
				continue
			}
			seen = append(seen, name+"="+orNone(fs))
			if fs != "" && slices.Contains(allowed, fs) {
				out = append(out, candidate{name: name, fs: fs})
			}
		}
	}
	return out, "no " + strings.Join(allowed, "/") + " file system on " + strings.Join(seen, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// attach mounts (or finds mounted) the best candidate.
func (s *SysfsStorage) attach(d Device, p config.Profile, cands []candidate) (Volume, error) {
	var errs []error
	type mounted struct {
		v   Volume
		has bool
	}
	var vols []mounted
	for _, c := range cands {
		v, err := s.mountOne(d, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vols = append(vols, mounted{v, hasRecordings(v.Path, p.Recordings)})
	}
	if len(vols) == 0 {
		return Volume{}, errors.Join(errs...)
	}
	best := 0
	for i, m := range vols {
		if m.has {
			best = i
			break
		}
	}
	for i, m := range vols {
		if i != best {
			_ = s.Detach(m.v)
		}
	}
	if !vols[best].has {
		s.log.Warn("camera volume has none of the profile's recordings folders", "bay", d.Name(), "profile", p.Name)
	}
	return vols[best].v, nil
}

func (s *SysfsStorage) mountOne(d Device, c candidate) (Volume, error) {
	src := filepath.Join(s.Dev, c.name)
	if mp, ok := s.existingMount(src); ok {
		s.log.Info("camera volume already mounted; using it", "bay", d.Name(), "path", mp)
		return Volume{Path: mp, Source: src, FS: c.fs}, nil
	}
	mp := filepath.Join(s.MountDir, safeName(d.Serial)+"-"+c.name)
	if err := os.MkdirAll(mp, 0o750); err != nil {
		return Volume{}, fmt.Errorf("camera %s: mount point %s: %w", d.Serial, mp, err)
	}
	if err := s.Mount(src, mp, c.fs, MountFlags, MountData[c.fs]); err != nil {
		_ = os.Remove(mp)
		return Volume{}, fmt.Errorf("camera %s: mount %s (%s) read-only: %w: %w", d.Serial, src, c.fs, ErrMount, err)
	}
	return Volume{Path: mp, Source: src, FS: c.fs, Ours: true}, nil
}

// Detach implements Storage.
func (s *SysfsStorage) Detach(v Volume) error {
	if !v.Ours {
		return nil
	}
	err := s.Unmount(v.Path, 0)
	if errors.Is(err, unix.EBUSY) {
		// A reader still holds a file (a copy being cancelled): detach now,
		// the kernel finishes when the last file closes.
		err = s.Unmount(v.Path, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unmount %s: %w", v.Path, err)
	}
	if err := os.Remove(v.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove mount point %s: %w", v.Path, err)
	}
	return nil
}

// existingMount finds a mount of src in mountinfo (udisks, systemd-mount).
// Only a read-only mount is used: a writable mount of camera media breaks
// the forensic promise, so it is not used and a private ro mount is made.
func (s *SysfsStorage) existingMount(src string) (string, bool) {
	f, err := os.Open(s.MountInfo)
	if err != nil {
		return "", false
	}
	defer f.Close()
	for _, m := range ParseMountInfo(f) {
		if m.Source == src && slices.Contains(m.Options, "ro") {
			return m.Point, true
		}
	}
	return "", false
}

// BlockDevices returns the whole-disk block devices (sda, sdb) below a USB
// device's sysfs directory: .../<bus>-<port>/<bus>-<port>:1.0/host0/
// target0:0:0/0:0:0:0/block/sda. A camera with several LUNs has several.
func BlockDevices(usbDir string) []string {
	root, err := filepath.EvalSymlinks(usbDir)
	if err != nil {
		return nil
	}
	var found []string
	_ = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if de.Name() == "block" && de.IsDir() {
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				found = append(found, e.Name())
			}
			return filepath.SkipDir
		}
		if de.Type()&fs.ModeSymlink != 0 {
			return nil // subsystem, driver, port links lead out of the device
		}
		return nil
	})
	sort.Strings(found)
	return found
}

// Partitions returns the partitions of disk (sda1, sda2) from
// /sys/class/block/<disk>/<disk>N, or the disk itself when it has none (a
// "superfloppy", as many cameras format their storage).
func Partitions(classBlock, disk string) []string {
	ents, err := os.ReadDir(filepath.Join(classBlock, disk))
	if err != nil {
		return []string{disk}
	}
	var parts []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), disk) {
			if _, err := os.Stat(filepath.Join(classBlock, disk, e.Name(), "partition")); err == nil {
				parts = append(parts, e.Name())
			}
		}
	}
	if len(parts) == 0 {
		return []string{disk}
	}
	sort.Strings(parts)
	return parts
}

// DetectFS reads a volume's boot sector and returns "vfat", "exfat" or ""
// (no file system it knows). It only reads: the device node is opened
// O_RDONLY. An error says the sector could not be read at all — most often
// permission (the daemon's user is not in the group the host's udev gives
// disks), which the caller must report rather than wait out silently.
func DetectFS(dev string) (string, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		return "", fmt.Errorf("read boot sector of %s: %w", dev, err)
	}
	return detectBootSector(b), nil
}

func detectBootSector(b []byte) string {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xAA {
		return ""
	}
	switch {
	case string(b[3:11]) == "EXFAT   ":
		return config.FSExFAT
	case string(b[82:87]) == "FAT32", string(b[54:59]) == "FAT16", string(b[54:59]) == "FAT12":
		return config.FSVFAT
	}
	return ""
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point, FSType, Source string
	Options               []string // per-mount options (ro, nosuid, …)
}

// ParseMountInfo parses mountinfo (proc(5)); malformed lines are skipped.
func ParseMountInfo(r io.Reader) []Mount {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+3 {
			continue
		}
		out = append(out, Mount{
			Point: unescapeMount(f[4]), Options: strings.Split(f[5], ","),
			FSType: f[sep+1], Source: unescapeMount(f[sep+2]),
		})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

// hasRecordings reports whether any recordings folder exists on the volume.
// FAT and exFAT ignore case, and so does this check.
func hasRecordings(root string, dirs []string) bool {
	for _, d := range dirs {
		cur := root
		ok := true
		for _, seg := range strings.Split(path.Clean(d), "/") {
			ents, err := os.ReadDir(cur)
			if err != nil {
				ok = false
				break
			}
			found := ""
			for _, e := range ents {
				if e.IsDir() && strings.EqualFold(e.Name(), seg) {
					found = e.Name()
					break
				}
			}
			if found == "" {
				ok = false
				break
			}
			cur = filepath.Join(cur, found)
		}
		if ok {
			return true
		}
	}
	return false
}

// safeName makes a serial usable as part of a mount point name.
func safeName(serial string) string {
	if serial == "" {
		return "noserial"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, serial)
}
