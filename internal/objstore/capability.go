package objstore

import (
	"context"
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
