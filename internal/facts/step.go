package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/sidecar"
)

// Ledger is what the parse step needs of the custody ledger.
type Ledger interface {
	Append(ctx context.Context, ev custody.Event, item *custody.Item) (custody.Event, error)
	Items(ctx context.Context, f custody.Filter, fn func(custody.Item) error) error
	Custody(ctx context.Context, id string) ([]custody.Event, error)
	Item(ctx context.Context, id string) (custody.Item, error)
}

// Journal is what a ledger offers when it can say which items changed
// after a position: a catch-up then costs what is new since the last one,
// not the whole catalog (at a console's start, listing every item was
// ~52 s of CPU at a million items). Positions are opaque to the step; it
// keeps the last one in the index (progress), so deleting the index or a
// rebuild starts from the beginning again.
type Journal interface {
	// Position is the journal's end now.
	Position(ctx context.Context) ([]byte, error)
	// Changed lists the items named after from (nil: the beginning) and
	// the position after them.
	Changed(ctx context.Context, from []byte) ([]string, []byte, error)
}

// Streamer is what a ledger offers when it can walk every item it serves
// calling fn outside any transaction of its own (so fn may append): a walk
// then looks at each item as it comes instead of holding every item first.
// A console's catalog offers it; at a million items, holding the whole
// walk was most of a console's start-up memory (docs/BENCHMARKS.md).
type Streamer interface {
	EachItem(ctx context.Context, fn func(custody.Item) error) error
}

// Opener opens an item's held copy. Never the camera: what is parsed is
// what custody recorded, and the step checks the bytes against the item's
// SHA-256. On a dock host the held copy is the vault's; at a console it is
// the object the dock host uploaded, read from the store by its recorded
// version.
type Opener func(ctx context.Context, it custody.Item) (io.ReadCloser, error)

// ErrUnavailable is what an Opener's error (or its reader's) wraps when
// the held copy cannot be read now but may be later: at a console, an item
// whose upload is not recorded yet, or a store that did not answer or
// stopped answering mid-object. The item is skipped with
// nothing recorded (it is no finding about the file) and parsed at a later
// catch-up or when it is queued again.
var ErrUnavailable = errors.New("the held copy is not available now")

// Step is the parse step of custody: a vaulted file that the camera's
// sidecar profile names is parsed from its held copy, its facts indexed,
// and the parse recorded (PARSED or PARSE_FAILED). It never stands in the
// way of the copy, the upload or the wipe: it runs after VAULTED, on its
// own, and what goes wrong is recorded, not returned to them.
type Step struct {
	Index  *Index
	Ledger Ledger
	// Open opens the vault copy; a copy the vault no longer holds
	// (released after its grace) is an error wrapping fs.ErrNotExist, and
	// the file is then left to a rebuild. Remote, when set, opens the
	// object store's version: only a rebuild uses it, because parsing
	// every released recording again is a download an operator asks for.
	Open    Opener
	Remote  Opener
	Profile func(cameraKind string) sidecar.Profile
	// RulesKey, when set, names the sidecar rules Profile applies (any
	// string that changes when they do). A catch-up from a position reached
	// under other rules looks at every item again, so that a file seen
	// before as no sidecar is parsed once a rule names it. Nil: "".
	RulesKey func() string
	Actor    string
	Log      *slog.Logger

	mu      sync.Mutex // one parse at a time: bbolt has one writer anyway
	cmu     sync.Mutex // one catch-up at a time: positions only move forward
	qmu     sync.Mutex
	queue   []string
	wake    chan struct{}
	initOne sync.Once
}

// flushAt is how many index entries a parse holds before writing them: the
// memory a parse uses is bounded by it (≈ 16 MB at most), whatever the
// file's size, and a day's log of one camera (5,000 plate reads and their
// plates' fuzzy keys, or a 3-hour GPS track at 1 Hz) goes in one
// transaction, with its source record.
var flushAt = 100000 // a var only so that a test can make a parse flush part-way

// pending is how many entries the batch will write: its puts, and at most
// a fuzzy key for each of its distinct plates.
func (b *batch) pending() int { return len(b.puts) + len(b.plates) }

