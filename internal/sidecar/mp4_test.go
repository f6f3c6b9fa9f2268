package sidecar

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

func box(typ string, payload ...[]byte) []byte {
	body := bytes.Join(payload, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func largeBox(typ string, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+len(payload)))
	return append(b, payload...)
}

// mvhd builds a movie header; the fields after duration (rate, volume,
// matrix, next track) are zero-filled to the real length.
func mvhd(version byte, ctime, mtime uint64, timescale uint32, duration uint64) []byte {
	b := []byte{version, 0, 0, 0}
	if version == 1 {
		b = binary.BigEndian.AppendUint64(b, ctime)
		b = binary.BigEndian.AppendUint64(b, mtime)
		b = binary.BigEndian.AppendUint32(b, timescale)
		b = binary.BigEndian.AppendUint64(b, duration)
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(ctime))
		b = binary.BigEndian.AppendUint32(b, uint32(mtime))
		b = binary.BigEndian.AppendUint32(b, timescale)
		b = binary.BigEndian.AppendUint32(b, uint32(duration))
	}
	return box("mvhd", b, make([]byte, 80))
}

func mp4Secs(t time.Time) uint64 { return uint64(t.Unix() - mp4EpochUnix) }

func mediaInfos(t testing.TB, facts []Fact) []*MediaInfo {
	t.Helper()
	return factsAs[*MediaInfo](t, facts)
}

func TestMP4MovieHeader(t *testing.T) {
	created := time.Date(2026, 12, 3, 19, 7, 9, 0, time.UTC)
	late := time.Date(2045, 1, 2, 3, 4, 5, 0, time.UTC) // past 2040: needs 64-bit times
	ftyp := box("ftyp", []byte("isom"), []byte{0, 0, 2, 0}, []byte("isomiso2mp41"))
	cases := []struct {
		name    string
		file    []byte
		want    MediaInfo
		wantOff int64
	}{
		{"v0, moov after mdat", bytes.Join([][]byte{ftyp, box("mdat", make([]byte, 1000)),
			box("moov", mvhd(0, mp4Secs(created), mp4Secs(created)+60, 1000, 2500), box("trak"))}, nil),
			MediaInfo{Brand: "isom", Created: created, Modified: created.Add(time.Minute), Timescale: 1000, DurationTicks: 2500, Duration: 2500 * time.Millisecond},
			int64(len(ftyp) + 1008 + 8)},
		{"v1, 64-bit mdat, moov first", bytes.Join([][]byte{ftyp,
			box("moov", box("udta", []byte("xx")), mvhd(1, mp4Secs(late), 0, 90000, 90000*3600*30)), largeBox("mdat", make([]byte, 100))}, nil),
			MediaInfo{Brand: "isom", Created: late, Timescale: 90000, DurationTicks: 90000 * 3600 * 30, Duration: 30 * time.Hour, MvhdVersion: 1},
			int64(len(ftyp) + 8 + 10)},
		{"unknown duration, no ftyp, size-0 mdat", bytes.Join([][]byte{
			box("moov", mvhd(0, 0, 0, 600, 0xFFFFFFFF)), {0, 0, 0, 0}, []byte("mdat"), make([]byte, 64)}, nil),
			MediaInfo{Timescale: 600},
			8},
		{"duration with a fraction of a tick", box("moov", mvhd(0, 0, 0, 3, 4)),
			MediaInfo{Timescale: 3, DurationTicks: 4, Duration: time.Second + 333333333},
			8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Seekable (the vault file) and read-through (a pipe) give the same answer.
			for _, r := range []io.Reader{bytes.NewReader(tc.file), struct{ io.Reader }{bytes.NewReader(tc.file)}} {
				facts, sum, err := parseReader(&MP4{}, r, digest.Bytes(tc.file))
				if err != nil {
					t.Fatal(err)
				}
				ms := mediaInfos(t, facts)
				if len(ms) != 1 || sum.Rejected() != 0 {
					t.Fatalf("%T: %d facts, %s", r, len(ms), sum)
				}
				got := *ms[0]
				want := tc.want
				want.At = Provenance{Source: digest.Bytes(tc.file), Offset: tc.wantOff}
				if got != want {
					t.Errorf("%T:\ngot  %+v\nwant %+v", r, got, want)
				}
				if sum.Bytes != int64(len(tc.file)) {
					t.Errorf("%T: consumed %d of %d bytes", r, sum.Bytes, len(tc.file))
				}
			}
		})
	}
}

