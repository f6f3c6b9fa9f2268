package upload

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// swapVault gives the true vault copy to the first open of an item (the
// upload) and a damaged copy to every later one: a verification that hashed
// the vault copy again would see the damage and fall to a read-back.
type swapVault struct {
	dir string

	mu    sync.Mutex
	opens map[string]int
}

func (v *swapVault) Open(id string) (*os.File, error) {
	v.mu.Lock()
	v.opens[id]++
	n := v.opens[id]
	v.mu.Unlock()
	if n > 1 {
		return os.Open(filepath.Join(v.dir, id+".damaged"))
	}
	return os.Open(filepath.Join(v.dir, id))
}

// flakyStat fails the first Stat with a transient error, as a dropped
// connection would, so the verification is retried.
type flakyStat struct {
	*s3store.Store
	once sync.Once
}

func (f *flakyStat) Stat(ctx context.Context, key, versionID string) (objstore.ObjectInfo, error) {
	var err error
	f.once.Do(func() { err = errors.New("connection reset by peer") })
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	return f.Store.Stat(ctx, key, versionID)
}

// readBytes is the bytes this process has read through read(2)-family
// calls (rchar in /proc/self/io), or -1 where that is not available.
func readBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// TestVerifyUsesUploadPartSums: a multipart upload is verified from the
// part sums of the pass that checked the vault copy against the recorded
// SHA-256 (store-composite-checksum although the vault copy is damaged by
// then), also when the first verification fails transiently, and the sums
// are forgotten once the item is verified. The vault copy is read twice in
// all: once to hash it, once to send it.
func TestVerifyUsesUploadPartSums(t *testing.T) {
	r := newStreamRig(t)
	ctx, st, l, cfg, dir := r.ctx, r.st, r.l, r.cfg, r.dir

	for i, flaky := range []bool{false, true} {
		t.Run("flaky="+strconv.FormatBool(flaky), func(t *testing.T) {
			vault := &swapVault{dir: dir, opens: map[string]int{}}
			var store objstore.Store = st
			if flaky {
				store = &flakyStat{Store: st}
			}
			u := New(cfg, l, vault, store, "unit", nil)

			size := 2*objstore.MinPartSize + 4321
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(j*7 + i)
			}
			id := strings.Repeat("0", 23) + strconv.Itoa(i+1)
			if err := os.WriteFile(filepath.Join(dir, id), data, 0o600); err != nil {
				t.Fatal(err)
			}
			damaged := append([]byte(nil), data...)
			damaged[size/2] ^= 0xff
			if err := os.WriteFile(filepath.Join(dir, id+".damaged"), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			it := custody.Item{ID: id, Camera: "CAM", Kind: "body", AssignedTo: "x", SourcePath: "V.MP4",
				Size: int64(size), SHA256: digest.Bytes(data).Hex(), RecordedAt: now, IngestedAt: now,
				State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: r.dock}
			if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "t", Camera: "CAM", Item: id, SHA256: it.SHA256}, &it); err != nil {
				t.Fatal(err)
			}

			before := readBytes()
			err := u.Process(ctx, id)
			if flaky {
				if err == nil || errors.Is(err, ErrPermanent) {
					t.Fatalf("first attempt with a failing stat: %v, want a transient error", err)
				}
				if u.knownParts(it) == nil {
					t.Fatal("part sums forgotten after a transient verification failure")
				}
				err = u.Process(ctx, id)
			}
			if err != nil {
				t.Fatal(err)
			}
			read := readBytes() - before

			got, err := l.Item(ctx, id)
			if err != nil || got.State != custody.StateVerified {
				t.Fatalf("item after Process: %s %v", got.State, err)
			}
			evs, err := l.Custody(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			method := ""
			for _, e := range evs {
				if e.Type == custody.Verified {
					method = e.Details["method"]
				}
			}
			if method != objstore.MethodCompositeChecksum {
				t.Errorf("verified by %q, want %q from the upload's part sums", method, objstore.MethodCompositeChecksum)
			}
			if u.knownParts(it) != nil {
				t.Error("part sums still cached after the item was verified")
			}
			if before >= 0 {
				t.Logf("upload and verification of %d bytes read %d bytes (%.2f× the file)", size, read, float64(read)/float64(size))
				if read >= 3*int64(size) {
					t.Errorf("upload and verification of %d bytes read %d bytes: more than hash + send", size, read)
				}
			}
		})
	}
}
