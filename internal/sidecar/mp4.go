package sidecar

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// MP4 reasons.
const (
	ReasonBadBox       Reason = "bad_box"       // size smaller than its header, a type that is not a four-character code, a child overrunning its parent
	ReasonTruncatedBox Reason = "truncated_box" // a box claims more bytes than the file has
	ReasonBadMvhd      Reason = "bad_mvhd"      // unknown version, zero timescale, too short
	ReasonNoMvhd       Reason = "no_mvhd"       // the walk ended without a movie header (e.g. recording cut before moov was written)
	ReasonExtraMoov    Reason = "extra_moov"    // a second moov; only the first is read
	FlagTimeOutOfRange Reason = "time_out_of_range"
	FlagDurationRange  Reason = "duration_out_of_range"
)

// mp4EpochUnix is the ISO base media file format's time origin,
// 1904-01-01T00:00:00Z, in Unix seconds.
const mp4EpochUnix = -2082844800

// MP4 reads an MP4/MOV recording's own header: the top-level boxes, the
// ftyp brand, and moov/mvhd (creation and modification time, timescale and
// duration; version 0 with 32-bit and version 1 with 64-bit fields). Box sizes
// may be 32-bit, 64-bit (size 1 + largesize) or "to the end of the file"
// (size 0). Payloads (mdat) are never read: with an io.Seeker they are seeked
// over, without one they are discarded through a small buffer.
//
// Times are what the camera wrote, in UTC by the format's definition; a
// camera whose clock is wrong writes a wrong time, which this parser reports
// as read (camera clock offsets are a later concern). A creation time of 0
// means "not set" and is left zero.
type MP4 struct{}

// Name implements Parser.
func (*MP4) Name() string { return "mp4" }

// Version implements Parser.
func (*MP4) Version() string { return "1" }

// errStop ends the walk after a content problem has been counted.
var errStop = errors.New("stop")

type mp4Walk struct {
	r      io.Reader
	seeker io.Seeker // nil if r cannot seek
	pos    int64     // bytes consumed from where r stood at the start
	size   int64     // total size from the start position; -1 if unknown
	sum    *Summary
	in     Input
	emit   Emit
	ctx    context.Context
	brand  string
	moov   bool
	mvhd   bool
	boxes  int64
}

// Parse implements Parser.
func (p *MP4) Parse(ctx context.Context, in Input, emit Emit) (sum Summary, err error) {
	sum = newSummary(p, in)
	w := &mp4Walk{r: in.R, size: -1, sum: &sum, in: in, emit: emit, ctx: ctx}
	if s, ok := in.R.(io.Seeker); ok {
		if err := w.measure(s); err != nil {
			return sum, err
		}
	}
	err = w.children(w.size, true)
	sum.Bytes = w.pos
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil && !w.mvhd {
		sum.reject(ReasonNoMvhd)
	}
	return sum, err
}

// measure learns the size left from the current position, for seeking over payloads.
func (w *mp4Walk) measure(s io.Seeker) error {
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil // not really seekable (a pipe behind an *os.File): read through
	}
	end, err := s.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("mp4: finding the file size: %w", err)
	}
	if _, err := s.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("mp4: seeking back to the start: %w", err)
	}
	w.seeker, w.size = s, end-start
	return nil
}

// stop counts a content problem and ends the walk: after a bad box header
// nothing that follows can be located.
func (w *mp4Walk) stop(r Reason) error {
	w.sum.reject(r)
	return errStop
}

// readFull reads len(p) bytes; a short read is a truncated box.
func (w *mp4Walk) readFull(p []byte) error {
	n, err := io.ReadFull(w.r, p)
	w.pos += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return w.stop(ReasonTruncatedBox)
	}
	if err != nil {
		return fmt.Errorf("mp4: reading at offset %d: %w", w.pos, err)
	}
	return nil
}

// skip passes over n payload bytes without keeping them.
func (w *mp4Walk) skip(n int64) error {
	if n == 0 {
		return nil
	}
	if w.seeker != nil {
		if w.pos+n > w.size {
			w.pos = w.size
			return w.stop(ReasonTruncatedBox)
		}
		if _, err := w.seeker.Seek(n, io.SeekCurrent); err != nil {
			return fmt.Errorf("mp4: seeking over %d bytes at offset %d: %w", n, w.pos, err)
		}
		w.pos += n
		return nil
	}
	m, err := io.CopyN(io.Discard, w.r, n)
	w.pos += m
	if errors.Is(err, io.EOF) {
		return w.stop(ReasonTruncatedBox)
	}
	if err != nil {
		return fmt.Errorf("mp4: skipping %d bytes at offset %d: %w", n, w.pos, err)
	}
	return nil
}

