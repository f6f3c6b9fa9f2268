package s3store_test

import (
	"context"
	"os"
	"testing"

	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// TestMain stops the Ceph RGW TestContractRGW starts.
func TestMain(m *testing.M) { os.Exit(s3srv.Main(m)) }

// newStore returns a constructor of stores on fresh buckets of srv, with a
// multipart threshold the suite's multipart objects cross.
func newStore(srv *s3srv.Server) func(t *testing.T) objstore.Store {
	return func(t *testing.T) objstore.Store {
		srv.SetEnv(t)
		st, err := s3store.New(context.Background(), s3store.Config{
			Endpoint: srv.Endpoint, Bucket: srv.NewBucket(t), Region: s3srv.Region, PathStyle: true,
			Prefix: "evidence/", MultipartThreshold: storetest.MultipartSize,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

// TestContractVersityGW: VersityGW behaves as S3 is documented to, in every
// point the contract covers: it checks and reports x-amz-checksum-sha256
// (FULL_OBJECT and COMPOSITE), and applies the lock and tags of a multipart
// upload.
func TestContractVersityGW(t *testing.T) {
	storetest.Run(t, storetest.Quirks{}, newStore(s3srv.Start(t)))
}

// TestContractRGW: Ceph RGW 16.2 (Debian's radosgw) ignores
// x-amz-checksum-* (reports none, checks none) but does check the signed
// payload hash, which s3store sets to the body's SHA-256, so a wrong
// SHA-256 is still refused. It drops the Object Lock and tags of
// CreateMultipartUpload and returns no ETag from CompleteMultipartUpload.
func TestContractRGW(t *testing.T) {
	q := storetest.Quirks{NoChecksums: true, MultipartDropsLock: true, MultipartNoETag: true}
	storetest.Run(t, q, newStore(s3srv.RGW(t)))
}
