// Command benchupload times evidenced's upload engine on one file against
// an S3 endpoint, the way the daemon uploads it (resumable multipart with
// per-part SHA-256, Object Lock, then verification), for
// scripts/bench-upload.sh. Credentials come from the AWS environment.
//
// With -bare it times the yardstick instead: the same multipart upload done
// with aws-sdk-go-v2 alone and none of the guarantees (see bareUpload).
//
// usage: benchupload -endpoint URL -bucket B -file F [-part-concurrency N] [-bandwidth BYTES] [-bare]
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/upload"
)

type fileVault struct{ path string }

func (v fileVault) Open(string) (*os.File, error) { return os.Open(v.path) }

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	bucket := flag.String("bucket", "", "bucket (versioning + Object Lock)")
	file := flag.String("file", "", "file to upload")
	pc := flag.Int("part-concurrency", config.DefaultPartConcurrency, "parts in flight")
	bw := flag.Int64("bandwidth", 0, "bytes/s cap (0 = unlimited)")
	bare := flag.Bool("bare", false, "time a bare aws-sdk-go-v2 multipart upload (no checksums, lock, tags or ledger) instead")
	flag.Parse()
	var err error
	if *bare {
		var fi os.FileInfo
		if fi, err = os.Stat(*file); err == nil {
			err = bareUpload(context.Background(), *endpoint, *bucket, *file, objstore.PartSize(fi.Size()), *pc)
		}
	} else {
		err = run(*endpoint, *bucket, *file, *pc, *bw)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchupload:", err)
		os.Exit(1)
	}
}

func run(endpoint, bucket, file string, pc int, bw int64) error {
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
	cfg := config.Default()
	cfg.HostID = "bench"
	cfg.Retention.Classes = []config.Class{{Name: "uncategorized", Days: 1, Mode: config.ModeGovernance}}
	cfg.Upload.PartConcurrency = pc
	cfg.Upload.Bandwidth = config.ByteSize(bw)
	st, err := s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: bucket, Region: "us-east-1", PathStyle: true,
		MultipartThreshold: int64(config.DefaultMultipartThreshold), Limiter: upload.NewLimiter(cfg.Upload)}, nil)
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
	if _, err := l.Append(ctx, custody.Event{Type: custody.Vaulted, Actor: "bench", Camera: "BENCH", Item: it.ID, SHA256: it.SHA256}, &it); err != nil {
		return err
	}
	up := upload.New(cfg, l, fileVault{file}, st, "bench", nil)
	t0 := time.Now()
	if err := up.Process(ctx, it.ID); err != nil {
		return err
	}
	total := time.Since(t0)
	evs, err := l.Custody(ctx, it.ID)
	if err != nil {
		return err
	}
	var uploaded time.Duration
	for _, e := range evs {
		if e.Type == custody.Uploaded {
			uploaded = e.At.Sub(t0)
		}
	}
	mb := float64(size) / 1e6
	fmt.Printf("bytes=%d upload_s=%.3f upload_MBps=%.1f upload_verify_s=%.3f upload_verify_MBps=%.1f\n",
		size, uploaded.Seconds(), mb/uploaded.Seconds(), total.Seconds(), mb/total.Seconds())
	return nil
}
