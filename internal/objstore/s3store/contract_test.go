package s3store_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/objstore/storetest"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// TestMain stops the Ceph RGW the RGW tests start (once per test binary).
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

// TestEnsureBucketDefaultRetention: store-init sets the bucket default
// retention (the backstop for a store that drops an upload's lock) on a new
// bucket and leaves an existing default alone. RGW applies it to a version
// put without a lock of its own, multipart ones included, which is where
// the backstop matters; VersityGW 1.8.0 stores the default but does not
// apply it (its uploads keep their own lock, so nothing depends on it).
func TestEnsureBucketDefaultRetention(t *testing.T) {
	for _, c := range []struct {
		name    string
		srv     func(t *testing.T) *s3srv.Server
		applies bool
	}{
		{"versitygw", func(t *testing.T) *s3srv.Server { return s3srv.Start(t) }, false},
		{"rgw", func(t *testing.T) *s3srv.Server { return s3srv.RGW(t) }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			srv := c.srv(t)
			srv.SetEnv(t)
			bucket := fmt.Sprintf("evt-default-%s-%d", c.name, time.Now().UnixNano()%1e9)
			open := func(d s3store.DefaultRetention) *s3store.Store {
				st, err := s3store.New(ctx, s3store.Config{
					Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true,
					MultipartThreshold: storetest.MultipartSize, DefaultRetention: d,
				}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			want := s3store.DefaultRetention{Mode: objstore.LockGovernance, Days: 3}
			st := open(want)
			if err := st.EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := st.BucketDefaultRetention(ctx); err != nil || got != want {
				t.Fatalf("default retention after store-init: %+v %v, want %+v", got, err, want)
			}
			// Run again with another default: the one in place stays.
			if err := open(s3store.DefaultRetention{Mode: objstore.LockCompliance, Days: 1}).EnsureBucket(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.BucketDefaultRetention(ctx); got != want {
				t.Errorf("default retention after a second store-init: %+v, want %+v kept", got, want)
			}
			for _, size := range []int{1000, storetest.MultipartSize} {
				req := storetest.Request(fmt.Sprintf("nolock-%d.mp4", size), randBytes(20, size))
				req.LockMode, req.RetainUntil = "", time.Time{}
				res, err := st.Put(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Stat(ctx, req.Key, res.VersionID)
				if err != nil {
					t.Fatal(err)
				}
				minUntil := time.Now().Add(3*24*time.Hour - time.Hour)
				applied := info.LockMode == objstore.LockGovernance && !info.RetainUntil.Before(minUntil)
				if applied != c.applies {
					t.Errorf("%d-byte version (%d parts) put without a lock: lock %q until %v; bucket default (GOVERNANCE, 3 days) applied: %v, want %v",
						size, res.Parts, info.LockMode, info.RetainUntil, applied, c.applies)
				}
			}
		})
	}
}

// TestLockedVersionNotDeletable: what Object Lock is for, asked of the
// server itself (the Store has no delete): a COMPLIANCE version cannot be
// deleted, even with a governance bypass; a GOVERNANCE one not without it.
func TestLockedVersionNotDeletable(t *testing.T) {
	for _, c := range []struct {
		name string
		srv  func(t *testing.T) *s3srv.Server
	}{
		{"versitygw", func(t *testing.T) *s3srv.Server { return s3srv.Start(t) }},
		{"rgw", func(t *testing.T) *s3srv.Server { return s3srv.RGW(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			srv := c.srv(t)
			st := newStore(srv)(t).(*s3store.Store)
			for _, mode := range []string{objstore.LockCompliance, objstore.LockGovernance} {
				req := storetest.Request("locked-"+mode+".mp4", randBytes(21, 2000))
				req.LockMode = mode
				res, err := st.Put(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				del := &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String("evidence/" + req.Key), VersionId: aws.String(res.VersionID)}
				if mode == objstore.LockCompliance {
					del.BypassGovernanceRetention = aws.Bool(true)
				}
				if _, err := srv.Client().DeleteObject(ctx, del); err == nil {
					t.Errorf("%s version deleted (bypass %v)", mode, mode == objstore.LockCompliance)
				}
				if _, err := st.Stat(ctx, req.Key, res.VersionID); err != nil {
					t.Errorf("%s version after the refused delete: %v", mode, err)
				}
			}
		})
	}
}
