package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/hostclock"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// checkOf returns the report's check called name.
func checkOf(t *testing.T, r DoctorReport, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

// expectCheck asserts a check's status, that its detail says detail and
// its fix says fix (a fix only on a failure).
func expectCheck(t *testing.T, c Check, status, detail, fix string) {
	t.Helper()
	if c.Status != status || !strings.Contains(c.Detail, detail) || !strings.Contains(c.Fix, fix) || (status != CheckFail) != (c.Fix == "") {
		t.Errorf("check %q: %s %q fix %q; want %s saying %q, fix %q", c.Name, c.Status, c.Detail, c.Fix, status, detail, fix)
	}
}

// Each outcome of the clock and part integrity checks, whose conditions
// this host shows only one of for real: the clock as the kernel could
// report it (TestDoctorHealthyHost checks this host's end to end), and the
// three things the part probe can find — the store checks the header, the
// store ignores it (or refused the probe for good) so the payload hash
// binds parts, or no verdict, which is a check not done and fails.
// TestDoctorHealthyHost sees the first on versitygw and
// TestDoctorEachFailingCheck the last; a store that ignores the header
// (Ceph RGW) is s3store.TestPartBindingProbed's.
func TestDoctorCheckOutcomes(t *testing.T) {
	clock := func(st hostclock.Status) func(*DoctorReport) {
		return func(r *DoctorReport) { doctorClock(r, st) }
	}
	parts := func(p s3store.PartProbe) func(*DoctorReport) {
		return func(r *DoctorReport) { doctorPartIntegrity(r, p) }
	}
	const integrity = "store: part integrity"
	for _, c := range []struct {
		name, check string
		run         func(*DoctorReport)
		status      string
		detail, fix string
	}{
		{"clock synchronised", "clock", clock(hostclock.Status{Known: true, Synced: true, Method: "adjtimex", EstError: 3 * time.Millisecond}),
			CheckOK, "synchronised (adjtimex, estimated error 3ms)", ""},
		{"clock not synchronised", "clock", clock(hostclock.Status{Known: true, Method: "adjtimex"}),
			CheckFail, "the host clock is not synchronised (adjtimex)", "timedatectl set-ntp true"},
		{"kernel not asked", "clock", clock(hostclock.Status{Method: "adjtimex", Err: "operation not permitted"}),
			CheckFail, "cannot ask the kernel: operation not permitted", "run doctor where adjtimex is allowed"},
		{"parts checked by the store", integrity, parts(s3store.PartProbe{Binding: s3store.BindingChecksum, Why: s3store.WhyChecked}),
			CheckOK, "by x-amz-checksum-sha256 (checked by the store): " + s3store.WhyChecked, ""},
		{"checksum ignored by the store", integrity, parts(s3store.PartProbe{Binding: s3store.BindingPayloadHash, Why: s3store.WhyIgnored}),
			CheckOK, "the store ignores x-amz-checksum-sha256 on a part, so each part is bound to its SHA-256 by the signed payload hash", ""},
		{"part probe refused for good", integrity, parts(s3store.PartProbe{Binding: s3store.BindingPayloadHash, Why: "the store refused the unsigned probe part: not implemented"}),
			CheckOK, "by the signed payload hash (x-amz-content-sha256): the store refused the unsigned probe part", ""},
		{"parts could not be probed", integrity, parts(s3store.PartProbe{Err: errors.New("connection reset by peer")}),
			CheckFail, "could not probe whether the store checks x-amz-checksum-sha256 on a part: connection reset by peer", "run doctor again once the store answers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r DoctorReport
			c.run(&r)
			expectCheck(t, checkOf(t, r, c.check), c.status, c.detail, c.fix)
		})
	}
}

// libusb missing and the udev rule and the unit's drop-in present, which
// this host cannot be made to show for real (TestDoctorEachFailingCheck
// covers the other outcomes end to end): the places doctor looks are
// pointed at directories the test made.
func TestDoctorUSB(t *testing.T) {
	dir := t.TempDir()
	lib, rules, dropin := filepath.Join(dir, "lib"), filepath.Join(dir, "rules.d"), filepath.Join(dir, "usb.conf")
	for _, d := range []string{lib, rules} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer func(l, u []string, d string) { libDirs, udevRuleDirs, usbDropIn = l, u, d }(libDirs, udevRuleDirs, usbDropIn)
	libDirs, udevRuleDirs, usbDropIn = []string{lib}, []string{rules}, dropin
	cfg := &config.Config{}
	cfg.Sources.USB.Enabled = true

	var r DoctorReport
	doctorUSB(&r, cfg)
	expectCheck(t, checkOf(t, r, "usb: libusb"), CheckFail, "libusb-1.0.so.0 not found", "apt install libusb-1.0-0")
	expectCheck(t, checkOf(t, r, "usb: udev rule"), CheckFail, udevRule+" is not installed", "udevadm control --reload")

	for p, data := range map[string]string{
		filepath.Join(lib, "libusb-1.0.so.0"): "",
		filepath.Join(rules, udevRule):        "# rule\n",
		dropin:                                "[Service]\nAmbientCapabilities=CAP_SYS_ADMIN\n",
	} {
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r = DoctorReport{}
	doctorUSB(&r, cfg)
	expectCheck(t, checkOf(t, r, "usb: libusb"), CheckOK, filepath.Join(lib, "libusb-1.0.so.0"), "")
	expectCheck(t, checkOf(t, r, "usb: udev rule"), CheckOK, filepath.Join(rules, udevRule), "")
	expectCheck(t, checkOf(t, r, "usb: mount capability"), CheckOK, dropin+" grants CAP_SYS_ADMIN to the service", "")
}

// A host key others can read may have been copied: the fix says how to
// replace it where that is possible. A dock host rotates it (key rotate);
// a console cannot (RotateKey refuses, ErrConsoleKey), so it needs a new
// host_id and state_dir.
func TestDoctorHostKeyReadableFix(t *testing.T) {
	for _, c := range []struct{ role, fix string }{
		{"", "it may have been copied: evidenced key rotate --reason TEXT replaces it"},
		{config.RoleConsole, "a console's key cannot be rotated: a copied key means a new host_id and state_dir"},
	} {
		cfg := &config.Config{StateDir: t.TempDir(), HostID: "h1", Role: c.role}
		if err := os.WriteFile(cfg.KeyPath(), []byte("any\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cfg.KeyPath(), 0o644); err != nil { // past the umask
			t.Fatal(err)
		}
		var r DoctorReport
		doctorHostKey(&r, cfg, "evidenced")
		expectCheck(t, checkOf(t, r, "host key"), CheckFail, "has mode 0644: others can read the key that signs custody", c.fix)
	}
}
