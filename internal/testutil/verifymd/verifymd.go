// Package verifymd follows an export package's VERIFY.md the way its reader
// does: every command block is run in the package's directory with bash,
// in the order the file gives them, and every "must" the prose states is
// checked against the values the prose itself names (the record, the proof,
// the footage file, the hash). Nothing is taken from the export code: if
// the file drifts from the package format, a step fails or cannot be
// followed, and the test that calls Follow fails.
//
// The reader brings two things from outside the package, as step 0 asks:
// the host key's fingerprint (FP) and, for a time-stamped package, the
// TSA's CA certificate (TSA_CA). The blocks that only set them are not run.
package verifymd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tools are the programs VERIFY.md says it needs (and bash for the proof
// walk's printf escapes).
var Tools = []string{"bash", "sha256sum", "openssl", "sed", "grep", "od"}

// Env is what the reader obtained out of band.
type Env struct {
	// FP is the host key's fingerprint, SHA256:<hex>.
	FP string
	// TSACA is the TSA's CA certificate file; "" skips the time-stamp's
	// verification (the package's own CA is never used).
	TSACA string
}

// Report is what following the file found.
type Report struct {
	// Failures are the checks the file prescribes that did not hold, each
	// naming its step: a package that passes has none.
	Failures []string
	// Trusted is the host/ file with the fingerprint given; Introduced the
	// later keys accepted through a KEY_ROTATED record.
	Trusted    string
	Introduced []string
	// Ran counts the blocks run per step ("0" to "7").
	Ran map[string]int
	// Root is the checkpoint's root in hex (step 4); InTree the records
	// step 5 placed in its tree; Signed and Unsigned the records step 3
	// found signed by an accepted key and without a signature.
	Root             string
	InTree           []string
	Signed, Unsigned []string
	// Footage are the footage files step 6 matched to their COPIED record.
	Footage []string
	// TimestampVerified: step 4's openssl ts -verify said OK.
	TimestampVerified bool
	// InSpan are the facts.jsonl lines step 7 found within the span their
	// recording's signed PARSED record gives; Unspanned those whose
	// recording has no signed span (parsed before spans were signed).
	InSpan, Unspanned []int
}

// OK says whether every check held.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

func (r *Report) fail(step, format string, args ...any) {
	r.Failures = append(r.Failures, "step "+step+": "+fmt.Sprintf(format, args...))
}

// block is one indented command block and the prose before and after it.
type block struct {
	step         string
	cmd          string
	before, next string
}

// parse splits VERIFY.md into its command blocks, each with the step
// ("## N.") it belongs to and the prose around it.
func parse(md string) []block {
	var out []block
	var cur, prose []string
	step := ""
	heading := regexp.MustCompile(`^## (\d+)\.`)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		out = append(out, block{step: step, cmd: strings.Join(cur, "\n"), before: strings.Join(prose, "\n")})
		cur, prose = nil, nil
	}
	for _, l := range strings.Split(md, "\n") {
		if s, ok := strings.CutPrefix(l, "    "); ok {
			cur = append(cur, s)
			continue
		}
		flush()
		if m := heading.FindStringSubmatch(l); m != nil {
			step = m[1]
			prose = nil
		}
		prose = append(prose, l)
	}
	flush()
	for i := range out {
		if i+1 < len(out) && out[i+1].step == out[i].step {
			out[i].next = out[i+1].before
		}
	}
	return out
}

// Follow follows dir/VERIFY.md. The error says the file could not be
// followed at all (missing, no steps, a tool missing); a check that fails
// is in the report.
func Follow(dir string, env Env) (*Report, error) {
	for _, tool := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("VERIFY.md needs %s: %w", tool, err)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "VERIFY.md"))
	if err != nil {
		return nil, err
	}
	blocks := parse(string(md))
	if len(blocks) == 0 {
		return nil, errors.New("VERIFY.md has no command blocks")
	}
	f := &follower{dir: dir, env: env, r: &Report{Ran: map[string]int{}}, accepted: map[string]bool{}}
	for _, b := range blocks {
		if strings.HasPrefix(b.cmd, "export ") {
			continue // the reader's out-of-band input, from env
		}
		f.step(b)
	}
	f.finish(string(md))
	return f.r, nil
}

