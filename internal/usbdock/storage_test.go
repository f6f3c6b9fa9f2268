package usbdock

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/config"
)

func bootSector(fs string) []byte {
	b := make([]byte, 512)
	b[510], b[511] = 0x55, 0xAA
	switch fs {
	case "fat32":
		copy(b[82:], "FAT32   ")
	case "fat16":
		copy(b[54:], "FAT16   ")
	case "exfat":
		copy(b[3:], "EXFAT   ")
	case "mbr":
		// a partition table: signature, no file system
	}
	return b
}

// fakeSys builds /sys and /dev for one USB disk sda at bus 2 port 1;
// parts maps partition names (or "sda" alone) to what their first sector holds.
func fakeSys(t *testing.T, disk string, parts map[string]string) *SysfsStorage {
	t.Helper()
	root := t.TempDir()
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	real := filepath.Join(sys, "devices/pci0000:00/0000:00:01.0/usb2/2-1")
	must(t, os.MkdirAll(filepath.Join(real, "2-1:1.0/host0/target0:0:0/0:0:0:0/block", disk), 0o755))
	must(t, os.MkdirAll(filepath.Join(sys, "bus/usb/devices"), 0o755))
	must(t, os.Symlink(real, filepath.Join(sys, "bus/usb/devices/2-1")))
	must(t, os.MkdirAll(filepath.Join(sys, "class/block", disk), 0o755))
	must(t, os.MkdirAll(dev, 0o755))
	for name, what := range parts {
		if name != disk {
			must(t, os.MkdirAll(filepath.Join(sys, "class/block", disk, name), 0o755))
			must(t, os.WriteFile(filepath.Join(sys, "class/block", disk, name, "partition"), []byte("1\n"), 0o644))
		}
		must(t, os.WriteFile(filepath.Join(dev, name), bootSector(what), 0o644))
	}
	if _, ok := parts[disk]; !ok {
		must(t, os.WriteFile(filepath.Join(dev, disk), bootSector("mbr"), 0o644))
	}
	s := NewSysfsStorage(filepath.Join(root, "mnt"), nil)
	s.Sys, s.Dev, s.MountInfo, s.Retry = sys, dev, filepath.Join(root, "mountinfo"), time.Millisecond
	must(t, os.WriteFile(s.MountInfo, nil, 0o644))
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type mountCall struct {
	src, target, fstype, data string
	flags                     uintptr
}

func TestAttachMountsReadOnly(t *testing.T) {
	tests := []struct {
		name    string
		parts   map[string]string
		fs      []string
		wantSrc string
		wantFS  string
	}{
		{"partitioned fat32", map[string]string{"sda1": "fat32"}, nil, "sda1", "vfat"},
		{"superfloppy exfat", map[string]string{"sda": "exfat"}, nil, "sda", "exfat"},
		{"fat16", map[string]string{"sda1": "fat16"}, nil, "sda1", "vfat"},
		{"second partition has the recordings", map[string]string{"sda1": "fat32", "sda2": "exfat"}, nil, "sda2", "exfat"},
		{"profile allows exfat only", map[string]string{"sda1": "fat32", "sda2": "exfat"}, []string{"exfat"}, "sda2", "exfat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeSys(t, "sda", tt.parts)
			var calls []mountCall
			s.Mount = func(src, target, fstype string, flags uintptr, data string) error {
				calls = append(calls, mountCall{src, target, fstype, data, flags})
				if strings.HasSuffix(src, tt.wantSrc) {
					return os.MkdirAll(filepath.Join(target, "dcim", "100MEDIA"), 0o755)
				}
				return nil
			}
			var unmounted []string
			s.Unmount = func(target string, flags int) error {
				unmounted = append(unmounted, target)
				return os.RemoveAll(filepath.Join(target, "dcim")) // what the real mount showed
			}
			p := config.Profile{Name: "cam", Recordings: []string{"DCIM/100media"}, FS: tt.fs}
			v, err := s.Attach(context.Background(), Device{Serial: "BWC 1/x", Bus: 2, PortPath: []int{1}}, p)
			if err != nil {
				t.Fatal(err)
			}
			if v.Source != filepath.Join(s.Dev, tt.wantSrc) || v.FS != tt.wantFS || !v.Ours {
				t.Errorf("volume %+v, want %s (%s) mounted by us", v, tt.wantSrc, tt.wantFS)
			}
			if filepath.Dir(v.Path) != s.MountDir || !strings.HasPrefix(filepath.Base(v.Path), "BWC_1_x-") {
				t.Errorf("mount point %s: want a sanitised private directory in %s", v.Path, s.MountDir)
			}
			for _, c := range calls {
				if c.flags != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC {
					t.Errorf("mount %s flags %#x: not ro,nosuid,nodev,noexec", c.src, c.flags)
				}
				if !strings.Contains(c.data, "iocharset=utf8") {
					t.Errorf("mount %s data %q: names would not be UTF-8", c.src, c.data)
				}
			}
			// Volumes tried and not chosen are unmounted again.
			if len(unmounted) != len(calls)-1 || len(calls) == 0 {
				t.Errorf("mounted %d, unmounted %d: want every other volume undone", len(calls), len(unmounted))
			}
			if err := s.Detach(v); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(v.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount point left behind: %v", err)
			}
		})
	}
}

