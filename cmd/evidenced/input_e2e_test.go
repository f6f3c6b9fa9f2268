package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// eventCount is how many records the harness's ledger holds (no process
// may hold it).
func eventCount(t *testing.T, h *harness) int {
	t.Helper()
	l := openLedger(t, h)
	defer l.Close()
	n := 0
	if err := l.Events(context.Background(), 1, func(custody.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// refused runs a command that must be refused as a usage error: exit 2,
// nothing on stdout, stderr containing want, and nothing recorded.
func (h *harness) refused(t *testing.T, want string, args ...string) {
	t.Helper()
	before := eventCount(t, h)
	code, out, errs := h.bin(nil, args...)
	if code != exitUsage {
		t.Errorf("evidenced %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, exitUsage, out, errs)
	}
	if !strings.Contains(errs, want) {
		t.Errorf("evidenced %s: stderr %q lacks %q", strings.Join(args, " "), errs, want)
	}
	if out != "" {
		t.Errorf("evidenced %s: a refusal printed to stdout: %q", strings.Join(args, " "), out)
	}
	if after := eventCount(t, h); after != before {
		t.Errorf("evidenced %s: refused, but %d custody record(s) written", strings.Join(args, " "), after-before)
	}
}

// vaultedItem ingests one small recording into a vault-only host.
func vaultedItem(t *testing.T, h *harness) custody.Item {
	t.Helper()
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 10 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find()
	if len(items) != 1 {
		t.Fatalf("%d items", len(items))
	}
	return items[0]
}

// Every reason is something a court can read: empty or blank is refused,
// naming the flag.
func TestBlankReasonsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	it := vaultedItem(t, h)
	out := filepath.Join(h.dir, "out.mp4")
	for _, reason := range []string{"", "   ", "\t"} {
		h.refused(t, "get: --reason is required", "get", it.ID, "--reason", reason, "--out", out)
		h.refused(t, "export: --reason is required", "export", it.ID, "--reason", reason, "--out", filepath.Join(h.dir, "pkg"))
		h.refused(t, "classify: --reason is required", "classify", it.ID, "--class", "incident", "--reason", reason)
		h.refused(t, "hold: --reason is required", "hold", it.ID, "--case", "C-1", "--reason", reason)
		h.refused(t, "release: --reason is required", "release", it.ID, "--case", "C-1", "--reason", reason)
	}
	h.refused(t, "get: --reason is required", "get", it.ID, "--out", out)
	h.refused(t, "key rotate needs a reason", "key", "rotate")
	h.refused(t, "key: --reason must not be empty or only whitespace", "key", "rotate", "--reason", " ")
	h.refused(t, "hold: --case is required", "hold", it.ID, "--reason", "case opened", "--case", " ")
	// Where a reason is optional, one given blank is still refused.
	h.refused(t, "find: --reason must not be empty or only whitespace", "find", "--reason", "  ")
	h.refused(t, "custody: --reason must not be empty or only whitespace", "custody", it.ID, "--reason", "")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused get wrote %s", out)
	}
}

// A positional argument a command does not take is refused, never ignored:
// `find officer-4711` must not list everything.
func TestStrayArgumentsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	it := vaultedItem(t, h)
	h.refused(t, `find: unexpected argument "officer-4711"`, "find", "officer-4711")
	for _, args := range [][]string{
		{"status", "x"}, {"verify", "x"}, {"store-init", "x"}, {"key", "rotate", "x", "--reason", "r"}, {"access", "x"},
		{"ingest", "--camera", "BWC-0001", "--from", h.dir, "x"}, {"version", "x"}, {"run", "x"},
		{"custody", it.ID, "x"}, {"get", it.ID, "x", "--reason", "r", "--out", filepath.Join(h.dir, "o")},
		{"classify", it.ID, "x", "--class", "incident", "--reason", "r"},
		{"hold", it.ID, "x", "--case", "C", "--reason", "r"}, {"release", it.ID, "x", "--case", "C", "--reason", "r"},
		{"verify-export", h.dir, "x"},
	} {
		h.refused(t, args[0]+`: unexpected argument "x"`, args...)
	}
	h.refused(t, `fleet: unknown subcommand "x"`, "fleet", "x")
	h.refused(t, `key: unknown subcommand "x"`, "key", "--public", "x")
	h.refused(t, `fleet: unexpected argument "b"`, "fleet", "clear", "a", "b", "--reason", "r")
	h.refused(t, "fleet clear: missing HOST", "fleet", "clear", "--reason", "r")
	h.refused(t, "fleet clear: --reason is required", "fleet", "clear", "dock-01")
	h.refused(t, "custody: missing ID", "custody")
	h.refused(t, "export: missing ID", "export", "--reason", "r", "--out", filepath.Join(h.dir, "pkg"))
	for _, cmd := range []string{"find", "access"} {
		h.refused(t, "--since 2026-11-25T00:00:00Z is later than --until 2026-11-24T00:00:00Z",
			cmd, "--since", "2026-11-25", "--until", "2026-11-24")
	}
}

func TestIngestFromMustBeADirectory(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	vaultedItem(t, h) // the ledger exists: a refusal must add nothing to it
	file := filepath.Join(h.dir, "file.MP4")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(h.dir, "no-such-camera")
	h.refused(t, "--from "+missing+": no such file or directory", "ingest", "--camera", "BWC-0001", "--from", missing)
	h.refused(t, "--from "+file+": not a directory", "ingest", "--camera", "BWC-0001", "--from", file)
}

func TestGetOutIntoMissingDirectory(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	it := vaultedItem(t, h)
	dir := filepath.Join(h.dir, "no", "such")
	code, out, errs := h.bin(nil, "get", it.ID, "--reason", "review", "--out", filepath.Join(dir, "a.mp4"))
	if code != exitUsage || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	oneLine(t, "get --out", errs, "directory "+dir+" does not exist")
	if strings.Contains(errs, ".evidenced-") {
		t.Errorf("stderr names an internal temporary file: %q", errs)
	}
}

func TestVerifyExportOnANonPackage(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"notes.txt": "hello", "item.json": "{", "sub/x.bin": "\x00\x01"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := run(t, nil, "verify-export", dir)
	if code != exitUsage || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	oneLine(t, "verify-export", errs, dir+" is not an export package (no MANIFEST.sha256)")
}

// Help is output (stdout, exit 0); a usage error is an error (stderr,
// exit 2); a mistyped command gets a suggestion.
func TestHelpAndUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args       []string
		code       int
		stdout     string // "" : must be empty
		stderr     string // "" : must be empty
		stdoutNone bool
	}{
		{args: []string{"--help"}, code: 0, stdout: "Commands:"},
		{args: []string{"help"}, code: 0, stdout: "access"},
		{args: []string{"get", "--help"}, code: 0, stdout: "--reason string"},
		{args: []string{"verify", "-h"}, code: 0, stdout: "Usage: evidenced verify"},
		{args: []string{}, code: 2, stderr: "Commands:"},
		{args: []string{"get", "--bogus"}, code: 2, stderr: "get: flag provided but not defined: --bogus"},
		{args: []string{"find", "--json=maybe"}, code: 2, stderr: `invalid boolean value "maybe" for --json`},
		{args: []string{"fnd"}, code: 2, stderr: `unknown command "fnd"; did you mean "find"?`},
		{args: []string{"verfy-export"}, code: 2, stderr: `did you mean "verify-export"?`},
	} {
		code, out, errs := run(t, nil, c.args...)
		name := "evidenced " + strings.Join(c.args, " ")
		if code != c.code {
			t.Errorf("%s: exit %d, want %d", name, code, c.code)
		}
		if c.stdout == "" && out != "" {
			t.Errorf("%s: stdout %q, want nothing", name, out)
		}
		if c.stdout != "" && !strings.Contains(out, c.stdout) {
			t.Errorf("%s: stdout %q lacks %q", name, out, c.stdout)
		}
		if c.stderr == "" && errs != "" {
			t.Errorf("%s: stderr %q, want nothing", name, errs)
		}
		if c.stderr != "" && !strings.Contains(errs, c.stderr) {
			t.Errorf("%s: stderr %q lacks %q", name, errs, c.stderr)
		}
	}
}