type follower struct {
	dir      string
	env      Env
	r        *Report
	accepted map[string]bool // host/ files step 0 accepted
	hostKeys []string
	sawStep0 bool
	fact     *fact        // the fact step 7 shows, once its first block ran
	spanned  map[int]bool // the facts.jsonl lines step 7 checked against a signed span
}

// run runs a block as the reader pastes it into bash in the package's
// directory; a non-zero exit is returned with the output.
func (f *follower) run(b block) (string, error) {
	f.r.Ran[b.step]++
	cmd := exec.Command("bash", "-euc", b.cmd)
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "FP="+f.env.FP, "TSA_CA="+f.env.TSACA)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	inkey    = regexp.MustCompile(`-inkey (host/\S+\.pem)`)
	backtick = regexp.MustCompile("`([^`]+)`")
)

func (f *follower) step(b block) {
	c := b.cmd
	if strings.HasPrefix(c, "openssl ts -verify") && f.env.TSACA == "" {
		return // the reader has no TSA CA from outside: nothing to check with
	}
	out, err := f.run(b)
	if err != nil {
		f.r.fail(b.step, "%q exits with %v:\n%s", firstLine(c), err, out)
		return
	}
	switch {
	case b.step == "0" && strings.HasPrefix(c, "for k in host/*.pem"):
		f.keys(out)
	case b.step == "0" && strings.Contains(b.before, "KEY_ROTATED"):
		f.rotation(b, out)
	case b.step == "1" && strings.HasPrefix(c, "sha256sum -c "):
		lines := nonEmpty(out)
		for _, l := range lines {
			if !strings.HasSuffix(l, ": OK") {
				f.r.fail("1", "%s", l)
			}
		}
		if len(lines) == 0 {
			f.r.fail("1", "sha256sum -c checked nothing")
		}
	case b.step == "2" && strings.HasPrefix(c, "sha256sum records/"):
		f.recordHashStep(b, out)
	case b.step == "2" && strings.HasPrefix(c, "for "):
		for _, l := range nonEmpty(out) {
			if !strings.HasSuffix(l, ": OK") {
				f.r.fail("2", "%s", l)
			}
		}
	case (b.step == "3" || b.step == "4") && strings.HasPrefix(c, "openssl pkeyutl -verify"),
		b.step == "4" && strings.Contains(c, "openssl pkeyutl -verify") && !strings.Contains(c, "for k in"):
		f.usesAccepted(b.step, c)
		if !strings.Contains(out, "Signature Verified Successfully") {
			f.r.fail(b.step, "%q did not verify:\n%s", firstLine(c), out)
		}
	case b.step == "3" && strings.HasPrefix(c, "for f in records/*.json"):
		for _, l := range nonEmpty(out) {
			rec, verdict, _ := strings.Cut(l, ": ")
			switch verdict {
			case "yes":
				f.r.Signed = append(f.r.Signed, rec)
			case "not signed":
				f.r.Unsigned = append(f.r.Unsigned, rec)
			default:
				f.r.fail("3", "%s", l)
			}
		}
	case b.step == "4" && strings.Contains(c, "signed by a host key"):
		if !strings.Contains(out, "signed by a host key: yes") {
			f.r.fail("4", "the anchored checkpoint: %s", out)
		}
	case b.step == "4" && strings.HasPrefix(c, "openssl ts -verify"):
		f.r.TimestampVerified = strings.Contains(out, "Verification: OK")
		if !f.r.TimestampVerified {
			f.r.fail("4", "time-stamp: %s", out)
		}
	case b.step == "4" && strings.HasPrefix(c, "openssl ts -reply"):
		if !strings.Contains(out, "Time stamp:") {
			f.r.fail("4", "no time in the time-stamp: %s", out)
		}
	case b.step == "4" && strings.HasPrefix(c, "sed -n 3p"):
		f.r.Root = strings.TrimSpace(out)
	case b.step == "5" && strings.HasPrefix(c, "(printf '\\000'; cat "):
		f.leafStep(b, out)
	case b.step == "5" && strings.Contains(c, "walk()"):
		f.walkStep(out)
	case b.step == "6" && strings.HasPrefix(c, "sha256sum "):
		f.footageStep(b, out)
	case b.step == "6" && strings.HasPrefix(c, "for f in items/"):
		for _, l := range nonEmpty(out) {
			file, verdict, _ := strings.Cut(l, ": ")
			if verdict != "OK" {
				f.r.fail("6", "%s", l)
				continue
			}
			f.r.Footage = append(f.r.Footage, file)
		}
	case b.step == "7":
		f.factStep(b, out)
	default:
		f.r.fail(b.step, "a block this reader does not know how to check (the file changed: teach package verifymd): %q", firstLine(c))
	}
}

