package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/facts"
	"github.com/evidenced/evidenced/internal/objstore"
)

// openFails is a store whose Open answers err (a unit-test fake: the
// end-to-end path runs on versitygw in TestConsoleSidecarsE2E).
type openFails struct {
	objstore.Store
	err error
}

func (o openFails) Open(context.Context, string, string) (io.ReadCloser, error) { return nil, o.err }

// failsAfter reads its bytes, then fails with err.
type failsAfter struct {
	r   io.Reader
	err error
}

func (f failsAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

func (failsAfter) Close() error { return nil }

// What the console's held copy says when it cannot be read: an item not
// uploaded yet, a store that does not answer and a read cut short are the
// store's state, not the file's (facts.ErrUnavailable: parsed later); a
// recorded version the store does not have is a finding (a failed parse);
// the end of the object is the end, not an error.
func TestStoredCopyUnavailableOrMissing(t *testing.T) {
	ctx := context.Background()
	up := custody.Item{ID: "0123456789abcdef01234567", Host: "dock-01", ObjectKey: "CAR-0001/a.csv", VersionID: "v1"}
	s := &Service{}
	if _, err := s.openStored(ctx, custody.Item{ID: up.ID, Host: "dock-01"}); !errors.Is(err, facts.ErrUnavailable) {
		t.Errorf("an item not uploaded yet: %v", err)
	}
	s.store = openFails{err: fmt.Errorf("GET: %w", objstore.ErrNotFound)}
	if _, err := s.openStored(ctx, up); err == nil || errors.Is(err, facts.ErrUnavailable) {
		t.Errorf("a recorded version the store does not have: %v, want a failure on record", err)
	}
	s.store = openFails{err: errors.New("503 SlowDown")}
	if _, err := s.openStored(ctx, up); !errors.Is(err, facts.ErrUnavailable) {
		t.Errorf("a store that does not answer: %v", err)
	}

	r := storeReader{rc: failsAfter{r: bytes.NewReader([]byte("abc")), err: errors.New("connection reset")}, what: up.ObjectKey}
	if b, err := io.ReadAll(r); string(b) != "abc" || !errors.Is(err, facts.ErrUnavailable) {
		t.Errorf("a read cut short: %q, %v", b, err)
	}
	r = storeReader{rc: failsAfter{r: bytes.NewReader([]byte("abc")), err: io.EOF}, what: up.ObjectKey}
	if n, err := r.Read(make([]byte, 8)); n != 3 || err != nil {
		t.Fatalf("read: %d, %v", n, err)
	}
	if _, err := r.Read(make([]byte, 8)); err != io.EOF {
		t.Errorf("the end of the object: %v, want io.EOF itself", err)
	}
}
