//go:build !cgo

package usbdock

import (
	"errors"
	"log/slog"
)

// ErrNoLibusb: this binary was built without cgo, so without libusb.
var ErrNoLibusb = errors.New("usb: built without cgo (libusb); rebuild with CGO_ENABLED=1")

// NewGoUSB fails: USB detection needs cgo and libusb.
func NewGoUSB(*slog.Logger) (Enumerator, error) { return nil, ErrNoLibusb }