// keys is step 0's loop: one host/ file must carry the fingerprint given,
// each file name must be its key's id (the DER's SHA-256), and the package's
// first key (package.json "keys") must be the trusted one.
func (f *follower) keys(out string) {
	f.sawStep0 = true
	trusted := regexp.MustCompile(`^(host/(\S+)\.pem) is your key: TRUSTED$`)
	other := regexp.MustCompile(`^(host/(\S+)\.pem) is another key \(SHA256:([0-9a-f]{64})\)$`)
	for _, l := range nonEmpty(out) {
		if m := trusted.FindStringSubmatch(l); m != nil {
			f.hostKeys = append(f.hostKeys, m[1])
			f.r.Trusted, f.accepted[m[1]] = m[1], true
			if "SHA256:"+m[2] != f.env.FP {
				f.r.fail("0", "%s is named %s but has the fingerprint %s", m[1], m[2], f.env.FP)
			}
			continue
		}
		if m := other.FindStringSubmatch(l); m != nil {
			f.hostKeys = append(f.hostKeys, m[1])
			if m[2] != m[3] {
				f.r.fail("0", "%s is not named by its key id %s", m[1], m[3])
			}
			continue
		}
		f.r.fail("0", "unexpected line %q", l)
	}
	if f.r.Trusted == "" {
		f.r.fail("0", "no key in host/ has the fingerprint %s: stop", f.env.FP)
		return
	}
	var info struct {
		Keys []struct {
			File string `json:"file"`
		} `json:"keys"`
	}
	if err := readJSON(filepath.Join(f.dir, "package.json"), &info); err != nil || len(info.Keys) == 0 || info.Keys[0].File != f.r.Trusted {
		f.r.fail("0", "the package's first key (package.json keys) is not %s (%v)", f.r.Trusted, err)
	}
}

// rotation is a KEY_ROTATED step: the record named is a KEY_ROTATED record,
// signed by a key already accepted, and carries the later key.
func (f *follower) rotation(b block, out string) {
	names := backtick.FindAllStringSubmatch(b.before, -1)
	if len(names) < 2 {
		f.r.fail("0", "a rotation step names no key and record:\n%s", b.before)
		return
	}
	next, rec := names[len(names)-2][1], names[len(names)-1][1]
	if !strings.HasPrefix(next, "host/") || !strings.HasPrefix(rec, "records/") {
		f.r.fail("0", "a rotation step names %q and %q", next, rec)
		return
	}
	body, err := os.ReadFile(filepath.Join(f.dir, rec))
	if err != nil || !strings.Contains(string(body), `"type":"KEY_ROTATED"`) {
		f.r.fail("0", "%s is not a KEY_ROTATED record (%v)", rec, err)
		return
	}
	f.usesAccepted("0", b.cmd)
	if !strings.Contains(out, "Signature Verified Successfully") || !strings.Contains(out, rec+" introduces "+next+": OK") {
		f.r.fail("0", "%s does not introduce %s:\n%s", rec, next, out)
		return
	}
	f.accepted[next] = true
	f.r.Introduced = append(f.r.Introduced, next)
}

