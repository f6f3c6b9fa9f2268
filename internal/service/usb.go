package service

import (
	"context"
	"errors"
	"strconv"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/ingest"
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
	s := h.s
	root := d.Path
	if root == "" {
		root = "usb:" + d.Bay() // unknown serial: never mounted
	}
	if d.Path != "" && s.Wiper != nil {
		if err := s.Wiper.AdmitDock(ctx, d.Serial, root, s.DaemonActor(), "usb"); err != nil {
			s.Bays.Problem(d.Serial, err.Error())
			s.Log.Error("dock refused", "camera", d.Serial, "bay", d.Bay(), "err", err)
			return
		}
	}
	res, err := s.Ingester.Dock(ctx, ingest.Request{Serial: d.Serial, Root: root, Actor: s.DaemonActor(), Via: "usb"}, s.Bays)
	switch {
	case errors.Is(err, ingest.ErrUnknownDevice):
		s.Bays.Problem(d.Serial, "unknown camera: not in the inventory, not ingested")
		s.Log.Error("unknown camera docked; not ingested", "camera", d.Serial, "bay", d.Bay())
	case err != nil:
		s.Bays.Problem(d.Serial, err.Error())
		s.Log.Error("dock incomplete", "camera", d.Serial, "bay", d.Bay(), "err", err)
	default:
		s.Log.Info("dock complete", "camera", d.Serial, "bay", d.Bay(), "vaulted", res.Vaulted,
			"already_held", res.AlreadyHeld, "bytes", res.Bytes, "safe_to_undock", res.SafeToUndock)
	}
	if res.Vaulted > 0 && s.Uploader != nil {
		s.Uploader.Wake()
	}
	if s.Anchor != nil {
		s.Anchor.Kick() // a dock session ended: anchor its records
	}
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
	s := h.s
	st := s.Bays.Remove(d.Serial)
	if _, ok := s.Config.Camera(d.Serial); !ok {
		return
	}
	clean := st.State == BaySafe
	if _, err := s.Ledger.Append(h.work, custody.Event{
		Type: custody.Undocked, Actor: s.DaemonActor(), Camera: d.Serial,
		Details: map[string]string{"clean": strconv.FormatBool(clean), "last_state": string(st.State), "bay": d.Bay(), "via": "usb"},
	}, nil); err != nil {
		s.Log.Error("record undock", "camera", d.Serial, "err", err)
	}
	s.Log.Info("camera undocked", "camera", d.Serial, "bay", d.Bay(), "clean", clean)
}
