package objstore

import (
	"context"
	"fmt"
	"io"
)

// Version is one stored version of an object, as a Lister returns it.
type Version struct {
	// Key is relative to the store's configured prefix, as every key is.
	Key       string
	VersionID string
	Size      int64
	// IsLatest is true for the version Open(key, "") returns.
	IsLatest bool
}

// Lister lists object versions. Store has no listing because uploads never
// need one; anchoring does, to learn what was anchored from the store
// rather than from state the host could roll back. Like Retainer and Tagger
// it is a separate capability that callers type-assert (or require in their
// own interface), so that a store without listing can still hold evidence.
//
// Contract: ListVersions returns every version (not delete markers) of
// every key that starts with prefix (relative to the store's prefix), in
// any order; keys outside the store's prefix are never returned. Errors
// wrap the package sentinels.
type Lister interface {
	ListVersions(ctx context.Context, prefix string) ([]Version, error)
}

// Ranger reads part of a stored version: n bytes from offset off (fewer
// when the version ends first). versionID "" is the latest version.
// ErrNotFound when the version is absent; an offset at or past the end is
// ErrInvalidRequest. Streaming a recording to a player, or checking one
// part of a large object, needs no read of the rest.
type Ranger interface {
	OpenRange(ctx context.Context, key, versionID string, off, n int64) (io.ReadCloser, error)
}

// Directories lists the distinct next path segments under prefix: for
// every key prefix+"seg/…" it returns "seg" once (S3's common prefixes with
// delimiter "/"). A fleet console learns which hosts anchor in the bucket
// from the segments under "_custody/" without listing every object each
// of them wrote. Keys are relative to the store's prefix.
type Directories interface {
	ListDirectories(ctx context.Context, prefix string) ([]string, error)
}

// PageLister lists object versions a page at a time, so that a listing of
// a prefix that grows for years (a dock host's _custody/<host>/records/ at
// hundreds of thousands of objects) holds one page in memory, not the
// prefix. A Lister that is not a PageLister is read in one call
// (EachVersionPage).
//
// Contract: ListVersionsPage returns the versions (not delete markers) of
// the keys that start with prefix and sort after after ("" from the
// first), in key order, at most about max keys; every version of a key is
// in the same page. next is the last key of the page, "" when no key
// follows: the next page is asked for with after = next.
type PageLister interface {
	ListVersionsPage(ctx context.Context, prefix, after string, max int) (vs []Version, next string, err error)
}

// ListPageKeys is how many keys EachVersionPage asks for a page (S3's
// largest page).
const ListPageKeys = 1000

// EachVersionPage calls fn with the versions under prefix a page at a
// time: from a PageLister in key order, every version of a key in one
// call; from any other Lister in a single call of the whole listing (in
// its order). fn's error stops the listing and is returned as it is.
func EachVersionPage(ctx context.Context, l Lister, prefix string, fn func([]Version) error) error {
	pl, ok := l.(PageLister)
	if !ok {
		vs, err := l.ListVersions(ctx, prefix)
		if err != nil {
			return err
		}
		return fn(vs)
	}
	after := ""
	for {
		vs, next, err := pl.ListVersionsPage(ctx, prefix, after, ListPageKeys)
		if err != nil {
			return err
		}
		if err := fn(vs); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		if next <= after {
			return fmt.Errorf("list %s: the store's page after %q ends at %q: %w", prefix, after, next, ErrInvalidRequest)
		}
		after = next
	}
}
