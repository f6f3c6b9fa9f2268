package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/custody"
)

// ingestOne ingests a small camera and returns its verified items.
func ingestOne(t *testing.T, h *harness, files map[string]int) []custody.Item {
	t.Helper()
	cam := filepath.Join(h.dir, "cam-"+strings.ReplaceAll(t.Name(), "/", "_"))
	writeCamera(t, cam, files)
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	items := h.find("--camera", "BWC-0001")
	if len(items) != len(files) {
		t.Fatalf("%d items, want %d", len(items), len(files))
	}
	for _, it := range items {
		if it.State != custody.StateVerified {
			t.Fatalf("%s: %s", it.ID, it.State)
		}
	}
	return items
}

// lastOf returns the last event of type typ in evs.
func lastOf(t *testing.T, evs []custody.Event, typ custody.EventType) custody.Event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i]
		}
	}
	t.Fatalf("no %s event in %v", typ, eventTypes(evs))
	return custody.Event{}
}

func TestClassifyExtendsRetentionNeverShortens(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	it := ingestOne(t, h, map[string]int{"DCIM/A.MP4": 300 << 10})[0]
	st := openStore(t, h)
	ctx := context.Background()

	out := h.mustCLI("classify", it.ID, "--class", "incident", "--reason", "complaint 2026-114", "--actor", "investigator-7")
	if !strings.Contains(out, "incident") {
		t.Errorf("classify output: %s", out)
	}
	wantUntil := it.IngestedAt.UTC().AddDate(0, 0, 2555).Truncate(time.Second).Add(time.Second)
	// Independent read 1: HeadObject/GetObjectRetention straight from the SDK.
	ret, err := h.srv.Client().GetObjectRetention(ctx, &s3.GetObjectRetentionInput{
		Bucket: aws.String(h.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || !aws.ToTime(ret.Retention.RetainUntilDate).Equal(wantUntil) {
		t.Errorf("store retention %s until %s, want COMPLIANCE until %s", ret.Retention.Mode, aws.ToTime(ret.Retention.RetainUntilDate), wantUntil)
	}
	// Independent read 2: the AWS CLI, when installed.
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		cmd := exec.Command("/usr/bin/aws", "s3api", "get-object-retention", "--bucket", h.bucket, "--key", it.ObjectKey,
			"--version-id="+it.VersionID, "--endpoint-url", h.srv.Endpoint, "--output", "json")
		// The AWS CLI reads an empty AWS_PROFILE as a profile named "".
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_PROFILE=") && !strings.HasPrefix(kv, "AWS_DEFAULT_PROFILE=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		b, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("aws s3api get-object-retention: %v\n%s", err, stderr)
		}
		var r struct {
			Retention struct{ Mode, RetainUntilDate string }
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("aws output %s: %v", b, err)
		}
		got, _ := time.Parse(time.RFC3339, strings.Replace(r.Retention.RetainUntilDate, "+00:00", "Z", 1))
		if r.Retention.Mode != "COMPLIANCE" || !got.Equal(wantUntil) {
			t.Errorf("aws says %s until %s, want COMPLIANCE until %s", r.Retention.Mode, r.Retention.RetainUntilDate, wantUntil)
		}
	}
	after := h.find("--camera", "BWC-0001")[0]
	if after.RetentionClass != "incident" || !after.RetainUntil.Equal(wantUntil) {
		t.Errorf("ledger item class %s until %s, want incident until %s", after.RetentionClass, after.RetainUntil, wantUntil)
	}
	evs := h.custody(it.ID)
	rc := lastOf(t, evs, custody.RetentionChanged)
	if rc.Actor != osUser || rc.Details["on_behalf_of"] != "investigator-7" || rc.Details["reason"] != "complaint 2026-114" || rc.Details["old_class"] != "uncategorized" ||
		rc.Details["new_class"] != "incident" || rc.Details["old_mode"] != "GOVERNANCE" || rc.Details["new_mode"] != "COMPLIANCE" ||
		rc.Details["new_retain_until"] != wantUntil.Format(time.RFC3339) || rc.Details["retention_class_tag"] != "updated" {
		t.Errorf("RETENTION_CHANGED %s %v", rc.Actor, rc.Details)
	}
	// The object's label follows the ledger; its other tags stay.
	tg, err := h.srv.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
		Bucket: aws.String(h.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
	})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, x := range tg.TagSet {
		tags[aws.ToString(x.Key)] = aws.ToString(x.Value)
	}
	if tags["retention_class"] != "incident" || tags["camera"] != "BWC-0001" || tags["sha256"] != it.SHA256 {
		t.Errorf("object tags after classify: %v; want retention_class=incident and the upload's other tags", tags)
	}

	// Shortening (COMPLIANCE 2555 days → GOVERNANCE 90 days) is refused.
	code, out, errs := h.cli("classify", it.ID, "--class", "uncategorized", "--reason", "mistake?")
	if code == 0 || !strings.Contains(errs, "refused") || !strings.Contains(errs, "can only be extended") {
		t.Fatalf("shortening: exit %d\n%s%s", code, out, errs)
	}
	info, err := st.Stat(ctx, it.ObjectKey, it.VersionID)
	if err != nil || info.LockMode != "COMPLIANCE" || !info.RetainUntil.Equal(wantUntil) {
		t.Errorf("after the refused change the store says %s until %s (%v)", info.LockMode, info.RetainUntil, err)
	}
	if h.find("--camera", "BWC-0001")[0].RetentionClass != "incident" {
		t.Error("ledger class changed by a refused classify")
	}
	ref := lastOf(t, h.custody(it.ID), custody.Refused)
	if ref.Details["request"] != "classify" || ref.Details["reason"] != "mistake?" {
		t.Errorf("REFUSED %v", ref.Details)
	}
	// Unknown class: usage error.
	if code, _, _ := h.cli("classify", it.ID, "--class", "forever", "--reason", "x"); code != exitUsage {
		t.Errorf("unknown class: exit %d, want %d", code, exitUsage)
	}
	if code, out, errs := h.cli("verify", "--remote"); code != 0 {
		t.Fatalf("verify --remote after classify: exit %d\n%s%s", code, out, errs)
	}
}

