package service

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/sdnotify"
)

// notifySocket is the receiving end systemd holds for a Type=notify unit.
func notifySocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, name
}

// next returns the next notification, or "" when none came within wait.
func next(t *testing.T, c *net.UnixConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

// The daemon under systemd: READY=1 once started, saying the store it could
// not reach leaves the uploads waiting; WATCHDOG=1 with the status line at
// half of WATCHDOG_USEC; STOPPING=1 when the drain begins.
func TestRunNotifiesSystemd(t *testing.T) {
	c, name := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", name)
	t.Setenv("WATCHDOG_USEC", "200000") // pings every 100ms
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	// A port nothing listens on: the store is configured but down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	cfg := testConfig(t, t.TempDir(), fmt.Sprintf(`object_store: {endpoint: "http://%s", bucket: evidence, region: us-east-1, path_style: true}
shutdown_timeout: 5s
`, down))
	s, err := Open(context.Background(), cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	intake, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.Run(intake, context.Background(), nil) }()

	ready := next(t, c, 30*time.Second)
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=") {
		t.Fatalf("first notification %q, want READY=1 with a status", ready)
	}
	for _, want := range []string{"store unreachable, uploads waiting", "bays: 0 docked", "queue: 0 to upload"} {
		if !strings.Contains(ready, want) {
			t.Errorf("READY status %q does not say %q", ready, want)
		}
	}
	pings := 0
	for start := time.Now(); pings < 3 && time.Since(start) < 10*time.Second; {
		msg := next(t, c, 2*time.Second)
		if strings.HasPrefix(msg, "WATCHDOG=1\nSTATUS=bays: ") {
			pings++
		} else if msg != "" {
			t.Fatalf("unexpected notification %q while running", msg)
		}
	}
	if pings < 3 {
		t.Fatalf("%d watchdog pings in 10s with WATCHDOG_USEC=200000", pings)
	}
	stop()
	for {
		msg := next(t, c, 10*time.Second)
		if msg == "" {
			t.Fatal("no STOPPING=1 after intake was cancelled")
		}
		if strings.HasPrefix(msg, "STOPPING=1\nSTATUS=draining") {
			break
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// A heartbeat loop that hangs must stop pinging, so that systemd's watchdog
// restarts the daemon; once it moves again the pings resume.
func TestStuckHeartbeatStopsWatchdog(t *testing.T) {
	c, name := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", name)
	s, _ := openVaultOnly(t)
	sv := &supervisor{n: sdnotify.FromEnv(), every: 20 * time.Millisecond, watchdog: true}
	stuck := make(chan struct{})
	calls := 0
	beat := func(ctx context.Context) (string, error) {
		calls++
		if calls == 3 {
			<-stuck
		}
		return s.statusLine(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go sv.heartbeat(ctx, s, beat)

	for i := 0; i < 2; i++ {
		if msg := next(t, c, 5*time.Second); !strings.HasPrefix(msg, "WATCHDOG=1\n") {
			t.Fatalf("ping %d: got %q", i, msg)
		}
	}
	if msg := next(t, c, 500*time.Millisecond); msg != "" {
		t.Fatalf("the heartbeat is stuck but systemd still got %q", msg)
	}
	close(stuck)
	if msg := next(t, c, 5*time.Second); !strings.HasPrefix(msg, "WATCHDOG=1\n") {
		t.Fatalf("after the loop moved again: got %q, want pings to resume", msg)
	}
}
