package upload

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/evidenced/evidenced/internal/objstore"
)

// settle makes the version an upload created hold what the upload asked
// for, and returns what it had to apply and the version's ETag.
//
// A single PutObject carries its Object Lock and tags with the content. A
// multipart upload carries them on CreateMultipartUpload, and there some
// stores take them and never apply them: Ceph RGW 16.2 keeps them as raw
// headers, so the completed object is unlocked (deletable by anyone with
// write access) and untagged, and CompleteMultipartUpload returns no ETag
// either. So after every multipart upload (on any store) the new version
// is read back; a retention weaker than asked is set (PutRetention on that
// version, which only ever extends), missing tags are written (PutTags),
// and the version is read again to prove both took. Nothing is asked of
// the legal hold at upload: holds are set on a version once it exists.
//
// What it applied is recorded in the UPLOADED record
// (applied_after_upload); the verification that follows checks the lock
// again, as `verify --remote` does later.
func (u *Uploader) settle(ctx context.Context, req objstore.PutRequest, versionID string) (applied []string, etag string, err error) {
	info, err := u.store.Stat(ctx, req.Key, versionID)
	if err != nil {
		return nil, "", fmt.Errorf("check the uploaded version %s of %s: %w", versionID, req.Key, err)
	}
	if lockMissing(info, req) {
		r, ok := u.store.(objstore.Retainer)
		if !ok {
			return nil, "", fmt.Errorf("version %s of %s came out with lock %q until %s, not %s until %s, and the store cannot set retention: %w",
				versionID, req.Key, info.LockMode, fmtTime(info.RetainUntil), req.LockMode, fmtTime(req.RetainUntil), ErrPermanent)
		}
		if err := r.PutRetention(ctx, req.Key, versionID, req.LockMode, req.RetainUntil); err != nil {
			return nil, "", fmt.Errorf("apply the missing Object Lock to version %s of %s: %w", versionID, req.Key, err)
		}
		applied = append(applied, "retention")
	}
	if tagsMissing(info.Tags, req.Tags) {
		tg, ok := u.store.(objstore.Tagger)
		if !ok {
			return nil, "", fmt.Errorf("version %s of %s came out without its tags and the store cannot set them: %w", versionID, req.Key, ErrPermanent)
		}
		tags := maps.Clone(info.Tags)
		if tags == nil {
			tags = map[string]string{}
		}
		maps.Copy(tags, req.Tags)
		if err := tg.PutTags(ctx, req.Key, versionID, tags); err != nil {
			return nil, "", fmt.Errorf("apply the missing tags to version %s of %s: %w", versionID, req.Key, err)
		}
		applied = append(applied, "tags")
	}
	if len(applied) > 0 {
		if info, err = u.store.Stat(ctx, req.Key, versionID); err != nil {
			return applied, "", fmt.Errorf("check version %s of %s after applying %v: %w", versionID, req.Key, applied, err)
		}
		if lockMissing(info, req) || tagsMissing(info.Tags, req.Tags) {
			return applied, "", fmt.Errorf("version %s of %s still has lock %q until %s and tags %v after applying %v (want %s until %s, tags %v)",
				versionID, req.Key, info.LockMode, fmtTime(info.RetainUntil), info.Tags, applied, req.LockMode, fmtTime(req.RetainUntil), req.Tags)
		}
		u.log.Warn("the store dropped the Object Lock or tags of a multipart upload; applied them to the version",
			"key", req.Key, "version_id", versionID, "applied", applied)
	}
	return applied, info.ETag, nil
}

// lockMissing reports whether the version is locked less than req asks:
// another mode, or an earlier retain-until (a bucket default retention,
// say). A stronger or longer lock is not "missing".
func lockMissing(info objstore.ObjectInfo, req objstore.PutRequest) bool {
	if req.LockMode == "" {
		return false
	}
	return objstore.CheckExtension(info.LockMode, info.RetainUntil, req.LockMode, req.RetainUntil) == nil &&
		(info.LockMode != req.LockMode || info.RetainUntil.Before(req.RetainUntil.Truncate(time.Second)))
}

// tagsMissing reports whether any tag of want is absent from, or different
// in, have.
func tagsMissing(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
