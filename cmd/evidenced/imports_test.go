package main

import (
	"go/build"
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
var cmdMayImport = []string{
	"internal/config", "internal/control", "internal/custody", "internal/digest", "internal/printable", "internal/service",
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