func TestAttachUsesExistingReadOnlyMount(t *testing.T) {
	s := fakeSys(t, "sdb", map[string]string{"sdb1": "fat32"})
	src := filepath.Join(s.Dev, "sdb1")
	mounted := 0
	s.Mount = func(string, string, string, uintptr, string) error { mounted++; return nil }
	s.Unmount = func(string, int) error { t.Error("unmounted a mount that is not ours"); return nil }
	info := "36 25 8:17 / /media/udisks/CAM\\040A rw,nosuid,nodev shared:1 - vfat " + src + " rw\n" // writable: not used
	must(t, os.WriteFile(s.MountInfo, []byte(info), 0o644))
	v, err := s.Attach(context.Background(), Device{Serial: "S", Bus: 2, PortPath: []int{1}}, config.Profile{Recordings: []string{"DCIM"}})
	if err != nil || !v.Ours || mounted != 1 {
		t.Fatalf("%+v %v mounted=%d: a writable existing mount must not be used", v, err, mounted)
	}
	s.Unmount = func(string, int) error { return nil }
	must(t, s.Detach(v))

	info = "36 25 8:17 / /media/udisks/CAM\\040A ro,nosuid,nodev shared:1 - vfat " + src + " ro\n"
	must(t, os.WriteFile(s.MountInfo, []byte(info), 0o644))
	s.Unmount = func(string, int) error { t.Error("unmounted a mount that is not ours"); return nil }
	v, err = s.Attach(context.Background(), Device{Serial: "S", Bus: 2, PortPath: []int{1}}, config.Profile{Recordings: []string{"DCIM"}})
	if err != nil || v.Ours || v.Path != "/media/udisks/CAM A" || mounted != 1 {
		t.Fatalf("%+v %v mounted=%d: want the existing read-only mount", v, err, mounted)
	}
	must(t, s.Detach(v))
}

func TestAttachErrors(t *testing.T) {
	s := fakeSys(t, "sda", map[string]string{"sda1": "fat32"})
	s.Mount = func(string, string, string, uintptr, string) error { return unix.EINVAL }
	_, err := s.Attach(context.Background(), Device{Serial: "S", Bus: 2, PortPath: []int{1}}, config.Profile{})
	if !errors.Is(err, ErrMount) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("corrupt volume: %v, want ErrMount wrapping EINVAL", err)
	}
	if ents, _ := os.ReadDir(s.MountDir); len(ents) != 0 {
		t.Errorf("mount point left after a failed mount: %v", ents)
	}

	// No block device ever appears (or no allowed file system): waits, then
	// gives up with ErrNoVolume when ctx ends.
	for _, tt := range []struct {
		name string
		dev  Device
		fs   []string
		why  string
	}{
		{"no block device", Device{Serial: "S", Bus: 2, PortPath: []int{7}}, nil, "no block device"},
		{"fs not allowed", Device{Serial: "S", Bus: 2, PortPath: []int{1}}, []string{"exfat"}, "sda1=vfat"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, err := s.Attach(ctx, tt.dev, config.Profile{FS: tt.fs})
		if !errors.Is(err, ErrNoVolume) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: %v, want ErrNoVolume saying %q", tt.name, err, tt.why)
		}
	}
}