// The config is --config, else $EVIDENCED_CONFIG; every command accepts
// --config, also those that read none.
func TestConfigFromEnvironment(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	vaultedItem(t, h) // status reads a ledger; it creates none
	code, out, errs := run(t, []string{"EVIDENCED_CONFIG=" + h.cfgPath}, "status")
	if code != 0 || !strings.Contains(out, "items: 1 vaulted") {
		t.Errorf("status with EVIDENCED_CONFIG: exit %d\n%s%s", code, out, errs)
	}
	missing := filepath.Join(h.dir, "missing.yaml")
	code, _, errs = run(t, []string{"EVIDENCED_CONFIG=" + missing}, "status")
	if code != exitUsage || !strings.Contains(errs, missing) {
		t.Errorf("status with EVIDENCED_CONFIG naming a missing file: exit %d, stderr %q", code, errs)
	}
	// --config wins over the environment.
	if code, _, errs := run(t, []string{"EVIDENCED_CONFIG=" + missing}, "status", "--config", h.cfgPath); code != 0 {
		t.Errorf("--config did not win over EVIDENCED_CONFIG: exit %d, %s", code, errs)
	}
	for _, args := range [][]string{{"version", "--config", h.cfgPath}, {"verify-export", "--config", h.cfgPath, h.dir}} {
		if code, _, errs := run(t, nil, args...); strings.Contains(errs, "flag provided but not defined") {
			t.Errorf("%s does not accept --config: exit %d, %s", args[0], code, errs)
		}
	}
}

