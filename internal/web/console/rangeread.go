package console

import (
	"context"
	"errors"
	"io"
)

// rangeReader is the io.ReadSeeker http.ServeContent needs, over a
// recording read in ranges: a seek only moves the offset, and a read opens
// the rest of the recording from there (ServeContent reads just the
// range's length, then the reader is closed). Nothing is read that the
// player did not ask for.
type rangeReader struct {
	ctx  context.Context
	f    footage
	size int64
	off  int64
	rc   io.ReadCloser
	err  error // the first read failure, for the log
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	var to int64
	switch whence {
	case io.SeekStart:
		to = offset
	case io.SeekCurrent:
		to = r.off + offset
	case io.SeekEnd:
		to = r.size + offset
	default:
		return 0, errors.New("seek: bad whence")
	}
	if to < 0 {
		return 0, errors.New("seek: before the start")
	}
	if to != r.off && r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
	r.off = to
	return to, nil
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.rc == nil {
		rc, err := r.f.OpenRange(r.ctx, r.off, r.size-r.off)
		if err != nil {
			r.err = err
			return 0, err
		}
		r.rc = rc
	}
	n, err := r.rc.Read(p)
	r.off += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *rangeReader) Close() error {
	if r.rc == nil {
		return nil
	}
	err := r.rc.Close()
	r.rc = nil
	return err
}
