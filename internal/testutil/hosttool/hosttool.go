// Package hosttool finds the host programs some tests run (promtool,
// dpkg-deb, lintian). Outside CI a missing one skips the test; in CI it
// fails it, so a CI image without the tool cannot pass by skipping.
package hosttool

import (
	"os"
	"os/exec"
	"testing"
)

// Find returns the path of name, or skips (fails in CI) naming the Debian
// package that provides it.
func Find(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (Debian package %s; scripts/setup.sh installs it): %v", name, debianPackage, err)
		}
		t.Skipf("%s not found (Debian package %s)", name, debianPackage)
	}
	return p
}
