package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve starts a server on a fresh socket and returns its path; it is
// stopped (and drained) when the test ends.
func serve(t *testing.T, h Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	srv, err := Listen(path, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(stop, context.Background()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after stop")
		}
	})
	return path
}

func TestExecRoundTrip(t *testing.T) {
	var gotReq Request
	var gotPeer Peer
	path := serve(t, func(ctx context.Context, req Request, peer Peer, stdout, stderr io.Writer, meta func(k, v string)) int {
		gotReq, gotPeer = req, peer
		fmt.Fprint(stdout, "out-1 ")
		fmt.Fprint(stderr, "err-1")
		meta("item", "abc")
		// Larger than one frame buffer on the client's side is fine too.
		stdout.Write(bytes.Repeat([]byte("x"), 3<<20))
		return 7
	})
	var out, errb bytes.Buffer
	metas := map[string]string{}
	code, err := Exec(context.Background(), path, Request{Args: []string{"find", "--json"}, Actor: "custodian-1"},
		&out, &errb, func(k, v string) { metas[k] = v })
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if !strings.HasPrefix(out.String(), "out-1 xxx") || out.Len() != len("out-1 ")+3<<20 {
		t.Errorf("stdout: %d bytes, starts %q", out.Len(), out.String()[:min(20, out.Len())])
	}
	if errb.String() != "err-1" {
		t.Errorf("stderr %q", errb.String())
	}
	if metas["item"] != "abc" {
		t.Errorf("meta %v", metas)
	}
	if gotReq.Actor != "custodian-1" || strings.Join(gotReq.Args, " ") != "find --json" {
		t.Errorf("request arrived as %+v", gotReq)
	}
	if gotPeer.UID != os.Getuid() || gotPeer.PID != os.Getpid() {
		t.Errorf("peer %+v, want uid %d pid %d", gotPeer, os.Getuid(), os.Getpid())
	}
}

func TestSocketIsOwnerOnly(t *testing.T) {
	path := serve(t, func(context.Context, Request, Peer, io.Writer, io.Writer, func(k, v string)) int { return 0 })
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	// No socket at all.
	_, err := Exec(context.Background(), filepath.Join(dir, "none.sock"), Request{Args: []string{"find"}}, io.Discard, io.Discard, nil)
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("missing socket: %v, want ErrNoDaemon", err)
	}
	// A stale socket file left by a killed daemon: nobody listens.
	stale := filepath.Join(dir, "stale.sock")
	srv, err := Listen(stale, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.ln.SetUnlinkOnClose(false)
	srv.ln.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("stale socket file should remain: %v", err)
	}
	_, err = Exec(context.Background(), stale, Request{Args: []string{"find"}}, io.Discard, io.Discard, nil)
	if !errors.Is(err, ErrNoDaemon) {
		t.Errorf("stale socket: %v, want ErrNoDaemon", err)
	}
	// A new daemon replaces the stale file.
	srv2, err := Listen(stale, nil, nil)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	srv2.ln.Close()
}

func TestSecondDaemonRefused(t *testing.T) {
	path := serve(t, func(context.Context, Request, Peer, io.Writer, io.Writer, func(k, v string)) int { return 0 })
	if _, err := Listen(path, nil, nil); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("second Listen on a live socket: %v, want refusal", err)
	}
}

func TestClientCancelCancelsCommand(t *testing.T) {
	cancelled := make(chan struct{})
	path := serve(t, func(ctx context.Context, _ Request, _ Peer, stdout, _ io.Writer, _ func(k, v string)) int {
		fmt.Fprint(stdout, "started")
		<-ctx.Done()
		close(cancelled)
		return 1
	})
	ctx, cancel := context.WithCancel(context.Background())
	w := &notifyWriter{ch: make(chan struct{}, 1)}
	go func() {
		<-w.ch
		cancel()
	}()
	_, err := Exec(ctx, path, Request{Args: []string{"verify"}}, w, io.Discard, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Exec after cancel: %v, want context.Canceled", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the command in the daemon was not cancelled when the client went away")
	}
}

type notifyWriter struct{ ch chan struct{} }

func (w *notifyWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- struct{}{}:
	default:
	}
	return len(p), nil
}
