package service

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/memstore"
)

// retagClass rewrites only retention_class, reports whether it changed
// anything, and passes a store failure up instead of swallowing it.
func TestRetagClass(t *testing.T) {
	ctx := context.Background()
	m := memstore.New()
	body := []byte("footage")
	res, err := m.Put(ctx, objstore.PutRequest{Key: "k", Body: bytes.NewReader(body), Size: int64(len(body)), SHA256: digest.Bytes(body),
		Tags: map[string]string{"camera": "BWC-1", "retention_class": "uncategorized"}})
	if err != nil {
		t.Fatal(err)
	}
	it := custody.Item{ObjectKey: "k", VersionID: res.VersionID}
	if changed, err := retagClass(ctx, m, it, "incident"); !changed || err != nil {
		t.Fatalf("retag = %v, %v; want a change", changed, err)
	}
	info, _ := m.Stat(ctx, "k", res.VersionID)
	if info.Tags["retention_class"] != "incident" || info.Tags["camera"] != "BWC-1" {
		t.Errorf("tags %v", info.Tags)
	}
	if changed, err := retagClass(ctx, m, it, "incident"); changed || err != nil {
		t.Errorf("second retag = %v, %v; want no change", changed, err)
	}
	boom := errors.New("tagging denied")
	m.SetHook(func(op, key string) error {
		if op == "put-tags" {
			return boom
		}
		return nil
	})
	if _, err := retagClass(ctx, m, it, "major-crime"); !errors.Is(err, boom) {
		t.Errorf("retag with a failing store = %v, want the store's error", err)
	}
}