func TestMP4BadFiles(t *testing.T) {
	good := box("moov", mvhd(0, 1, 1, 1000, 1000))
	cases := []struct {
		name      string
		file      []byte
		wantFacts int
		want      map[Reason]int64
	}{
		{"empty", nil, 0, map[Reason]int64{ReasonNoMvhd: 1}},
		{"cut before moov (power loss while recording)", box("mdat", make([]byte, 100))[:50], 0,
			map[Reason]int64{ReasonTruncatedBox: 1, ReasonNoMvhd: 1}},
		{"half a header", []byte{0, 0, 0}, 0, map[Reason]int64{ReasonTruncatedBox: 1, ReasonNoMvhd: 1}},
		{"garbage type", []byte{0, 0, 0, 8, 0xff, 0, 'a', 'b'}, 0, map[Reason]int64{ReasonBadBox: 1, ReasonNoMvhd: 1}},
		{"size below header", []byte{0, 0, 0, 4, 'f', 't', 'y', 'p'}, 0, map[Reason]int64{ReasonBadBox: 1, ReasonNoMvhd: 1}},
		{"largesize cut", largeBox("mdat", nil)[:12], 0, map[Reason]int64{ReasonTruncatedBox: 1, ReasonNoMvhd: 1}},
		{"largesize below header", append([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't'}, 0, 0, 0, 0, 0, 0, 0, 8), 0, map[Reason]int64{ReasonBadBox: 1, ReasonNoMvhd: 1}},
		{"box past the end", box("free", make([]byte, 100))[:60], 0, map[Reason]int64{ReasonTruncatedBox: 1, ReasonNoMvhd: 1}},
		{"zero timescale", box("moov", mvhd(0, 1, 1, 0, 1000)), 0, map[Reason]int64{ReasonBadMvhd: 1}},
		{"mvhd version 2", box("moov", mvhd(2, 1, 1, 1000, 1000)), 0, map[Reason]int64{ReasonBadMvhd: 1}},
		{"short mvhd", box("moov", box("mvhd", []byte{0, 0, 0, 0, 1})), 0, map[Reason]int64{ReasonBadMvhd: 1}},
		{"child overruns moov", box("moov", good[8:], []byte{0, 0, 1, 0, 'f', 'r', 'e', 'e'}), 1, map[Reason]int64{ReasonBadBox: 1}},
		{"second moov", append(append([]byte{}, good...), good...), 1, map[Reason]int64{ReasonExtraMoov: 1}},
		{"time past 9999", box("moov", mvhd(1, 1<<62, 0, 1000, 1000)), 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tc.file), struct{ io.Reader }{bytes.NewReader(tc.file)}} {
				facts, sum, err := parseReader(&MP4{}, r, digest.Sum{})
				if err != nil {
					t.Fatalf("%T: content problem returned as error: %v", r, err)
				}
				if len(facts) != tc.wantFacts {
					t.Errorf("%T: %d facts, want %d", r, len(facts), tc.wantFacts)
				}
				want := tc.want
				if want == nil {
					want = map[Reason]int64{}
				}
				wantRejects(t, sum, want)
			}
		})
	}
	facts, sum := parseAll(t, &MP4{}, box("moov", mvhd(1, 1<<62, 0, 1000, 1000)))
	if m := facts[0].(*MediaInfo); !m.Created.IsZero() || sum.Flags[FlagTimeOutOfRange] != 1 {
		t.Errorf("absurd creation time: %v, %s", m.Created, sum)
	}
}

// countingSeeker is a sparse 4 GiB "file": a header, then zeros nobody should read.
type countingSeeker struct {
	head []byte
	size int64
	pos  int64
	read int64
}

func (c *countingSeeker) Read(p []byte) (int, error) {
	if c.pos >= c.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > c.size-c.pos {
		n = c.size - c.pos
	}
	for i := int64(0); i < n; i++ {
		p[i] = 0
		if c.pos+i < int64(len(c.head)) {
			p[i] = c.head[c.pos+i]
		}
	}
	c.pos += n
	c.read += n
	return int(n), nil
}