// `version` names the module and the VCS revision the binary was built
// from (what runtime/debug.ReadBuildInfo recorded). The test binary is
// built from a clone, the way a release is (the Go toolchain records no
// revision in a git worktree), so the revision is known.
func TestVersionNamesTheRevision(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	rev := strings.TrimSpace(string(head))
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	for _, args := range [][]string{
		{"clone", "--quiet", "--shared", "--no-checkout", strings.TrimSpace(string(top)), src},
		{"-C", src, "checkout", "--quiet", "--detach", rev},
	} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	// The code under test is the working tree: what is not committed yet
	// is carried over, and the binary must then say so.
	root := strings.TrimSpace(string(top))
	dirty := false
	for _, mode := range []string{"--modified", "--others", "--deleted"} {
		ls, err := exec.Command(git, "-C", root, "ls-files", mode, "--exclude-standard").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(ls)) {
			dirty = true
			dst := filepath.Join(src, f)
			b, err := os.ReadFile(filepath.Join(root, f))
			switch {
			case mode == "--deleted" || os.IsNotExist(err):
				os.Remove(dst)
			case err != nil:
				t.Fatal(err)
			default:
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if err := os.WriteFile(dst, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	bin := filepath.Join(t.TempDir(), "evidenced")
	build := exec.Command("go", "build", "-o", bin, "./cmd/evidenced")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in a clone: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	line := string(out)
	for _, want := range []string{"evidenced ", "module github.com/evidenced/evidenced", "revision " + rev} {
		if !strings.Contains(line, want) {
			t.Errorf("version %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "uncommitted") != dirty {
		t.Errorf("version %q: the source had uncommitted changes: %v", line, dirty)
	}
}

// Custodians list access events, also those of no item (searches,
// verifies): "who searched for officer-4711" is answerable.
func TestAccessListsSearches(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	it := vaultedItem(t, h)
	h.mustCLI("find", "--assigned-to", "officer-4711", "--reason", "complaint 7", "--actor", "investigator-1")
	h.mustCLI("verify", "--actor", "custodian-1")
	h.mustCLI("custody", it.ID, "--actor", "investigator-1", "--reason", "review")
	code, out, errs := h.bin(nil, "access", "--actor", "investigator-1", "--json")
	if code != 0 {
		t.Fatalf("access: exit %d\n%s", code, errs)
	}
	var evs []custody.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("access --json: %v\n%s", err, out)
	}
	var actions []string
	for _, ev := range evs {
		// The actor is the OS user; the name given with --actor is
		// recorded beside it, and selects it.
		if ev.Type != custody.Accessed || ev.Actor == "investigator-1" || ev.Details["on_behalf_of"] != "investigator-1" {
			t.Errorf("listed %s by %s on behalf of %q", ev.Type, ev.Actor, ev.Details["on_behalf_of"])
		}
		actions = append(actions, ev.Details["action"])
	}
	if strings.Join(actions, ",") != "find,custody" {
		t.Fatalf("investigator-1's accesses: %v, want find then custody", actions)
	}
	if f := evs[0]; f.Item != "" || f.Details["assigned_to"] != "officer-4711" || f.Details["reason"] != "complaint 7" {
		t.Errorf("the search is listed as %+v", f)
	}
	if evs[1].Item != it.ID {
		t.Errorf("the custody view names item %q, want %s", evs[1].Item, it.ID)
	}
	// A window that ends before the accesses lists none; the listing
	// itself is an access, on record.
	_, out, _ = h.bin(nil, "access", "--until", "2020-01-01", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("access --until 2020-01-01: %s", out)
	}
	_, table, _ := h.bin(nil, "access")
	if !strings.Contains(table, "access") || !strings.Contains(table, "custodian-1") || !strings.Contains(table, "verify") {
		t.Errorf("access table:\n%s", table)
	}
}

// status shows a docked camera that is not in the inventory as such, with
// no progress (it is never read).
func TestStatusShowsUnknownCamera(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	stop, logs := h.daemon(t)
	staging := filepath.Join(h.dir, "staging", "STRANGER-9")
	writeCamera(t, staging, map[string]int{"DCIM/A.MP4": 10 << 10})
	if err := os.Rename(staging, filepath.Join(h.media, "STRANGER-9")); err != nil {
		t.Fatal(err)
	}
	// The watched folder shows as its bay ("docked, waiting to copy") from
	// the moment it settles until the dock session looks the camera up, a
	// few milliseconds later; what status must reach is the verdict, and
	// no line of it may ever show a percentage: nothing is read.
	var status, line string
	waitFor(t, "the unknown camera's verdict in status", time.Minute, func() bool {
		_, status, _ = h.bin(nil, "status")
		line = ""
		for _, l := range strings.Split(status, "\n") {
			if strings.HasPrefix(l, "STRANGER-9") {
				line = l
			}
		}
		if strings.Contains(line, "%") {
			t.Fatalf("status line %q: a camera not in the inventory shows progress\n%s", line, status)
		}
		return strings.Contains(line, "not in the inventory")
	})
	if code := stop(); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, logs)
	}
}
