package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const withUSB = minimal + `sources:
  watch: [/srv/offload]
  usb:
    enabled: true
    poll: 250ms
    mount_dir: mnt
    per_bus: 2
    profiles:
      - {name: bodycam-x1, vendor_id: "1209", product_id: 0x0001, recordings: [DCIM], fs: [vfat]}
      - name: dashcam
        vendor_id: 46f4
        product_id: "0001"
        recordings: [DCIM/100MEDIA, GPS]
`

func TestUSBSection(t *testing.T) {
	c := mustParse(t, withUSB)
	u := c.Sources.USB
	if !u.Enabled || u.Poll.Duration != 250*time.Millisecond || u.PerBus != 2 {
		t.Errorf("usb = %+v", u)
	}
	if u.MountDir != "/etc/evidenced/mnt" {
		t.Errorf("mount_dir = %q, want it resolved against the config file's directory", u.MountDir)
	}
	p, ok := c.Profile(0x1209, 0x0001)
	if !ok || p.Name != "bodycam-x1" || strings.Join(p.FileSystems(), ",") != "vfat" {
		t.Errorf("Profile(1209:0001) = %+v, %v", p, ok)
	}
	p, ok = c.Profile(0x46f4, 0x0001)
	if !ok || p.Name != "dashcam" || strings.Join(p.FileSystems(), ",") != "vfat,exfat" || len(p.Recordings) != 2 {
		t.Errorf("Profile(46f4:0001) = %+v, %v (fs should default to both)", p, ok)
	}
	if _, ok := c.Profile(0x1209, 0x0002); ok {
		t.Error("Profile(1209:0002) found a model that is not configured")
	}

	d := mustParse(t, minimal).Sources.USB
	if d.Enabled || d.Poll.Duration != DefaultUSBPoll || d.MountDir != DefaultUSBMountDir || d.PerBus != 1 || len(d.Profiles) != 0 {
		t.Errorf("defaults = %+v", d)
	}
}

