package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// A hold, a release and a class change made at the console act on the
// object the dock host recorded (read back from the store), are recorded
// in the console's own ledger with the host that ingested the item, and
// show in the item's merged custody; a case the dock host holds keeps the
// object held when the console's case is released; a change that would
// shorten the retention is refused and recorded as such.
func TestConsoleHoldsReleasesAndClassifies(t *testing.T) {
	ctx := context.Background()
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	who := Caller{Actor: "custodian-1"}

	root := t.TempDir()
	d := openHost(t, srv, bucket, filepath.Join(root, "dock-01"), "host_id: dock-01\ncameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-1}\n")
	cam := filepath.Join(root, "cam")
	os.MkdirAll(filepath.Join(cam, "DCIM"), 0o755)
	if err := os.WriteFile(filepath.Join(cam, "DCIM", "A.MP4"), bytes.Repeat([]byte("evidence"), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := d.Ingest(ctx, who, IngestOptions{Camera: "BWC-0001", From: cam})
	if err != nil || len(rep.Recorded) != 1 {
		t.Fatalf("ingest: %+v %v", rep, err)
	}
	id := rep.Recorded[0].ID
	// The dock host holds the item for its own case.
	if _, err := d.Hold(ctx, who, HoldOptions{ID: id, Case: "dock-case", Reason: "station request"}); err != nil {
		t.Fatal(err)
	}
	if err := d.AnchorNow(ctx, false); err != nil {
		t.Fatal(err)
	}
	it, err := d.item(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	pem := filepath.Join(root, "dock-01.pem")
	if err := os.WriteFile(pem, d.HostKey().PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openHost(t, srv, bucket, filepath.Join(root, "hq"), fmt.Sprintf("role: console\nhost_id: hq\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n", pem))
	legalHold := func() bool {
		t.Helper()
		info, err := c.store.Stat(ctx, it.ObjectKey, it.VersionID)
		if err != nil {
			t.Fatal(err)
		}
		return info.LegalHold
	}

	res, err := c.Hold(ctx, who, HoldOptions{ID: id, Case: "IA-7", Reason: "complaint 7"})
	if err != nil || res.Host != "dock-01" || fmt.Sprint(res.HeldBy) != "[dock-case IA-7]" || !legalHold() {
		t.Fatalf("hold at the console: %+v %v (legal hold %v)", res, err, legalHold())
	}
	if res, err := c.Hold(ctx, who, HoldOptions{ID: id, Case: "IA-7", Reason: "again"}); err != nil || !res.Unchanged {
		t.Errorf("second hold of the same case: %+v %v", res, err)
	}
	// Released at the console, the dock host's case still holds it.
	res, err = c.Release(ctx, who, HoldOptions{ID: id, Case: "IA-7", Reason: "closed"})
	if err != nil || fmt.Sprint(res.HeldBy) != "[dock-case]" || !legalHold() {
		t.Fatalf("release of the console's case: %+v %v (legal hold %v)", res, err, legalHold())
	}
	if _, err := c.Release(ctx, who, HoldOptions{ID: id, Case: "IA-7", Reason: "closed"}); err == nil || !strings.Contains(err.Error(), `not held by case "IA-7"`) {
		t.Errorf("release of a case that no longer holds: %v", err)
	}
	// The dock host's case released at the console ends the object's hold.
	if res, err := c.Release(ctx, who, HoldOptions{ID: id, Case: "dock-case", Reason: "closed at HQ"}); err != nil || res.On() || legalHold() {
		t.Fatalf("release of the last case: %+v %v (legal hold %v)", res, err, legalHold())
	}

	cr, err := c.Classify(ctx, who, ClassifyOptions{ID: id, Class: "complaint", Reason: "complaint 7"})
	want := it.IngestedAt.UTC().AddDate(0, 0, 30).Truncate(time.Second).Add(time.Second)
	if err != nil || cr.Host != "dock-01" || cr.OldClass != "uncategorized" || !cr.Until.Equal(want) {
		t.Fatalf("classify at the console: %+v %v", cr, err)
	}
	info, err := c.store.Stat(ctx, it.ObjectKey, it.VersionID)
	if err != nil || !info.RetainUntil.Equal(want) || info.LockMode != objstore.LockGovernance || info.Tags["retention_class"] != "complaint" {
		t.Fatalf("object after classify at the console: %+v %v, want GOVERNANCE until %s", info, err, want)
	}
	// The console reads the class back from its own record.
	if cr, err := c.Classify(ctx, who, ClassifyOptions{ID: id, Class: "complaint", Reason: "again"}); err != nil || !cr.Already {
		t.Errorf("classify again to the same class: %+v %v", cr, err)
	}
	// uncategorized (1 day) would end before complaint's 30.
	if _, err := c.Classify(ctx, who, ClassifyOptions{ID: id, Class: "uncategorized", Reason: "r"}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a shorter class at the console: %v", err)
	}
	// serious: longer, and COMPLIANCE.
	if cr, err := c.Classify(ctx, who, ClassifyOptions{ID: id, Class: "serious", Reason: "charges"}); err != nil || cr.OldClass != "complaint" || cr.Mode != objstore.LockCompliance {
		t.Fatalf("classify serious at the console: %+v %v", cr, err)
	}
	if info, err := c.store.Stat(ctx, it.ObjectKey, it.VersionID); err != nil || info.LockMode != objstore.LockCompliance {
		t.Fatalf("object after classify serious: %+v %v", info, err)
	}

	evs, err := c.Custody(ctx, who, id, "check")
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range evs {
		switch ev.Type {
		case custody.HoldSet, custody.HoldReleased, custody.RetentionChanged, custody.Refused:
			trail = append(trail, ev.Host+":"+string(ev.Type)+":"+ev.Details["case"]+ev.Details["new_class"]+":"+ev.Details["host"])
		}
	}
	if got := strings.Join(trail, " "); got != "dock-01:HOLD_SET:dock-case: hq:HOLD_SET:IA-7:dock-01 hq:HOLD_RELEASED:IA-7:dock-01 hq:HOLD_RELEASED:dock-case:dock-01 hq:RETENTION_CHANGED:complaint:dock-01 hq:REFUSED::dock-01 hq:RETENTION_CHANGED:serious:dock-01" {
		t.Errorf("merged custody at the console:\n%s", got)
	}
	if _, err := c.ledger.Item(ctx, id); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("the console's ledger took the dock host's item as its own: %v", err)
	}

	// The dock host's own check of the store accepts what the console
	// set: a longer retention, in a stronger mode than its class's.
	vr, err := d.Verify(ctx, who, VerifyOptions{Remote: true})
	if err != nil || !vr.OK || vr.Objects != 1 {
		t.Errorf("dock verify --remote after the console's change: %+v %v", vr, err)
	}
	if _, err := c.Hold(ctx, who, HoldOptions{ID: "no-such-item", Case: "IA-7", Reason: "r"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("hold of an unknown item at the console: %v", err)
	}
}