// A device node the daemon cannot read (its user lacks the disk group) is
// named, with the reason, at warning level — not waited on in silence.
func TestAttachUnreadableDeviceIsSaid(t *testing.T) {
	s := fakeSys(t, "sda", map[string]string{"sda1": "fat32"})
	// Tests may run as root, whom file modes do not stop: a directory in
	// place of the node fails the boot-sector read instead.
	must(t, os.Remove(filepath.Join(s.Dev, "sda1")))
	must(t, os.Mkdir(filepath.Join(s.Dev, "sda1"), 0o755))
	var logs bytes.Buffer
	s.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.UnreadableGrace = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err := s.Attach(ctx, Device{Serial: "S", Bus: 2, PortPath: []int{1}}, config.Profile{})
	if !errors.Is(err, ErrNoVolume) || !strings.Contains(err.Error(), "sda1 unreadable") {
		t.Errorf("Attach = %v, want ErrNoVolume naming sda1 as unreadable", err)
	}
	if l := logs.String(); strings.Count(l, "level=WARN") != 1 || !strings.Contains(l, "sda1 unreadable") {
		t.Errorf("log %q: want one warning naming the unreadable node", l)
	}
}

func TestDetachBusyIsLazy(t *testing.T) {
	s := NewSysfsStorage(t.TempDir(), nil)
	mp := filepath.Join(s.MountDir, "x")
	must(t, os.Mkdir(mp, 0o755))
	var flags []int
	s.Unmount = func(_ string, f int) error {
		flags = append(flags, f)
		if f == 0 {
			return unix.EBUSY
		}
		return nil
	}
	if err := s.Detach(Volume{Path: mp, Ours: true}); err != nil {
		t.Fatal(err)
	}
	if len(flags) != 2 || flags[1] != unix.MNT_DETACH {
		t.Errorf("unmount flags %v, want a plain attempt then MNT_DETACH", flags)
	}
	s.Unmount = func(string, int) error { return unix.EPERM }
	must(t, os.Mkdir(mp, 0o755))
	if err := s.Detach(Volume{Path: mp, Ours: true}); !errors.Is(err, unix.EPERM) {
		t.Errorf("Detach = %v, want EPERM reported", err)
	}
}

func TestDetectBootSector(t *testing.T) {
	for in, want := range map[string]string{"fat32": "vfat", "fat16": "vfat", "exfat": "exfat", "mbr": ""} {
		if got := detectBootSector(bootSector(in)); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	b := bootSector("fat32")
	b[511] = 0
	if detectBootSector(b) != "" {
		t.Error("a sector without the 55AA signature was taken for a file system")
	}
	if fs, err := DetectFS(filepath.Join(t.TempDir(), "missing")); fs != "" || !errors.Is(err, os.ErrNotExist) {
		t.Error("a missing device has a file system")
	}
}

func TestParseMountInfo(t *testing.T) {
	in := `22 1 0:21 / /proc rw,nosuid - proc proc rw
36 25 8:1 / /run/evidenced/mnt/A\040B ro,nosuid,nodev,noexec shared:5 master:1 - vfat /dev/sda1 ro,fmask=0022
garbage line
37 25 8:1 / /x rw - ext4
`
	m := ParseMountInfo(strings.NewReader(in))
	if len(m) != 2 {
		t.Fatalf("%d mounts, want 2 (malformed lines skipped): %+v", len(m), m)
	}
	if m[1].Point != "/run/evidenced/mnt/A B" || m[1].Source != "/dev/sda1" || m[1].FSType != "vfat" || m[1].Options[0] != "ro" {
		t.Errorf("%+v", m[1])
	}
	if unescapeMount(`a\1`) != `a\1` || unescapeMount(`\134x`) != `\x` {
		t.Error("unescape")
	}
}