// Outcome is what the step did with one item.
type Outcome struct {
	Item    string
	Kind    sidecar.Kind // "" when no rule matches the file: not a sidecar
	Summary sidecar.Summary
	// Failed is the PARSE_FAILED reason; "" when parsed.
	Failed string
	// Skipped: already in the index, not a sidecar, or (outside a rebuild)
	// no longer in the vault; nothing done, nothing recorded.
	Skipped bool
	// Unavailable: skipped because the held copy could not be read now
	// (ErrUnavailable); Run tries it again at its next wake.
	Unavailable bool
	// Recorded: a PARSED / PARSE_FAILED record was appended (false when the
	// ledger already held the same one: a rebuild that re-derived it).
	Recorded bool
}

// Item parses one item if its camera's profile names it and the index does
// not hold it yet. The error is for a cancelled context or a ledger that
// could not record; a file that cannot be parsed is an Outcome.
func (s *Step) Item(ctx context.Context, it custody.Item) (Outcome, error) {
	return s.item(ctx, it, false)
}

func (s *Step) item(ctx context.Context, it custody.Item, rebuild bool) (Outcome, error) {
	out := Outcome{Item: it.ID}
	kind, ok := s.Profile(it.Kind).Match(it.SourcePath)
	if !ok {
		out.Skipped = true
		return out, nil
	}
	out.Kind = kind
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, have, err := s.Index.Source(it.ID); err != nil {
		return out, err
	} else if have {
		out.Skipped = true
		return out, nil
	}
	p, err := sidecar.New(kind)
	if err != nil {
		return out, err
	}
	sum, span, failure, err := s.parse(ctx, it, p, rebuild)
	if errors.Is(err, errReleased) {
		out.Skipped = true
		if s.Log != nil {
			s.Log.Info("sidecar not parsed: the vault no longer holds it (evidenced reindex parses it from the object store)", "item", it.ID)
		}
		return out, nil
	}
	if errors.Is(err, ErrUnavailable) {
		out.Skipped, out.Unavailable = true, true
		if s.Log != nil {
			s.Log.Info("sidecar not parsed yet: its held copy is not available now", "item", it.ID, "why", err)
		}
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Summary, out.Failed = sum, failure
	src := Source{Item: it.ID, Camera: it.Camera, SourcePath: it.SourcePath, SHA256: it.SHA256,
		Parser: p.Name(), Version: p.Version(), Facts: sum.Facts, Rejected: sum.Rejected(), Failed: failure}
	if failure == "" {
		src.First, src.Last = span.first.UTC(), span.last.UTC()
	}
	ev := custody.Event{Type: custody.Parsed, Actor: s.Actor, Item: it.ID, Camera: it.Camera, SHA256: it.SHA256, Details: details(kind, p, sum, span)}
	if failure != "" {
		ev.Type = custody.ParseFailed
		ev.Details = map[string]string{"kind": string(kind), "parser": p.Name(), "parser_version": p.Version(), "reason": strings.ToValidUTF8(failure, "?")}
	}
	// The record first, the source last (with the facts not written yet,
	// in one transaction): a crash between the two leaves a file the index
	// does not hold, parsed again at the next catch-up, where the same
	// record is found and not written twice.
	if out.Recorded, err = s.record(ctx, ev); err != nil {
		return out, err
	}
	if failure != "" || span == nil {
		span = &batch{} // the facts of a file that failed are not written
	}
	if err := s.Index.commit(span, &src); err != nil {
		return out, fmt.Errorf("facts index: %s: %w", it.ID, err)
	}
	if s.Log != nil {
		if failure != "" {
			s.Log.Warn("sidecar parse failed", "item", it.ID, "parser", p.Name(), "reason", failure)
		} else {
			s.Log.Info("sidecar parsed", "item", it.ID, "summary", sum.String())
		}
	}
	return out, nil
}

// parse streams the held copy through the parser and a hash; facts are
// written in batches and become visible only with the source record, which
// the caller writes once the bytes proved to be the recorded ones.
// errReleased: outside a rebuild, the vault no longer holds the file.
var errReleased = errors.New("not in the vault")

func (s *Step) parse(ctx context.Context, it custody.Item, p sidecar.Parser, rebuild bool) (sidecar.Summary, *batch, string, error) {
	want, err := digest.ParseHex(it.SHA256)
	if err != nil {
		return sidecar.Summary{}, nil, fmt.Sprintf("recorded sha256 %q: %v", it.SHA256, err), nil
	}
	raw, err := itemBytes(it.ID)
	if err != nil {
		return sidecar.Summary{}, nil, err.Error(), nil
	}
	rc, err := s.Open(ctx, it)
	if errors.Is(err, fs.ErrNotExist) {
		switch {
		case !rebuild:
			return sidecar.Summary{}, nil, "", errReleased
		case s.Remote != nil:
			rc, err = s.Remote(ctx, it)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return sidecar.Summary{}, nil, "", ctx.Err()
		}
		if errors.Is(err, ErrUnavailable) {
			return sidecar.Summary{}, nil, "", err
		}
		return sidecar.Summary{}, nil, "open the held copy: " + err.Error(), nil
	}
	defer rc.Close()
	h := digest.New()
	// No io.Seeker: the MP4 parser then reads past payloads instead of
	// seeking, so every byte goes through the hash.
	held := &readErr{r: rc}
	r := io.TeeReader(held, h)
	b := &batch{item: raw}
	sum, perr := p.Parse(ctx, sidecar.Input{SHA256: want, R: r}, func(f sidecar.Fact) error {
		if err := b.addFact(it.Camera, f); err != nil {
			return err
		}
		if b.pending() >= flushAt {
			return s.Index.flush(b)
		}
		return nil
	})
	if ctx.Err() != nil {
		return sum, b, "", ctx.Err()
	}
	// A read cut short (at a console: the store stopped answering) says
	// nothing about the file, however the parser reported it.
	if errors.Is(held.err, ErrUnavailable) {
		return sum, b, "", held.err
	}
	if perr != nil {
		return sum, b, "parse: " + perr.Error(), nil
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		if ctx.Err() != nil {
			return sum, b, "", ctx.Err()
		}
		if errors.Is(err, ErrUnavailable) {
			return sum, b, "", err
		}
		return sum, b, "read the held copy: " + err.Error(), nil
	}
	if got := digest.FromHash(h); got != want {
		return sum, b, fmt.Sprintf("the held copy hashes to %s, not the recorded %s: no facts taken from it", got.Hex(), want.Hex()), nil
	}
	return sum, b, "", nil
}

// readErr keeps the first error the held copy's reader returned, whatever
// the parser made of it.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// details is the PARSED record's content: the parser and what it found;
// for a recording whose header gives its span, that span (span_from,
// span_to: RFC 3339 with nanoseconds, UTC). The span is signed with the
// record, so verify-export checks a fact's link to a recording by time
// even in a package that does not carry the footage.
func details(kind sidecar.Kind, p sidecar.Parser, sum sidecar.Summary, b *batch) map[string]string {
	d := map[string]string{
		"kind": string(kind), "parser": p.Name(), "parser_version": p.Version(),
		"bytes": strconv.FormatInt(sum.Bytes, 10), "records": strconv.FormatInt(sum.Records, 10),
		"facts": strconv.FormatInt(sum.Facts, 10), "ignored": strconv.FormatInt(sum.Ignored, 10),
		"rejected": strconv.FormatInt(sum.Rejected(), 10),
	}
	if c := counts(sum.Rejects); c != "" {
		d["rejects"] = c
	}
	if c := counts(sum.Flags); c != "" {
		d["flags"] = c
	}
	if b != nil && b.media != nil {
		d[sidecar.SpanFrom], d[sidecar.SpanTo] = sidecar.FormatSpan(b.media[0], b.media[1])
	}
	return d
}

func counts(m map[sidecar.Reason]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatInt(m[sidecar.Reason(k)], 10)
	}
	return strings.Join(parts, " ")
}

