package s3store

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/objstore"
)

var (
	_ objstore.Lister = (*Store)(nil)
	_ objstore.Ranger = (*Store)(nil)
)

// ListVersions implements objstore.Lister with ListObjectVersions. Keys are
// returned relative to the configured Prefix; delete markers are left out.
func (s *Store) ListVersions(ctx context.Context, prefix string) ([]objstore.Version, error) {
	p := s3.NewListObjectVersionsPaginator(s.c, &s3.ListObjectVersionsInput{
		Bucket: aws.String(s.bucket), Prefix: optString(s.key(prefix)),
	})
	var out []objstore.Version
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, mapErr("list versions under", prefix, err)
		}
		for _, v := range page.Versions {
			key, ok := strings.CutPrefix(aws.ToString(v.Key), s.prefix)
			if !ok {
				continue
			}
			out = append(out, objstore.Version{
				Key: key, VersionID: aws.ToString(v.VersionId), Size: aws.ToInt64(v.Size), IsLatest: aws.ToBool(v.IsLatest),
			})
		}
	}
	return out, nil
}

// OpenRange implements objstore.Ranger with a ranged GetObject.
func (s *Store) OpenRange(ctx context.Context, key, versionID string, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("open range %s: offset %d, length %d: %w", key, off, n, objstore.ErrInvalidRequest)
	}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(versionID),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	})
	if err != nil {
		return nil, mapErr("open range of", key, err)
	}
	return out.Body, nil
}

var _ objstore.Directories = (*Store)(nil)

// ListDirectories implements objstore.Directories with ListObjectsV2 and
// delimiter "/".
func (s *Store) ListDirectories(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: optString(s.key(prefix)), Delimiter: aws.String("/"),
	})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, mapErr("list directories under", prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			seg, ok := strings.CutPrefix(aws.ToString(cp.Prefix), s.key(prefix))
			if seg = strings.TrimSuffix(seg, "/"); ok && seg != "" {
				out = append(out, seg)
			}
		}
	}
	return out, nil
}
