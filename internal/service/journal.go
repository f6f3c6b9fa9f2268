package service

import (
	"context"
	"fmt"
	"github.com/evidenced/evidenced/internal/printable"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// DaemonLogger is the daemon's logger: logfmt lines (key=value, so the keys
// stay machine-readable in the journal and in any log shipper) at level.
// When stderr is connected to the journal ($JOURNAL_STREAM names its device
// and inode) each line starts with its syslog priority ("<3>" for errors),
// which journald turns into PRIORITY= (sd-daemon(3)): `journalctl -p err`
// then shows the daemon's errors.
func DaemonLogger(stderr io.Writer, level slog.Leveler) *slog.Logger {
	// Values from cameras, USB descriptors and clients are escaped.
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: printable.ReplaceAttr}
	f, ok := stderr.(*os.File)
	if !ok || !toJournal(f) {
		return slog.New(slog.NewTextHandler(stderr, opts))
	}
	return slog.New(&journalHandler{w: f, opts: opts, mu: &sync.Mutex{}})
}

// toJournal reports whether f is the stream $JOURNAL_STREAM names.
func toJournal(f *os.File) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// priority maps slog levels to syslog priorities.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3 // err
	case l >= slog.LevelWarn:
		return 4 // warning
	case l >= slog.LevelInfo:
		return 6 // info
	default:
		return 7 // debug
	}
}

// journalHandler writes each record as one logfmt line with a priority
// prefix. The text handler is built per record on a buffer, so the prefix
// and the line go out in one write.
type journalHandler struct {
	w    io.Writer
	opts *slog.HandlerOptions
	mu   *sync.Mutex
	// ops replays WithAttrs and WithGroup, in order, on each record's
	// text handler.
	ops []func(slog.Handler) slog.Handler
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.opts.Level != nil {
		min = h.opts.Level.Level()
	}
	return l >= min
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf lineBuffer
	fmt.Fprintf(&buf, "<%d>", priority(r.Level))
	var th slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		// journald stamps every line itself.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return h.opts.ReplaceAttr(groups, a)
		}})
	for _, op := range h.ops {
		th = op(th)
	}
	if err := th.Handle(ctx, r); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

func (h *journalHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	c := *h
	c.ops = append(append([]func(slog.Handler) slog.Handler{}, h.ops...), op)
	return &c
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(t slog.Handler) slog.Handler { return t.WithAttrs(as) })
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return h.with(func(t slog.Handler) slog.Handler { return t.WithGroup(name) })
}

type lineBuffer []byte

func (b *lineBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }
