package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// partsOf is the SHA-256 of each ps-byte part of b (one empty part for an
// empty b), computed independently of the read-back.
func partsOf(b []byte, ps int) []digest.Sum {
	var out []digest.Sum
	for off := 0; off < len(b) || off == 0; off += ps {
		out = append(out, digest.Bytes(b[off:min(off+ps, len(b))]))
		if len(b) == 0 {
			break
		}
	}
	return out
}

// TestReadBackPartsCutsAtPartSize: the part sums of the cold read-back are
// the SHA-256s of each part of the copy, whatever the part size against the
// read buffer (smaller, not a multiple, larger), a short last part, an
// exact multiple, an empty copy; the whole is the copy's.
func TestReadBackPartsCutsAtPartSize(t *testing.T) {
	v := openVault(t)
	ctx := context.Background()
	for i, tc := range []struct{ size, ps int }{
		{3*bufSize + 17, bufSize / 3},
		{3*bufSize + 17, bufSize + 5},
		{4 * bufSize, 2 * bufSize},
		{bufSize - 1, 8 * bufSize},
		{0, bufSize},
	} {
		data := randomBytes(tc.size, uint64(i+1))
		id := "pp000" + string(rune('a'+i))
		if _, err := v.Store(ctx, id, bytes.NewReader(data), int64(len(data)), nil); err != nil {
			t.Fatal(err)
		}
		whole, n, sums, err := v.ReadBackParts(ctx, id, int64(tc.ps))
		if err != nil || whole != digest.Bytes(data) || n != int64(len(data)) {
			t.Fatalf("size %d: read back %s %d %v", tc.size, whole.Hex(), n, err)
		}
		if want := partsOf(data, tc.ps); !slices.Equal(sums, want) {
			t.Errorf("size %d, parts of %d: %d sums, want %d (the sums differ from the parts' SHA-256)", tc.size, tc.ps, len(sums), len(want))
		}
	}
}

// TestReadBackPartsEndsItsWorker: the goroutine a read-back hashes its
// parts on ends with the read-back, whether it read the copy through or
// stopped early (a cancelled context): a vault that reads back every
// recording it takes must not keep one goroutine per read-back.
func TestReadBackPartsEndsItsWorker(t *testing.T) {
	v := openVault(t)
	data := randomBytes(3*bufSize+17, 7)
	if _, err := v.Store(context.Background(), "pw0001", bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	before := runtime.NumGoroutine()
	const rounds = 10
	for range rounds {
		if whole, _, sums, err := v.ReadBackParts(context.Background(), "pw0001", bufSize/2); err != nil || whole != digest.Bytes(data) || len(sums) != 7 {
			t.Fatalf("read back: %s, %d sums, %v", whole.Hex(), len(sums), err)
		}
		if _, _, _, err := v.ReadBackParts(cancelled, "pw0001", bufSize/2); !errors.Is(err, context.Canceled) {
			t.Fatalf("read back under a cancelled context: %v", err)
		}
	}
	// A stopped worker's goroutine ends shortly after; a leaked one never.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after %d read-backs, %d before: the part hashing workers were left running", n, 2*rounds, before)
	}
}

// TestPartSumsKeptDurablyAndOnlyAsRecorded: the sums file is fsynced while
// it is still a partial, renamed into parts/<shard>/ and that directory
// fsynced, before WritePartSums returns. A sums file left by an earlier
// attempt whose record was never written (a crash between the two) is
// replaced by the next one, and RecordedPartSums gives sums only for the
// composite, part count and part size a record names.
func TestPartSumsKeptDurablyAndOnlyAsRecorded(t *testing.T) {
	v := openVault(t)
	id := "ps0001"
	stale := partsOf(randomBytes(5*bufSize, 9), 2*bufSize)
	if err := v.WritePartSums(id, 2*bufSize, stale); err != nil {
		t.Fatal(err)
	}
	l := watchSyncs(v, id)
	sums := partsOf(randomBytes(5*bufSize, 10), 2*bufSize)
	if err := v.WritePartSums(id, 2*bufSize, sums); err != nil {
		t.Fatal(err)
	}
	if len(l.steps) != 3 || !strings.HasPrefix(l.steps[1], "file tmp/") || !strings.HasSuffix(l.steps[1], partialSuffix+" +partial") ||
		l.steps[2] != "dir parts/ps" {
		t.Fatalf("fsyncs %q\nwant    [dir parts, file tmp/<id>.<random>%s +partial, dir parts/ps]", l.steps, partialSuffix)
	}
	if p, _ := os.ReadDir(v.tmp); len(p) != 0 {
		t.Errorf("tmp/ holds %d entries after the sums were kept", len(p))
	}
	details := PartSumsDetails(2*bufSize, sums)
	got, err := v.RecordedPartSums(id, details, 2*bufSize)
	if err != nil || !slices.Equal(got, sums) {
		t.Fatalf("sums as recorded: %v, %v", len(got), err)
	}
	for name, tc := range map[string]struct {
		details map[string]string
		ps      int64
	}{
		"stale composite": {PartSumsDetails(2*bufSize, stale), 2 * bufSize},
		"other part size": {details, bufSize},
		"no record":       {map[string]string{"read_back": "cold"}, 2 * bufSize},
		"count":           {map[string]string{DetailPartSize: details[DetailPartSize], DetailPartCount: "2", DetailPartSums: details[DetailPartSums]}, 2 * bufSize},
	} {
		if got, err := v.RecordedPartSums(id, tc.details, tc.ps); !errors.Is(err, ErrNoPartSums) || got != nil {
			t.Errorf("%s: %d sums, %v; want ErrNoPartSums", name, len(got), err)
		}
	}
	// A sums file altered in place no longer reproduces the composite.
	p := v.partSumsPath(id)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o440); err != nil {
		t.Fatal(err)
	}
	if got, err := v.RecordedPartSums(id, details, 2*bufSize); !errors.Is(err, ErrNoPartSums) || got != nil {
		t.Errorf("altered sums file: %d sums, %v; want ErrNoPartSums", len(got), err)
	}
}
