package custody

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// TestBitFlips flips one bit at many offsets of a signed ledger file and
// runs what `evidenced verify` runs: open (read-only), bbolt's check, the
// chain/signature/index check, and the check against the checkpoint
// anchored before. Each flip must be caught by one of them, unless it hit
// bytes that carry nothing (free pages, page slack): then the ledger's
// logical content (every bucket, key and value) must be unchanged. Nothing
// may panic.
func TestBitFlips(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	f := newSignedFixture(t, key)
	populate(f)
	cp, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.close()
	orig, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := logicalDump(f.path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip about 400 bits spread over the pages in use (below bbolt's high
	// water mark); an odd stride walks every offset class within a page.
	used := usedBytes(t, f.path)
	flips := 400
	if testing.Short() {
		flips = 60
	}
	if s := os.Getenv("EVIDENCED_BITFLIPS"); s != "" { // deeper local runs
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			flips = n
		}
	}
	stride := used/flips | 1
	dir := t.TempDir()
	var caught, inert int
	by := map[string]int{}
	for off := 0; off < used; off += stride {
		b := bytes.Clone(orig)
		b[off] ^= 1 << (off % 8)
		path := filepath.Join(dir, fmt.Sprintf("flip-%d.db", off))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if os.Getenv("EVIDENCED_BITFLIP_TRACE") != "" {
			fmt.Fprintf(os.Stderr, "flip %d\n", off)
		}
		start := time.Now()
		what := verifyAll(ctx, path, cp, key.NoteVerifier())
		if os.Getenv("EVIDENCED_BITFLIP_TRACE") != "" && time.Since(start) > 200*time.Millisecond {
			fmt.Fprintf(os.Stderr, "slow flip at %d: %v: %.200s\n", off, time.Since(start), what)
		}
		switch {
		case what != "":
			caught++
			by[strings.SplitN(what, ":", 2)[0]]++
		default:
			got, err := logicalDump(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("flip at offset %d (page %d) changed the ledger but every check passed: %s", off, off/4096, firstDiff(want, got, err))
			}
			inert++
		}
		_ = os.Remove(path)
	}
	t.Logf("%d flips over the %d bytes in use: %d caught, %d in bytes that carry nothing", caught+inert, used, caught, inert)
	t.Logf("caught by: %v", by)
	if caught == 0 {
		t.Fatal("no flip was caught")
	}
}

// usedBytes is the size of the pages below bbolt's high water mark.
func usedBytes(t testing.TB, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

// verifyAll returns what failed first ("" when everything passed).
func verifyAll(ctx context.Context, path string, cp []byte, v note.Verifier) string {
	l, err := Open(path, Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return "open: " + err.Error()
	}
	defer func() { _ = l.Close() }()
	if err := l.Check(); err != nil {
		return "check: " + err.Error()
	}
	var first string
	if _, err := l.Verify(ctx, func(p Problem) {
		if first == "" {
			first = p.What
		}
	}); err != nil {
		return "verify: " + err.Error()
	}
	if first != "" {
		return first
	}
	if _, err := l.VerifyAgainst(ctx, cp, v); err != nil {
		return "checkpoint: " + err.Error()
	}
	return ""
}

// logicalDump lists every bucket, key and value of a bbolt file.
func logicalDump(path string) ([]byte, error) {
	var out bytes.Buffer
	err := safely(func() error {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return err
		}
		defer func() { _ = db.Close() }()
		return db.View(func(tx *bolt.Tx) error {
			var walk func(prefix string, b *bolt.Bucket) error
			walk = func(prefix string, b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					if v == nil {
						fmt.Fprintf(&out, "%s/%x/\n", prefix, k)
						return walk(fmt.Sprintf("%s/%x", prefix, k), b.Bucket(k))
					}
					fmt.Fprintf(&out, "%s/%x=%x\n", prefix, k, v)
					return nil
				})
			}
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return walk(fmt.Sprintf("%x", name), b)
			})
		})
	})
	return out.Bytes(), err
}

// firstDiff shows the first line of two dumps that differs.
func firstDiff(want, got []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d: was %.300s, now %.300s", i, w[i], g[i])
		}
	}
	return fmt.Sprintf("%d lines, now %d", len(w), len(g))
}
