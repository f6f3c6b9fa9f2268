// Package systemd holds the unit, drop-in, sysusers, tmpfiles and udev files
// a dock host installs. This test checks them with systemd's own tools
// against a scratch root, so a typo in a directive (which systemd only warns
// about, and then ignores — silently dropping a sandboxing line) fails the
// build instead of weakening a dock host.
package systemd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func required() bool {
	return os.Getenv("CI") != "" || os.Getenv("EVIDENCED_REQUIRE_USB") != ""
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if required() {
			t.Fatalf("%s not found (scripts/setup.sh installs systemd's tools): %v", name, err)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// scratchRoot lays out what `systemctl` would see on a dock host that
// followed the install steps in evidenced.service: the distribution's units
// (for the targets ours is ordered after), our unit, optionally the USB
// drop-in, and an executable where ExecStart points.
func scratchRoot(t *testing.T, withUSB bool, edit func(unit, dropin string) (string, string)) string {
	t.Helper()
	root := t.TempDir()
	sys := ""
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			sys = d
			break
		}
	}
	if sys == "" {
		if required() {
			t.Fatal("no systemd unit directory with sysinit.target on this machine")
		}
		t.Skip("no systemd unit directory with sysinit.target")
	}
	dst := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", sys, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", sys, err, out)
	}
	unit := read(t, "evidenced.service")
	dropin := read(t, "evidenced-usb.conf")
	if edit != nil {
		unit, dropin = edit(unit, dropin)
	}
	write(t, filepath.Join(root, "etc/systemd/system/evidenced.service"), unit, 0o644)
	if withUSB {
		write(t, filepath.Join(root, "etc/systemd/system/evidenced.service.d/usb.conf"), dropin, 0o644)
	}
	if !regexp.MustCompile(`(?m)^ExecStart=`).MatchString(unit) {
		t.Fatal("evidenced.service has no ExecStart")
	}
	// Every command the unit runs (ExecStart, ExecReload, ...) exists in
	// the scratch root, as on a host that followed the install steps.
	for _, exe := range regexp.MustCompile(`(?m)^Exec\w+=(\S+)`).FindAllStringSubmatch(unit, -1) {
		write(t, filepath.Join(root, exe[1]), "#!/bin/sh\nexit 0\n", 0o755)
	}
	return root
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// verify runs systemd-analyze verify; systemd reports a directive it cannot
// parse on stderr and still exits 0, so any output is a finding.
func verify(t *testing.T, root string) (string, error) {
	t.Helper()
	c := exec.Command(tool(t, "systemd-analyze"), "verify", "--root="+root, "evidenced.service")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return strings.TrimSpace(out.String()), err
}

func TestUnitsVerify(t *testing.T) {
	for _, usb := range []bool{false, true} {
		root := scratchRoot(t, usb, nil)
		if out, err := verify(t, root); err != nil || out != "" {
			t.Errorf("systemd-analyze verify (usb drop-in %t): %v\n%s", usb, err, out)
		}
	}
}

// TestUnitsVerifyCatchesTypos is the negative control: the check above
// would pass vacuously if systemd-analyze ignored our files.
func TestUnitsVerifyCatchesTypos(t *testing.T) {
	for name, edit := range map[string]func(u, d string) (string, string){
		"unit": func(u, d string) (string, string) {
			return strings.Replace(u, "NoNewPrivileges=", "NoNewPrivilege=", 1), d
		},
		"drop-in": func(u, d string) (string, string) {
			return u, strings.Replace(d, "DevicePolicy=closed", "DevicePolicy=closd", 1)
		},
	} {
		root := scratchRoot(t, true, edit)
		out, err := verify(t, root)
		if err == nil && out == "" {
			t.Errorf("%s with a misspelt directive passed systemd-analyze verify", name)
		}
	}
}

// TestUnitsExposure keeps the sandbox from eroding: systemd's own exposure
// score (0 best, 10 worst) for the unit, with and without the USB drop-in
// that adds CAP_SYS_ADMIN and @mount.
//
// 1.6 and 2.5 now (were 1.2 and 2.1; limits were 1.5 and 2.5): real systemd
// (test/e2e TestUSBDockSystemd) showed the unit denying two calls evidenced
// needs, mincore and a read-only adjtimex. Allowing adjtimex costs 0.6 in
// this score - ProtectClock=no (its own filter denies all of @clock) and the
// analyser counting @clock and @privileged as allowed once any member is -
// though the clock cannot be set without CAP_SYS_TIME, which is outside the
// bounding set. The limits keep a 0.3 margin above the new scores.
func TestUnitsExposure(t *testing.T) {
	score := regexp.MustCompile(`Overall exposure level for evidenced.service: ([0-9.]+)`)
	for _, c := range []struct {
		usb bool
		max float64
	}{{false, 1.9}, {true, 2.8}} {
		root := scratchRoot(t, c.usb, nil)
		out, err := exec.Command(tool(t, "systemd-analyze"), "security", "--offline=yes", "--root="+root, "evidenced.service").CombinedOutput()
		m := score.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security (usb %t): %v\n%s", c.usb, err, out)
		}
		var got float64
		if _, err := fmt.Sscan(string(m[1]), &got); err != nil {
			t.Fatal(err)
		}
		t.Logf("exposure with usb drop-in %t: %.1f", c.usb, got)
		if got > c.max {
			t.Errorf("exposure with usb drop-in %t is %.1f, above %.1f: a sandboxing line was lost\n%s", c.usb, got, c.max, out)
		}
	}
}

// TestSysusersTmpfiles creates the user and directories in a scratch root
// with systemd's tools, as a dock host's install steps do.
func TestSysusersTmpfiles(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/sysusers.d/evidenced.conf"), read(t, "evidenced.sysusers.conf"), 0o644)
	write(t, filepath.Join(root, "etc/tmpfiles.d/evidenced.conf"), read(t, "evidenced.tmpfiles.conf"), 0o644)
	if out, err := exec.Command(tool(t, "systemd-sysusers"), "--root="+root).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	if !strings.Contains(read(t, filepath.Join(root, "etc/passwd")), "evidenced:x:") {
		t.Fatal("systemd-sysusers did not create the evidenced user")
	}
	out, err := exec.Command(tool(t, "systemd-tmpfiles"), "--create", "--root="+root).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-tmpfiles --create: %v\n%s", err, out)
	}
	for p, mode := range map[string]os.FileMode{"var/lib/evidenced": 0o750, "run/evidenced/media": 0o750, "etc/evidenced": 0o750} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil || !st.IsDir() || st.Mode().Perm() != mode {
			t.Errorf("/%s after systemd-tmpfiles: %v %v, want a directory mode %o", p, st.Mode(), err, mode)
		}
	}
}
