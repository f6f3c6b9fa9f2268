package service

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// A dock host the console's audit withheld (an object under its prefix
// that evidenced does not write) stays withheld while the object is there:
// a clear is refused as an integrity failure and recorded nowhere. Once the
// custodian has removed it, the clear re-checks the whole history, records
// HOST_CLEARED (who, why, which checkpoint was accepted) in the console's
// signed ledger, and the host's recordings are served again.
func TestClearHostOnlyWhenItsHistoryVerifies(t *testing.T) {
	ctx := context.Background()
	who := Caller{Actor: "custodian-1"}
	srv, bucket, hq, item := consoleOfOne(t, t.TempDir())
	if items, err := hq.Find(ctx, who, FindOptions{}); err != nil || len(items) != 1 {
		t.Fatalf("find before: %+v %v", items, err)
	}
	if _, err := hq.ClearHost(ctx, who, ClearHostOptions{Host: "dock-01", Reason: "looked"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("clear of a sound host: %v, want ErrInvalid", err)
	}

	stray := []byte("not a checkpoint\n")
	sum := digest.Bytes(stray)
	put, err := hq.store.Put(ctx, objstore.PutRequest{Key: anchor.CheckpointKey("dock-01", 99), Body: bytes.NewReader(stray),
		Size: int64(len(stray)), SHA256: sum, Metadata: map[string]string{"sha256": sum.Hex()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hq.Verify(ctx, who, VerifyOptions{Remote: true}); err != nil {
		t.Fatal(err)
	}
	if items, _ := hq.Find(ctx, who, FindOptions{}); len(items) != 0 {
		t.Fatalf("a withheld host's items are served: %+v", items)
	}
	if _, err := hq.ClearHost(ctx, who, ClearHostOptions{Host: "dock-01"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("clear without a reason: %v, want ErrInvalid", err)
	}
	_, err = hq.ClearHost(ctx, who, ClearHostOptions{Host: "dock-01", Reason: "investigated"})
	if !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), anchor.CheckpointKey("dock-01", 99)) {
		t.Fatalf("clear with the stray object still there: %v, want ErrIntegrity naming it", err)
	}
	if n := len(clearances(t, hq)); n != 0 {
		t.Fatalf("%d HOST_CLEARED records after a refused clear", n)
	}
	if f, _ := hq.Fleet(ctx, who, FleetOptions{}); !f.Hosts[0].Withheld {
		t.Fatalf("the refused clear lifted the flag: %+v", f.Hosts[0])
	}

	// The custodian removes the object that did not belong.
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(anchor.CheckpointKey("dock-01", 99)), VersionId: aws.String(put.VersionID)}); err != nil {
		t.Fatal(err)
	}
	res, err := hq.ClearHost(ctx, Caller{Actor: "custodian-1", OnBehalfOf: "sergeant-5"}, ClearHostOptions{Host: "dock-01", Reason: "stray object removed, ticket 42"})
	if err != nil || !res.Withheld || res.Checkpoint == 0 || res.Checkpoint != res.IndexedCheckpoint || len(res.Cleared) == 0 {
		t.Fatalf("clear after the repair: %+v %v", res, err)
	}
	recs := clearances(t, hq)
	if len(recs) != 1 {
		t.Fatalf("HOST_CLEARED records: %+v", recs)
	}
	d := recs[0].Details
	if recs[0].Actor != "custodian-1" || d["on_behalf_of"] != "sergeant-5" || d["host"] != "dock-01" || d["reason"] != "stray object removed, ticket 42" ||
		d["checkpoint"] == "" || d["checkpoint"] == "0" || d["root"] != res.Root || d["withheld"] != "true" ||
		!strings.Contains(d["problem"], anchor.CheckpointKey("dock-01", 99)) || recs[0].Seq != res.Seq {
		t.Errorf("HOST_CLEARED: %+v %+v", recs[0], res)
	}
	if items, err := hq.Find(ctx, who, FindOptions{}); err != nil || len(items) != 1 || items[0].ID != item {
		t.Errorf("served after the clear: %+v %v", items, err)
	}
	if f, _ := hq.Fleet(ctx, who, FleetOptions{}); f.Hosts[0].Withheld || f.Hosts[0].Broken || len(f.Hosts[0].Flags) != 0 {
		t.Errorf("fleet after the clear: %+v", f.Hosts[0])
	}
}

// clearances are the console's HOST_CLEARED records.
func clearances(t *testing.T, s *Service) []custody.Event {
	t.Helper()
	var out []custody.Event
	if err := s.ledger.Events(context.Background(), 1, func(ev custody.Event) error {
		if ev.Type == HostCleared {
			out = append(out, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
