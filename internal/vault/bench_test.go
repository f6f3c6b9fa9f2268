package vault

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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

// BenchmarkReadBack: the cold re-read and re-hash of a stored copy; with
// /parts, also hashed in 8 MiB upload parts (what ingest does), so the two
// show what the part sums cost the read-back, in wall time and in CPU
// (cpu-s/GiB: this process's user + system time per GiB read back).
func BenchmarkReadBack(b *testing.B) {
	b.Run("whole", func(b *testing.B) { benchReadBack(b, 0) })
	b.Run("parts", func(b *testing.B) { benchReadBack(b, 8<<20) })
}

func cpuSeconds() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func benchReadBack(b *testing.B, partSize int64) {
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
	cpu0, rounds := cpuSeconds(), 0
	for b.Loop() {
		sum, n, _, err := v.ReadBackParts(context.Background(), "bench", partSize)
		if err != nil || n != benchSize || sum != st.SHA256 {
			b.Fatalf("ReadBack = %s, %d, %v", sum.Hex(), n, err)
		}
		rounds++
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(rounds)/(float64(benchSize)/(1<<30)), "cpu-s/GiB")
}