// usesAccepted: a signature counts only with a key step 0 accepted.
func (f *follower) usesAccepted(step, cmd string) {
	for _, m := range inkey.FindAllStringSubmatch(cmd, -1) {
		if !f.accepted[m[1]] {
			f.r.fail(step, "%q checks with %s, which step 0 did not accept", firstLine(cmd), m[1])
		}
	}
}

// recordHashStep: "It must equal the `hash` of record N in
// `items/<id>/custody.json` (and `custody.csv`)".
func (f *follower) recordHashStep(b block, out string) {
	m := f.says("2", "the `hash` of record (\\d+) in `items/<id>/custody.json` \\(and `custody.csv`\\)", b.next)
	if m == nil {
		return
	}
	got, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	seq, _ := strconv.ParseUint(m[1], 10, 64)
	custodies, _ := filepath.Glob(filepath.Join(f.dir, "items", "*", "custody.json"))
	found := 0
	for _, p := range custodies {
		var c struct {
			Events []struct {
				Seq  uint64 `json:"seq"`
				Hash string `json:"hash"`
			} `json:"events"`
		}
		if err := readJSON(p, &c); err != nil {
			f.r.fail("2", "%v", err)
			continue
		}
		for _, ev := range c.Events {
			if ev.Seq != seq {
				continue
			}
			found++
			if ev.Hash != got {
				f.r.fail("2", "record %d hashes to %s, %s says %s", seq, got, rel(f.dir, p), ev.Hash)
			}
		}
		csv, err := os.ReadFile(strings.TrimSuffix(p, ".json") + ".csv")
		if err != nil {
			f.r.fail("2", "%v", err)
			continue
		}
		for _, l := range strings.Split(string(csv), "\n") {
			if cols := strings.Split(l, ","); len(cols) > 1 && cols[0] == m[1] && cols[1] != got {
				f.r.fail("2", "record %d hashes to %s, custody.csv says %s", seq, got, cols[1])
			}
		}
	}
	if found == 0 {
		f.r.fail("2", "no item's custody.json lists record %d", seq)
	}
}

// leafStep: the leaf hash "must equal `leaf_hash` in proofs/N.json".
func (f *follower) leafStep(b block, out string) {
	m := f.says("5", "must equal `leaf_hash` in (proofs/\\d+\\.json)", b.next)
	if m == nil {
		return
	}
	var p struct {
		LeafHash string `json:"leaf_hash"`
	}
	if err := readJSON(filepath.Join(f.dir, m[1]), &p); err != nil {
		f.r.fail("5", "%v", err)
		return
	}
	if got, _, _ := strings.Cut(strings.TrimSpace(out), " "); got != p.LeafHash || got == "" {
		f.r.fail("5", "the leaf hash is %s, %s says %q", got, m[1], p.LeafHash)
	}
}

// walkStep: the example's root and every record's verdict.
func (f *follower) walkStep(out string) {
	for _, l := range nonEmpty(out) {
		if root, ok := strings.CutPrefix(l, "root "); ok {
			if root != f.r.Root || root == "" {
				f.r.fail("5", "the proof walks to %s, the checkpoint's root is %q", root, f.r.Root)
			}
			continue
		}
		rec, verdict, _ := strings.Cut(l, ": ")
		if verdict != "in the tree" {
			f.r.fail("5", "%s", l)
			continue
		}
		f.r.InTree = append(f.r.InTree, rec)
	}
}

// footageStep: "must equal `sha256` in `items/ID/item.json` and the
// `sha256` of the item's COPIED and VAULTED records".
func (f *follower) footageStep(b block, out string) {
	m := f.says("6", "must equal `sha256` in `items/(\\w+)/item.json` and the `sha256` of the item's COPIED and VAULTED records", b.next)
	if m == nil {
		return
	}
	got, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	f.itemHash("6", m[1], got)
}