func (c *countingSeeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		c.pos = off
	case io.SeekCurrent:
		c.pos += off
	case io.SeekEnd:
		c.pos = c.size + off
	}
	return c.pos, nil
}

// A 4 GiB mdat before moov is seeked over, not read.
func TestMP4SkipsPayloadWithoutReading(t *testing.T) {
	const mdatSize = 4 << 30
	head := binary.BigEndian.AppendUint32(nil, 1)
	head = append(head, "mdat"...)
	head = binary.BigEndian.AppendUint64(head, mdatSize)
	moov := box("moov", mvhd(0, 1, 1, 1000, 1000))
	f := &countingSeeker{head: head, size: mdatSize + int64(len(moov))}
	// The moov sits at the end: serve it from a second region.
	r := io.ReadSeeker(&tailed{countingSeeker: f, tail: moov, at: mdatSize})
	facts, sum, err := parseReader(&MP4{}, r, digest.Sum{})
	if err != nil || len(facts) != 1 {
		t.Fatalf("%v, %d facts, %s", err, len(facts), sum)
	}
	if f.read > 1024 {
		t.Errorf("read %d bytes of a 4 GiB file to find its header", f.read)
	}
	if sum.Bytes != f.size {
		t.Errorf("consumed %d, size %d", sum.Bytes, f.size)
	}
}

// tailed overlays tail at offset at.
type tailed struct {
	*countingSeeker
	tail []byte
	at   int64
}

func (t *tailed) Read(p []byte) (int, error) {
	start := t.pos
	n, err := t.countingSeeker.Read(p)
	for i := 0; i < n; i++ {
		if o := start + int64(i) - t.at; o >= 0 && o < int64(len(t.tail)) {
			p[i] = t.tail[o]
		}
	}
	return n, err
}

// A real encoder's output parses to what ffprobe reads from it.
func TestMP4AgainstFFprobe(t *testing.T) {
	ffmpeg, err1 := exec.LookPath("ffmpeg")
	ffprobe, err2 := exec.LookPath("ffprobe")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs ffmpeg and ffprobe: %v %v", err1, err2)
		}
		t.Skip("ffmpeg/ffprobe not installed")
	}
	for _, tc := range []struct{ name, dur, faststart string }{
		{"moov-last.mp4", "2.5", ""}, {"moov-first.mp4", "1.3", "+faststart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the cost is two processes' start-up, not the work
			mp4AgainstFFprobe(t, ffmpeg, ffprobe, tc.name, tc.dur, tc.faststart)
		})
	}
}

func mp4AgainstFFprobe(t *testing.T, ffmpeg, ffprobe, name, dur, faststart string) {
	path := filepath.Join(t.TempDir(), name)
	args := []string{"-v", "error", "-f", "lavfi", "-i", "color=c=gray:size=32x32:rate=5:duration=" + dur,
		"-c:v", "mpeg4", "-metadata", "creation_time=2026-12-03T19:07:09Z"}
	if faststart != "" {
		args = append(args, "-movflags", faststart)
	}
	if out, err := exec.Command(ffmpeg, append(args, path)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration:format_tags=creation_time", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Format struct {
			Duration string
			Tags     struct {
				CreationTime string `json:"creation_time"`
			}
		}
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	wantCreated, err := time.Parse(time.RFC3339Nano, probe.Format.Tags.CreationTime)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseFloat(probe.Format.Duration, 64)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	facts, sum, err := parseReader(&MP4{}, f, digest.Sum{})
	f.Close()
	if err != nil || len(facts) != 1 {
		t.Fatalf("%s: %v %s", name, err, sum)
	}
	m := facts[0].(*MediaInfo)
	wantDur := time.Duration(secs * float64(time.Second))
	if !m.Created.Equal(wantCreated) || (m.Duration-wantDur).Abs() > time.Millisecond || m.Brand != "isom" {
		t.Errorf("%s: created %v duration %v brand %q; ffprobe says %v and %v", name, m.Created, m.Duration, m.Brand, wantCreated, wantDur)
	}
	if !wantCreated.Equal(time.Date(2026, 12, 3, 19, 7, 9, 0, time.UTC)) {
		t.Errorf("ffprobe read creation time %v", wantCreated)
	}
}
