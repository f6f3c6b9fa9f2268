package service

import (
	"context"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/usbdock"
)

// usbHandler turns USB-docked cameras into dock sessions, the same sessions
// a watched folder gets, with the bay (bus-port path) recorded.
type usbHandler struct {
	s    *Service
	work context.Context
}

var _ usbdock.Handler = (*usbHandler)(nil)

// Settled runs the dock under ctx, which ends when the camera is yanked (the
// copy must stop: its media is gone) or the work context ends.
func (h *usbHandler) Settled(ctx context.Context, d usbdock.Dock) {
	root := d.Path
	if root == "" {
		root = "usb:" + d.Bay() // unknown serial: never mounted
	}
	h.s.dock(ctx, d.Serial, root, "usb", d.Bay(), d.Path != "")
}

// Failed: the camera's storage could not be read (corrupt file system, no
// volume). The bay shows it; the camera stays on the bay until undocked.
func (h *usbHandler) Failed(d usbdock.Dock, err error) {
	s := h.s
	s.Bays.Problem(d.Serial, "camera storage unreadable: "+err.Error())
	s.Log.Error("camera storage unreadable", "camera", d.Serial, "bay", d.Bay(), "err", err)
	if _, ok := s.Config.Camera(d.Serial); !ok {
		return // an unknown camera is recorded as such, not its storage
	}
	if _, aerr := s.Ledger.Append(h.work, custody.Event{
		Type: custody.Refused, Actor: s.DaemonActor(), Camera: d.Serial,
		Details: map[string]string{"reason": "camera storage unreadable: " + err.Error(), "bay": d.Bay(), "via": "usb"},
	}, nil); aerr != nil {
		s.Log.Error("record unreadable camera", "camera", d.Serial, "err", aerr)
	}
}

// Removed records UNDOCKED, clean or not, for cameras in the inventory.
func (h *usbHandler) Removed(d usbdock.Dock) {
	h.s.undocked(h.work, d.Serial, map[string]string{"bay": d.Bay(), "via": "usb"})
}
