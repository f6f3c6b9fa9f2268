package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/control"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// osUser is the actor every record of these tests names: the OS user
// running them, as the kernel reports it (--actor is only on_behalf_of).
var osUser = control.OSIdentity(os.Geteuid())

// binPath is the evidenced binary built once for the tests that need a real
// process (the daemon, SIGKILL).
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evidenced-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "evidenced")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build evidenced: %v\n%s", err, out)
		os.Exit(1)
	}
	code := s3srv.Main(m) // stops the Ceph RGW the RGW tests started, if any
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is one host: a config, a state dir, a watched media dir and (unless
// vault-only) a fresh Object-Locked bucket on a real S3 server.
type harness struct {
	t       *testing.T
	dir     string
	cfgPath string
	media   string
	state   string
	srv     *s3srv.Server
	bucket  string
	// socket is the control socket when the config names one
	// (control_socket); "" means <state>/evidenced.sock.
	socket string
}

type harnessOpts struct {
	noStore bool
	extra   string // appended YAML
	// media, when set, is the watched folder's path under the harness's
	// directory (default "media").
	media string
	// rgw: the store is the test binary's shared Ceph RGW, not a
	// versitygw of the test's own.
	rgw bool
	// users: the versitygw also keeps accounts besides root
	// (s3srv.StartWithUsers).
	users bool
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	dir := shortTempDir(t)
	h := &harness{t: t, dir: dir, media: filepath.Join(dir, cmp.Or(o.media, "media")), state: filepath.Join(dir, "state")}
	if err := os.MkdirAll(h.media, 0o755); err != nil {
		t.Fatal(err)
	}
	store := ""
	if !o.noStore {
		switch {
		case o.rgw:
			h.srv = s3srv.RGW(t)
		case o.users:
			h.srv = s3srv.StartWithUsers(t)
		default:
			h.srv = s3srv.Start(t)
		}
		h.bucket = h.srv.NewBucket(t)
		h.srv.SetEnv(t)
		store = fmt.Sprintf(`object_store:
  endpoint: %s
  bucket: %s
  region: us-east-1
  path_style: true
  multipart_threshold: 8MiB
`, h.srv.Endpoint, h.bucket)
	}
	cfg := fmt.Sprintf(`host_id: test-dock
state_dir: %s
sources:
  watch: [%s]
  manual: [%s, %s, %s]
  settle: 200ms
%sretention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
    - {name: incident, days: 2555, mode: COMPLIANCE}
cameras:
  - {serial: BWC-0001, kind: body, assigned_to: officer-4711}
  - {serial: BWC-0002, kind: body, assigned_to: officer-0815}
  - {serial: CAR-0001, kind: vehicle, assigned_to: vehicle-CA123456}
shutdown_timeout: 20s
vault_reserve: 0
upload:
  concurrency: 2
  retry_min: 100ms
  retry_max: 2s
%s`, h.state, h.media, filepath.Join(dir, "cam"), filepath.Join(dir, "cam2"), filepath.Join(dir, "cam-car"), store, o.extra)
	h.cfgPath = filepath.Join(dir, "evidenced.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// shortTempDir is t.TempDir without the test's name in the path: the
// control socket lives in the state directory, and a Unix socket's path is
// at most 108 bytes, which a long subtest name under a long TMPDIR exceeds
// (the config is then refused, rightly).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "evh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the test directory: %v", err)
		}
	})
	return dir
}

// cli runs one command in-process (no daemon unless one is running for this
// harness) and returns its exit code and output.
func (h *harness) cli(args ...string) (int, string, string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append([]string{args[0], "--config", h.cfgPath}, args[1:]...)
	code := Main(ctx, ctx, full, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// mustCLI runs a command that must exit 0.
func (h *harness) mustCLI(args ...string) string {
	h.t.Helper()
	code, out, errs := h.cli(args...)
	if code != 0 {
		h.t.Fatalf("evidenced %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (h *harness) find(args ...string) []custody.Item {
	h.t.Helper()
	out := h.mustCLI(append([]string{"find", "--json"}, args...)...)
	var items []custody.Item
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		h.t.Fatalf("find --json: %v\n%s", err, out)
	}
	return items
}

func (h *harness) custody(id string) []custody.Event {
	h.t.Helper()
	out := h.mustCLI("custody", id, "--json")
	var evs []custody.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		h.t.Fatalf("custody --json: %v\n%s", err, out)
	}
	return evs
}

// camera writes files (relative path → size) with random content under a new
// camera folder and returns its path. Each file gets a distinct mtime.
func writeCamera(t *testing.T, root string, files map[string]int) map[string][]byte {
	t.Helper()
	content := map[string][]byte{}
	i := 0
	for rel, size := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Date(2026, 11, 23, 8, i, 0, 0, time.UTC)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		content[rel] = b
		i++
	}
	return content
}

func eventTypes(evs []custody.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type))
	}
	return out
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