func TestHoldAndReleaseTwoCases(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	it := ingestOne(t, h, map[string]int{"DCIM/B.MP4": 200 << 10})[0]
	ctx := context.Background()
	hold := func() bool {
		t.Helper()
		out, err := h.srv.Client().GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{
			Bucket: aws.String(h.bucket), Key: aws.String(it.ObjectKey), VersionId: aws.String(it.VersionID),
		})
		if err != nil && strings.Contains(err.Error(), "NoSuchObjectLockConfiguration") {
			return false // never held: the server has nothing to say
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn
	}
	if hold() {
		t.Fatal("legal hold on before any case")
	}
	h.mustCLI("hold", it.ID, "--case", "CASE-A", "--reason", "complaint A", "--actor", "inv-a")
	h.mustCLI("hold", it.ID, "--case", "CASE-B", "--reason", "complaint B", "--actor", "inv-b")
	h.mustCLI("hold", it.ID, "--case", "CASE-A", "--reason", "again") // idempotent: no second HOLD_SET
	if !hold() {
		t.Fatal("legal hold off after two holds")
	}
	out := h.mustCLI("release", it.ID, "--case", "CASE-A", "--reason", "A closed", "--actor", "inv-a")
	if !hold() || !strings.Contains(out, "stays ON") {
		t.Fatalf("legal hold released while CASE-B still holds it: %s", out)
	}
	if code, _, errs := h.cli("release", it.ID, "--case", "CASE-A", "--reason", "twice"); code == 0 || !strings.Contains(errs, "not held by case") {
		t.Errorf("second release of CASE-A: exit %d %s", code, errs)
	}
	h.mustCLI("release", it.ID, "--case", "CASE-B", "--reason", "B closed", "--actor", "inv-b")
	if hold() {
		t.Fatal("legal hold still on with no case holding it")
	}
	var got []string
	for _, e := range h.custody(it.ID) {
		if e.Type == custody.HoldSet || e.Type == custody.HoldReleased {
			got = append(got, strings.Join([]string{string(e.Type), e.Details["case"], e.Details["on_behalf_of"], e.Details["reason"], e.Details["legal_hold"]}, "|"))
			if e.Actor != osUser {
				t.Errorf("%s recorded actor %q, want the OS user %q", e.Type, e.Actor, osUser)
			}
		}
	}
	want := []string{
		"HOLD_SET|CASE-A|inv-a|complaint A|on",
		"HOLD_SET|CASE-B|inv-b|complaint B|on",
		"HOLD_RELEASED|CASE-A|inv-a|A closed|on",
		"HOLD_RELEASED|CASE-B|inv-b|B closed|off",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hold events\n got %q\nwant %q", got, want)
	}
	if code, _, _ := h.cli("hold", it.ID, "--case", "X"); code != exitUsage {
		t.Errorf("hold without --reason: exit %d", code)
	}
}

// Hold and classify follow one rule: an item whose object is not yet
// verified in the store is refused with exit 1 and a sentence saying to
// wait for the upload and its verification; nothing is recorded.
func TestHoldAndClassifyRefuseUnverified(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 100 << 10})
	// The store is down while the camera is ingested: vaulted, not uploaded.
	down := h.withEndpoint(t, closedPort(t))
	if code, _, errs := down.cli("ingest", "--camera", "BWC-0001", "--from", cam); code != exitFailure {
		t.Fatalf("ingest with the store down: exit %d\n%s", code, errs)
	}
	items := h.find("--camera", "BWC-0001")
	if len(items) != 1 || items[0].State != custody.StateVaulted {
		t.Fatalf("items %+v", items)
	}
	id := items[0].ID
	for _, args := range [][]string{
		{"hold", id, "--case", "C-1", "--reason", "complaint"},
		{"classify", id, "--class", "incident", "--reason", "complaint"},
	} {
		code, out, errs := h.bin(nil, args...)
		if code != exitFailure || out != "" {
			t.Errorf("%s of an unverified item: exit %d, want %d\n%s%s", args[0], code, exitFailure, out, errs)
		}
		oneLine(t, args[0], errs, "item "+id+" is vaulted, not yet verified in the object store", args[0]+" it once it is verified")
	}
	for _, e := range h.custody(id) {
		if e.Type == custody.HoldSet || e.Type == custody.RetentionChanged || e.Type == custody.Refused {
			t.Errorf("a refused request was recorded as %s: %v", e.Type, e.Details)
		}
	}
}
