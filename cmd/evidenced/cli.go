package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/control"
	"github.com/evidenced/evidenced/internal/custody"
	esc "github.com/evidenced/evidenced/internal/printable"
	"github.com/evidenced/evidenced/internal/service"
)

// Exit codes are a contract with scripts and with the README.
const (
	exitOK        = 0
	exitFailure   = 1
	exitUsage     = 2 // bad flags, bad or missing config
	exitIntegrity = 3 // a hash, chain, record or object does not check out
)

// exitError carries an exit code with an error; everything else is exit 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func integrityErrorf(format string, a ...any) error {
	return &exitError{code: exitIntegrity, err: fmt.Errorf(format, a...)}
}

// codeOf maps an error to the process exit code, in one place.
func codeOf(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, config.ErrInvalid), errors.Is(err, flag.ErrHelp):
		return exitUsage
	default:
		return exitFailure
	}
}

// env is what a command runs with, whether in its own process or inside the
// daemon on behalf of a client.
type env struct {
	stdout, stderr io.Writer
	svc            *service.Service
	// actor is who acts, as the kernel says: the OS user of the process,
	// or of the control socket's peer (SO_PEERCRED). onBehalfOf is what
	// --actor claimed; it is recorded beside the actor, never instead.
	actor, onBehalfOf string
	peer              string // "uid=…,pid=…" when run inside the daemon for a client
	meta              func(k, v string)
	progress          bool // stderr is a terminal: show live progress
	inDaemon          bool
}

// runner is a command after its flags were parsed.
type runner func(ctx context.Context, e *env) error

// command is one subcommand. setup registers its flags on fs and returns the
// runner that reads them.
type command struct {
	name, args, summary string
	// local commands never go through the daemon.
	local bool
	// creates: without a daemon, the command may create the host key and
	// the ledger (a first ingest, store-init). Every other command opens
	// only what exists and fails with "no ledger at PATH".
	creates bool
	setup   func(fs *flag.FlagSet) runner
}

var commands []*command

func init() {
	commands = []*command{
		runCommand(), ingestCommand(), findCommand(), custodyCommand(), verifyCommand(),
		getCommand(), statusCommand(), storeInitCommand(), versionCommand(),
		classifyCommand(), holdCommand(), releaseCommand(),
		exportCommand(), verifyExportCommand(), keyCommand(),
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func topUsage(w io.Writer) {
	fmt.Fprint(w, `evidenced — camera footage into verified, chain-of-custody evidence storage

Usage: evidenced <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "evidenced <command> --help" for a command's flags.
Exit codes: 0 ok, 1 failure, 2 usage or config error, 3 integrity failure.
`)
}

// newFlagSet registers the flags every command has.
type common struct {
	config *string
	actor  *string
	json   *bool
}

func newFlagSet(c *command, stderr io.Writer) (*flag.FlagSet, common) {
	fs := flag.NewFlagSet("evidenced "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cm common
	if c.name != "version" && c.name != "verify-export" {
		cm.config = fs.String("config", "/etc/evidenced/evidenced.yaml", "config file")
	}
	if !c.local {
		cm.actor = fs.String("actor", "", "on whose behalf you act (recorded as on_behalf_of; the actor recorded is always your OS user)")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: evidenced %s [flags] %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
		fs.PrintDefaults()
	}
	return fs, cm
}

// localActor is this process's OS identity, the actor of a command run
// without the daemon.
func localActor() string { return control.OSIdentity(os.Geteuid()) }

// withBehalf adds on_behalf_of to a record's details when --actor named
// someone.
func (e *env) withBehalf(d map[string]string) map[string]string {
	if e.onBehalfOf != "" {
		d["on_behalf_of"] = e.onBehalfOf
	}
	return d
}

// Main runs the CLI and returns the exit code.
func Main(intake, hard context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "evidenced: unknown command %q\n\n", args[0])
		topUsage(stderr)
		return exitUsage
	}
	fs, cm := newFlagSet(c, stderr)
	run := c.setup(fs)
	if err := parseArgs(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if c.name == "version" || c.name == "verify-export" { // need no config
		return report(stderr, run(intake, &env{stdout: stdout, stderr: stderr}))
	}
	cfg, err := config.Load(*cm.config)
	if err != nil {
		fmt.Fprintf(stderr, "evidenced: %v\n", err)
		return exitUsage
	}
	if c.local {
		return report(stderr, runDaemon(intake, hard, cfg, stderr))
	}
	ctx := hard
	if c.name == "get" {
		return getToFile(ctx, cfg, c, fs, run, *cm.actor, stdout, stderr)
	}
	if c.name == "export" {
		return exportToDir(ctx, cfg, c, fs, run, *cm.actor, stdout, stderr)
	}
	code, err := viaDaemon(ctx, cfg, c, fs, *cm.actor, stdout, stderr, nil)
	if err == nil {
		return code
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		fmt.Fprintf(stderr, "evidenced: %v\n", err)
		return exitFailure
	}
	return report(stderr, runLocal(ctx, cfg, run, c.creates, *cm.actor, stdout, stderr, nil))
}

// parseArgs parses flags wherever they appear among the arguments
// (`custody ID --json` as well as `custody --json ID`), as people type them;
// everything after "--" is positional. fs.Args() then holds the positionals
// in order.
func parseArgs(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		// flag stops at the first non-flag or after "--"; tell them apart.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Re-parse only the positionals so fs.Args() reports them.
	return fs.Parse(append([]string{"--"}, pos...))
}

func report(stderr io.Writer, err error) int {
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "evidenced: %v\n", err)
	}
	return codeOf(err)
}

