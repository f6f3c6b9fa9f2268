package s3store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/objstore"
)

var _ objstore.Retainer = (*Store)(nil)

// PutRetention implements objstore.Retainer with PutObjectRetention. It
// reads the version's current retention first and refuses a change that
// would shorten or weaken it (objstore.ErrRetentionShortened) without
// sending it: GOVERNANCE can be shortened by a principal allowed to bypass
// it, and evidenced must never be the one that does.
//
// S3 treats any change to a GOVERNANCE retention other than a later date in
// the same mode (raising it to COMPLIANCE, say) as an override and wants
// x-amz-bypass-governance-retention for it. The header is sent only in that
// case, after CheckExtension proved the change only strengthens the lock; it
// then needs s3:BypassGovernanceRetention, and without it the store's
// AccessDenied is returned as is.
func (s *Store) PutRetention(ctx context.Context, key, versionID, mode string, until time.Time) error {
	info, err := s.Stat(ctx, key, versionID)
	if err != nil {
		return fmt.Errorf("put retention: %w", err)
	}
	if err := objstore.CheckExtension(info.LockMode, info.RetainUntil, mode, until); err != nil {
		return fmt.Errorf("put retention %s version %s: %w", key, info.VersionID, err)
	}
	until = until.UTC().Truncate(time.Second)
	if info.LockMode == mode && info.RetainUntil.Equal(until) {
		return nil
	}
	_, err = s.c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(info.VersionID),
		Retention:                 &types.ObjectLockRetention{Mode: types.ObjectLockRetentionMode(mode), RetainUntilDate: aws.Time(until)},
		BypassGovernanceRetention: optBool(info.LockMode == objstore.LockGovernance && mode != objstore.LockGovernance),
	})
	if err != nil {
		return mapErr("put retention", key, err)
	}
	return nil
}

// PutLegalHold implements objstore.Retainer with PutObjectLegalHold.
func (s *Store) PutLegalHold(ctx context.Context, key, versionID string, on bool) error {
	status := types.ObjectLockLegalHoldStatusOff
	if on {
		status = types.ObjectLockLegalHoldStatusOn
	}
	_, err := s.c.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(versionID),
		LegalHold: &types.ObjectLockLegalHold{Status: status},
	})
	if err != nil {
		return mapErr("put legal hold", key, err)
	}
	return nil
}

// PutTags implements objstore.Tagger with PutObjectTagging on the version.
func (s *Store) PutTags(ctx context.Context, key, versionID string, tags map[string]string) error {
	set := make([]types.Tag, 0, len(tags))
	for k, v := range tags {
		set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	slices.SortFunc(set, func(a, b types.Tag) int { return strings.Compare(aws.ToString(a.Key), aws.ToString(b.Key)) })
	_, err := s.c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.key(key)), VersionId: optString(versionID),
		Tagging: &types.Tagging{TagSet: set},
	})
	if err != nil {
		return mapErr("put tags", key, err)
	}
	return nil
}

func optBool(b bool) *bool {
	if !b {
		return nil
	}
	return aws.Bool(true)
}
