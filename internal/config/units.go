package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in the file as Go duration text
// ("2s", "5m", "1h30m"). A bare number is refused (except 0) because "30"
// could mean seconds or minutes and a wrong guess changes behaviour silently.
type Duration struct{ time.Duration }

var (
	_ yaml.Unmarshaler = (*Duration)(nil)
	_ yaml.Marshaler   = Duration{}
)

// ParseDuration parses duration text as the config file accepts it.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return Duration{}, nil
	}
	if s == "" {
		return Duration{}, errors.New("empty duration")
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return Duration{}, fmt.Errorf("duration %q has no unit; write e.g. %ss or %sm", s, s, s)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		// Whole days ("90d"), for cycles and ages that are counted in
		// days; time.ParseDuration has no unit longer than an hour.
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > math.MaxInt64/uint64(24*time.Hour) {
			return Duration{}, fmt.Errorf("%q is not a duration; write whole days as e.g. 90d", s)
		}
		return Duration{time.Duration(n) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("%q is not a duration; write e.g. 2s, 500ms, 5m, 1h, 90d", s)
	}
	return Duration{d}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a duration such as 2s or 5m")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText lets JSON output (status, reports) show "2s", not nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ByteSize is a number of bytes written as a plain integer or with a unit:
// binary (KiB, MiB, GiB, TiB, 1024-based) or decimal (B, kB, MB, GB, TB,
// 1000-based). Units are matched case-insensitively. Bare K/M/G are refused
// as ambiguous, and fractions are refused so that the value is exact.
type ByteSize int64

var (
	_ yaml.Unmarshaler = (*ByteSize)(nil)
	_ yaml.Marshaler   = ByteSize(0)
)

// Common sizes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var byteUnits = map[string]int64{
	"b":   1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseByteSize parses a size as the config file accepts it.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a size; write e.g. 1073741824, 64MiB or 1GiB", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if unit == "" {
		return ByteSize(n), nil
	}
	mult, ok := byteUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q; use B, KiB, MiB, GiB, TiB (1024-based) or kB, MB, GB, TB (1000-based), whole numbers only", s, unit)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a size such as 64MiB or 1GiB")
	}
	if strings.HasPrefix(strings.TrimSpace(n.Value), "-") {
		return fmt.Errorf("size %q is negative", n.Value)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String renders the size with the largest binary unit that divides it
// exactly, so what is printed parses back to the same value.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size ByteSize
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalText renders the size as String does.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (b *ByteSize) UnmarshalText(t []byte) error {
	v, err := ParseByteSize(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// USBID is a USB vendor or product id. The file writes it as four hex
// digits, as lsusb prints it ("1209", or "0x1209"), never as a decimal
// number: an id copied from lsusb must mean the same thing here.
type USBID uint16

var _ yaml.Unmarshaler = (*USBID)(nil)

// ParseUSBID parses a USB id as the config file accepts it.
func ParseUSBID(s string) (USBID, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	if len(h) != 4 {
		return 0, fmt.Errorf("%q is not a USB id: write four hex digits as lsusb prints them, e.g. 1209 or 0x1209", s)
	}
	v, err := strconv.ParseUint(h, 16, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a USB id: write four hex digits as lsusb prints them, e.g. 1209 or 0x1209", s)
	}
	return USBID(v), nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (id *USBID) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected a USB id such as 1209")
	}
	v, err := ParseUSBID(n.Value)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// USBPair is a USB vendor:product pair as lsusb prints it ("1209:0001").
type USBPair struct{ Vendor, Product USBID }

var _ yaml.Unmarshaler = (*USBPair)(nil)

// ParseUSBPair parses "vvvv:pppp".
func ParseUSBPair(s string) (USBPair, error) {
	v, p, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return USBPair{}, fmt.Errorf("%q is not vendor:product: write it as lsusb prints it, e.g. 1209:0001", s)
	}
	vid, err := ParseUSBID(v)
	if err != nil {
		return USBPair{}, err
	}
	pid, err := ParseUSBID(p)
	if err != nil {
		return USBPair{}, err
	}
	return USBPair{vid, pid}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (u *USBPair) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("expected vendor:product such as 1209:0001")
	}
	v, err := ParseUSBPair(n.Value)
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// String is the pair as lsusb prints it.
func (u USBPair) String() string { return u.Vendor.String() + ":" + u.Product.String() }

// MarshalText lets JSON output show "1209:0001".
func (u USBPair) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// String is the id as lsusb prints it.
func (id USBID) String() string { return fmt.Sprintf("%04x", uint16(id)) }

// MarshalText lets JSON output show "1209".
func (id USBID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }
