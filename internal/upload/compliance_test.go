package upload

import (
	"context"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// lockDetails returns the lock_mode the UPLOADED and VERIFIED records of
// id name, and fails unless the item is verified.
func lockDetails(t *testing.T, l *custody.Ledger, id string) (uploaded, verified string) {
	t.Helper()
	ctx := context.Background()
	it, err := l.Item(ctx, id)
	if err != nil || it.State != custody.StateVerified {
		t.Fatalf("item %s: %s %v (%s), want verified", id, it.State, err, it.LastError)
	}
	evs, err := l.Custody(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		switch e.Type {
		case custody.Uploaded:
			uploaded = e.Details["lock_mode"]
		case custody.Verified:
			verified = e.Details["lock_mode"]
		}
	}
	return uploaded, verified
}

// TestUploadLocksAsTheClassSays: an item of the default class is uploaded
// under the lock mode that class names, COMPLIANCE as well as GOVERNANCE,
// and is recorded and verified with it. An upload that locked a COMPLIANCE
// recording GOVERNANCE (which an administrator can lift) would fail its
// own verification here.
func TestUploadLocksAsTheClassSays(t *testing.T) {
	for _, mode := range []string{config.ModeCompliance, config.ModeGovernance} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.Retention.Classes[0].Mode = mode
			if f.cfg.Retention.Classes[0].Name != f.cfg.Retention.DefaultClass {
				t.Fatalf("class %s is not the default class %s", f.cfg.Retention.Classes[0].Name, f.cfg.Retention.DefaultClass)
			}
			ingested := time.Now().UTC().Truncate(time.Second)
			it := f.item(t, 1, f.cfg.Retention.DefaultClass, ingested)
			if err := f.u.Process(context.Background(), it.ID); err != nil {
				t.Fatalf("Process: %v", err)
			}
			uploaded, verified := lockDetails(t, f.l, it.ID)
			if uploaded != mode || verified != mode {
				t.Errorf("UPLOADED lock_mode %q, VERIFIED lock_mode %q; want %s", uploaded, verified, mode)
			}
			got, _ := f.l.Item(context.Background(), it.ID)
			info, err := f.store.Stat(context.Background(), got.ObjectKey, got.VersionID)
			if err != nil {
				t.Fatal(err)
			}
			if info.LockMode != mode || info.RetainUntil.Before(ingested.AddDate(0, 0, 1)) {
				t.Errorf("stored version locked %q until %s; want %s until at least %s", info.LockMode, info.RetainUntil, mode, ingested.AddDate(0, 0, 1))
			}
		})
	}
}

// TestUploadComplianceClassRealS3: the same against a real S3 server, and
// the retention read back with the AWS CLI, independently of evidenced's
// own client: the object version is COMPLIANCE-locked until the class's
// days after ingest.
func TestUploadComplianceClassRealS3(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	ctx := context.Background()
	st, err := s3store.New(ctx, s3store.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: s3srv.Region, PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.cfg.Retention.Classes = []config.Class{{Name: f.cfg.Retention.DefaultClass, Days: 3, Mode: config.ModeCompliance}}
	f.u = New(f.cfg, f.l, f.v, st, "unit", nil)
	ingested := time.Now().UTC()
	it := f.item(t, 7, f.cfg.Retention.DefaultClass, ingested)
	if err := f.u.Process(ctx, it.ID); err != nil {
		t.Fatalf("Process: %v", err)
	}
	uploaded, verified := lockDetails(t, f.l, it.ID)
	if uploaded != objstore.LockCompliance || verified != objstore.LockCompliance {
		t.Errorf("UPLOADED lock_mode %q, VERIFIED lock_mode %q; want COMPLIANCE", uploaded, verified)
	}
	got, _ := f.l.Item(ctx, it.ID)
	want := ingested.AddDate(0, 0, 3).Truncate(time.Second).Add(time.Second)
	mode, until := srv.CLIRetention(t, bucket, got.ObjectKey, got.VersionID)
	if mode != objstore.LockCompliance || !until.Equal(want) || !got.RetainUntil.Equal(want) {
		t.Errorf("object %s version %s: the AWS CLI reads retention %s until %s (ledger: until %s); want COMPLIANCE until %s",
			got.ObjectKey, got.VersionID, mode, until, got.RetainUntil, want)
	}
}