// record appends ev unless the item's custody already holds the same
// record (type and details): a rebuild re-derives, it does not re-report.
func (s *Step) record(ctx context.Context, ev custody.Event) (bool, error) {
	evs, err := s.Ledger.Custody(ctx, ev.Item)
	if err != nil && !errors.Is(err, custody.ErrNotFound) {
		return false, fmt.Errorf("custody of %s: %w", ev.Item, err)
	}
	for _, e := range evs {
		if e.Type == ev.Type && maps.Equal(e.Details, ev.Details) {
			return false, nil
		}
	}
	if _, err := s.Ledger.Append(ctx, ev, nil); err != nil {
		return false, fmt.Errorf("record %s of %s: %w", ev.Type, ev.Item, err)
	}
	return true, nil
}

// Items parses the items named (a dock's), in order, and returns what was
// done with each; it stops only for a cancelled context or the ledger. An
// item the ledger does not serve (at a console: its host was withheld since
// it was queued) is passed over.
func (s *Step) Items(ctx context.Context, ids []string) ([]Outcome, error) {
	var outs []Outcome
	for _, id := range ids {
		it, err := s.Ledger.Item(ctx, id)
		if errors.Is(err, custody.ErrNotFound) {
			continue
		}
		if err != nil {
			return outs, err
		}
		o, err := s.Item(ctx, it)
		if err != nil {
			return outs, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// CatchUp parses every item the index does not hold yet: after a crash
// between VAULTED and PARSED, and items whose held copy was not available
// before. With a Journal it looks only at the items changed since the
// last catch-up's position and those still pending; without one, or with
// no position yet (a new or deleted index), at every item.
//
// Crash safety: the position (and the pending set) is written only after
// every item it covers was parsed and its source committed, or was put in
// pending; a crash before that leaves the old position, and the items
// after it are looked at again (an item already in the index is skipped,
// and its custody record is not written twice: the step is idempotent).
// Rules that changed since the position (RulesKey) make the catch-up look
// at every item again, as without a position: a file seen before as no
// sidecar is parsed once a rule names it.
func (s *Step) CatchUp(ctx context.Context) ([]Outcome, error) {
	return s.catchUp(ctx, false)
}

func (s *Step) catchUp(ctx context.Context, rebuild bool) ([]Outcome, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.catchUpLocked(ctx, rebuild)
}

func (s *Step) catchUpLocked(ctx context.Context, rebuild bool) ([]Outcome, error) {
	j, ok := s.Ledger.(Journal)
	if !ok {
		return s.walk(ctx, rebuild)
	}
	from, pending, have, err := s.Index.position()
	if err != nil {
		return nil, err
	}
	rules := ""
	if s.RulesKey != nil {
		rules = s.RulesKey()
	}
	before, err := s.Index.positionRules()
	if err != nil {
		return nil, err
	}
	if rebuild || !have || before != rules {
		// The end first: what is indexed during the walk lies after it and
		// is looked at again by the next catch-up.
		end, err := j.Position(ctx)
		if err != nil {
			return nil, fmt.Errorf("journal position: %w", err)
		}
		outs, err := s.walk(ctx, rebuild)
		if err != nil {
			return outs, err
		}
		return outs, s.Index.advance(end, unavailable(outs), rules)
	}
	ids, next, err := j.Changed(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("items changed since the last catch-up: %w", err)
	}
	var outs []Outcome
	var still []string
	for _, id := range append(pending, ids...) {
		it, err := s.Ledger.Item(ctx, id)
		if errors.Is(err, custody.ErrNotFound) {
			// Its host withheld (perhaps since Changed named it): kept
			// pending, since the position moves past the record naming it.
			if !slices.Contains(still, id) {
				still = append(still, id)
			}
			continue
		}
		if err != nil {
			return outs, err
		}
		o, err := s.item(ctx, it, false)
		if err != nil {
			return outs, err
		}
		if !o.Skipped || o.Unavailable {
			outs = append(outs, o)
		}
	}
	still = append(still, unavailable(outs)...)
	if bytes.Equal(next, from) && sameSet(still, pending) {
		return outs, nil // nothing moved: no write (a console wakes at every sync)
	}
	return outs, s.Index.advance(next, still, rules)
}

// sameSet: a and b hold the same ids (each once, as the pending set does).
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}

// walk looks at every item the ledger serves.
func (s *Step) walk(ctx context.Context, rebuild bool) ([]Outcome, error) {
	var outs []Outcome
	look := func(it custody.Item) error {
		o, err := s.item(ctx, it, rebuild)
		if err != nil {
			return err
		}
		if !o.Skipped || o.Unavailable {
			outs = append(outs, o)
		}
		return nil
	}
	if st, ok := s.Ledger.(Streamer); ok {
		if err := st.EachItem(ctx, look); err != nil {
			return outs, fmt.Errorf("walk items: %w", err)
		}
		return outs, nil
	}
	// A ledger's Items may call fn inside a transaction that an append
	// would wait for: every item is taken first.
	var todo []custody.Item
	if err := s.Ledger.Items(ctx, custody.Filter{}, func(it custody.Item) error {
		todo = append(todo, it)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	for _, it := range todo {
		if err := look(it); err != nil {
			return outs, err
		}
	}
	return outs, nil
}

// RebuildReport is what a rebuild did.
type RebuildReport struct {
	Files    int            `json:"files"`
	Failed   int            `json:"failed"`
	Recorded int            `json:"recorded"` // parse records the ledger did not hold yet
	Entries  map[string]int `json:"entries"`
}

// Rebuild empties the index and re-derives it from the held copies of
// every item, then records REINDEXED with actor and extra details (who
// asked). What custody already records of each parse is not recorded again.
func (s *Step) Rebuild(ctx context.Context, actor string, extra map[string]string) (RebuildReport, error) {
	var rep RebuildReport
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.mu.Lock()
	err := s.Index.clear()
	s.mu.Unlock()
	if err != nil {
		return rep, fmt.Errorf("facts index: clear: %w", err)
	}
	outs, err := s.catchUpLocked(ctx, true)
	for _, o := range outs {
		if o.Skipped {
			continue // not available now: parsed later, not part of this rebuild
		}
		rep.Files++
		if o.Failed != "" {
			rep.Failed++
		}
		if o.Recorded {
			rep.Recorded++
		}
	}
	if err != nil {
		return rep, err
	}
	if rep.Entries, err = s.Index.Stats(); err != nil {
		return rep, err
	}
	d := maps.Clone(extra)
	if d == nil {
		d = map[string]string{}
	}
	d["files"], d["failed"], d["recorded"] = strconv.Itoa(rep.Files), strconv.Itoa(rep.Failed), strconv.Itoa(rep.Recorded)
	for k, v := range rep.Entries {
		d[k] = strconv.Itoa(v)
	}
	if _, err := s.Ledger.Append(ctx, custody.Event{Type: custody.Reindexed, Actor: actor, Details: d}, nil); err != nil {
		return rep, fmt.Errorf("record %s: %w", custody.Reindexed, err)
	}
	return rep, nil
}

func (s *Step) init() {
	s.initOne.Do(func() { s.wake = make(chan struct{}, 1) })
}

// Queue hands the step a dock's items to parse in the background (Run).
func (s *Step) Queue(ids []string) {
	s.init()
	s.qmu.Lock()
	s.queue = append(s.queue, ids...)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run catches up once, then parses queued items until ctx ends. An item
// whose held copy was not available is tried again at each later wake (a
// console queues at every catalog sync); other failures are logged, and
// the next start catches up on whatever was left. With a Journal each
// wake is a catch-up from the last position (the queued items are among
// what changed), so that the position follows the parsing and a restart
// looks only at what came after.
func (s *Step) Run(ctx context.Context) error {
	s.init()
	outs, err := s.CatchUp(ctx)
	if err != nil && ctx.Err() == nil && s.Log != nil {
		s.Log.Error("sidecar catch-up", "err", err)
	}
	retry := unavailable(outs)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		s.qmu.Lock()
		ids := append(retry, s.queue...)
		s.queue = nil
		s.qmu.Unlock()
		var outs []Outcome
		var err error
		if _, ok := s.Ledger.(Journal); ok {
			_, err = s.CatchUp(ctx) // the pending set holds what to try again
		} else {
			outs, err = s.Items(ctx, ids)
		}
		if err != nil && ctx.Err() == nil && s.Log != nil {
			s.Log.Error("sidecar parse", "err", err)
		}
		retry = unavailable(outs)
	}
}

// unavailable are the items of outs whose held copy could not be read now.
func unavailable(outs []Outcome) []string {
	var ids []string
	for _, o := range outs {
		if o.Unavailable {
			ids = append(ids, o.Item)
		}
	}
	return ids
}