// says finds what the prose says a result must equal (pattern); a file
// that no longer says it fails the step.
func (f *follower) says(step, pattern, prose string) []string {
	m := regexp.MustCompile(pattern).FindStringSubmatch(prose)
	if m == nil {
		f.r.fail(step, "the file no longer says %q:\n%s", pattern, prose)
	}
	return m
}

// itemHash checks that item id's item.json and its COPIED and VAULTED
// records (at least one of each) say sum.
func (f *follower) itemHash(step, id, sum string) {
	var it struct {
		SHA256 string `json:"sha256"`
	}
	if err := readJSON(filepath.Join(f.dir, "items", id, "item.json"), &it); err != nil || it.SHA256 != sum {
		f.r.fail(step, "items/%s/item.json says %q, the file hashes to %s (%v)", id, it.SHA256, sum, err)
	}
	recs, _ := filepath.Glob(filepath.Join(f.dir, "records", "*.json"))
	seen := map[string]int{}
	for _, p := range recs {
		var r struct {
			Type, Item, SHA256 string
		}
		if err := readJSON(p, &r); err != nil || r.Item != id || (r.Type != "COPIED" && r.Type != "VAULTED") {
			continue
		}
		seen[r.Type]++
		if r.SHA256 != sum {
			f.r.fail(step, "%s (%s of %s) says %s, the file hashes to %s", rel(f.dir, p), r.Type, id, r.SHA256, sum)
		}
	}
	if seen["COPIED"] == 0 || seen["VAULTED"] == 0 {
		f.r.fail(step, "item %s has %d COPIED and %d VAULTED records in the package", id, seen["COPIED"], seen["VAULTED"])
	}
}

// factStep: the fact the file describes ("the first plate read", else "the
// first one" of facts.jsonl) is in the file it names, at its line, and that
// file (and its crop) hash as recorded.
func (f *follower) factStep(b block, out string) {
	c := b.cmd
	if rest, ok := strings.CutPrefix(c, "sha256sum "); ok && strings.Contains(b.before, "plate-crop image") {
		m := regexp.MustCompile("whose SHA-256 is in `items/(\\w+)/item.json`").FindStringSubmatch(b.before)
		if m == nil || !strings.HasPrefix(rest, "items/"+m[1]+"/") {
			f.r.fail("7", "the crop step names %q, not the file of the item it points to", rest)
			return
		}
		got, _, _ := strings.Cut(strings.TrimSpace(out), " ")
		f.itemHash("7", m[1], got)
		return
	}
	if rest, ok := strings.CutPrefix(c, `grep -o '"camera":"[^"]*"' `); ok {
		f.linkStep(rest, b, out)
		return
	}
	if rest, ok := strings.CutPrefix(c, `grep -o '"span_[a-z]*":"[^"]*"' `); ok {
		f.spanStep(rest, b, out)
		return
	}
	if strings.HasPrefix(c, "ts() {") {
		f.spansStep(out)
		return
	}
	which := regexp.MustCompile(`For the first (plate read|one):`).FindStringSubmatch(b.before)
	if which == nil {
		f.r.fail("7", "the file no longer says which fact it shows:\n%s", b.before)
		return
	}
	fact, err := f.firstFact(which[1] == "plate read")
	if err != nil {
		f.r.fail("7", "%v", err)
		return
	}
	f.fact = &fact
	want := fmt.Sprintf("sha256sum %s\nsed -n '%dp' %s", fact.File, fact.Line, fact.File)
	if c != want {
		f.r.fail("7", "the commands are\n%s\nfor the %s in facts.jsonl, want\n%s", c, which[1], want)
		return
	}
	lines := strings.SplitN(out, "\n", 2)
	got, _, _ := strings.Cut(lines[0], " ")
	if !strings.Contains(b.next, "The hash must equal `"+fact.SHA256+"`") || got != fact.SHA256 {
		f.r.fail("7", "%s hashes to %s; facts.jsonl says %s", fact.File, got, fact.SHA256)
	}
	f.itemHash("7", fact.Source, got)
	line := ""
	if len(lines) > 1 {
		line = lines[1]
	}
	// "the line must say what the fact says": for a plate read, the plate
	// as the camera read it (a GPS fix's coordinates are in the log's own
	// notation, which a reader converts by eye; verify-export parses it).
	read := fact.AsRead
	if read == "" {
		read = fact.Plate
	}
	if fact.Kind == "plate_read" && (read == "" || !strings.Contains(line, read)) {
		f.r.fail("7", "line %d of %s is %q; the fact says plate %q as read %q", fact.Line, fact.File, strings.TrimSpace(line), fact.Plate, fact.AsRead)
	}
}

