package main

import (
	"go/build"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The CLI speaks; internal/service does the work. cmd/evidenced may import
// from this module only the service, the control socket's transport, the
// config loader, the custody and digest types it prints and checks, and the
// escaper every value from outside goes through when printed. In
// particular it never reaches the object store, the uploader, the ingester,
// the anchors, the wipe rule or the export builder itself: what the CLI can
// do, every other front end (the control socket, a console) can do through
// the same service methods.
//
// The web front ends (internal/web: the shared listener; web/dock: the dock
// page; web/console: the web console) are front ends like the CLI: the
// daemon serves them beside the control socket, and they obey the same rule
// (TestWebImportsOnlyTheService), so importing them reaches nothing below
// the service.
var cmdMayImport = []string{
	"internal/config", "internal/control", "internal/custody", "internal/digest", "internal/printable", "internal/service",
	"internal/web", "internal/web/dock", "internal/web/console",
}

// Named so that a failure says which rule of docs/ARCHITECTURE.md broke.
var cmdMustNotImport = []string{
	"internal/objstore/s3store", "internal/upload", "internal/ingest", "internal/anchor", "internal/wipe", "internal/export",
}

const module = "github.com/evidenced/evidenced/"

func TestCmdImportsOnlyTheService(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	// pkg.Imports are the non-test imports: what the binary is built from.
	if !slices.Contains(pkg.Imports, module+"internal/service") {
		t.Fatalf("cmd/evidenced does not import internal/service; the rule below would check nothing (imports: %v)", pkg.Imports)
	}
	for _, imp := range pkg.Imports {
		rel, ok := strings.CutPrefix(imp, module)
		if !ok {
			continue
		}
		if slices.Contains(cmdMustNotImport, rel) {
			t.Errorf("cmd/evidenced imports %s: that work belongs behind internal/service", rel)
			continue
		}
		if !slices.Contains(cmdMayImport, rel) {
			t.Errorf("cmd/evidenced imports %s, which is not one of %v", rel, cmdMayImport)
		}
	}
}

// The web front ends go through the service as the CLI does: none of them
// reaches the store, the uploader, the ingester, the anchors, the wipe rule
// or the export builder by itself.
func TestWebImportsOnlyTheService(t *testing.T) {
	pkgs := moduleImports(t, module+"internal/web/...")
	if len(pkgs) < 2 {
		t.Fatalf("go list found %d web packages, want the listener and the dock page at least: %v", len(pkgs), pkgs)
	}
	for from, imps := range pkgs {
		for _, rel := range imps {
			if slices.Contains(cmdMustNotImport, rel) {
				t.Errorf("%s imports %s: a front end reaches it only through internal/service", from, rel)
			}
		}
	}
}

// moduleImports lists the packages patterns match, each with the packages
// of this module it imports (both relative to the module).
func moduleImports(t *testing.T, patterns ...string) map[string][]string {
	t.Helper()
	args := append([]string{"list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from, _ := strings.CutPrefix(f[0], module)
		pkgs[from] = nil
		for _, imp := range f[1:] {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				pkgs[from] = append(pkgs[from], rel)
			}
		}
	}
	return pkgs
}

// The operations below the service are siblings: each speaks to the ledger,
// the vault and the store through their own packages, never through another
// operation. In particular the uploader and the wipe rule do not import the
// ingester (item identity is custody's, the object key the uploader's, and
// dock admission is handed the ingester's walk), so the layer line of
// docs/ARCHITECTURE.md holds.
var operations = []string{
	"internal/ingest", "internal/upload", "internal/watch", "internal/usbdock",
	"internal/wipe", "internal/anchor", "internal/export", "internal/facts",
}

func TestOperationsDoNotImportEachOther(t *testing.T) {
	var patterns []string
	for _, p := range operations {
		patterns = append(patterns, module+p)
	}
	pkgs := moduleImports(t, patterns...)
	if len(pkgs) != len(operations) {
		t.Fatalf("go list listed %d packages, want %d: %v", len(pkgs), len(operations), pkgs)
	}
	for from, imps := range pkgs {
		for _, rel := range imps {
			if slices.Contains(operations, rel) {
				t.Errorf("%s imports %s: operations below the service do not import each other", from, rel)
			}
		}
	}
}
