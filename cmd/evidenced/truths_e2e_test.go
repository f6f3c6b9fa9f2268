package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
)

// These tests run the built binary, as a user does: the exit code, what
// reaches stdout and what reaches stderr are the contract.

// run runs the built binary with env added to (or, with a "KEY" entry and
// no "=", removed from) the test's environment.
func run(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	// A refusal that stopped refusing (`run stray` starting a daemon) must
	// fail the test, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, e := range env {
			ek, _, _ := strings.Cut(e, "=")
			drop = drop || ek == k
		}
		if !drop {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, e := range env {
		if strings.Contains(e, "=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run evidenced %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// bin runs the built binary with the harness's config.
func (h *harness) bin(env []string, args ...string) (int, string, string) {
	h.t.Helper()
	return run(h.t, env, append([]string{args[0], "--config", h.cfgPath}, args[1:]...)...)
}

// closedPort is an endpoint where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// withEndpoint writes a copy of the harness's config whose object store is
// at endpoint and returns a harness view that uses it.
func (h *harness) withEndpoint(t *testing.T, endpoint string) *harness {
	t.Helper()
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "endpoint: "+h.srv.Endpoint, "endpoint: "+endpoint, 1)
	if cfg == string(b) {
		t.Fatal("config names no endpoint to replace")
	}
	p := filepath.Join(h.dir, "down.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	v := *h
	v.cfgPath = p
	return &v
}

// oneLine asserts stderr is exactly one line that contains every want.
func oneLine(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Errorf("%s: stderr has %d lines, want one:\n%s", what, len(lines), stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr %q lacks %q", what, stderr, w)
		}
	}
}

// A store that cannot be asked is a failure to check (exit 1, one line
// naming the store and why), never an integrity failure (exit 3): the local
// checks are still done and reported, and the SDK's own chatter never
// reaches the user.
func TestVerifyRemoteStoreUnavailable(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ingestOne(t, h, map[string]int{"DCIM/A.MP4": 200 << 10, "DCIM/B.MP4": 100 << 10})
	if code, out, errs := h.bin(nil, "verify", "--remote"); code != 0 || !strings.Contains(out, "OK:") {
		t.Fatalf("verify --remote with the store up: exit %d\n%s%s", code, out, errs)
	}

	down := closedPort(t)
	for _, c := range []struct {
		name string
		h    *harness
		env  []string
		why  string
	}{
		{"unreachable", h.withEndpoint(t, down), nil, down + " could not be checked: connection refused"},
		{"wrong secret", h, []string{"AWS_SECRET_ACCESS_KEY=not-the-secret"}, "wrong secret key"},
		{"unknown key", h, []string{"AWS_ACCESS_KEY_ID=AKIANOBODY", "AWS_SECRET_ACCESS_KEY=x"}, "access denied"},
		// No credentials anywhere, and the instance metadata service
		// allowed: the SDK tries it and logs a warning of its own.
		{"no credentials", h, []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"}, "no S3 credentials"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := c.h.bin(c.env, "verify", "--remote")
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			oneLine(t, "verify --remote", errs, "could not be checked", c.why, "2 object(s) not checked")
			if c.name != "unreachable" && !strings.Contains(errs, h.srv.Endpoint) {
				t.Errorf("stderr %q does not name the store %s", errs, h.srv.Endpoint)
			}
			// The local checks ran and are reported; nothing is called
			// wrong.
			if !strings.Contains(out, "INCOMPLETE:") || !strings.Contains(out, "2 vault files") || strings.Contains(out, "FAIL") {
				t.Errorf("stdout:\n%s", out)
			}
			for _, chatter := range []string{"IMDS", "SDK", "WARN"} {
				if strings.Contains(out+errs, chatter) {
					t.Errorf("%q reached the user:\n%s%s", chatter, out, errs)
				}
			}
		})
	}
}

// The same rule for every command that needs the store, and an access that
// failed is on record as failed, distinguishable from one that completed.
func TestStoreUnavailableCommands(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	it := ingestOne(t, h, map[string]int{"DCIM/A.MP4": 100 << 10})[0]
	h.mustCLI("hold", it.ID, "--case", "C-1", "--reason", "case opened")
	down := closedPort(t)
	hd := h.withEndpoint(t, down)
	for _, args := range [][]string{
		{"export", it.ID, "--reason", "court", "--out", filepath.Join(h.dir, "pkg")},
		{"classify", it.ID, "--class", "incident", "--reason", "complaint"},
		{"hold", it.ID, "--case", "C-2", "--reason", "second case"},
		{"release", it.ID, "--case", "C-1", "--reason", "case closed"},
		{"store-init"},
	} {
		code, out, errs := hd.bin(nil, args...)
		if code != exitFailure {
			t.Errorf("%s: exit %d, want %d\n%s%s", args[0], code, exitFailure, out, errs)
		}
		oneLine(t, args[0], errs, "object store "+down+" could not be reached: connection refused")
	}
	// get reads the vault first; with the vault copy gone it must ask the
	// store, which cannot be reached.
	if err := os.Remove(it.VaultPath); err != nil {
		t.Fatal(err)
	}
	code, out, errs := hd.bin(nil, "get", it.ID, "--reason", "review", "--out", filepath.Join(h.dir, "a.mp4"))
	if code != exitFailure {
		t.Errorf("get: exit %d, want %d\n%s%s", code, exitFailure, out, errs)
	}
	oneLine(t, "get", errs, "object store "+down+" could not be reached: connection refused")
	if _, err := os.Stat(filepath.Join(h.dir, "pkg")); !os.IsNotExist(err) {
		t.Errorf("a failed export left %s behind (%v)", filepath.Join(h.dir, "pkg"), err)
	}
	// The export was recorded before it ran, and then recorded as failed;
	// the retrieval that could not open the recording, as failed.
	var started, failed, getFailed int
	for _, ev := range h.custody(it.ID) {
		if ev.Type == custody.Accessed && ev.Details["action"] == "retrieve" && ev.Details["outcome"] == "failed" &&
			strings.Contains(ev.Details["error"], "connection refused") {
			getFailed++
		}
		if ev.Type != custody.Accessed || ev.Details["action"] != "export" {
			continue
		}
		switch ev.Details["outcome"] {
		case "":
			started++
		case "failed":
			failed++
			if !strings.Contains(ev.Details["error"], "connection refused") {
				t.Errorf("failed export recorded with error %q", ev.Details["error"])
			}
		}
	}
	if started != 1 || failed != 1 || getFailed != 1 {
		t.Errorf("export records: %d before it ran, %d failed; failed retrievals %d; want 1, 1 and 1", started, failed, getFailed)
	}
}
