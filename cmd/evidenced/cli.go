package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

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
	case errors.Is(err, config.ErrInvalid), errors.Is(err, flag.ErrHelp), errors.Is(err, service.ErrInvalid):
		return exitUsage
	case errors.Is(err, service.ErrIntegrity):
		return exitIntegrity
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

// caller is who the service records as asking.
func (e *env) caller() service.Caller {
	return service.Caller{Actor: e.actor, OnBehalfOf: e.onBehalfOf, Peer: e.peer}
}

// runner is a command after its flags were parsed.
type runner func(ctx context.Context, e *env) error

// command is one subcommand. setup registers its flags on fs and returns the
// runner that reads them. What sets a command apart from the common path
// (open the config, run through the daemon or else locally) is a field here,
// never a test of its name.
type command struct {
	name, args, summary string
	// noConfig commands need no config, ledger or daemon (version,
	// verify-export): their runner gets an env without a service.
	noConfig bool
	setup    func(fs *flag.FlagSet) runner
	// daemon, when set, is the whole command (run): it never goes through
	// a running daemon.
	daemon func(intake, hard context.Context, cfg *config.Config, stderr io.Writer) error
	// client, when set, is how the invoking process runs the command (get
	// and export place files on the caller's side); otherwise inv.exec.
	client func(ctx context.Context, inv *invocation) int
	// required flags must be given, and not blank.
	required []string
	// ownActor: the command's --actor is its own (access filters by it);
	// nothing is then recorded on anyone's behalf.
	ownActor bool
	// pathArg: the last positional argument is a file the command reads,
	// made absolute before it goes to the daemon (which has its own
	// working directory).
	pathArg bool
	// pathSubs, when set, limits pathArg to these subcommands (the first
	// positional argument): inventory assign's last argument is a name.
	pathSubs []string
	// creates: without a daemon, the command may create the host key and
	// the ledger (a first ingest, store-init). Every other command opens
	// only what exists and fails with "no ledger at PATH".
	creates bool
}

// local reports whether the command runs only in the invoking process.
func (c *command) local() bool { return c.noConfig || c.daemon != nil }

var commands []*command