// children walks the boxes from the current position up to end (-1: to EOF).
// top says whether these are top-level boxes (where moov is looked for) or
// the children of moov (where mvhd is).
func (w *mp4Walk) children(end int64, top bool) error {
	var hdr [16]byte
	for end < 0 || w.pos < end {
		if w.boxes%checkEvery == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		w.boxes++
		at := w.pos
		n, err := io.ReadFull(w.r, hdr[:8])
		w.pos += int64(n)
		if n == 0 && errors.Is(err, io.EOF) && end < 0 {
			return nil // clean end of an unsized file
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return w.stop(ReasonTruncatedBox)
		}
		if err != nil {
			return fmt.Errorf("mp4: reading a box header at offset %d: %w", at, err)
		}
		w.sum.Records++
		size := int64(binary.BigEndian.Uint32(hdr[0:4]))
		typ := string(hdr[4:8])
		for i := 4; i < 8; i++ {
			if hdr[i] < 0x20 || hdr[i] > 0x7e {
				return w.stop(ReasonBadBox)
			}
		}
		switch size {
		case 1: // 64-bit largesize follows the type
			if err := w.readFull(hdr[8:16]); err != nil {
				return err
			}
			ls := binary.BigEndian.Uint64(hdr[8:16])
			if ls < 16 || ls > math.MaxInt64 {
				return w.stop(ReasonBadBox)
			}
			size = int64(ls)
		case 0: // to the end of the enclosing space
			if end < 0 {
				size = -1
			} else {
				size = end - at
			}
		default:
			if size < 8 {
				return w.stop(ReasonBadBox)
			}
		}
		boxEnd := int64(-1)
		if size >= 0 {
			if at > math.MaxInt64-size {
				return w.stop(ReasonBadBox)
			}
			boxEnd = at + size
			if end >= 0 && boxEnd > end {
				if top {
					return w.stop(ReasonTruncatedBox)
				}
				return w.stop(ReasonBadBox) // a child overrunning moov
			}
		}
		if err := w.box(typ, at, boxEnd, top); err != nil {
			return err
		}
		if boxEnd < 0 {
			return nil // a size-0 box of unknown length ran to EOF
		}
	}
	return nil
}

// box handles one box whose header has been read; it must leave the position
// at boxEnd (or EOF when boxEnd is -1).
func (w *mp4Walk) box(typ string, at, boxEnd int64, top bool) error {
	switch {
	case top && typ == "ftyp" && w.boxes == 1:
		var b [4]byte
		if boxEnd < 0 || boxEnd-w.pos >= 4 {
			if err := w.readFull(b[:]); err != nil {
				return err
			}
			w.brand = string(b[:])
		}
	case top && typ == "moov":
		if w.moov {
			w.sum.reject(ReasonExtraMoov)
			return w.skipRest(boxEnd)
		}
		w.moov = true
		return w.children(boxEnd, false)
	case !top && typ == "mvhd" && !w.mvhd:
		return w.parseMvhd(at, boxEnd)
	}
	return w.skipRest(boxEnd)
}

// parseMvhd reads the movie header: version/flags, then creation time,
// modification time, timescale and duration (32- or 64-bit by version).
func (w *mp4Walk) parseMvhd(at, boxEnd int64) error {
	w.mvhd = true
	var b [32]byte
	avail := int64(len(b))
	if boxEnd >= 0 && boxEnd-w.pos < avail {
		avail = boxEnd - w.pos
	}
	if avail < 20 {
		w.sum.reject(ReasonBadMvhd)
		return w.skipRest(boxEnd)
	}
	if err := w.readFull(b[:20]); err != nil {
		return err
	}
	m := &MediaInfo{At: Provenance{Source: w.in.SHA256, Offset: at}, Brand: w.brand, MvhdVersion: b[0]}
	var ctime, mtime, dur uint64
	var unknownDur uint64
	switch b[0] {
	case 0:
		ctime = uint64(binary.BigEndian.Uint32(b[4:8]))
		mtime = uint64(binary.BigEndian.Uint32(b[8:12]))
		m.Timescale = binary.BigEndian.Uint32(b[12:16])
		dur, unknownDur = uint64(binary.BigEndian.Uint32(b[16:20])), math.MaxUint32
	case 1:
		if avail < 32 {
			w.sum.reject(ReasonBadMvhd)
			return w.skipRest(boxEnd)
		}
		if err := w.readFull(b[20:32]); err != nil {
			return err
		}
		ctime = binary.BigEndian.Uint64(b[4:12])
		mtime = binary.BigEndian.Uint64(b[12:20])
		m.Timescale = binary.BigEndian.Uint32(b[20:24])
		dur, unknownDur = binary.BigEndian.Uint64(b[24:32]), math.MaxUint64
	default:
		w.sum.reject(ReasonBadMvhd)
		return w.skipRest(boxEnd)
	}
	if m.Timescale == 0 {
		w.sum.reject(ReasonBadMvhd)
		return w.skipRest(boxEnd)
	}
	var bad bool
	if m.Created, bad = mp4Time(ctime); bad {
		w.sum.flag(FlagTimeOutOfRange)
	}
	if m.Modified, bad = mp4Time(mtime); bad {
		w.sum.flag(FlagTimeOutOfRange)
	}
	if dur != unknownDur { // all ones: "duration cannot be determined"
		m.DurationTicks = dur
		q, r := dur/uint64(m.Timescale), dur%uint64(m.Timescale)
		if q > uint64(math.MaxInt64/int64(time.Second))-1 {
			w.sum.flag(FlagDurationRange)
		} else {
			m.Duration = time.Duration(q)*time.Second + time.Duration(r*uint64(time.Second)/uint64(m.Timescale))
		}
	}
	if err := emitFact(w.sum, w.emit, m); err != nil {
		return err
	}
	return w.skipRest(boxEnd)
}

// skipRest moves to boxEnd; -1 (a size-0 box in a file of unknown size)
// means reading through to EOF.
func (w *mp4Walk) skipRest(boxEnd int64) error {
	if boxEnd < 0 {
		n, err := io.Copy(io.Discard, w.r)
		w.pos += n
		if err != nil {
			return fmt.Errorf("mp4: reading to the end at offset %d: %w", w.pos, err)
		}
		return nil
	}
	return w.skip(boxEnd - w.pos)
}

// mp4Time converts seconds since 1904; 0 is "not set". Beyond the year 9999
// the value is not a time anyone wrote on purpose: zero, flagged.
func mp4Time(secs uint64) (time.Time, bool) {
	const max = 253402300799 - mp4EpochUnix // 9999-12-31T23:59:59Z in seconds since 1904
	switch {
	case secs == 0:
		return time.Time{}, false
	case secs > max:
		return time.Time{}, true
	}
	return time.Unix(int64(secs)+mp4EpochUnix, 0).UTC(), false
}
