package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"

	"github.com/evidenced/evidenced/internal/digest"
)

func openVault(t testing.TB) *Vault {
	t.Helper()
	v, err := Open(filepath.Join(t.TempDir(), "vault"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// files lists every non-directory under dir (relative paths), so a test can
// say "nothing appeared" or "no partial left".
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertNothingLeft(t *testing.T, v *Vault, wantItems ...string) {
	t.Helper()
	if got := files(t, v.tmp); len(got) != 0 {
		t.Errorf("tmp/ holds %q after the store, want nothing", got)
	}
	got := files(t, v.items)
	if strings.Join(got, ",") != strings.Join(wantItems, ",") {
		t.Errorf("items/ holds %q, want %q", got, wantItems)
	}
}

func TestStoreAndReadBack(t *testing.T) {
	v := openVault(t)
	tests := []struct {
		name string
		size int
		wrap func(io.Reader) io.Reader
	}{
		{"empty", 0, nil},
		{"one byte", 1, nil},
		{"just under a buffer", bufSize - 1, nil},
		{"one buffer", bufSize, nil},
		{"one buffer and a byte", bufSize + 1, nil},
		{"odd reads", 3*bufSize + 17, iotest.HalfReader},
		{"data with EOF", 2*bufSize + 5, iotest.DataErrReader},
		{"several writeback windows", 2*writeback + 3*bufSize + 1, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size, uint64(i))
			var src io.Reader = bytes.NewReader(data)
			if tt.wrap != nil {
				src = tt.wrap(src)
			}
			id := fmt.Sprintf("item-%02d", i)
			var reports []int64
			st, err := v.Store(context.Background(), id, src, int64(tt.size), func(n int64) { reports = append(reports, n) })
			if err != nil {
				t.Fatalf("Store: %v", err)
			}
			want := digest.Bytes(data)
			if st.SHA256 != want || st.Size != int64(tt.size) || st.Path != v.Path(id) {
				t.Errorf("Stored = %+v, want sha %s size %d path %s", st, want.Hex(), tt.size, v.Path(id))
			}
			fi, err := os.Lstat(st.Path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o440 {
				t.Errorf("final mode %v, want -r--r-----", fi.Mode())
			}
			if len(reports) == 0 || reports[len(reports)-1] != int64(tt.size) {
				t.Errorf("progress %v, want it to end at %d", reports, tt.size)
			}
			for j := 1; j < len(reports); j++ {
				if reports[j] < reports[j-1] {
					t.Errorf("progress went backwards: %v", reports)
				}
			}
			sum, n, err := v.ReadBack(context.Background(), id)
			if err != nil || sum != want || n != int64(tt.size) {
				t.Errorf("ReadBack = %s, %d, %v; want %s, %d", sum.Hex(), n, err, want.Hex(), tt.size)
			}
			f, err := v.Open(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			f.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("Open+ReadAll gave %d bytes (%v), want the %d stored", len(got), err, len(data))
			}
			if ok, err := v.Exists(id); !ok || err != nil {
				t.Errorf("Exists = %v, %v", ok, err)
			}
		})
	}
	if got := files(t, v.tmp); len(got) != 0 {
		t.Errorf("tmp/ holds %q, want nothing", got)
	}
}

// infinite never ends: a device that keeps giving.
type infinite struct{}

func (infinite) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestStoreRefusesWrongLength(t *testing.T) {
	boom := errors.New("USB disconnect")
	tests := []struct {
		name string
		size int64
		src  func() io.Reader
		want error
	}{
		{"short", 100, func() io.Reader { return bytes.NewReader(make([]byte, 99)) }, ErrShortCopy},
		{"short by a buffer", 3 * bufSize, func() io.Reader { return bytes.NewReader(make([]byte, 2*bufSize)) }, ErrShortCopy},
		{"empty source", 1, func() io.Reader { return strings.NewReader("") }, ErrShortCopy},
		{"long", 99, func() io.Reader { return bytes.NewReader(make([]byte, 100)) }, ErrLongCopy},
		{"long, expected empty", 0, func() io.Reader { return strings.NewReader("x") }, ErrLongCopy},
		{"never ends", 5 * bufSize, func() io.Reader { return infinite{} }, ErrLongCopy},
		{"fails mid-way", 4 * bufSize, func() io.Reader {
			return io.MultiReader(bytes.NewReader(make([]byte, 2*bufSize+3)), iotest.ErrReader(boom))
		}, boom},
		{"fails at once", 10, func() io.Reader { return iotest.ErrReader(boom) }, boom},
		{"no progress", 10, func() io.Reader { return iotest.ErrReader(nil) }, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := openVault(t)
			// An earlier copy of the same id (a crash before the ledger
			// recorded it) must survive a failed store untouched.
			old := []byte("earlier complete copy")
			if _, err := v.Store(context.Background(), "ab-item", bytes.NewReader(old), int64(len(old)), nil); err != nil {
				t.Fatal(err)
			}
			_, err := v.Store(context.Background(), "ab-item", tt.src(), tt.size, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Store = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "ab-item") {
				t.Errorf("error %q does not name the item", err)
			}
			assertNothingLeft(t, v, filepath.Join("ab", "ab-item"))
			if got, _ := os.ReadFile(v.Path("ab-item")); !bytes.Equal(got, old) {
				t.Errorf("earlier copy now reads %q", got)
			}
		})
	}
}

// cancelling reads a little, then cancels, then keeps giving data.
type cancelling struct {
	cancel func()
	reads  int
}

func (c *cancelling) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	clear(p)
	return len(p), nil
}

func TestStoreCancel(t *testing.T) {
	v := openVault(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &cancelling{cancel: cancel}
	_, err := v.Store(ctx, "cancelled", src, 64*bufSize, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Store = %v, want context.Canceled", err)
	}
	// Store returned, so the reader goroutine is done with src: reading
	// reads here would race (go test -race) if it were not.
	if src.reads >= 64 {
		t.Errorf("source read %d times after cancel, want the copy stopped early", src.reads)
	}
	assertNothingLeft(t, v)

	// Already cancelled: nothing is read at all.
	_, err = v.Store(ctx, "cancelled", iotest.ErrReader(errors.New("read after cancel")), 1, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Store with a cancelled ctx = %v", err)
	}
	assertNothingLeft(t, v)
}

func TestStoreNoSpaceByReserve(t *testing.T) {
	v, err := Open(t.TempDir(), nil, Options{Reserve: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Store(context.Background(), "big", iotest.ErrReader(errors.New("must not be read")), 10, nil)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Store = %v, want ErrNoSpace", err)
	}
	if want := fmt.Sprintf("(10 to copy + %d reserve)", int64(1)<<62); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the numbers (%s)", err, want)
	}
	assertNothingLeft(t, v)
}

func TestStoreReplacesExisting(t *testing.T) {
	v := openVault(t)
	for _, content := range []string{"first copy", "second, complete copy"} {
		st, err := v.Store(context.Background(), "same-id", strings.NewReader(content), int64(len(content)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sum, _, err := v.ReadBack(context.Background(), "same-id")
		if err != nil || sum != digest.Bytes([]byte(content)) || st.SHA256 != sum {
			t.Errorf("after storing %q: ReadBack %s, %v", content, sum.Hex(), err)
		}
	}
	assertNothingLeft(t, v, filepath.Join("sa", "same-id"))
}

// Stores of the same and of different ids at once (run with -race).
func TestStoreConcurrent(t *testing.T) {
	v := openVault(t)
	data := randomBytes(3*bufSize+11, 42)
	want := digest.Bytes(data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		id := "shared"
		if i%2 == 1 {
			id = fmt.Sprintf("own-%d", i)
		}
		wg.Go(func() {
			st, err := v.Store(context.Background(), id, bytes.NewReader(data), int64(len(data)), nil)
			if err == nil && st.SHA256 != want {
				err = fmt.Errorf("%s: hash %s", id, st.SHA256.Hex())
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, id := range []string{"shared", "own-1", "own-7"} {
		if sum, _, err := v.ReadBack(context.Background(), id); err != nil || sum != want {
			t.Errorf("ReadBack %s = %s, %v", id, sum.Hex(), err)
		}
	}
	if got := files(t, v.tmp); len(got) != 0 {
		t.Errorf("tmp/ holds %q", got)
	}
}

func TestBadID(t *testing.T) {
	v := openVault(t)
	for _, id := range []string{"", "a", "AB12", "ab/cd", "../etc", "ab cd", "ab.cd", "ab\x00", "é1", strings.Repeat("a", 129)} {
		if _, err := v.Store(context.Background(), id, strings.NewReader("x"), 1, nil); !errors.Is(err, ErrBadID) {
			t.Errorf("Store(%q) = %v, want ErrBadID", id, err)
		}
		if _, _, err := v.ReadBack(context.Background(), id); !errors.Is(err, ErrBadID) {
			t.Errorf("ReadBack(%q) = %v, want ErrBadID", id, err)
		}
		if _, err := v.Open(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Open(%q) = %v, want ErrBadID", id, err)
		}
		if _, err := v.Exists(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Exists(%q) = %v, want ErrBadID", id, err)
		}
		if p := v.Path(id); p != "" {
			t.Errorf("Path(%q) = %q, want \"\"", id, p)
		}
	}
	for _, id := range []string{"ab", "0123456789abcdef01234567", "a_b-c", strings.Repeat("z", 128)} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	assertNothingLeft(t, v)
}

func TestOpenRemovesPartials(t *testing.T) {
	dir := t.TempDir()
	plant := func() {
		for _, name := range []string{"abc.partial", "abc.1x2y.partial"} {
			if err := os.WriteFile(filepath.Join(dir, "tmp", name), []byte("half a copy"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		t.Fatal(err)
	}
	plant()
	if err := os.WriteFile(filepath.Join(dir, "tmp", "notes.txt"), []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	v1, err := Open(dir, slog.New(slog.NewTextHandler(&logs, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := files(t, filepath.Join(dir, "tmp")); strings.Join(got, ",") != "notes.txt" {
		t.Errorf("tmp/ after Open holds %q, want only notes.txt", got)
	}
	if !strings.Contains(logs.String(), "count=2") {
		t.Errorf("log %q does not say 2 partial copies were removed", logs.String())
	}
	for _, d := range []string{"items", "tmp"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v, %v; want a 0750 directory", d, fi.Mode(), err)
		}
	}

	// While v1 is open (another process, say the daemon), a second Open must
	// not delete what could be v1's copies in progress.
	plant()
	v2, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := files(t, filepath.Join(dir, "tmp")); len(got) != 3 {
		t.Errorf("tmp/ holds %q: a second Open removed partial copies while the vault was in use", got)
	}
	v1.Close()
	v2.Close()
	v3, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v3.Close()
	if got := files(t, filepath.Join(dir, "tmp")); strings.Join(got, ",") != "notes.txt" {
		t.Errorf("tmp/ holds %q once the vault was free again", got)
	}

	if _, err := Open(dir, nil, Options{Reserve: -1}); err == nil {
		t.Error("Open accepted a negative reserve")
	}
}

func TestReadBackDetectsChanges(t *testing.T) {
	data := randomBytes(2*bufSize+100, 7)
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
		want   func(sum digest.Sum, n int64, err error) bool
	}{
		{"byte flipped", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := []byte{data[bufSize+3] ^ 0x01}
			if _, err := f.WriteAt(b, bufSize+3); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, func(sum digest.Sum, n int64, err error) bool {
			return err == nil && n == int64(len(data)) && sum != digest.Bytes(data)
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 10); err != nil {
				t.Fatal(err)
			}
		}, func(sum digest.Sum, n int64, err error) bool {
			return err == nil && n == 10 && sum == digest.Bytes(data[:10])
		}},
		{"removed", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, func(_ digest.Sum, _ int64, err error) bool { return errors.Is(err, fs.ErrNotExist) }},
		{"replaced by a symlink", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "other")
			if err := os.WriteFile(other, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, func(_ digest.Sum, _ int64, err error) bool { return errors.Is(err, unix.ELOOP) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := openVault(t)
			st, err := v.Store(context.Background(), "evidence", bytes.NewReader(data), int64(len(data)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(st.Path, 0o640); err != nil {
				t.Fatal(err)
			}
			tt.change(t, st.Path)
			sum, n, err := v.ReadBack(context.Background(), "evidence")
			if !tt.want(sum, n, err) {
				t.Errorf("ReadBack = %s, %d, %v: change not detected", sum.Hex(), n, err)
			}
		})
	}
}

// The read-back is only worth something if it is cold: after dropCache no
// page of the file may still be in the page cache. tmpfs keeps its files in
// the page cache by nature, so there is nothing to test there.
func TestDropCacheMakesReadCold(t *testing.T) {
	v := openVault(t)
	var sfs unix.Statfs_t
	if err := unix.Statfs(v.dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type == unix.TMPFS_MAGIC || sfs.Type == unix.RAMFS_MAGIC {
		t.Skip("vault test dir is on tmpfs/ramfs, whose pages cannot be dropped; set TMPDIR to a disk")
	}
	data := randomBytes(8*bufSize, 3)
	st, err := v.Store(context.Background(), "warm", bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(st.Path); err != nil { // pull it all into the cache
		t.Fatal(err)
	}
	f, err := os.Open(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := residentPages(int(f.Fd()), st.Size)
	if before <= 0 {
		t.Skipf("mincore reports %d resident pages right after a full read: cannot observe the page cache here", before)
	}
	after, err := dropCache(int(f.Fd()), st.Size)
	if err != nil || after != 0 {
		t.Errorf("dropCache left %d of %d pages resident (%v)", after, before, err)
	}
}

func TestExists(t *testing.T) {
	v := openVault(t)
	if ok, err := v.Exists("nothere"); ok || err != nil {
		t.Errorf("Exists(missing) = %v, %v", ok, err)
	}
	if err := os.MkdirAll(filepath.Dir(v.Path("linked")), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", v.Path("linked")); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Exists("linked"); ok || err == nil {
		t.Errorf("Exists(symlink) = %v, %v; want an error", ok, err)
	}
	if _, err := v.Open("linked"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("Open(symlink) = %v, want ELOOP", err)
	}
	free, err := v.Free()
	if err != nil || free == 0 {
		t.Errorf("Free = %d, %v", free, err)
	}
}
