//go:build cgo

package usbdock

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

	"github.com/google/gousb"
)

// GoUSB enumerates devices with libusb through gousb.
//
// Each call uses a fresh libusb context: Debian's libusb learns about new
// devices only from udevd's netlink broadcasts, so a long-lived context on a
// host (or test VM) without udevd never sees a camera arrive, while a fresh
// context scans sysfs. The scan reads the descriptors the kernel cached in
// sysfs; devices are opened (usbfs, one control transfer for the serial
// string) only when sysfs has no serial attribute, and never have an
// interface claimed.
type GoUSB struct {
	// Sys is "/sys" (for the serial attribute).
	Sys string
	log *slog.Logger

	mu      sync.Mutex
	serials map[string]string // device key → serial, so it is read once per attachment
}

var _ Enumerator = (*GoUSB)(nil)

// NewGoUSB returns the libusb enumerator. It fails when libusb cannot be
// initialised (no usbfs, a sandbox without /dev/bus/usb).
func NewGoUSB(log *slog.Logger) (*GoUSB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &GoUSB{Sys: "/sys", log: log, serials: map[string]string{}}
	if _, err := g.Devices(context.Background()); err != nil {
		return nil, fmt.Errorf("usb: %w", err)
	}
	return g, nil
}

// Devices implements Enumerator.
func (g *GoUSB) Devices(ctx context.Context) (devs []Device, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		// libusb_init failing makes gousb panic; turn it into an error.
		if r := recover(); r != nil {
			devs, err = nil, fmt.Errorf("libusb: %v", r)
		}
	}()
	c := gousb.NewContext()
	defer c.Close()
	var needOpen []Device
	opened, openErr := c.OpenDevices(func(desc *gousb.DeviceDesc) bool {
		if len(desc.Path) == 0 {
			return false // a root hub, not a bay
		}
		d := Device{
			VendorID: uint16(desc.Vendor), ProductID: uint16(desc.Product),
			Bus: desc.Bus, Address: desc.Address, PortPath: append([]int(nil), desc.Path...),
		}
		d.SysPath = filepath.Join(g.Sys, "bus/usb/devices", d.Name())
		serial, known := g.serial(d)
		if known {
			d.Serial = serial
			devs = append(devs, d)
			return false
		}
		needOpen = append(needOpen, d)
		return true
	})
	for _, h := range opened {
		for _, d := range needOpen {
			if d.Bus != h.Desc.Bus || d.Address != h.Desc.Address {
				continue
			}
			s, err := h.SerialNumber()
			if err != nil {
				g.log.Debug("read USB serial", "bay", d.Name(), "err", err)
				continue // left out this time; listed once readable
			}
			d.Serial = s
			g.mu.Lock()
			g.serials[d.key()] = s
			g.mu.Unlock()
			devs = append(devs, d)
		}
		h.Close()
	}
	if openErr != nil {
		// Opening one device failed (it left, or no permission on its usbfs
		// node); the list itself is complete, minus that device.
		g.log.Debug("open USB device", "err", openErr)
	}
	g.forget(devs, needOpen)
	return devs, nil
}

// serial returns the serial from sysfs, or one read over USB before. known
// is false when the device must be opened to learn it.
func (g *GoUSB) serial(d Device) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Once known, a device's serial is not read again: a transient read
	// error must not make a docked camera look undocked.
	if s, ok := g.serials[d.key()]; ok {
		return s, true
	}
	b, err := os.ReadFile(filepath.Join(d.SysPath, "serial"))
	switch {
	case err == nil:
		s := strings.TrimRight(string(b), "\n")
		g.serials[d.key()] = s
		return s, true
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(d.SysPath); err == nil {
			// The kernel read the descriptors and found no serial string.
			g.serials[d.key()] = ""
			return "", true
		}
	}
	return "", false
}

// forget drops cached serials of devices no longer present.
func (g *GoUSB) forget(present, pending []Device) {
	g.mu.Lock()
	defer g.mu.Unlock()
	keep := map[string]bool{}
	for _, d := range present {
		keep[d.key()] = true
	}
	for _, d := range pending {
		keep[d.key()] = true
	}
	for k := range g.serials {
		if !keep[k] {
			delete(g.serials, k)
		}
	}
}
