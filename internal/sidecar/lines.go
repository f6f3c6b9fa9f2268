package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// lineReader yields the lines of a text sidecar with their offset and number,
// holding at most max bytes of any line: a longer line is skipped to its end
// (read and discarded in buffer-sized pieces) and reported as too long, so a
// 2 GB file with no newline costs one buffer, not 2 GB.
type lineReader struct {
	br   *bufio.Reader
	off  int64 // offset of the next line's first byte
	line int64 // number of the line last returned
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, max)}
}

// textLine is one line without its terminator ("\n" or "\r\n"). Text is only
// valid until the next call.
type textLine struct {
	Text    []byte
	Offset  int64
	Line    int64
	TooLong bool
}

// next returns the next line, or io.EOF after the last one. A final line
// without a newline is still a line (a truncated sentence is the parser's to
// judge, usually by its checksum).
func (lr *lineReader) next() (textLine, error) {
	start := lr.off
	b, err := lr.br.ReadSlice('\n')
	lr.off += int64(len(b))
	tooLong := false
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		b, err = lr.br.ReadSlice('\n')
		lr.off += int64(len(b))
	}
	switch {
	case err == io.EOF && lr.off == start:
		return textLine{}, io.EOF
	case err != nil && err != io.EOF:
		return textLine{}, fmt.Errorf("reading line %d at offset %d: %w", lr.line+1, start, err)
	}
	lr.line++
	if tooLong {
		return textLine{Offset: start, Line: lr.line, TooLong: true}, nil
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	return textLine{Text: b, Offset: start, Line: lr.line}, nil
}

// eachLine hands every line of r to fn, counting each as a record of sum and
// checking ctx now and then; it leaves the bytes consumed in sum.Bytes.
func eachLine(ctx context.Context, r io.Reader, max int, sum *Summary, fn func(textLine) error) error {
	lr := newLineReader(r, max)
	defer func() { sum.Bytes = lr.off }()
	for {
		if sum.Records%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ln, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		sum.Records++
		if err := fn(ln); err != nil {
			return err
		}
	}
}
