// Package packaging tests the Debian package scripts/package.sh builds.
package packaging

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/testutil/hosttool"
)

const version = "1.2.3~test"

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// The package holds what a dock host needs where Debian puts it, installs
// its config as a conffile, starts nothing from its maintainer scripts, and
// passes lintian.
func TestDebianPackage(t *testing.T) {
	dpkgDeb := hosttool.Find(t, "dpkg-deb", "dpkg")
	if testing.Short() {
		t.Skip("builds the binary with external linking (minutes)")
	}
	out := t.TempDir()
	cmd := exec.Command("../scripts/package.sh", out)
	cmd.Env = append(os.Environ(), "VERSION="+version)
	built, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, built)
	}
	deb := filepath.Join(out, "evidenced_"+version+"_amd64.deb")
	if strings.TrimSpace(string(built)) != deb {
		t.Fatalf("package.sh printed %q, want %s", built, deb)
	}

	// Contents: path → mode.
	listing := run(t, dpkgDeb, "--contents", deb)
	for path, mode := range map[string]string{
		"./usr/bin/evidenced":                               "-rwxr-xr-x",
		"./usr/lib/systemd/system/evidenced.service":        "-rw-r--r--",
		"./usr/lib/sysusers.d/evidenced.conf":               "-rw-r--r--",
		"./usr/lib/tmpfiles.d/evidenced.conf":               "-rw-r--r--",
		"./usr/lib/udev/rules.d/99-evidenced-cameras.rules": "-rw-r--r--",
		"./usr/lib/modules-load.d/evidenced.conf":           "-rw-r--r--",
		"./usr/share/evidenced/evidenced-usb.conf":          "-rw-r--r--",
		"./usr/share/evidenced/evidenced.rules.yml":         "-rw-r--r--",
		"./etc/evidenced/evidenced.yaml":                    "-rw-r--r--",
		"./usr/share/doc/evidenced/copyright":               "-rw-r--r--",
		"./usr/share/doc/evidenced/changelog.gz":            "-rw-r--r--",
		"./usr/share/doc/evidenced/README.md":               "-rw-r--r--",
	} {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(mode) + ` root/root .* ` + regexp.QuoteMeta(path) + `$`)
		if !re.MatchString(listing) {
			t.Errorf("package lacks %s %s (root-owned)", mode, path)
		}
	}
	if strings.Contains(listing, "evidenced.service.d") {
		t.Error("the USB drop-in (CAP_SYS_ADMIN) is installed active; it must stay an opt-in example")
	}

	// Control data.
	for field, want := range map[string]string{"Package": "evidenced", "Version": version, "Architecture": "amd64"} {
		if got := strings.TrimSpace(run(t, dpkgDeb, "--field", deb, field)); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if deps := run(t, dpkgDeb, "--field", deb, "Depends"); !strings.Contains(deps, "libusb-1.0-0") {
		t.Errorf("Depends %q lacks libusb-1.0-0 (the binary links it)", deps)
	}
	ctl := t.TempDir()
	run(t, dpkgDeb, "--control", deb, ctl)
	conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if strings.TrimSpace(string(conffiles)) != "/etc/evidenced/evidenced.yaml" {
		t.Errorf("conffiles = %q, want the config", conffiles)
	}
	surprise := regexp.MustCompile(`systemctl[^\n]*\b(enable|start|restart)\b|deb-systemd-invoke[^\n]*\b(start|restart)\b|deb-systemd-helper[^\n]*\benable\b`)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		data, err := os.ReadFile(filepath.Join(ctl, s))
		if err != nil {
			t.Errorf("maintainer script %s: %v", s, err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "echo ") {
				continue // what the admin is told to run, not what runs
			}
			if m := surprise.FindString(line); m != "" {
				t.Errorf("%s starts or enables something: %q", s, line)
			}
		}
		if s == "postinst" && !strings.Contains(string(data), "systemd-sysusers evidenced.conf") {
			t.Error("postinst does not create the evidenced user")
		}
		if s == "postrm" && regexp.MustCompile(`rm -rf /var/lib`).Match(data) {
			t.Error("postrm deletes the ledger and vault")
		}
	}

	// The files themselves: the unit runs the packaged binary, the binary
	// runs and carries the package version, the config loads, vault only.
	root := t.TempDir()
	run(t, dpkgDeb, "--extract", deb, root)
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/evidenced.service"))
	if !regexp.MustCompile(`(?m)^ExecStart=/usr/bin/evidenced run `).Match(unit) {
		t.Errorf("the packaged unit does not run /usr/bin/evidenced:\n%s", unit)
	}
	if v := run(t, filepath.Join(root, "usr/bin/evidenced"), "version"); !strings.Contains(v, version) {
		t.Errorf("evidenced version says %q, want %s", v, version)
	}
	cfg, err := config.Load(filepath.Join(root, "etc/evidenced/evidenced.yaml"))
	if err != nil {
		t.Fatalf("the packaged config does not load: %v", err)
	}
	if cfg.ObjectStore != nil {
		t.Error("the packaged config sets an object store; it must be left to the site")
	}

	// The copyright file: machine-readable (DEP-5), the whole package
	// under the project's licence, nothing reserved.
	copyright, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/evidenced/copyright"))
	for _, re := range []string{
		`\AFormat: https://www\.debian\.org/doc/packaging-manuals/copyright-format/1\.0/\n`,
		`(?m)^Files: \*\nCopyright: [0-9]{4}(-[0-9]{4})? the evidenced authors\nLicense: Apache-2\.0$`,
		`(?m)^License: Apache-2\.0\n Licensed under the Apache License, Version 2\.0`,
		`/usr/share/common-licenses/Apache-2\.0`,
	} {
		if !regexp.MustCompile(re).Match(copyright) {
			t.Errorf("copyright file lacks %s:\n%s", re, copyright)
		}
	}
	if regexp.MustCompile(`(?i)rights\s+(are\s+)?reserved`).Match(copyright) {
		t.Errorf("copyright file reserves rights the licence grants:\n%s", copyright)
	}

	lintian := hosttool.Find(t, "lintian", "lintian")
	lint, err := exec.Command(lintian, "--fail-on", "error,warning", deb).CombinedOutput()
	if err != nil || regexp.MustCompile(`(?m)^[EW]: `).Match(lint) {
		t.Errorf("lintian: %v\n%s", err, lint)
	}
}

// apache2SHA256 is the SHA-256 of the Apache License 2.0 as the ASF
// publishes it (https://www.apache.org/licenses/LICENSE-2.0.txt) and Debian
// ships it (/usr/share/common-licenses/Apache-2.0).
const apache2SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// LICENSE is the standard Apache-2.0 text, unedited: the package's
// copyright file and the SPDX identifier name it, so an edit would make
// them untrue.
func TestLicenseIsApache2(t *testing.T) {
	data, err := os.ReadFile("../LICENSE")
	if err != nil {
		t.Fatalf("the repository has no licence: %v", err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != apache2SHA256 {
		t.Errorf("LICENSE sha256 %s; want the standard Apache-2.0 text (%s)", got, apache2SHA256)
	}
	if deb, err := os.ReadFile("/usr/share/common-licenses/Apache-2.0"); err == nil && !bytes.Equal(deb, data) {
		t.Error("LICENSE differs from Debian's /usr/share/common-licenses/Apache-2.0, which the copyright file points to")
	}
}