// linkStep: the link step names the items of the fact step's fact (its
// source and its recording), and both item.json files name the same
// camera.
func (f *follower) linkStep(args string, b block, out string) {
	fact := f.fact
	if fact == nil {
		f.r.fail("7", "the link step comes before the step that shows its fact:\n%s", b.before)
		return
	}
	src, rec := "items/"+fact.Source+"/item.json", "items/"+fact.Recording+"/item.json"
	if args != src+" "+rec || !strings.Contains(b.before, "recording `"+fact.Recording+"`") {
		f.r.fail("7", "the link step reads %s, want the fact's source and recording %s %s", args, src, rec)
		return
	}
	cams := map[string]string{}
	for _, l := range nonEmpty(out) {
		file, cam, _ := strings.Cut(l, ":")
		cams[file] = cam
	}
	if cams[src] == "" || cams[src] != cams[rec] {
		f.r.fail("7", "line %d of facts.jsonl links a fact of %s to %s of another camera (%s, %s)", fact.N, fact.Source, fact.Recording, cams[src], cams[rec])
	}
}

// spanStep: the example's span. The record named is a PARSED record of the
// fact's recording (signed and in the tree: steps 3 and 5 cover every
// record), it says the span the prose states, and the fact's time lies
// within it.
func (f *follower) spanStep(rec string, b block, out string) {
	fact := f.fact
	if fact == nil {
		f.r.fail("7", "the span step comes before the step that shows its fact:\n%s", b.before)
		return
	}
	if !strings.Contains(b.before, "For recording `"+fact.Recording+"` it is `"+rec+"`") {
		f.r.fail("7", "the span step reads %s, not named as the PARSED record of the fact's recording %s", rec, fact.Recording)
		return
	}
	var r struct {
		Type, Item string
		Details    map[string]string
	}
	if err := readJSON(filepath.Join(f.dir, rec), &r); err != nil || r.Type != "PARSED" || r.Item != fact.Recording {
		f.r.fail("7", "%s is not a PARSED record of %s (%s of %q, %v)", rec, fact.Recording, r.Type, r.Item, err)
		return
	}
	m := f.says("7", "It must say `span_from` (\\S+) and `span_to` (\\S+), and the fact's time must lie between them", b.next)
	if m == nil {
		return
	}
	for _, kv := range [][2]string{{"span_from", m[1]}, {"span_to", m[2]}} {
		if !strings.Contains(out, `"`+kv[0]+`":"`+kv[1]+`"`) || r.Details[kv[0]] != kv[1] {
			f.r.fail("7", "%s says %s %q; the file says %s", rec, kv[0], r.Details[kv[0]], kv[1])
		}
	}
	from, err1 := time.Parse(time.RFC3339Nano, m[1])
	to, err2 := time.Parse(time.RFC3339Nano, m[2])
	at, err3 := time.Parse(time.RFC3339Nano, fact.Time)
	if err := errors.Join(err1, err2, err3); err != nil || at.Before(from) || at.After(to) {
		f.r.fail("7", "line %d of facts.jsonl: the fact at %s is not within %s's span %s to %s (%v)", fact.N, fact.Time, rec, m[1], m[2], err)
	}
}

