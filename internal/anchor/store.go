package anchor

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// Version is one stored version of an object.
type Version struct {
	// Key is relative to the store's configured prefix, as objstore keys are.
	Key       string
	VersionID string
	// IsLatest is true for the version Open(key, "") returns.
	IsLatest bool
}

// Lister lists object versions. objstore.Store has no listing (uploads
// never need one); anchoring does, to learn what was anchored from the
// store rather than from state the host could roll back.
//
// ListVersions returns every version (not delete markers) of every key
// starting with prefix (relative to the store's prefix), in any order.
// Errors wrap objstore's sentinels where the store gives one.
type Lister interface {
	ListVersions(ctx context.Context, prefix string) ([]Version, error)
}

// Store is an object store that can also list versions.
type Store interface {
	objstore.Store
	Lister
}

// WithLister joins a Store and a Lister over the same bucket and prefix.
func WithLister(s objstore.Store, l Lister) Store {
	return struct {
		objstore.Store
		Lister
	}{s, l}
}

// S3Lister lists versions with ListObjectVersions. Prefix must be the
// s3store.Config.Prefix of the Store it is paired with (s3store does not
// export it).
type S3Lister struct {
	Client *s3.Client
	Bucket string
	Prefix string
}

var _ Lister = (*S3Lister)(nil)

// S3 pairs an s3store.Store with its S3Lister; prefix is the store's
// configured key prefix.
func S3(st *s3store.Store, prefix string) Store {
	return WithLister(st, &S3Lister{Client: st.Client(), Bucket: st.Bucket(), Prefix: prefix})
}

// ListVersions implements Lister.
func (l *S3Lister) ListVersions(ctx context.Context, prefix string) ([]Version, error) {
	p := s3.NewListObjectVersionsPaginator(l.Client, &s3.ListObjectVersionsInput{
		Bucket: aws.String(l.Bucket), Prefix: aws.String(l.Prefix + prefix),
	})
	var out []Version
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list versions under %s%s: %w", l.Prefix, prefix, err)
		}
		for _, v := range page.Versions {
			key, ok := strings.CutPrefix(aws.ToString(v.Key), l.Prefix)
			if !ok {
				continue
			}
			out = append(out, Version{Key: key, VersionID: aws.ToString(v.VersionId), IsLatest: aws.ToBool(v.IsLatest)})
		}
	}
	return out, nil
}
