//go:build cgo

package usbdock

import (
	"os"
	"path/filepath"
	"testing"
)

// The serial comes from sysfs when the kernel has it, is "" when the
// device has none, and otherwise must be read over USB (known=false) unless
// it was read before.
func TestGoUSBSerial(t *testing.T) {
	sys := t.TempDir()
	g := &GoUSB{Sys: sys, serials: map[string]string{}}
	dev := func(port int) Device {
		d := Device{Bus: 2, Address: port + 1, PortPath: []int{port}}
		d.SysPath = filepath.Join(sys, "bus/usb/devices", d.Name())
		return d
	}
	with, without, absent := dev(1), dev(2), dev(3)
	must(t, os.MkdirAll(with.SysPath, 0o755))
	must(t, os.WriteFile(filepath.Join(with.SysPath, "serial"), []byte("BWC-0001\n"), 0o444))
	must(t, os.MkdirAll(without.SysPath, 0o755))

	if s, ok := g.serial(with); !ok || s != "BWC-0001" {
		t.Errorf("sysfs serial: %q %v", s, ok)
	}
	if s, ok := g.serial(without); !ok || s != "" {
		t.Errorf("no serial attribute: %q %v, want a known empty serial", s, ok)
	}
	if _, ok := g.serial(absent); ok {
		t.Error("no sysfs at all: want the device opened for its serial")
	}
	g.serials[absent.key()] = "READ-OVER-USB"
	if s, ok := g.serial(absent); !ok || s != "READ-OVER-USB" {
		t.Errorf("cached: %q %v", s, ok)
	}
	must(t, os.Remove(filepath.Join(with.SysPath, "serial")))
	if s, ok := g.serial(with); !ok || s != "BWC-0001" {
		t.Errorf("after a failed re-read: %q %v, want the serial read before", s, ok)
	}
	g.forget(nil, nil)
	if len(g.serials) != 0 {
		t.Errorf("serial of a device that left is still cached: %v", g.serials)
	}
}
