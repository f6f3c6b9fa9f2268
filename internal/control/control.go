// Package control lets the evidenced CLI run its commands inside the running
// daemon, over a unix socket that only the daemon's own user (and root) can
// open, unless the daemon hands it to a Unix group (ShareWithGroup); what
// each other user may then run is decided per command from the peer's
// credentials (Groups.Authorize).
//
// Why: bbolt allows one process to hold the ledger for writing. While the
// daemon runs it is that process; every other command (ingest, find, custody,
// verify, get) is sent to it and executed there against the same open ledger,
// so there is never a second writer and never a "database locked". When no
// daemon answers, the CLI opens the ledger itself. Either way the same command
// code runs, so behaviour does not depend on whether the daemon is up.
//
// Protocol: the client writes one JSON Request line; the server answers with
// frames of [1 byte kind][4 byte big-endian length][payload]: 'o' stdout
// bytes, 'e' stderr bytes, 'm' one JSON object of string metadata, 'x' the exit
// code as a 4-byte big-endian int (always last). The client closing its end
// cancels the command.
//
// Trust: the server records the client's OS identity from SO_PEERCRED
// (Peer), never the name the client claims; the client checks the server's
// SO_PEERCRED uid before it sends anything (root, its own uid, or the owner
// of the socket's directory when no one else can write there), so another
// user's fake server on a misconfigured socket path gets no command and can
// answer none. A connection that sends no request within RequestTimeout is
// closed, every frame write has WriteTimeout, and connections still waiting
// for their request are closed at shutdown, so one idle client cannot hold
// the daemon up.
package control

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Request is one command invocation.
type Request struct {
	Args []string `json:"args"` // command name then its arguments, paths already absolute
	// Actor is on whose behalf the client says it acts (--actor). The
	// server records it as on_behalf_of; the actor is the peer's OS
	// identity (Peer.Identity), whatever this says.
	Actor string `json:"actor"`
}

// Peer is what the kernel says about the connecting process (SO_PEERCRED).
// Its identity, not the claimed actor, is who acted.
type Peer struct {
	PID, UID, GID int
}

// Identity is the peer's OS identity for the custody record: the user
// name of its uid, or "uid:<n>" when the uid has no name.
func (p Peer) Identity() string { return OSIdentity(p.UID) }

// OSIdentity names a uid: its user name, or "uid:<n>" (also for -1, an
// unknown peer).
func OSIdentity(uid int) string {
	if uid >= 0 {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
			return u.Username
		}
	}
	return "uid:" + strconv.Itoa(uid)
}

// Handler runs one command. It writes to stdout/stderr, may call meta, and
// returns the process exit code.
type Handler func(ctx context.Context, req Request, peer Peer, stdout, stderr io.Writer, meta func(k, v string)) int

const maxRequest = 1 << 20

// Frame kinds.
const (
	kindStdout = 'o'
	kindStderr = 'e'
	kindMeta   = 'm'
	kindExit   = 'x'
)

// ErrNoDaemon: nothing listens on the socket (the CLI then works locally).
var ErrNoDaemon = errors.New("no daemon answering on the control socket")

// ErrUntrustedPeer: the process answering on the socket runs as a user the
// client does not trust to be the daemon. The client sends it nothing and
// believes nothing it says; it must not fall back to working locally
// either, since the socket path is under someone else's control.
var ErrUntrustedPeer = errors.New("the process on the control socket is not the evidenced daemon's user")

// Default timeouts (Server fields override them).
const (
	// DefaultRequestTimeout bounds how long a connection may take to send
	// its request line.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds each frame write: a client that stops
	// reading fails the command's output instead of blocking it forever.
	DefaultWriteTimeout = 2 * time.Minute
)

// Server serves the control socket.
type Server struct {
	path string
	h    Handler
	log  *slog.Logger
	ln   *net.UnixListener
	wg   sync.WaitGroup
	// RequestTimeout and WriteTimeout: see the defaults. Set them before
	// Serve.
	RequestTimeout, WriteTimeout time.Duration

	mu      sync.Mutex
	idle    map[*net.UnixConn]bool // connections still waiting for their request
	stopped bool
}

// Listen creates the socket at path with mode 0600. A stale socket file left
// by a killed daemon is replaced; a live one (another daemon answers) is an
// error, because two daemons on one ledger must never happen.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another evidenced daemon is already serving it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod control socket %s: %w", path, err)
	}
	return &Server{path: path, h: h, log: log, ln: ln, RequestTimeout: DefaultRequestTimeout, WriteTimeout: DefaultWriteTimeout,
		idle: map[*net.UnixConn]bool{}}, nil
}

// Serve accepts connections until stop is done, then waits for commands in
// progress, which run under work (cancelled when the drain deadline passes).
func (s *Server) Serve(stop, work context.Context) error {
	go func() {
		<-stop.Done()
		s.ln.Close()
		// Commands in progress drain under work; a connection that has not
		// sent its request yet has nothing to drain.
		s.mu.Lock()
		s.stopped = true
		for c := range s.idle {
			c.Close()
		}
		s.mu.Unlock()
	}()
	defer s.wg.Wait()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if stop.Err() != nil {
				os.Remove(s.path)
				return nil
			}
			return fmt.Errorf("accept on %s: %w", s.path, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(work, c)
		}()
	}
}

func peerOf(c *net.UnixConn) Peer {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{PID: -1, UID: -1, GID: -1}
	}
	p := Peer{PID: -1, UID: -1, GID: -1}
	_ = raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			p = Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
		}
	})
	return p
}

// setIdle marks c as waiting for its request (closed at shutdown) or not;
// it reports false when the server is already stopping.
func (s *Server) setIdle(c *net.UnixConn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idle {
		if s.stopped {
			return false
		}
		s.idle[c] = true
	} else {
		delete(s.idle, c)
	}
	return !s.stopped
}

func (s *Server) serveConn(work context.Context, c *net.UnixConn) {
	defer c.Close()
	peer := peerOf(c)
	if !s.setIdle(c, true) {
		return
	}
	c.SetReadDeadline(time.Now().Add(s.RequestTimeout))
	br := bufio.NewReaderSize(io.LimitReader(c, maxRequest), 64<<10)
	line, err := br.ReadBytes('\n')
	if !s.setIdle(c, false) {
		return
	}
	if err != nil {
		s.log.Warn("control request unreadable", "err", err, "uid", peer.UID, "pid", peer.PID)
		return
	}
	c.SetReadDeadline(time.Time{})
	var req Request
	if err := json.Unmarshal(line, &req); err != nil || len(req.Args) == 0 {
		fw := &frameWriter{w: c, c: c, timeout: s.WriteTimeout}
		fw.write(kindStderr, []byte("evidenced: malformed control request\n"))
		fw.exit(2)
		return
	}
	ctx, cancel := context.WithCancel(work)
	defer cancel()
	// The client sends nothing more; a read that returns means it went away
	// (Ctrl-C), and the command is cancelled.
	go func() {
		var b [1]byte
		_, _ = br.Read(b[:])
		cancel()
	}()
	fw := &frameWriter{w: c, c: c, timeout: s.WriteTimeout}
	out := fw.stream(kindStdout)
	errw := fw.stream(kindStderr)
	code := s.h(ctx, req, peer, out, errw, func(k, v string) {
		b, _ := json.Marshal(map[string]string{k: v})
		fw.write(kindMeta, b)
	})
	fw.exit(code)
}

type frameWriter struct {
	mu      sync.Mutex
	w       io.Writer
	c       *net.UnixConn // for write deadlines; nil: none
	timeout time.Duration
	err     error
}

func (f *frameWriter) write(kind byte, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	written := 0
	for len(p) > 0 || written == 0 {
		chunk := p
		if len(chunk) > 1<<20 {
			chunk = chunk[:1<<20]
		}
		var hdr [5]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(chunk)))
		if f.c != nil && f.timeout > 0 {
			f.c.SetWriteDeadline(time.Now().Add(f.timeout))
		}
		if _, err := f.w.Write(hdr[:]); err != nil {
			f.err = err
			return written, err
		}
		if _, err := f.w.Write(chunk); err != nil {
			f.err = err
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
		if len(p) == 0 {
			break
		}
	}
	return written, nil
}

func (f *frameWriter) exit(code int) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	f.write(kindExit, b[:])
}

type streamWriter struct {
	f    *frameWriter
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return s.f.write(s.kind, p)
}

func (f *frameWriter) stream(kind byte) io.Writer { return streamWriter{f: f, kind: kind} }

// Exec sends req to the daemon at path and copies its output. It returns
// ErrNoDaemon (wrapped) when no daemon answers, so the caller can work locally.
func Exec(ctx context.Context, path string, req Request, stdout, stderr io.Writer, meta func(k, v string)) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return 0, fmt.Errorf("%s: %w", path, ErrNoDaemon)
		}
		return 0, fmt.Errorf("connect to daemon at %s: %w", path, err)
	}
	defer c.Close()
	if err := checkServer(c.(*net.UnixConn), path); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return 0, fmt.Errorf("send to daemon at %s: %w", path, err)
	}
	br := bufio.NewReaderSize(c, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("daemon at %s closed the connection before the command finished: %w", path, err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > uint32(len(buf)) {
			return 0, fmt.Errorf("daemon at %s sent a %d-byte frame: protocol error", path, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return 0, fmt.Errorf("read from daemon at %s: %w", path, err)
		}
		switch hdr[0] {
		case kindStdout:
			if _, err := stdout.Write(p); err != nil {
				return 0, fmt.Errorf("write output: %w", err)
			}
		case kindStderr:
			stderr.Write(p)
		case kindMeta:
			var m map[string]string
			if err := json.Unmarshal(p, &m); err == nil && meta != nil {
				for k, v := range m {
					meta(k, v)
				}
			}
		case kindExit:
			if n != 4 {
				return 0, fmt.Errorf("daemon at %s sent a bad exit frame", path)
			}
			return int(int32(binary.BigEndian.Uint32(p))), nil
		default:
			return 0, fmt.Errorf("daemon at %s sent unknown frame kind %q", path, hdr[0])
		}
	}
}

// checkServer refuses a server whose SO_PEERCRED uid is not one the client
// trusts to be the daemon: root, the client's own uid, or the owner of the
// socket's directory when that directory is writable by its owner only
// (config validation requires the daemon's socket directory to be so).
func checkServer(c *net.UnixConn, path string) error {
	peer := peerOf(c)
	if peer.UID < 0 {
		return fmt.Errorf("control socket %s: %w (its uid cannot be read)", path, ErrUntrustedPeer)
	}
	if slices.Contains(trustedServerUIDs(path), peer.UID) {
		return nil
	}
	return fmt.Errorf("control socket %s: %w: it runs as %s (uid %d, pid %d); check control_socket and who can write its directory",
		path, ErrUntrustedPeer, OSIdentity(peer.UID), peer.UID, peer.PID)
}

// trustedServerUIDs are the uids checkServer accepts for the socket at path.
func trustedServerUIDs(path string) []int {
	uids := []int{0, os.Geteuid()}
	if owner, ok := privateDirOwner(filepath.Dir(path)); ok {
		uids = append(uids, owner)
	}
	return uids
}

// privateDirOwner returns the owner of dir when dir is a directory no one
// but its owner can write.
func privateDirOwner(dir string) (int, bool) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() || st.Mode().Perm()&0o022 != 0 {
		return 0, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}