func init() {
	commands = []*command{
		runCommand(), ingestCommand(), findCommand(), custodyCommand(), verifyCommand(),
		getCommand(), statusCommand(), storeInitCommand(), versionCommand(),
		classifyCommand(), holdCommand(), releaseCommand(),
		exportCommand(), verifyExportCommand(), keyCommand(), accessCommand(), fleetCommand(), scrubCommand(), doctorCommand(), reindexCommand(),
		inventoryCommand(),
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

// common are the flags every command has.
type common struct {
	config *string
	actor  *string
}

// defaultConfig is the config file when --config is not given:
// $EVIDENCED_CONFIG, else the packaged path.
func defaultConfig() string {
	if p := os.Getenv("EVIDENCED_CONFIG"); p != "" {
		return p
	}
	return "/etc/evidenced/evidenced.yaml"
}

func newFlagSet(c *command, stderr io.Writer) (*flag.FlagSet, common) {
	fs := flag.NewFlagSet("evidenced "+c.name, flag.ContinueOnError)
	// Parse errors are returned and printed by the caller, with flags
	// written as they are typed (--flag).
	fs.SetOutput(io.Discard)
	// Every command accepts --config, even one that reads no config, so a
	// script can pass it to each; the flag names the file, EVIDENCED_CONFIG
	// when it is absent.
	cm := common{config: fs.String("config", defaultConfig(), "config file (when absent: $EVIDENCED_CONFIG if set, else the default)")}
	if !c.local() && !c.ownActor {
		cm.actor = fs.String("actor", "", "on whose behalf you act (recorded as on_behalf_of; the actor recorded is always your OS user)")
	} else {
		cm.actor = new(string)
	}
	// The flag package would print usage on its own (to stderr, even for
	// --help); Main prints it where it belongs instead.
	fs.Usage = func() {}
	return fs, cm
}

// flagMessage is the flag package's error with the flag written as it is
// typed ("flag provided but not defined: --bogus").
func flagMessage(err error) string {
	return strings.NewReplacer(": -", ": --", "flag -", "flag --", "for -", "for --").Replace(err.Error())
}

// usage prints a command's usage, its flags written as they are typed
// (--flag).
func usage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", c.synopsis(), c.summary)
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// validate refuses what no command accepts: positional arguments beyond
// what the command takes (`find officer-4711` must not list everything), a
// required flag left empty, and a reason or case that is only whitespace.
func validate(c *command, fs *flag.FlagSet) error {
	min, max := c.arity()
	switch {
	case fs.NArg() > max:
		return usageErrorf("%s: unexpected argument %q (usage: %s)", c.name, fs.Arg(max), c.synopsis())
	case fs.NArg() < min:
		return usageErrorf("%s: missing %s (usage: %s)", c.name, strings.TrimSuffix(c.args, "..."), c.synopsis())
	}
	for _, name := range c.required {
		if strings.TrimSpace(fs.Lookup(name).Value.String()) == "" {
			return usageErrorf("%s: --%s is required", c.name, name)
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if (f.Name == "reason" || f.Name == "case") && strings.TrimSpace(f.Value.String()) == "" && err == nil {
			err = usageErrorf("%s: --%s must not be empty or only whitespace", c.name, f.Name)
		}
	})
	return err
}

// synopsis is how the command is typed.
func (c *command) synopsis() string {
	return strings.TrimSpace("evidenced " + c.name + " [flags] " + c.args)
}

// arity is how many positional arguments the command takes, read from its
// args ("" none, "ID" one, "ID..." one or more, "publish FILE" two).
func (c *command) arity() (min, max int) {
	switch {
	case c.args == "":
		return 0, 0
	case strings.HasSuffix(c.args, "..."):
		return 1, math.MaxInt
	case strings.HasPrefix(c.args, "[") && strings.HasSuffix(c.args, "]"):
		// "[clear HOST]": a subcommand with its arguments, or nothing.
		return 0, len(strings.Fields(c.args))
	default:
		n := len(strings.Fields(c.args)) // "publish FILE": two
		return n, n
	}
}

// suggest is the command closest to an unknown name (at most two edits
// away, or one it begins), or "".
func suggest(name string) string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if best := config.Closest(name, names); best != "" {
		return best
	}
	for _, n := range names {
		if len(name) >= 2 && strings.HasPrefix(n, name) {
			return n
		}
	}
	return ""
}

// localActor is this process's OS identity, the actor of a command run
// without the daemon.
func localActor() string { return control.OSIdentity(os.Geteuid()) }

// Main runs the CLI and returns the exit code.
func Main(intake, hard context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "evidenced: unknown command %q", args[0])
		if s := suggest(args[0]); s != "" {
			fmt.Fprintf(stderr, "; did you mean %q?", s)
		}
		fmt.Fprint(stderr, "\nRun \"evidenced --help\" for the list of commands.\n")
		return exitUsage
	}
	fs, cm := newFlagSet(c, stderr)
	run := c.setup(fs)
	if err := parseArgs(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, c, fs)
			return exitOK
		}
		fmt.Fprintf(stderr, "evidenced %s: %s\n\n", c.name, flagMessage(err))
		usage(stderr, c, fs)
		return exitUsage
	}
	if err := validate(c, fs); err != nil {
		return report(stderr, err)
	}
	if c.noConfig {
		return report(stderr, run(intake, &env{stdout: stdout, stderr: stderr}))
	}
	cfg, err := config.Load(*cm.config)
	if err != nil {
		fmt.Fprintf(stderr, "evidenced: %v\n", err)
		return exitUsage
	}
	if c.daemon != nil {
		return report(stderr, c.daemon(intake, hard, cfg, stderr))
	}
	inv := &invocation{cfg: cfg, c: c, fs: fs, run: run, onBehalfOf: *cm.actor, stdout: stdout, stderr: stderr}
	if c.client != nil {
		return c.client(hard, inv)
	}
	return inv.exec(hard, stdout, nil)
}

// invocation is one command as the user invoked it, flags parsed.
type invocation struct {
	cfg *config.Config
	c   *command
	fs  *flag.FlagSet
	run runner
	// onBehalfOf is what --actor claimed; the actor is the OS identity.
	onBehalfOf string
	// stdout and stderr are the user's; exec may be given another stdout
	// (the file being written).
	stdout, stderr io.Writer
}

