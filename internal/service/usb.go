package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/ingest"
	"github.com/evidenced/evidenced/internal/usbdock"
)

// usbHandler turns USB-docked cameras into dock sessions, the same sessions
// a watched folder gets. The session opens (DOCKED) when the camera is
// seen, not when its volume is mounted: the officer's dock is on record
// within a poll of the arrival even when the kernel is slow to present the
// storage or another camera on the same hub is still copying.
type usbHandler struct {
	s    *Service
	work context.Context

	mu       sync.Mutex
	sessions map[string]ingest.Session // attachment → the session Arrived opened, until Settled
	opened   map[string]bool           // attachments whose DOCKED is on record, until Removed
}

var (
	_ usbdock.Handler = (*usbHandler)(nil)
	_ usbdock.Refuser = (*usbHandler)(nil)
)

func attachment(d usbdock.Dock) string { return d.Bay() + "@" + strconv.Itoa(d.Device.Address) }

// identity is what the custody record says about the device beyond the
// inventory entry: where it sat and what it presented itself as.
func identity(d usbdock.Dock) map[string]string {
	return map[string]string{
		"bay":     d.Bay(),
		"usb_id":  fmt.Sprintf("%04x:%04x", d.Device.VendorID, d.Device.ProductID),
		"profile": d.Profile,
	}
}

// Arrived records DOCKED (or UNKNOWN_DEVICE) and admits the camera for
// mounting only when its arrival is on record.
func (h *usbHandler) Arrived(_ context.Context, d usbdock.Dock) bool {
	s := h.s
	sess, err := s.ingester.Arrive(h.work, ingest.Request{
		Serial: d.Serial, Root: "usb:" + d.Bay(), Actor: s.DaemonActor(), Via: "usb", Identity: identity(d),
	})
	switch {
	case errors.Is(err, ingest.ErrUnknownDevice):
		s.bays.Unknown(d.Serial, d.Bay())
		s.log.Error("unknown camera docked; not mounted, not ingested", "camera", d.Serial, "bay", d.Bay())
		return false
	case err != nil:
		// Without its DOCKED record nothing of the camera may be copied.
		s.bays.Problem(d.Serial, "dock not recorded: "+err.Error())
		s.log.Error("record dock; camera not read", "camera", d.Serial, "bay", d.Bay(), "err", err)
		return false
	}
	s.bays.Arrived(d.Serial, d.Bay())
	h.mu.Lock()
	if h.sessions == nil {
		h.sessions, h.opened = map[string]ingest.Session{}, map[string]bool{}
	}
	h.sessions[attachment(d)] = sess
	h.opened[attachment(d)] = true
	h.mu.Unlock()
	return true
}

// take returns (and forgets) the session Arrived opened for d.
func (h *usbHandler) take(d usbdock.Dock) ingest.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	sess := h.sessions[attachment(d)]
	delete(h.sessions, attachment(d))
	return sess
}

// Settled runs the copy pass of the session Arrived opened, under ctx, which
// ends when the camera is yanked (the copy must stop: its media is gone) or
// the work context ends. The pass follows the camera and retirement the
// session resolved at arrival, whatever inventory is in force by now.
func (h *usbHandler) Settled(ctx context.Context, d usbdock.Dock) {
	h.s.dock(ctx, ingest.Request{Serial: d.Serial, Root: d.Path, Via: "usb", Identity: identity(d), Session: h.take(d)})
}

// Failed: the camera's storage could not be read (corrupt file system, no
// volume). The bay shows it; the camera stays on the bay until undocked.
func (h *usbHandler) Failed(d usbdock.Dock, err error) {
	s := h.s
	seq := h.take(d).Seq()
	s.bays.Problem(d.Serial, "camera storage unreadable: "+err.Error())
	s.log.Error("camera storage unreadable", "camera", d.Serial, "bay", d.Bay(), "err", err)
	if _, aerr := s.ledger.Append(h.work, custody.Event{
		Type: custody.Refused, Actor: s.DaemonActor(), Camera: d.Serial,
		Details: map[string]string{"reason": "camera storage unreadable: " + err.Error(), "bay": d.Bay(), "via": "usb",
			"dock_seq": strconv.FormatUint(seq, 10)},
	}, nil); aerr != nil {
		s.log.Error("record unreadable camera", "camera", d.Serial, "err", aerr)
	}
}

// Refused: usbdock refused a device presenting a serial already docked in
// another bay, or the inventory pins to another model. It is never mounted;
// the bays show the problem (the refused one on its own line, the one
// already docked with the serial too), and the ledger records it.
func (h *usbHandler) Refused(d usbdock.Dock, others []usbdock.Dock, err error) {
	s := h.s
	s.bays.Conflict(d.Serial, d.Bay(), "REFUSED: "+err.Error())
	details := identity(d)
	details["reason"], details["via"] = err.Error(), "usb"
	var bays []string
	for _, o := range others {
		bays = append(bays, o.Bay())
	}
	if len(bays) > 0 {
		details["docked_on"] = strings.Join(bays, ",")
	}
	if _, aerr := s.ledger.Append(h.work, custody.Event{
		Type: custody.Refused, Actor: s.DaemonActor(), Camera: d.Serial, Details: details,
	}, nil); aerr != nil {
		s.log.Error("record refused device", "camera", d.Serial, "bay", d.Bay(), "err", aerr)
	}
}

// RefusedGone clears the refused device's line once it left its bay.
func (h *usbHandler) RefusedGone(d usbdock.Dock) { h.s.bays.Cleared(d.Serial, d.Bay()) }

// Removed records UNDOCKED, clean or not, for a camera whose DOCKED is on
// record (even when the inventory dropped it since: its session was
// opened, and its copy pass went on with the camera as at arrival) and for
// any other camera the inventory lists now.
func (h *usbHandler) Removed(d usbdock.Dock) {
	h.take(d) // yanked before its volume was readable
	h.mu.Lock()
	opened := h.opened[attachment(d)]
	delete(h.opened, attachment(d))
	h.mu.Unlock()
	h.s.undocked(h.work, d.Serial, map[string]string{"bay": d.Bay(), "via": "usb"}, opened)
}
