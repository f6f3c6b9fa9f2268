package s3store

import (
	"context"
	"fmt"
	"io"
	"slices"
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

var _ objstore.PageLister = (*Store)(nil)

// ListVersionsPage implements objstore.PageLister with ListObjectVersions
// from KeyMarker after (the keys after it; the key itself, which some
// servers list again, is left out). S3 may end a page in
// the middle of a key's versions: the last key of a cut page is then left
// to the next page, which lists it whole, unless it is the page's only
// key, whose versions are then read on to its end.
func (s *Store) ListVersionsPage(ctx context.Context, prefix, after string, max int) ([]objstore.Version, string, error) {
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(s.bucket), Prefix: optString(s.key(prefix))}
	if after != "" {
		in.KeyMarker = aws.String(s.key(after))
	}
	if max > 0 {
		in.MaxKeys = aws.Int32(int32(min(max, 1000)))
	}
	var out []objstore.Version
	readingOn := "" // the one key whose versions a cut page left unfinished
	for {
		page, err := s.c.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, "", mapErr("list versions under", prefix, err)
		}
		other := false // a key after readingOn was listed: it is whole
		for _, v := range page.Versions {
			key, ok := strings.CutPrefix(aws.ToString(v.Key), s.prefix)
			switch {
			case !ok, after != "" && key <= after:
				// S3 starts after KeyMarker; versitygw lists the marker
				// key's versions again: they were the page before's.
				continue
			case readingOn != "" && key != readingOn:
				other = true
				continue
			case readingOn != "" && slices.ContainsFunc(out, func(o objstore.Version) bool { return o.VersionID == aws.ToString(v.VersionId) }):
				continue // the version marker's own, listed again
			}
			out = append(out, objstore.Version{
				Key: key, VersionID: aws.ToString(v.VersionId), Size: aws.ToInt64(v.Size), IsLatest: aws.ToBool(v.IsLatest),
			})
		}
		truncated := aws.ToBool(page.IsTruncated)
		switch {
		case readingOn != "" && other:
			return out, readingOn, nil
		case !truncated:
			return out, "", nil
		case readingOn == "" && len(out) > 0:
			last := out[len(out)-1].Key
			i := len(out)
			for i > 0 && out[i-1].Key == last {
				i--
			}
			if i > 0 { // the last key to the next page, whole
				return out[:i], out[i-1].Key, nil
			}
			readingOn = last
		}
		// On from exactly where the page ended: the one key's versions
		// (or past a page of delete markers only).
		if aws.ToString(page.NextKeyMarker) == aws.ToString(in.KeyMarker) && aws.ToString(page.NextVersionIdMarker) == aws.ToString(in.VersionIdMarker) {
			return nil, "", fmt.Errorf("list versions under %s: the store's page ends where it began (%s): %w", prefix, aws.ToString(in.KeyMarker), objstore.ErrInvalidRequest)
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
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