// exec runs the command in the daemon when one answers, else in this
// process, writing its standard output to stdout; meta receives what the
// command reports beside it. It returns the exit code.
func (inv *invocation) exec(ctx context.Context, stdout io.Writer, meta func(k, v string)) int {
	code, err := viaDaemon(ctx, inv.cfg, inv.c, inv.fs, inv.onBehalfOf, stdout, inv.stderr, meta)
	if err == nil {
		return code
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return report(inv.stderr, err)
	}
	return report(inv.stderr, runLocal(ctx, inv.cfg, inv.run, inv.c.creates, inv.onBehalfOf, stdout, inv.stderr, meta))
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
func viaDaemon(ctx context.Context, cfg *config.Config, c *command, fs *flag.FlagSet, onBehalfOf string, stdout, stderr io.Writer, meta func(k, v string)) (int, error) {
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
	pos := fs.Args()
	if c.pathArg && len(pos) > 0 && (c.pathSubs == nil || slices.Contains(c.pathSubs, pos[0])) {
		pos = append(pos[:len(pos)-1:len(pos)-1], service.Abs(pos[len(pos)-1]))
	}
	args = append(args, pos...)
	return control.Exec(ctx, cfg.SocketPath(), control.Request{Args: args, Actor: onBehalfOf}, stdout, stderr, meta)
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

// commandRights is what each command needs of a client of the daemon who
// is neither root nor the daemon's user (control.read_group,
// control.write_group, control.retrieve_group). A command not listed is
// owner-only. get and export release footage, sidecar logs and custody
// packages: retrieving is its own right, not a kind of looking (and so
// are the searches that answer from the logs' contents, flagRights).
var commandRights = map[string]control.Right{
	"find": control.Read, "custody": control.Read, "get": control.Retrieve, "export": control.Retrieve,
	"access": control.Read, "status": control.Read, "verify": control.Read, "fleet": control.Read,
	"key": control.Read, "key rotate": control.OwnerOnly,
	"ingest": control.Write, "hold": control.Write, "release": control.Write, "classify": control.Write,
	"scrub": control.Write, "fleet clear": control.Write,
	"inventory show": control.Read,
}

// flagRights are the flags that make a command need another right than
// its own. A search by number plate or by place answers from the contents
// of the sidecar files (where a vehicle was read, where a camera was):
// personal data that, like the files themselves (get) and the court
// package that carries the reads (export), is retrieved, not looked up.
// A plain find lists custody metadata only and stays a reader's.
var flagRights = map[string]control.Right{
	"find --plate": control.Retrieve, "find --near": control.Retrieve,
}

// rightOf is what a command needs, given its parsed flags: its
// subcommand's right when it has one of its own ("fleet clear" changes
// what the console serves; "fleet" only shows), else the command's; a
// flag that reads the sidecars' contents (flagRights) needs that right
// instead.
func rightOf(name string, fs *flag.FlagSet) control.Right {
	r := commandRights[name]
	if args := fs.Args(); len(args) > 0 {
		if sub, ok := commandRights[name+" "+args[0]]; ok {
			r = sub
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if fr, ok := flagRights[name+" --"+f.Name]; ok {
			r = fr
		}
	})
	return r
}

// daemonHandler runs a client's command inside the daemon, if the client's
// OS user (SO_PEERCRED) has the rights the command needs; a refusal is
// recorded in the custody ledger as a failed access.
func daemonHandler(svc *service.Service, groups control.Groups) control.Handler {
	return func(ctx context.Context, req control.Request, peer control.Peer, stdout, stderr io.Writer, meta func(k, v string)) int {
		c := lookup(req.Args[0])
		if c == nil || c.local() {
			fmt.Fprintf(stderr, "evidenced: command %q cannot run through the daemon\n", req.Args[0])
			return exitUsage
		}
		fs, _ := newFlagSet(c, stderr)
		run := c.setup(fs)
		if err := parseArgs(fs, req.Args[1:]); err != nil {
			fmt.Fprintf(stderr, "evidenced %s: %s\n", c.name, flagMessage(err))
			return exitUsage
		}
		// The kernel says who is on the other end; the request only says on
		// whose behalf.
		e := &env{
			stdout: stdout, stderr: stderr, svc: svc, actor: peer.Identity(), onBehalfOf: req.Actor, meta: meta, inDaemon: true,
			peer: fmt.Sprintf("uid=%d,pid=%d", peer.UID, peer.PID),
		}
		// Rights before anything else about the command: a refused user
		// learns nothing from its validation.
		if err := groups.Authorize(peer, rightOf(c.name, fs)); err != nil {
			reason := ""
			if f := fs.Lookup("reason"); f != nil {
				reason = f.Value.String()
			}
			err = svc.RecordFailedAccess(ctx, e.caller(), c.name, reason, nil,
				map[string]string{"refused": "rights", "args": strings.Join(fs.Args(), " ")}, fmt.Errorf("%s: %w", c.name, err))
			return report(stderr, err)
		}
		if err := validate(c, fs); err != nil {
			return report(stderr, err)
		}
		return report(stderr, run(ctx, e))
	}
}

// printJSON writes v as indented JSON, the form every --json takes.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