func TestParseUSBID(t *testing.T) {
	tests := []struct {
		in   string
		want USBID
		ok   bool
	}{
		{"1209", 0x1209, true},
		{"0x1209", 0x1209, true},
		{"0XFFFF", 0xffff, true},
		{"46f4", 0x46f4, true},
		{"0001", 1, true},
		{"1", 0, false},     // not as lsusb prints it
		{"12090", 0, false}, // too long
		{"12g9", 0, false},  // not hex
		{"", 0, false},      // empty
		{"-123", 0, false},  // sign
		{"0x12", 0, false},  // short
		{"4660 ", 0x4660, true},
	}
	for _, tt := range tests {
		got, err := ParseUSBID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseUSBID(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := USBID(0x46f4).String(); s != "46f4" {
		t.Errorf("String() = %q", s)
	}
}

func TestUSBDecodeErrors(t *testing.T) {
	tests := []struct {
		name, extra string
		want        []string
	}{
		{"unknown usb key", "sources:\n  usb:\n    pol: 1s\n", []string{"sources.usb.pol", "did you mean poll"}},
		{"bad id", "sources:\n  usb:\n    profiles:\n      - {name: a, vendor_id: 12, product_id: \"0001\", recordings: [DCIM]}\n", []string{"sources.usb.profiles[0].vendor_id", "four hex digits"}},
		{"id as list", "sources:\n  usb:\n    profiles:\n      - {name: a, vendor_id: [1], product_id: \"0001\", recordings: [DCIM]}\n", []string{"vendor_id", "expected a USB id"}},
		{"enabled not bool", "sources:\n  usb:\n    enabled: on\n", []string{"sources.usb.enabled", "true or false"}},
		{"fs not list", "sources:\n  usb:\n    profiles:\n      - {name: a, vendor_id: \"1209\", product_id: \"0001\", recordings: [DCIM], fs: vfat}\n", []string{"profiles[0].fs", "expected a list"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+tt.extra), "cfg.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestUSBValidate(t *testing.T) {
	p := func(c *Config, i int) *Profile { return &c.Sources.USB.Profiles[i] }
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string // "" = valid
		msg    string
	}{
		{"as written", func(*Config) {}, "", ""},
		{"disabled without profiles", func(c *Config) { c.Sources.USB.Enabled = false; c.Sources.USB.Profiles = nil }, "", ""},
		{"poll 50ms", func(c *Config) { c.Sources.USB.Poll.Duration = 50 * time.Millisecond }, "", ""},
		{"product 0000", func(c *Config) { p(c, 0).ProductID = 0 }, "", ""},
		{"enabled without profiles", func(c *Config) { c.Sources.USB.Profiles = nil }, "sources.usb.profiles", "at least one"},
		{"poll too fast", func(c *Config) { c.Sources.USB.Poll.Duration = time.Millisecond }, "sources.usb.poll", "between 50ms and 5s"},
		{"poll too slow", func(c *Config) { c.Sources.USB.Poll.Duration = time.Minute }, "sources.usb.poll", "between"},
		{"per_bus 0", func(c *Config) { c.Sources.USB.PerBus = 0 }, "sources.usb.per_bus", "between 1 and 16"},
		{"mount_dir empty", func(c *Config) { c.Sources.USB.MountDir = "" }, "sources.usb.mount_dir", "required"},
		{"mount_dir in state_dir", func(c *Config) { c.Sources.USB.MountDir = "/var/lib/evidenced/mnt" }, "sources.usb.mount_dir", "overlaps state_dir"},
		{"mount_dir in watch", func(c *Config) { c.Sources.USB.MountDir = "/srv/offload/usb" }, "sources.usb.mount_dir", "ingested twice"},
		{"name missing", func(c *Config) { p(c, 0).Name = "" }, "sources.usb.profiles[0].name", "required"},
		{"name duplicate", func(c *Config) { p(c, 1).Name = p(c, 0).Name }, "sources.usb.profiles[1].name", "already defined"},
		{"vendor missing", func(c *Config) { p(c, 0).VendorID = 0 }, "sources.usb.profiles[0].vendor_id", "required"},
		{"model duplicate", func(c *Config) { p(c, 1).VendorID, p(c, 1).ProductID = p(c, 0).VendorID, p(c, 0).ProductID }, "sources.usb.profiles[1]", "already the model of sources.usb.profiles[0]"},
		{"no recordings", func(c *Config) { p(c, 0).Recordings = nil }, "sources.usb.profiles[0].recordings", "at least one"},
		{"absolute recordings", func(c *Config) { p(c, 1).Recordings[1] = "/GPS" }, "sources.usb.profiles[1].recordings[1]", "relative"},
		{"dotdot recordings", func(c *Config) { p(c, 1).Recordings[0] = "../x" }, "sources.usb.profiles[1].recordings[0]", "clean path"},
		{"unclean recordings", func(c *Config) { p(c, 1).Recordings[0] = "DCIM//100MEDIA" }, "sources.usb.profiles[1].recordings[0]", "clean path"},
		{"fs ntfs", func(c *Config) { p(c, 0).FS = []string{"ntfs"} }, "sources.usb.profiles[0].fs[0]", "vfat or exfat"},
		{"fs twice", func(c *Config) { p(c, 0).FS = []string{"exfat", "exfat"} }, "sources.usb.profiles[0].fs[1]", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, withUSB)
			tt.mutate(c)
			err := c.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var found *FieldError
			for _, fe := range fieldErrors(err) {
				if fe.Key == tt.key {
					found = fe
				}
			}
			if found == nil {
				t.Fatalf("Validate() = %v\nwant a problem with key %s", err, tt.key)
			}
			if !strings.Contains(found.Msg, tt.msg) || found.Line == 0 {
				t.Errorf("%s: %q line %d, want it to mention %q and give a line", tt.key, found.Msg, found.Line, tt.msg)
			}
		})
	}
}
