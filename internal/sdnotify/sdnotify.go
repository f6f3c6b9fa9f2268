// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): datagrams such as "READY=1" written to the unix socket
// named by $NOTIFY_SOCKET. It is a few lines of code, so the daemon writes
// them itself instead of depending on a library for it.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager. A nil *Notifier (not
// started by systemd, or not as Type=notify) accepts every call and sends
// nothing, so callers need no "are we under systemd" branches.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil when it is unset.
// A name starting with "@" is an abstract socket (Go's net package maps the
// "@" to the leading NUL byte the kernel expects).
func FromEnv() *Notifier {
	p := os.Getenv("NOTIFY_SOCKET")
	if p == "" {
		return nil
	}
	return &Notifier{addr: &net.UnixAddr{Name: p, Net: "unixgram"}}
}

// Send writes one notification (newline-separated KEY=VALUE assignments).
// Each call dials afresh: the datagram is tiny and infrequent, and a fresh
// socket carries this process's credentials, which systemd checks against
// NotifyAccess=main.
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: dial %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: write to %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready says start-up is finished (Type=notify waits for it).
func (n *Notifier) Ready(status string) error { return n.Send("READY=1\nSTATUS=" + oneLine(status)) }

// Status sets the free-form line `systemctl status` shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + oneLine(status)) }

// Stopping says the service is shutting down (draining).
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1\nSTATUS=" + oneLine(status))
}

// Watchdog is the keep-alive ping WatchdogSec= expects.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// oneLine keeps a status from injecting further assignments.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// WatchdogInterval is how often to ping: half of $WATCHDOG_USEC, as
// sd_watchdog_enabled(3) recommends, so one late ping is not yet a restart.
// It returns 0 when systemd expects no pings (unset, or $WATCHDOG_PID names
// another process).
func WatchdogInterval() (time.Duration, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	v, err := strconv.ParseUint(us, 10, 64)
	if err != nil || v == 0 {
		return 0, errors.New("sd_notify: WATCHDOG_USEC is not a positive number: " + us)
	}
	return time.Duration(v) * time.Microsecond / 2, nil
}
