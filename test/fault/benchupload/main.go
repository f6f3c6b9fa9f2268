// Command benchupload times evidenced's upload engine on one file against
// an S3 endpoint, the way the daemon uploads it (resumable multipart with
// per-part SHA-256, Object Lock, then verification), for
// scripts/bench-upload.sh. Credentials come from the AWS environment.
//
// With -bare it times the yardstick instead: the same multipart upload done
// with aws-sdk-go-v2 alone and none of the guarantees (see bareUpload).
//
// With -bare-sha256 it times the bare upload with each part's
// x-amz-checksum-sha256 sent (sums computed before the clock starts), so
// the store checks every part as it does for evidenced.
//
// Every run prints cpu_s, this process's CPU time (user + system, from
// getrusage) over the timed part; -cpuprofile and -trace write a pprof CPU
// profile and an execution trace of the timed part.
//
// The item is recorded VAULTED with the part sums the ingest's read-back
// keeps (computed before the clock starts, like the whole's SHA-256), so
// the upload hashes nothing; -hash records none, and the upload hashes the
// file as for a record from before part sums.
//
// usage: benchupload -endpoint URL -bucket B -file F [-part-concurrency N] [-bandwidth BYTES] [-hash] [-bare | -bare-sha256] [-cpuprofile F] [-trace F]
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/upload"
	"github.com/evidenced/evidenced/internal/vault"
)

// verbose: print where the time went (see -v).
var verbose bool

// fileVault serves the file as every item's vault copy, and the part sums
// kept (as the ingest's read-back keeps them) in a real vault directory.
type fileVault struct {
	path string
	sums *vault.Vault // nil: no part sums kept (-hash)
}

func (v fileVault) Open(string) (*os.File, error) { return os.Open(v.path) }

func (v fileVault) RecordedPartSums(id string, details map[string]string, partSize int64) ([]digest.Sum, error) {
	if v.sums == nil {
		return nil, vault.ErrNoPartSums
	}
	return v.sums.RecordedPartSums(id, details, partSize)
}

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	bucket := flag.String("bucket", "", "bucket (versioning + Object Lock)")
	file := flag.String("file", "", "file to upload")
	pc := flag.Int("part-concurrency", config.DefaultPartConcurrency, "parts in flight")
	bw := flag.Int64("bandwidth", 0, "bytes/s cap (0 = unlimited)")
	bare := flag.Bool("bare", false, "time a bare aws-sdk-go-v2 multipart upload (no checksums, lock, tags or ledger) instead")
	bareSHA := flag.Bool("bare-sha256", false, "time the bare upload with x-amz-checksum-sha256 on every part (precomputed) instead")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceFile := flag.String("trace", "", "write an execution trace of the whole run to this file")
	hash := flag.Bool("hash", false, "record no part sums at ingest, so the upload hashes the file (the path of records from before part sums)")
	flag.BoolVar(&verbose, "v", false, "print the item's custody records with their times from the start, and the engine's log")
	flag.Parse()
	err := profiled(*cpuProfile, *traceFile, func() error {
		if *bare || *bareSHA {
			fi, err := os.Stat(*file)
			if err != nil {
				return err
			}
			return bareUpload(context.Background(), *endpoint, *bucket, *file, objstore.PartSize(fi.Size()), *pc, *bareSHA)
		}
		return run(*endpoint, *bucket, *file, *pc, *bw, !*hash)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchupload:", err)
		os.Exit(1)
	}
}

// cpuTime is this process's CPU time so far, user + system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profiled runs fn under a CPU profile and an execution trace when their
// files are named.
func profiled(cpuFile, traceFile string, fn func() error) error {
	if cpuFile != "" {
		f, err := os.Create(cpuFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	return fn()
}

func run(endpoint, bucket, file string, pc int, bw int64, partSums bool) error {
	ctx := context.Background()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	sum, size, err := digest.Reader(f)
	f.Close()
	if err != nil {
		return err
	}
	var log *slog.Logger
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := config.Default()
	cfg.HostID = "bench"
	cfg.Retention.Classes = []config.Class{{Name: "uncategorized", Days: 1, Mode: config.ModeGovernance}}
	cfg.Upload.PartConcurrency = pc
	cfg.Upload.Bandwidth = config.ByteSize(bw)
	st, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: bucket, Region: "us-east-1", PathStyle: true,
		MultipartThreshold: int64(config.DefaultMultipartThreshold), Limiter: upload.NewLimiter(cfg.Upload)}, log)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchupload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := custody.Open(filepath.Join(dir, "ledger.db"), custody.Options{Host: cfg.HostID})
	if err != nil {
		return err
	}
	defer l.Close()
	dock, err := l.Append(ctx, custody.Event{Type: custody.Docked, Actor: "bench", Camera: "BENCH"}, nil)
	if err != nil {
		return err
	}
	var idb [12]byte
	rand.Read(idb[:])
	now := time.Now().UTC()
	it := custody.Item{ID: fmt.Sprintf("%x", idb), Camera: "BENCH", Kind: "body", AssignedTo: "bench",
		SourcePath: "BENCH.MP4", Size: size, SHA256: sum.Hex(), RecordedAt: now, IngestedAt: now,
		State: custody.StateVaulted, RetentionClass: "uncategorized", DockSeq: dock.Seq}
	// What the ingest's cold read-back does besides the whole's SHA-256
	// (not timed, like that SHA-256): the part sums at the upload's part
	// size, kept beside the copy, their composite in VAULTED.
	fv := fileVault{path: file}
	var details map[string]string
	if partSums {
		if fv.sums, err = vault.Open(filepath.Join(dir, "vault"), nil, vault.Options{}); err != nil {
			return err
		}
		defer fv.sums.Close()
		ps := objstore.PartSize(size)
		var sums []digest.Sum
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		_, err = objstore.HashPartsEach(ctx, f, size, ps, func(_ int, s digest.Sum) { sums = append(sums, s) })
		f.Close()
		if err != nil {
			return err
		}
		if err := fv.sums.WritePartSums(it.ID, ps, sums); err != nil {
			return err
		}
		details = vault.PartSumsDetails(ps, sums)
	}
	if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "bench", Camera: "BENCH", Item: it.ID, SHA256: it.SHA256, Details: details}, &it); err != nil {
		return err
	}
	up := upload.New(cfg, l, fv, st, "bench", log)
	cpu0, t0 := cpuTime(), time.Now()
	if err := up.Process(ctx, it.ID); err != nil {
		return err
	}
	total, cpu := time.Since(t0), cpuTime()-cpu0
	evs, err := l.Custody(ctx, it.ID)
	if err != nil {
		return err
	}
	var uploaded time.Duration
	for _, e := range evs {
		if verbose && !e.At.Before(t0) {
			fmt.Fprintf(os.Stderr, "%8.3fs %s %s\n", e.At.Sub(t0).Seconds(), e.Type, e.Details["parts"])
		}
		if e.Type == custody.Uploaded {
			uploaded = e.At.Sub(t0)
		}
	}
	mb := float64(size) / 1e6
	fmt.Printf("bytes=%d upload_s=%.3f upload_MBps=%.1f upload_verify_s=%.3f upload_verify_MBps=%.1f cpu_s=%.3f\n",
		size, uploaded.Seconds(), mb/uploaded.Seconds(), total.Seconds(), mb/total.Seconds(), cpu.Seconds())
	return nil
}