// errReported marks an error whose details the command already printed.
var errReported = errors.New("reported")

// viaDaemon sends the command to the running daemon. Paths in flags are made
// absolute first, since the daemon has its own working directory.
func viaDaemon(ctx context.Context, cfg *config.Config, c *command, fs *flag.FlagSet, actor string, stdout, stderr io.Writer, meta func(k, v string)) (int, error) {
	args := []string{c.name}
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "from", "out", "config":
			if v != "-" {
				v = service.Abs(v)
			}
		}
		args = append(args, "--"+f.Name+"="+v)
	})
	args = append(args, "--")
	args = append(args, fs.Args()...)
	return control.Exec(ctx, cfg.SocketPath(), control.Request{Args: args, Actor: actor}, stdout, stderr, meta)
}

// runLocal opens the ledger in this process (no daemon is running) and runs
// the command.
func runLocal(ctx context.Context, cfg *config.Config, run runner, creates bool, onBehalfOf string, stdout, stderr io.Writer, meta func(k, v string)) error {
	actor := localActor()
	svc, err := service.Open(ctx, cfg, nil, service.Options{Actor: actor, MustExist: !creates})
	if err != nil {
		if errors.Is(err, custody.ErrLocked) {
			return fmt.Errorf("%w (another process holds the ledger, but no daemon answers on %s)", err, cfg.SocketPath())
		}
		return err
	}
	defer svc.Close()
	if meta == nil {
		meta = func(string, string) {}
	}
	return run(ctx, &env{stdout: stdout, stderr: stderr, svc: svc, actor: actor, onBehalfOf: onBehalfOf, meta: meta, progress: isTerminal(stderr)})
}

// daemonHandler runs a client's command inside the daemon.
func daemonHandler(svc *service.Service) control.Handler {
	return func(ctx context.Context, req control.Request, peer control.Peer, stdout, stderr io.Writer, meta func(k, v string)) int {
		c := lookup(req.Args[0])
		if c == nil || c.local {
			fmt.Fprintf(stderr, "evidenced: command %q cannot run through the daemon\n", req.Args[0])
			return exitUsage
		}
		fs, _ := newFlagSet(c, stderr)
		run := c.setup(fs)
		if err := parseArgs(fs, req.Args[1:]); err != nil {
			return exitUsage
		}
		// The kernel says who is on the other end; the request only says on
		// whose behalf.
		e := &env{
			stdout: stdout, stderr: stderr, svc: svc, actor: peer.Identity(), onBehalfOf: req.Actor, meta: meta, inDaemon: true,
			peer: fmt.Sprintf("uid=%d,pid=%d", peer.UID, peer.PID),
		}
		return report(stderr, run(ctx, e))
	}
}

// recordAccess writes who looked at what, and why, into the custody chain
// before the command shows anything: investigators' searches and custodians'
// checks are part of an item's custody as much as a retrieval is. it may be
// nil (a search or a whole-ledger check names no single item).
func recordAccess(ctx context.Context, e *env, action, reason string, it *custody.Item, details map[string]string) error {
	d := map[string]string{"action": action}
	for k, v := range details {
		if v != "" {
			d[k] = v
		}
	}
	if reason != "" {
		d["reason"] = reason
	}
	if e.peer != "" {
		d["peer"] = e.peer
	}
	ev := custody.Event{Type: custody.Accessed, Actor: e.actor, Details: e.withBehalf(d)}
	if it != nil {
		ev.Item, ev.Camera, ev.SHA256 = it.ID, it.Camera, it.SHA256
	}
	if _, err := e.svc.Ledger.Append(ctx, ev, nil); err != nil {
		return fmt.Errorf("record %s access in the custody ledger: %w", action, err)
	}
	return nil
}

// printable makes a value from a camera, a USB descriptor or a user safe
// for a terminal table: control and format characters (ESC, CSI, a
// newline, a right-to-left override in a hostile file name or serial) are
// shown escaped (package printable).
func printable(s string) string { return esc.Escape(s) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
