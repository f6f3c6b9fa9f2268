package vault

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// benchSize is one recording chapter's worth, big enough to cross many
// writeback windows. The vault is in b.TempDir(): set TMPDIR to the disk
// under test (a tmpfs measures memory, not a disk).
const benchSize = 256 << 20

// sourceFile writes benchSize incompressible bytes once and reads them once,
// so each iteration reads its source from the page cache and the benchmark
// measures the vault (hash, write, fsync, rename), not the source disk.
func sourceFile(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "VID_0001.MP4")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	chunk := randomBytes(bufSize, 1)
	for i := 0; i < benchSize/bufSize; i++ {
		chunk[0] = byte(i) // no two chunks alike
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if f, err := os.Open(path); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
	return path
}

// BenchmarkStore: go test -bench Store -benchtime 5x ./internal/vault
// (MB/s is the whole Store: read, hash, write, fsync, rename, dir fsync).
func BenchmarkStore(b *testing.B) {
	src := sourceFile(b)
	v := openVault(b)
	b.SetBytes(benchSize)
	i := 0
	for b.Loop() {
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("bench-%d", i)
		if _, err := v.Store(context.Background(), id, f, benchSize, nil); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.StopTimer()
		os.Remove(v.Path(id))
		b.StartTimer()
		i++
	}
}

// BenchmarkReadBack: the cold re-read and re-hash of a stored copy.
func BenchmarkReadBack(b *testing.B) {
	src := sourceFile(b)
	v := openVault(b)
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	st, err := v.Store(context.Background(), "bench", f, benchSize, nil)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		sum, n, err := v.ReadBack(context.Background(), "bench")
		if err != nil || n != benchSize || sum != st.SHA256 {
			b.Fatalf("ReadBack = %s, %d, %v", sum.Hex(), n, err)
		}
	}
}
