package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens the receiving end systemd would hold and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification arrived: %v", err)
	}
	return string(buf[:n])
}

func TestSendsToNotifySocket(t *testing.T) {
	for _, tc := range []struct{ name, sock string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@evidenced-sdnotify-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := listen(t, tc.sock)
			n := FromEnv()
			if n == nil {
				t.Fatal("FromEnv returned nil with NOTIFY_SOCKET set")
			}
			for _, step := range []struct {
				send func() error
				want string
			}{
				{func() error { return n.Ready("2 bays\ninjected=1") }, "READY=1\nSTATUS=2 bays injected=1"},
				{func() error { return n.Status("queue 3") }, "STATUS=queue 3"},
				{n.Watchdog, "WATCHDOG=1"},
				{func() error { return n.Stopping("draining") }, "STOPPING=1\nSTATUS=draining"},
			} {
				if err := step.send(); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, c); got != step.want {
					t.Errorf("got %q, want %q", got, step.want)
				}
			}
		})
	}
}

func TestNilNotifierIsSilent(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("FromEnv without NOTIFY_SOCKET returned a notifier")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
}

func TestSendFailsWithoutListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := FromEnv().Watchdog(); err == nil {
		t.Fatal("a notification to a socket nobody listens on reported success")
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"20000000", "", 10 * time.Second, false},
		{"20000000", me, 10 * time.Second, false},
		{"20000000", "1", 0, false}, // meant for another process
		{"zero", "", 0, true},
		{"0", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
