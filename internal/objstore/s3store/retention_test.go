package s3store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/objstore"
)

// TestRetentionExtendAndHold runs against the real server: retention is
// extended and seen by an independent GetObjectRetention, shortening and
// weakening are refused before anything is sent, legal hold goes on and off.
func TestRetentionExtendAndHold(t *testing.T) {
	e := setup(t, "")
	ctx := context.Background()
	start := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	res, err := e.st.Put(ctx, request("cam/ret.mp4", randBytes(7, 4096), objstore.LockGovernance, start))
	if err != nil {
		t.Fatal(err)
	}
	retention := func() (string, time.Time) {
		t.Helper()
		out, err := e.srv.Client().GetObjectRetention(ctx, &s3.GetObjectRetentionInput{
			Bucket: aws.String(e.bucket), Key: aws.String("cam/ret.mp4"), VersionId: aws.String(res.VersionID),
		})
		if err != nil {
			t.Fatalf("get retention: %v", err)
		}
		return string(out.Retention.Mode), aws.ToTime(out.Retention.RetainUntilDate).UTC()
	}

	later := start.Add(48 * time.Hour)
	if err := e.st.PutRetention(ctx, "cam/ret.mp4", res.VersionID, objstore.LockGovernance, later); err != nil {
		t.Fatalf("extend governance: %v", err)
	}
	if m, u := retention(); m != objstore.LockGovernance || !u.Equal(later) {
		t.Fatalf("after extend: %s %s, want GOVERNANCE %s", m, u, later)
	}
	// Same again: a retry, no error.
	if err := e.st.PutRetention(ctx, "cam/ret.mp4", res.VersionID, objstore.LockGovernance, later); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	comp := later.Add(24 * time.Hour)
	if err := e.st.PutRetention(ctx, "cam/ret.mp4", res.VersionID, objstore.LockCompliance, comp); err != nil {
		t.Fatalf("raise to compliance: %v", err)
	}
	for _, c := range []struct {
		name  string
		mode  string
		until time.Time
	}{
		{"shorter", objstore.LockCompliance, comp.Add(-time.Hour)},
		{"weaker mode", objstore.LockGovernance, comp.Add(time.Hour)},
	} {
		err := e.st.PutRetention(ctx, "cam/ret.mp4", res.VersionID, c.mode, c.until)
		if !errors.Is(err, objstore.ErrRetentionShortened) || !objstore.IsPermanent(err) {
			t.Errorf("%s: err %v, want ErrRetentionShortened (permanent)", c.name, err)
		}
	}
	if m, u := retention(); m != objstore.LockCompliance || !u.Equal(comp) {
		t.Fatalf("after refused changes: %s %s, want COMPLIANCE %s", m, u, comp)
	}

	for _, on := range []bool{true, false, true} {
		if err := e.st.PutLegalHold(ctx, "cam/ret.mp4", res.VersionID, on); err != nil {
			t.Fatalf("legal hold %v: %v", on, err)
		}
		out, err := e.srv.Client().GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{
			Bucket: aws.String(e.bucket), Key: aws.String("cam/ret.mp4"), VersionId: aws.String(res.VersionID),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn; got != on {
			t.Errorf("legal hold is %v, want %v", got, on)
		}
		info, err := e.st.Stat(ctx, "cam/ret.mp4", res.VersionID)
		if err != nil || info.LegalHold != on {
			t.Errorf("Stat legal hold %v (%v), want %v", info.LegalHold, err, on)
		}
	}
	if err := e.st.PutRetention(ctx, "cam/missing.mp4", "", objstore.LockGovernance, later); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("missing object: %v, want ErrNotFound", err)
	}
}
