package export

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/sidecar"
)

// The report and VERIFY.md are pure functions of the package's own data
// (package.json, item.json, the records, which signatures are present, and
// the facts of facts.jsonl that re-parsing their files gave back), so
// Verify regenerates them and compares bytes.

// documentsVersion is the version of what renderReport and renderVerify
// write. Bump it with ANY change to their output (template text, layout,
// wording, what a view computes), and record the new golden in
// TestDocumentsVersionGolden (which fails until both are done): Build
// stamps it into package.json "documents", and Verify compares the
// documents of a package only when the package says this version. A
// package whose documents an earlier evidenced wrote is then reported as
// "not compared", not as failed for wording this release changed.
//
// 0 is every package exported before the number existed (no "documents"
// in package.json); 1 is the text whose VERIFY.md walks every record's
// signature and proof and every footage file; 2 adds to step 7 how to
// check a fact's link to its recording (same camera, time within its span);
// 3 adds, for a package without the recordings, how to check each fact's
// time against the span its recording's signed PARSED record gives.
const documentsVersion uint = 3

type reportView struct {
	Info       *Info
	ExportedAt string
	Items      []itemView
	// Recordings counts the items that are not carried for the facts.
	Recordings int
	Facts      []factView
}

// factView is one plate read or GPS fix in the report.
type factView struct {
	F                  Fact
	When, What, Where  string
	SourcePath, Camera string
	CropPath           string
}

type itemView struct {
	It                              custody.Item
	Size                            string
	Recorded, Ingested, RetainUntil string
	Footage                         string
	// Carried: a sidecar file or crop image the facts come from, not a
	// recording asked for.
	Carried     bool
	Clocks      []clockView
	Steps       []stepView
	First, Last uint64
}

type clockView struct {
	Seq                                      uint64
	Host, HostTime, Synced, MaxError, Method string
	EstError, Error, CameraClock             string
}

type stepView struct {
	Seq                    uint64
	When, Type, Actor      string
	Sentence               string
	Hash, PrevHash, SHA256 string
	Signed                 bool
}

// humanTime is how the report writes a time: "2026-11-30 07:21:37 UTC".
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func detailTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return humanTime(t)
	}
	return s
}

