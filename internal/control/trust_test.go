package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeServerEnv makes the test binary a fake daemon (see TestMain): it
// answers every connection with "OK" and exit code 0, without reading.
const fakeServerEnv = "EVIDENCED_CONTROL_FAKE_SERVER"

func TestMain(m *testing.M) {
	if path := os.Getenv(fakeServerEnv); path != "" {
		os.Exit(fakeServer(path))
	}
	os.Exit(m.Run())
}

func fakeServer(path string) int {
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Chmod(path, 0o777)
	// Listening now: the test waits for this file, not for the socket
	// (which exists from bind, before listen).
	if err := os.WriteFile(path+".ready", nil, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		fw := &frameWriter{w: c}
		fw.write(kindStdout, []byte("OK: the remote checkpoint matches\n"))
		fw.exit(0)
		c.Close()
	}
}

// Finding 4: another user's fake server on the socket path (a world-
// writable directory) got the command and its answer was believed. The
// client now refuses a server that runs as neither root, itself, nor the
// owner of a socket directory only its owner can write.
func TestFakeServerOfAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the fake server as another user")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "evidenced-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil { // like /tmp
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fake")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "evidenced.sock")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fakeServerEnv+"="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock + ".ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake server did not start")
		}
	}
	var out strings.Builder
	code, err := Exec(context.Background(), sock, Request{Args: []string{"verify", "--remote"}}, &out, io.Discard, nil)
	if !errors.Is(err, ErrUntrustedPeer) || out.Len() != 0 {
		t.Fatalf("Exec against another user's server: code %d, err %v, output %q; want ErrUntrustedPeer and nothing believed", code, err, out.String())
	}
	if !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("the refusal does not name the server's uid: %v", err)
	}
	// The same server is refused even when it owns a private directory the
	// socket is in, unless that owner is trusted: only the directory's owner
	// is added, and here the directory is root's.
	if uids := trustedServerUIDs(sock); len(uids) != 2 {
		t.Errorf("a world-writable socket directory added trusted uids: %v", uids)
	}
}

// Finding 5: one idle connection (no request sent) held Serve, and so the
// daemon's shutdown, for as long as it stayed open.
func TestIdleConnectionDoesNotBlockShutdown(t *testing.T) {
	path, cancel, done := start(t, nil, func(s *Server) { s.RequestTimeout = time.Hour })
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond) // accepted and waiting for the request
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return with an idle connection open")
	}
}

// A client that connects and never sends its request is dropped after
// RequestTimeout.
func TestSilentClientIsDropped(t *testing.T) {
	path, cancel, _ := start(t, nil, func(s *Server) { s.RequestTimeout = 100 * time.Millisecond })
	defer cancel()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read from a server after sending nothing: %v, want EOF (dropped)", err)
	}
}

// A client that sends its request and stops reading makes the command's
// writes fail after WriteTimeout instead of blocking it forever.
func TestStalledReaderFailsWrites(t *testing.T) {
	failed := make(chan error, 1)
	path, cancel, _ := start(t, func(_ context.Context, _ Request, _ Peer, stdout, _ io.Writer, _ func(k, v string)) int {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := stdout.Write(chunk); err != nil {
				failed <- err
				return 1
			}
		}
	}, func(s *Server) { s.WriteTimeout = 200 * time.Millisecond })
	defer cancel()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"args":["get"]}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write error %v, want a deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command's writes to a client that stopped reading never failed")
	}
}

// start serves h (nil: a handler that does nothing) on a fresh socket with
// tune applied; cancel stops it, done yields Serve's result.
func start(t *testing.T, h Handler, tune func(*Server)) (path string, cancel func(), done <-chan error) {
	t.Helper()
	if h == nil {
		h = func(context.Context, Request, Peer, io.Writer, io.Writer, func(k, v string)) int { return 0 }
	}
	path = filepath.Join(t.TempDir(), "ctl.sock")
	srv, err := Listen(path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	tune(srv)
	stop, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- srv.Serve(stop, context.Background()) }()
	return path, cancel, ch
}
