package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// hupDaemon starts the built binary's daemon and returns a way to send it
// SIGHUP, its pid's logs, and stop.
func hupDaemon(t *testing.T, h *harness) (hup func(), logs *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binPath, "run", "--config", h.cfgPath)
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	sock := filepath.Join(h.state, "evidenced.sock")
	waitFor(t, "daemon socket", 30*time.Second, func() bool {
		st, err := os.Stat(sock)
		return err == nil && st.Mode()&os.ModeSocket != 0
	})
	return func() {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v (the daemon died?)\n%s", err, logs.String())
		}
	}, logs
}

// syncBuffer is a log buffer the test reads while the daemon writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dockFolder moves a camera folder with files into the watched directory.
func dockFolder(t *testing.T, h *harness, serial string, files map[string]int) {
	t.Helper()
	staging := filepath.Join(h.dir, "staging", serial)
	os.RemoveAll(staging)
	writeCamera(t, staging, files)
	if err := os.Rename(staging, filepath.Join(h.media, serial)); err != nil {
		t.Fatal(err)
	}
}

func vaulted(h *harness, serial string, n int) func() bool {
	return func() bool {
		items := h.find("--camera", serial)
		return len(items) == n
	}
}

// SIGHUP re-reads the config: a camera added to the inventory is taken at
// its next dock, a dock in progress when the signal arrives finishes, and a
// broken file is refused with the error in the log while the configuration
// in force (the last good one) stays.
func TestReloadOnSIGHUP(t *testing.T) {
	h := newHarness(t, harnessOpts{noStore: true})
	hup, logs := hupDaemon(t, h)
	original, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	count := func(s string) int { return strings.Count(logs.String(), s) }

	// Not in the inventory yet: reported, not read.
	dockFolder(t, h, "BWC-0009", map[string]int{"DCIM/A.MP4": 4096})
	waitFor(t, "unknown camera reported", time.Minute, func() bool { return count("unknown camera docked") == 1 })
	os.RemoveAll(filepath.Join(h.media, "BWC-0009"))

	// A good new config: BWC-0009 joins the inventory; shutdown_timeout
	// changes too, which needs a restart.
	good := strings.Replace(string(original), "cameras:\n", "cameras:\n  - {serial: BWC-0009, kind: body, assigned_to: officer-0009}\n", 1)
	good = strings.Replace(good, "shutdown_timeout: 20s", "shutdown_timeout: 25s", 1)
	if err := os.WriteFile(h.cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	// A dock in progress when the reload arrives: a large file on a known
	// camera, signalled while its bay is copying.
	dockFolder(t, h, "BWC-0001", map[string]int{"DCIM/BIG.MP4": 384 << 20, "DCIM/SMALL.MP4": 8192})
	waitFor(t, "BWC-0001 copying", time.Minute, func() bool {
		_, out, _ := h.cli("status")
		return strings.Contains(out, "BWC-0001") && strings.Contains(out, "copying")
	})
	hup()
	waitFor(t, "reload logged", time.Minute, func() bool { return count("configuration reloaded") == 1 })
	if !strings.Contains(logs.String(), "keys=shutdown_timeout") {
		t.Errorf("the log does not name shutdown_timeout as needing a restart:\n%s", logs.String())
	}
	waitFor(t, "BWC-0001's dock finishes", 3*time.Minute, vaulted(h, "BWC-0001", 2))
	// The dock's summary is logged after its last item is vaulted: wait for
	// one of the two lines, then say which it was.
	waitFor(t, "BWC-0001's dock summary logged", time.Minute, func() bool { return count("dock incomplete")+count("dock complete") > 0 })
	if count("dock incomplete") != 0 || count("dock complete") != 1 {
		t.Errorf("the dock in progress did not finish cleanly across the reload:\n%s", logs.String())
	}

	dockFolder(t, h, "BWC-0009", map[string]int{"DCIM/A.MP4": 4096})
	waitFor(t, "BWC-0009 ingested after the reload", time.Minute, vaulted(h, "BWC-0009", 1))
	if it := h.find("--camera", "BWC-0009")[0]; it.AssignedTo != "officer-0009" || it.State != custody.StateVaulted {
		t.Errorf("BWC-0009's recording: %+v", it)
	}
	os.RemoveAll(filepath.Join(h.media, "BWC-0009"))

	// A broken config is refused; the last good one stays in force. (The
	// CLI reads its own copy of the good one from here on.)
	daemonCfg := h.cfgPath
	h.cfgPath = filepath.Join(h.dir, "cli.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(daemonCfg, []byte(good+"cameras: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	waitFor(t, "refusal logged", time.Minute, func() bool { return count("configuration reload refused") == 1 })
	if !strings.Contains(logs.String(), "level=ERROR msg=\"configuration reload refused") {
		t.Errorf("the refusal is not an error in the log:\n%s", logs.String())
	}
	dockFolder(t, h, "BWC-0009", map[string]int{"DCIM/B.MP4": 2048})
	waitFor(t, "BWC-0009 still ingested after the refused reload", time.Minute, vaulted(h, "BWC-0009", 2))
	if n := count("configuration reloaded"); n != 1 {
		t.Errorf("the broken file was applied (%d reloads logged)", n)
	}
}