// groupDigits writes 1993509 as "1,993,509".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func short(h string) string {
	if len(h) > 8 {
		return h[:8] + "…"
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func yesNo(s string) string {
	switch s {
	case "true":
		return "yes"
	case "false":
		return "NO"
	}
	return orDash(s)
}

// sentence says one custody step in plain language.
func sentence(it custody.Item, ev custody.Event) string {
	d := ev.Details
	on := fmt.Sprintf("On %s at host %s, ", humanTime(ev.At), ev.Host)
	cam := ev.Camera
	if cam == "" {
		cam = it.Camera
	}
	issued := d["assigned_to"]
	if issued == "" {
		issued = it.AssignedTo
	}
	camera := "camera " + cam
	if issued != "" {
		camera += " issued to " + issued
	}
	by := fmt.Sprintf(" (recorded by %s)", ev.Actor)
	switch ev.Type {
	case custody.Docked:
		s := on + camera + " was docked"
		if d["via"] != "" {
			s += " (" + d["via"] + ")"
		}
		s += fmt.Sprintf(". Host clock: %s; NTP-synchronised: %s", orDash(detailTime(d["host_time"])), yesNo(d["clock_synced"]))
		if d["clock_max_error"] != "" {
			s += ", maximum error " + d["clock_max_error"]
		}
		if d["clock_method"] != "" {
			s += ", as reported by " + d["clock_method"]
		}
		if d["camera_clock"] != "" {
			s += "; camera clock: " + d["camera_clock"]
		}
		return s + by + "."
	case custody.Copied:
		size := d["size"]
		if n, err := strconv.ParseInt(size, 10, 64); err == nil {
			size = groupDigits(n)
		}
		src := d["source_path"]
		if src == "" {
			src = it.SourcePath
		}
		return on + fmt.Sprintf("evidenced copied %s (%s bytes, SHA-256 %s) off %s", src, size, short(ev.SHA256), camera) + by + "."
	case custody.Vaulted:
		return on + fmt.Sprintf("the copy was read back from the host's vault and hashed again: SHA-256 %s matched; the item was created", short(ev.SHA256)) + by + "."
	case custody.Uploaded:
		s := on + fmt.Sprintf("the recording was uploaded to the object store as %s (version %s)", orDash(d["key"]), orDash(d["version_id"]))
		if d["lock_mode"] != "" {
			s += fmt.Sprintf(", under Object Lock %s until %s", d["lock_mode"], detailTime(d["retain_until"]))
		}
		return s + by + "."
	case custody.Verified:
		return on + fmt.Sprintf("the stored object %s (version %s) was checked by %s: SHA-256 %s matched", orDash(d["key"]), orDash(d["version_id"]), orDash(d["method"]), short(ev.SHA256)) + by + "."
	case custody.Accessed:
		s := on + fmt.Sprintf("%s accessed the item (%s)", ev.Actor, orDash(d["action"]))
		if d["reason"] != "" {
			s += fmt.Sprintf("; reason given: “%s”", d["reason"])
		}
		return s + "."
	}
	s := on + fmt.Sprintf("%s was recorded by %s", ev.Type, ev.Actor)
	if len(d) > 0 {
		var kv []string
		for _, k := range sortedKeys(d) {
			kv = append(kv, k+"="+d[k])
		}
		s += " (" + strings.Join(kv, "; ") + ")"
	}
	return s + "."
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func buildView(info *Info, items []*itemData, sigs map[uint64]bool, facts []Fact) reportView {
	v := reportView{Info: info, ExportedAt: humanTime(info.ExportedAt)}
	byID := map[string]custody.Item{}
	for _, d := range items {
		it := d.item
		byID[it.ID] = it
		iv := itemView{
			It: it, Size: groupDigits(it.Size), Recorded: humanTime(it.RecordedAt), Ingested: humanTime(it.IngestedAt),
			RetainUntil: humanTime(it.RetainUntil), Carried: slices.Contains(info.Files, it.ID),
		}
		if !iv.Carried {
			v.Recordings++
		}
		if info.Footage || iv.Carried {
			iv.Footage = footagePath(it)
		}
		for _, ev := range d.events {
			if ev.Type == custody.Docked {
				dd := ev.Details
				iv.Clocks = append(iv.Clocks, clockView{
					Seq: ev.Seq, Host: ev.Host, HostTime: orDash(detailTime(dd["host_time"])), Synced: yesNo(dd["clock_synced"]),
					MaxError: orDash(dd["clock_max_error"]), EstError: orDash(dd["clock_est_error"]), Method: orDash(dd["clock_method"]),
					Error: dd["clock_error"], CameraClock: orDash(dd["camera_clock"]),
				})
			}
			iv.Steps = append(iv.Steps, stepView{
				Seq: ev.Seq, When: humanTime(ev.At), Type: string(ev.Type), Actor: ev.Actor, Sentence: sentence(it, ev),
				Hash: ev.Hash, PrevHash: ev.PrevHash, SHA256: ev.SHA256, Signed: sigs[ev.Seq],
			})
		}
		if len(d.events) > 0 {
			iv.First, iv.Last = d.events[0].Seq, d.events[len(d.events)-1].Seq
		}
		v.Items = append(v.Items, iv)
	}
	for _, f := range facts {
		fv := factView{F: f, SourcePath: byID[f.Source].SourcePath, Camera: byID[f.Source].Camera, CropPath: byID[f.CropItem].SourcePath}
		if t, err := time.Parse(time.RFC3339Nano, f.Time); err == nil {
			fv.When = humanTime(t)
		}
		switch f.Kind {
		case FactPlateRead:
			fv.What = fmt.Sprintf("plate %s read as “%s”, confidence %.2f", f.Plate, f.AsRead, f.Confidence)
			if f.Region != "" {
				fv.What += ", region " + f.Region
			}
			if f.ANPRCamera != "" {
				fv.What += ", ANPR camera " + f.ANPRCamera
			}
		default:
			fv.What = "GPS fix"
		}
		if f.HasPos {
			fv.Where = strconv.FormatFloat(f.Lat, 'f', 6, 64) + ", " + strconv.FormatFloat(f.Lon, 'f', 6, 64)
		}
		v.Facts = append(v.Facts, fv)
	}
	return v
}

func renderReport(info *Info, items []*itemData, sigs map[uint64]bool, facts []Fact) ([]byte, error) {
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, buildView(info, items, sigs, facts)); err != nil {
		return nil, fmt.Errorf("export: render %s: %w", reportName, err)
	}
	return b.Bytes(), nil
}

var reportTmpl = htmltemplate.Must(htmltemplate.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Chain of custody report — {{.Info.Host}} — {{.ExportedAt}}</title>
<style>
body { font-family: "DejaVu Serif", Georgia, serif; font-size: 11pt; line-height: 1.4; margin: 2em auto; max-width: 60em; color: #000; }
h1 { font-size: 18pt; margin-bottom: 0.2em; }
h2 { font-size: 14pt; border-bottom: 1px solid #000; margin-top: 1.6em; }
h3 { font-size: 12pt; margin-top: 1.2em; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0; }
th, td { border: 1px solid #444; padding: 0.25em 0.4em; text-align: left; vertical-align: top; }
th { background: #eee; width: 14em; }
.hash, code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 9pt; word-break: break-all; }
ol.chain li { margin-bottom: 0.5em; }
.small { font-size: 9pt; color: #333; }
.warn { font-weight: bold; }
.cert { border: 2px solid #000; padding: 1em; margin-top: 2em; page-break-inside: avoid; }
.cert .line { border-bottom: 1px solid #000; height: 2em; margin: 0.6em 0 0.2em; }
.cert .label { font-size: 9pt; }
@page { size: A4; margin: 18mm 15mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { page-break-after: avoid; }
  table, li, .item-head { page-break-inside: avoid; }
  .item { page-break-before: always; }
  .item:first-of-type { page-break-before: auto; }
  a { color: #000; text-decoration: none; }
}
</style>
</head>
<body>
<h1>Chain of custody report</h1>
<p>Recordings held by the evidenced custody system on host <strong>{{.Info.Host}}</strong>: what came off which camera, when,
where, with which SHA-256 hash, and every step taken with each recording since, as recorded in the host's hash-chained
custody ledger.</p>
<table>
<tr><th>Exported</th><td>{{.ExportedAt}} by {{.Info.ExportedBy}}</td></tr>
<tr><th>Reason for export</th><td>{{.Info.Reason}}</td></tr>
<tr><th>Produced by</th><td>{{.Info.Tool}}</td></tr>
<tr><th>Recordings</th><td>{{.Recordings}}{{if .Info.Footage}} (footage included){{else}} (footage not included; hashes only){{end}}</td></tr>
<tr><th>Ledger checkpoint</th><td>{{.Info.TreeSize}} records, Merkle root <span class="hash">{{.Info.Root}}</span><br>
{{if .Info.Signed}}signed by the host key (<code>{{.Info.Checkpoint}}</code>){{else}}<span class="warn">unsigned</span>: this host did not sign its ledger at the time of export (<code>{{.Info.Checkpoint}}</code>){{end}}</td></tr>
<tr><th>Anchored off the host</th><td>{{with .Info.Anchored}}checkpoint of {{.TreeSize}} records, Merkle root <span class="hash">{{.Root}}</span>,
stored in the object store under Object Lock as <code>{{.Object}}</code> (<code>{{.Checkpoint}}</code>){{if .Consistency}}; the export's
checkpoint extends it (consistency proof <code>{{.Consistency}}</code>){{end}}: records 1 to {{.TreeSize}} were on record outside the host's control.
{{if .Timestamp}}Time-stamped by an independent time-stamping authority (RFC 3161) at {{.TimestampTime.UTC.Format "2006-01-02 15:04:05 UTC"}} (<code>{{.Timestamp}}</code>{{if .TSACA}}, its CA <code>{{.TSACA}}</code>{{end}}).{{else}}Not time-stamped (no time-stamping authority configured).{{end}}
{{else}}<span class="warn">none in this package</span>: the host had no object store or had not anchored a checkpoint yet{{end}}</td></tr>
<tr><th>Host signing keys</th><td>{{range .Info.Keys}}<span class="hash">SHA256:{{.KeyID}}</span> (records {{.FromSeq}} onwards; <code>{{.File}}</code>)<br>{{else}}<span class="warn">none</span>: the records in this package are not signed{{end}}</td></tr>
</table>
<p class="small">Every statement below is taken from a custody record included in this package (<code>records/&lt;seq&gt;.json</code>).
Anyone can re-check the hashes, signatures and proofs with the standard tools sha256sum and openssl by following
<code>VERIFY.md</code>, or with <code>evidenced verify-export</code>. Times are UTC, as recorded by the host.</p>
{{range .Items}}
<section class="item">
<h2 class="item-head">{{if .Carried}}File the plate reads / GPS fixes below come from{{else}}Recording{{end}} {{.It.ID}}</h2>
<table>
<tr><th>Camera</th><td>{{.It.Camera}}{{if .It.Kind}} ({{.It.Kind}}){{end}}</td></tr>
<tr><th>Issued to</th><td>{{.It.AssignedTo}}</td></tr>
<tr><th>File on the camera</th><td><code>{{.It.SourcePath}}</code></td></tr>
<tr><th>Size</th><td>{{.Size}} bytes</td></tr>
<tr><th>SHA-256</th><td class="hash">{{.It.SHA256}}</td></tr>
<tr><th>Recorded at (camera)</th><td>{{.Recorded}}</td></tr>
<tr><th>Taken into custody</th><td>{{.Ingested}} at host {{.It.Host}}</td></tr>
<tr><th>Object store</th><td>{{if .It.ObjectKey}}<code>{{.It.ObjectKey}}</code>, version <code>{{.It.VersionID}}</code>{{else}}not uploaded{{end}}</td></tr>
<tr><th>Retention</th><td>{{.It.RetentionClass}}{{if not .It.RetainUntil.IsZero}}, until {{.RetainUntil}}{{end}}</td></tr>
<tr><th>State</th><td>{{.It.State}}</td></tr>
<tr><th>{{if .Carried}}File{{else}}Footage{{end}} in this package</th><td>{{if .Footage}}<code>{{.Footage}}</code> (checked against the SHA-256 above){{else}}not included{{end}}</td></tr>
</table>
<h3>Host clock when the camera was docked</h3>
{{range .Clocks}}<table>
<tr><th>Host / record</th><td>{{.Host}}, record {{.Seq}}</td></tr>
<tr><th>Host time</th><td>{{.HostTime}}</td></tr>
<tr><th>NTP-synchronised</th><td>{{.Synced}}{{if .Error}} ({{.Error}}){{end}}</td></tr>
<tr><th>Maximum / estimated error</th><td>{{.MaxError}} / {{.EstError}}</td></tr>
<tr><th>How determined</th><td>{{.Method}}</td></tr>
<tr><th>Camera clock</th><td>{{.CameraClock}}</td></tr>
</table>
{{else}}<p>No docking record is part of this recording's custody.</p>
{{end}}
<h3>Chain of custody</h3>
<ol class="chain">
{{range .Steps}}<li>{{.Sentence}}<br><span class="small">Record {{.Seq}} ({{.Type}}), SHA-256 of the record <span class="hash">{{.Hash}}</span>; previous record <span class="hash">{{.PrevHash}}</span>; {{if .Signed}}signed by the host key{{else}}not signed{{end}}.</span></li>
{{end}}</ol>
<p class="small">Records {{.First}} to {{.Last}} of the host's ledger. Each record carries the SHA-256 of the record before it, so a
record changed or removed shows as a break in the chain unless every later hash is recomputed; the host's signatures
and the checkpoint (compared with those anchored off the host) show that did not happen. The inclusion proofs in
<code>proofs/</code> show each record is in the checkpoint's Merkle tree.</p>
</section>
{{end}}
{{if .Facts}}<section class="item">
<h2 class="item-head">Plate reads and GPS fixes linked to the recordings</h2>
<p>Each line below was read from a sidecar file that came off the same camera and is part of this package, with its own
custody (above) and its SHA-256. A fact is linked to a recording when its time lies within the recording's span (its
creation time and duration, as its own header says). <code>facts.jsonl</code> lists them; <code>evidenced verify-export</code>
parses the stated line of each file again and compares.</p>
<table>
<tr><th>When</th><th>What</th><th>Where (lat, lon)</th><th>Recording</th><th>From</th><th>Plate crop</th></tr>
{{range .Facts}}<tr><td>{{.When}}</td><td>{{.What}}</td><td>{{.Where}}</td><td class="hash">{{.F.Recording}}</td>
<td><code>{{.SourcePath}}</code> line {{.F.Line}} (byte {{.F.Offset}}), camera {{.Camera}}; in this package <code>{{.F.File}}</code>, SHA-256 <span class="hash">{{.F.SHA256}}</span></td>
<td>{{if .F.CropFile}}<code>{{.CropPath}}</code>; in this package <code>{{.F.CropFile}}</code>{{else if .F.Crop}}<code>{{.F.Crop}}</code> (not docked){{end}}</td></tr>
{{end}}</table>
</section>
{{end}}<section class="cert">
<h2>Certificate</h2>
<p>I, the undersigned custodian, certify that this report and the package it belongs to are a correct printout of and
extract from the data messages (the custody records{{if .Info.Footage}} and recordings{{end}}) held in the evidenced custody system, produced by
that system on {{.ExportedAt}}, and that the checks described in VERIFY.md succeeded on the package. Certified to be correct
(Electronic Communications and Transactions Act 25 of 2002, section 15(4)).</p>
<p>SHA-256 of <code>MANIFEST.sha256</code> (<code>sha256sum MANIFEST.sha256</code>):</p>
<div class="line"></div>
<p>Fingerprint of the host's signing key, as I obtained it from the host itself (<code>evidenced key --fingerprint</code>),
not from this package:</p>
<div class="line"></div>
<p class="small">The package's own key{{if gt (len .Info.Keys) 1}}s are{{else}} is{{end}} {{range $i, $k := .Info.Keys}}{{if $i}}, then {{end}}<span class="hash">SHA256:{{$k.KeyID}}</span>{{else}}<span class="warn">none</span>{{end}}{{if gt (len .Info.Keys) 1}} (each later key introduced by a KEY_ROTATED record signed by the key before it){{end}}.
A verifier starts from the fingerprint on the signed copy of this certificate, never from this file, which anyone who
can write the package can rewrite: <code>evidenced verify-export --key-fingerprint SHA256:… DIR</code>, or step 0 of
<code>VERIFY.md</code>.</p>
<table>
<tr><th>Name</th><td><div class="line"></div></td></tr>
<tr><th>Rank / appointment</th><td><div class="line"></div></td></tr>
<tr><th>Signature</th><td><div class="line"></div></td></tr>
<tr><th>Date and place</th><td><div class="line"></div></td></tr>
</table>
</section>
</body>
</html>
`))

// verifyView feeds VERIFY.md: concrete file names for the examples.
type verifyView struct {
	Info             *Info
	Host             string
	Seq              uint64
	Record, Sig, Key string
	ProofFile        string
	Footage          string
	FootageItem      string
	Checkpoint       string
	// CheckpointKey is the key in force at export, which signs the
	// checkpoint (the newest key, not necessarily the example record's).
	CheckpointKey string
	// Rotations are the KEY_ROTATED records that introduce each later key.
	Rotations []rotationView
	// Fact is the example of step 7 (a plate read when there is one).
	Fact *Fact
	// Span is, in a package without the recordings, the signed PARSED
	// record that gives the example fact's recording its span (nil when
	// none does: a recording parsed before spans were signed).
	Span *spanView
}

// spanView is a recording's PARSED record and the span it gives, as
// VERIFY.md's step 7 shows it.
type spanView struct {
	Record, From, To string
}

// exampleSpan is the first PARSED record of recording id that gives a span
// (sidecar.ParseSpan's rule, as verify-export reads it), or nil.
func exampleSpan(items []*itemData, id string) *spanView {
	for _, d := range items {
		if d.item.ID != id {
			continue
		}
		for _, ev := range d.events {
			if ev.Type != custody.Parsed || ev.Item != id || ev.SHA256 != d.item.SHA256 {
				continue
			}
			if from, to, ok, err := sidecar.ParseSpan(ev.Details); ok && err == nil {
				f, t := sidecar.FormatSpan(from, to)
				return &spanView{Record: recordPath(ev.Seq), From: f, To: t}
			}
		}
	}
	return nil
}

// rotationView is one KEY_ROTATED record in VERIFY.md's step 0.
type rotationView struct {
	Record, Sig, PrevKey, NextKey string
}

func renderVerify(info *Info, items []*itemData, sigs map[uint64]bool, facts []Fact) ([]byte, error) {
	v := verifyView{Info: info, Host: info.Host, Checkpoint: info.Checkpoint}
	if len(facts) > 0 {
		f := facts[0]
		for _, g := range facts {
			if g.Kind == FactPlateRead {
				f = g
				break
			}
		}
		v.Fact = &f
	}
	if n := len(info.Keys); n > 0 {
		v.CheckpointKey = info.Keys[n-1].File
	}
	for i := 1; i < len(info.Keys); i++ {
		if s := info.Keys[i].FromSeq; s >= 2 {
			v.Rotations = append(v.Rotations, rotationView{Record: recordPath(s - 1), Sig: sigPath(s - 1), PrevKey: info.Keys[i-1].File, NextKey: info.Keys[i].File})
		}
	}
	// The example record: the first signed one, else the first one.
	for _, d := range items {
		for _, ev := range d.events {
			if v.Record == "" || (v.Sig == "" && sigs[ev.Seq]) {
				v.Seq, v.Record, v.ProofFile = ev.Seq, recordPath(ev.Seq), proofPath(ev.Seq)
				if k := info.keyFor(ev.Seq); k != nil && sigs[ev.Seq] {
					v.Sig, v.Key = sigPath(ev.Seq), k.File
				}
			}
		}
		if info.Footage && v.Footage == "" && !slices.Contains(info.Files, d.item.ID) {
			v.Footage, v.FootageItem = footagePath(d.item), d.item.ID
		}
	}
	if v.Fact != nil && v.Footage == "" {
		v.Span = exampleSpan(items, v.Fact.Recording)
	}
	var b bytes.Buffer
	if err := verifyTmpl.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("export: render %s: %w", verifyName, err)
	}
	return b.Bytes(), nil
}

var verifyTmpl = template.Must(template.New("verify").Parse(`# How to verify this package

This package was exported from the evidenced custody ledger of host ` + "`{{.Host}}`" + ` on
{{.Info.ExportedAt.Format "2006-01-02 15:04:05 UTC"}}. Everything below needs only ` + "`sha256sum`" + `, ` + "`openssl`" + ` (1.1.1 or
later) and a POSIX shell, run in this directory; nothing here trusts evidenced, the host or a network.
` + "`evidenced verify-export DIR`" + ` performs all of these checks (and more) in one go.

Layout ("format": "{{.Info.Format}}" in package.json):

| file | what it is |
|---|---|
| MANIFEST.sha256 | SHA-256 of every other file (sha256sum format) |
| package.json | what was exported, by whom, why, when; the checkpoint; which host key signs which records |
| report.html | the printable report and the custodian's certificate |
| records/<seq>.json | one custody record: the exact bytes the host's ledger stores |
| records/<seq>.sig | its raw Ed25519 signature (signed ledgers) |
| proofs/<seq>.json | its inclusion proof in the checkpoint's Merkle tree |
| checkpoints/ | the ledger's checkpoint at export (tree size and root); the checkpoint anchored off the host, its RFC 3161 time-stamp (.tsr), the TSA's CA and a consistency proof, when the host anchors |
| host/<key id>.pem | the host's public key(s) |
| items/<id>/item.json | the recording's metadata as the ledger holds it |
| items/<id>/custody.json, custody.csv | its full custody, in order, naming the files above |
| items/<id>/footage.* | the recording itself, when exported with footage; a sidecar file or plate-crop image the facts come from |
{{if .Fact}}| facts.jsonl | the plate reads and GPS fixes linked to the recordings, each naming its source file, SHA-256, byte offset and line |
{{end}}
## 0. Start from the host key you trust

Nothing in a package can vouch for itself: whoever can write this directory can write keys, signatures and this
file too. Start from the fingerprint of the host's signing key obtained OUT OF BAND: the certificate the custodian
signed (the signed copy, not report.html in this directory), or ` + "`evidenced key --fingerprint`" + ` run on the host.
Set it, and every step below uses it:

    export FP='SHA256:<the fingerprint you obtained>'

The first host key of the package (package.json "keys") must be that key. The key id (the file name) is the SHA-256
of the key's DER form:

    for k in host/*.pem; do
      f="SHA256:$(openssl pkey -pubin -in "$k" -outform DER | sha256sum | cut -d' ' -f1)"
      if [ "$f" = "$FP" ]; then echo "$k is your key: TRUSTED"; else echo "$k is another key ($f)"; fi
    done
{{range .Rotations}}
` + "`{{.NextKey}}`" + ` is a later key: it counts only because ` + "`{{.Record}}`" + `, a KEY_ROTATED record, is signed by the key
before it and carries it (its "public_key" is the new key's DER in base64):

    openssl pkeyutl -verify -pubin -inkey {{.PrevKey}} -rawin -in {{.Record}} -sigfile {{.Sig}}
    grep -q "\"public_key\":\"$(openssl pkey -pubin -in {{.NextKey}} -outform DER | openssl base64 -A)\"" {{.Record}} && echo "{{.Record}} introduces {{.NextKey}}: OK"
{{end}}
If any file in host/ is neither your key nor introduced this way, stop: the package was not made by the host you
trust, whatever the steps below say.
{{if .Info.Anchored}}{{if .Info.Anchored.TSACA}}For the time-stamp (step 4) you also need the time-stamping authority's CA certificate from the TSA itself
(` + "`{{.Info.Anchored.TSACA}}`" + ` is the one the host was configured with; compare it, do not just use it):

    export TSA_CA=<the TSA's CA certificate file, as the TSA publishes it>
{{end}}{{end}}
## 1. Every file is intact

    sha256sum -c MANIFEST.sha256

Every line must say ` + "`OK`" + `. Write the SHA-256 of the manifest itself (` + "`sha256sum MANIFEST.sha256`" + `) on the
certificate in report.html: it fixes every file of the package.

## 2. Each custody record has the hash the chain says

A record is ` + "`records/<seq>.json`" + `, the exact bytes the ledger stores (RFC 8785 canonical JSON, no newline). Its
hash is their SHA-256:

    sha256sum {{.Record}}

It must equal the ` + "`hash`" + ` of record {{.Seq}} in ` + "`items/<id>/custody.json`" + ` (and ` + "`custody.csv`" + `), and the
` + "`prev_hash`" + ` inside the next record when that record is in the package:

    for f in records/*.json; do
      s=${f#records/}; s=${s%.json}; n=records/$((s + 1)).json
      [ -f "$n" ] || continue
      h=$(sha256sum "$f" | cut -d' ' -f1)
      grep -q "\"prev_hash\":\"$h\"" "$n" && echo "$n links to $f: OK" || echo "$n does NOT link to $f: FAILED"
    done

## 3. Each record is signed by the host key
{{if .Sig}}
` + "`records/<seq>.sig`" + ` is the raw 64-byte Ed25519 signature (RFC 8032) of the record bytes; ` + "`host/<key id>.pem`" + `
is the host's public key. For record {{.Seq}}:

    openssl pkeyutl -verify -pubin -inkey {{.Key}} -rawin -in {{.Record}} -sigfile {{.Sig}}

It must print ` + "`Signature Verified Successfully`" + `. All records at once (package.json "keys" says which key signs
which records; with one key, every signature verifies with it):

    for f in records/*.json; do
      s=${f%.json}.sig; ok=no
      if [ -f "$s" ]; then
        for k in host/*.pem; do
          openssl pkeyutl -verify -pubin -inkey "$k" -rawin -in "$f" -sigfile "$s" >/dev/null 2>&1 && ok=yes
        done
      else
        ok="not signed"
      fi
      echo "$f: $ok"
    done

Every line must say ` + "`yes`" + `, or ` + "`not signed`" + ` for a record written before the host had a key: such a record counts
only because step 5 places it in the tree of the checkpoint a trusted key signed. Every key used here must be one
step 0 accepted.
{{else}}
The records in this package are not signed: the host's ledger had no signing key when they were written. Their
integrity rests on the hash chain (step 2), the checkpoint (step 4) and the manifest.
{{end}}
## 4. The checkpoint
{{if .Info.Signed}}
` + "`{{.Checkpoint}}`" + ` is a signed note (C2SP tlog-checkpoint): the host states that its ledger had
{{.Info.TreeSize}} records with the Merkle root on its third line (base64). Its signature is Ed25519 over the text before the
blank line; the signature line is "— evidenced-{{.Host}} " and base64 of a 4-byte key hash followed by the 64-byte signature:

    t=$(mktemp -d)
    sed '/^$/,$d' {{.Checkpoint}} > "$t/checkpoint.txt"
    grep '^— evidenced-{{.Host}} ' {{.Checkpoint}} | cut -d' ' -f3 | openssl base64 -d -A | tail -c 64 > "$t/checkpoint.sig"
    openssl pkeyutl -verify -pubin -inkey {{.CheckpointKey}} -rawin -in "$t/checkpoint.txt" -sigfile "$t/checkpoint.sig"

Compare the root with the checkpoints the host anchored in the object store under Object Lock
(` + "`_custody/{{.Host}}/`" + `): the same size must have the same root.
{{else}}
` + "`{{.Checkpoint}}`" + ` is the ledger's tree head at export ({{.Info.TreeSize}} records, root on its third line, base64).
It is NOT signed: this host had no signing key at the time of export. Compare it with a checkpoint obtained
independently (one anchored in the object store) before relying on it.
{{end}}
{{with .Info.Anchored}}
### The checkpoint anchored off the host

` + "`{{.Checkpoint}}`" + ` is the checkpoint of {{.TreeSize}} records the host anchored in the object store under Object Lock
(` + "`{{.Object}}`" + `), byte for byte. It is signed like the one above:

    t=$(mktemp -d)
    sed '/^$/,$d' {{.Checkpoint}} > "$t/anchored.txt"
    grep '^— evidenced-{{$.Host}} ' {{.Checkpoint}} | cut -d' ' -f3 | openssl base64 -d -A | tail -c 64 > "$t/anchored.sig"
    ok=no
    for k in host/*.pem; do
      openssl pkeyutl -verify -pubin -inkey "$k" -rawin -in "$t/anchored.txt" -sigfile "$t/anchored.sig" >/dev/null 2>&1 && ok=yes
    done
    echo "{{.Checkpoint}} signed by a host key: $ok"
{{if .Consistency}}
` + "`{{.Consistency}}`" + ` is the RFC 9162 consistency proof that the export's tree of {{$.Info.TreeSize}} records extends this one of
{{.TreeSize}} records (` + "`evidenced verify-export`" + ` checks it), so every record up to {{.TreeSize}} in this package is in the
anchored tree.
{{else}}
It is the export's own checkpoint: the host had anchored every record in this package.
{{end}}{{if .Timestamp}}
` + "`{{.Timestamp}}`" + ` is the RFC 3161 time-stamp of the SHA-256 of ` + "`{{.Checkpoint}}`" + ` by an independent time-stamping
authority: the checkpoint, and every record it covers, existed at the time in it.
{{if .TSACA}}With the TSA's CA certificate obtained from the TSA (step 0; ` + "`{{.TSACA}}`" + ` in the package is only what the
host was configured with):

    openssl ts -verify -in {{.Timestamp}} -data {{.Checkpoint}} -CAfile "$TSA_CA"

It must print ` + "`Verification: OK`" + `. (Years later the TSA's certificate may have expired: add ` + "`-attime`" + ` with the
stamp's time as seconds since 1970 to check it as of then.){{else}}Check it with the CA certificate the TSA publishes
(` + "`openssl ts -verify -in {{.Timestamp}} -data {{.Checkpoint}} -CAfile <the TSA's CA>`" + `).{{end}} The time in it:

    openssl ts -reply -in {{.Timestamp}} -text | grep 'Time stamp:'
{{end}}{{end}}
The root in hex, to compare with the proofs:

    sed -n 3p {{.Checkpoint}} | openssl base64 -d -A | od -An -tx1 | tr -d ' \n'; echo

## 5. Each record is in the checkpoint's tree

` + "`proofs/<seq>.json`" + ` is an RFC 6962 inclusion proof: leaf = SHA-256(0x00 || record bytes), interior node =
SHA-256(0x01 || left || right). The leaf hash:

    (printf '\000'; cat {{.Record}}) | sha256sum

must equal ` + "`leaf_hash`" + ` in {{.ProofFile}}. To walk each record's proof to the root (bash, for its printf \x escapes;
the leaf is hashed from the record file itself, never taken from the proof):

    root=$(sed -n 3p {{.Checkpoint}} | openssl base64 -d -A | od -An -tx1 | tr -d ' \n')
    walk() {
      proof=$1
      num() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$proof"; }
      bin() { printf "$(printf '%s' "$1" | sed 's/../\\x&/g')"; }
      node() { { printf '\001'; bin "$1"; bin "$2"; } | sha256sum | cut -d' ' -f1; }
      fn=$(num leaf_index); sn=$(( $(num tree_size) - 1 ))
      r=$( (printf '\000'; cat "$2") | sha256sum | cut -d' ' -f1)
      for p in $(sed -n '/"hashes"/,/]/p' "$proof" | grep -o '[0-9a-f]\{64\}'); do
        if [ $((fn & 1)) -eq 1 ] || [ "$fn" -eq "$sn" ]; then
          r=$(node "$p" "$r")
          while [ $((fn & 1)) -eq 0 ] && [ "$fn" -ne 0 ]; do fn=$((fn >> 1)); sn=$((sn >> 1)); done
        else
          r=$(node "$r" "$p")
        fi
        fn=$((fn >> 1)); sn=$((sn >> 1))
      done
      echo "$r"
    }
    echo "root $(walk {{.ProofFile}} {{.Record}})"
    for f in records/*.json; do
      s=${f#records/}; p=proofs/$s
      if [ -f "$p" ] && [ "$(walk "$p" "$f")" = "$root" ]; then echo "$f: in the tree"; else echo "$f: NOT in the tree"; fi
    done

The printed root must equal the checkpoint's root in hex (step 4), and every record must be ` + "`in the tree`" + `.
{{if or .Footage .Fact}}
## 6. The footage is what came off the camera
{{if .Footage}}
    sha256sum {{.Footage}}

must equal ` + "`sha256`" + ` in ` + "`items/{{.FootageItem}}/item.json`" + ` and the ` + "`sha256`" + ` of the item's COPIED and VAULTED records
(recorded when the file was copied off the camera). Every file of footage at once (the recordings, and the sidecar
files and plate-crop images facts come from), against its item's COPIED record (signed, step 3):
{{else}}
The recordings are not in this package; the sidecar files and plate-crop images the facts come from are. Each
against its item's COPIED record (signed, step 3), recorded when the file was copied off the camera:
{{end}}
    for f in items/*/footage.*; do
      id=${f#items/}; id=${id%%/*}
      h=$(sha256sum "$f" | cut -d' ' -f1)
      if grep -l "\"item\":\"$id\"" records/*.json | xargs -r grep -l '"type":"COPIED"' | xargs -r grep -l "\"sha256\":\"$h\"" | grep -q .; then
        echo "$f: OK"; else echo "$f: FAILED"; fi
    done

Every line must say ` + "`OK`" + `.
{{end}}{{with .Fact}}
## 7. The plate reads and GPS fixes are in the files they name

` + "`facts.jsonl`" + ` lists, one JSON object a line, each plate read and GPS fix linked to a recording of this package:
the sidecar file it came from (` + "`source`" + `, an item of this package with its own custody above; ` + "`file`" + `, its bytes
here), that file's SHA-256, and the byte offset and line of the fact. For the first {{if eq .Kind "plate_read"}}plate read{{else}}one{{end}}:

    sha256sum {{.File}}
    sed -n '{{.Line}}p' {{.File}}

The hash must equal ` + "`{{.SHA256}}`" + ` (the ` + "`sha256`" + ` of ` + "`items/{{.Source}}/item.json`" + ` and of its COPIED and VAULTED
records), and the line must say what the fact says.{{if .CropFile}} The plate-crop image it names, ` + "`{{.Crop}}`" + `, is
` + "`{{.CropFile}}`" + `: an item of the same dock and camera, whose SHA-256 is in ` + "`items/{{.CropItem}}/item.json`" + `:

    sha256sum {{.CropFile}}
{{end}}
Its link to recording ` + "`{{.Recording}}`" + ` is not taken on the package's word: a fact is linked only to a recording
of the camera its file came off, and only when its time lies within the recording's span. Both files' items:

    grep -o '"camera":"[^"]*"' items/{{.Source}}/item.json items/{{.Recording}}/item.json

must name the same camera, and the fact's time ({{.Time}}) must lie within the recording's creation time plus
its duration, as the recording's own movie header (` + "`mvhd`" + `) says{{if $.Footage}} (` + "`items/{{.Recording}}/footage.*`" + `; e.g.
` + "`ffprobe -show_entries format_tags=creation_time:format=duration`" + `){{else}}.

The recordings are not in this package, but their spans are, signed: when the host parses a recording's movie
header at ingest it writes a PARSED record of the recording (its ` + "`\"type\"`" + ` is ` + "`\"PARSED\"`" + `, its ` + "`\"item\"`" + ` the
recording's id; ` + "`items/<id>/custody.json`" + ` lists it) whose details ` + "`span_from`" + ` and ` + "`span_to`" + ` are the header's
creation time and creation time plus duration (RFC 3339, UTC). It is one of ` + "`records/<seq>.json`" + `: step 3 checked
its signature and step 5 placed it in the checkpoint's tree, so the span is the host's signed word, not the
package's.{{with $.Span}} For recording ` + "`{{$.Fact.Recording}}`" + ` it is ` + "`{{.Record}}`" + `:

    grep -o '"span_[a-z]*":"[^"]*"' {{.Record}}

It must say ` + "`span_from`" + ` {{.From}} and ` + "`span_to`" + ` {{.To}}, and the fact's time must lie between them
(both inclusive).{{else}} Recording ` + "`{{$.Fact.Recording}}`" + ` has no PARSED record with a span in this package (see below).{{end}}
Every fact at once: each fact's time against the span of every PARSED record of its recording (bash; the times
are UTC, compared byte by byte (LC_ALL=C) with the fraction of a second padded to nanoseconds):

    ts() { s=${1%Z}; f=; case $s in *.*) f=${s#*.};; esac; printf '%s.%s' "${s%%.*}" "$(printf '%-9s' "$f" | tr ' ' 0)"; }
    export LC_ALL=C
    n=0
    while IFS= read -r l; do
      n=$((n + 1))
      rec=$(printf '%s' "$l" | sed -n 's/.*"recording":"\([^"]*\)".*/\1/p')
      t=$(ts "$(printf '%s' "$l" | sed -n 's/.*"time":"\([^"]*\)".*/\1/p')")
      v="no signed span: its time is not checked"
      for p in $(grep -l '"type":"PARSED"' records/*.json | xargs -r grep -l "\"item\":\"$rec\"" | xargs -r grep -l '"span_from"'); do
        from=$(ts "$(sed -n 's/.*"span_from":"\([^"]*\)".*/\1/p' "$p")")
        to=$(ts "$(sed -n 's/.*"span_to":"\([^"]*\)".*/\1/p' "$p")")
        if [[ "$t" < "$from" || "$t" > "$to" ]]; then v="NOT within the span of $p: FAILED"; break; fi
        v="within the span of $p: OK"
      done
      echo "facts.jsonl line $n ($rec): $v"
    done < facts.jsonl

Every line must say ` + "`OK`" + `. A line saying ` + "`no signed span`" + ` is a fact of a recording the host parsed before it
signed spans into PARSED records (an older ledger; its PARSED record has no ` + "`span_from`" + `): that fact's time cannot be
checked from this package, only its camera; ` + "`evidenced verify-export`" + ` says so in a notice ("the links to N
recording(s) whose footage the package does not carry are checked by camera only: whether each fact lies within
its recording's span needs the recording's header (export --footage)"; "by camera and dock host only" in a package
of the console), and an export of that recording with its
footage (` + "`evidenced export --footage`" + `) checks it against the header{{end}}.
` + "`evidenced verify-export`" + ` parses the stated line of every listed fact again and compares each field, and
re-derives each fact's link the same way (docs/ANPR-FORMAT.md describes the plate-read format).
{{end}}`))