// spansStep: every fact's verdict against its recording's signed span.
func (f *follower) spansStep(out string) {
	verdict := regexp.MustCompile(`^facts\.jsonl line (\d+) \((\w+)\): (.*)$`)
	if f.spanned == nil {
		f.spanned = map[int]bool{}
	}
	for _, l := range nonEmpty(out) {
		m := verdict.FindStringSubmatch(l)
		if m == nil {
			f.r.fail("7", "unexpected line %q", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		f.spanned[n] = true
		switch {
		case strings.HasPrefix(m[3], "within the span of records/") && strings.HasSuffix(m[3], ": OK"):
			f.r.InSpan = append(f.r.InSpan, n)
		case m[3] == "no signed span: its time is not checked":
			f.r.Unspanned = append(f.r.Unspanned, n)
		default:
			f.r.fail("7", "%s", l)
		}
	}
}

type fact struct {
	N                                            int // line of facts.jsonl
	Kind, Source, SHA256, File, Plate, Recording string
	Time                                         string
	AsRead                                       string `json:"as_read"`
	Line                                         int64
}

func (f *follower) firstFact(plate bool) (fact, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, "facts.jsonl"))
	if err != nil {
		return fact{}, err
	}
	for i, l := range nonEmpty(string(b)) {
		var x fact
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			return fact{}, fmt.Errorf("facts.jsonl: %w", err)
		}
		if !plate || x.Kind == "plate_read" {
			x.N = i + 1
			return x, nil
		}
	}
	return fact{}, errors.New("facts.jsonl has no such fact")
}

// finish applies what holds across steps: step 0 stops a package with a
// key neither trusted nor introduced; every record is signed by an
// accepted key or placed in the signed tree.
func (f *follower) finish(md string) {
	if !f.sawStep0 {
		f.r.fail("0", "the file has no step that checks host/ against the fingerprint")
	}
	for _, k := range f.hostKeys {
		if !f.accepted[k] {
			f.r.fail("0", "%s is neither your key nor introduced by a KEY_ROTATED record: stop, the package was not made by the host you trust", k)
		}
	}
	recs, _ := filepath.Glob(filepath.Join(f.dir, "records", "*.json"))
	signedStep := strings.Contains(md, "## 3.") && f.r.Ran["3"] > 0
	for _, p := range recs {
		r := rel(f.dir, p)
		if !slices.Contains(f.r.InTree, r) {
			f.r.fail("5", "%s is not shown in the checkpoint's tree", r)
		}
		if signedStep && !slices.Contains(f.r.Signed, r) && !slices.Contains(f.r.Unsigned, r) {
			f.r.fail("3", "%s was not checked", r)
		}
	}
	foot, _ := filepath.Glob(filepath.Join(f.dir, "items", "*", "footage.*"))
	for _, p := range foot {
		if !slices.Contains(f.r.Footage, rel(f.dir, p)) {
			f.r.fail("6", "%s is not matched to its recorded hash", rel(f.dir, p))
		}
	}
	f.spansChecked()
}

// spansChecked: a fact whose recording's footage the package does not
// carry is linked to it by time only through the recording's signed span,
// so step 7 must have checked every such fact against it.
func (f *follower) spansChecked() {
	b, err := os.ReadFile(filepath.Join(f.dir, "facts.jsonl"))
	if err != nil {
		return // no facts
	}
	for i, l := range nonEmpty(string(b)) {
		var x fact
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			f.r.fail("7", "facts.jsonl: %v", err)
			return
		}
		if held, _ := filepath.Glob(filepath.Join(f.dir, "items", x.Recording, "footage.*")); len(held) > 0 {
			continue
		}
		if !f.spanned[i+1] {
			f.r.fail("7", "facts.jsonl line %d: its time was not checked against the signed span of recording %s, whose footage the package does not carry", i+1, x.Recording)
		}
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func rel(dir, p string) string {
	r, err := filepath.Rel(dir, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

func nonEmpty(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
