package memstore

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/evidenced/evidenced/internal/objstore"
)

// PutRetention implements objstore.Retainer. Like S3 it refuses to shorten or weaken
// a version's retention (ErrRetentionShortened); a hook sees it as
// "put-retention".
func (m *Store) PutRetention(ctx context.Context, key, versionID, mode string, until time.Time) error {
	if err := m.check("put-retention", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put retention %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return fmt.Errorf("put retention %w", err)
	}
	if err := objstore.CheckExtension(v.mode, v.until, mode, until); err != nil {
		return fmt.Errorf("put retention %s version %s: %w", key, v.id, err)
	}
	v.mode, v.until = mode, until.UTC().Truncate(time.Second)
	return nil
}

// PutLegalHold implements objstore.Retainer; a hook sees it as "put-legal-hold".
func (m *Store) PutLegalHold(ctx context.Context, key, versionID string, on bool) error {
	if err := m.check("put-legal-hold", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put legal hold %s: %w", key, err)
	}
	return m.SetLegalHold(key, versionID, on)
}

// PutTags implements objstore.Tagger; a hook sees it as "put-tags".
func (m *Store) PutTags(ctx context.Context, key, versionID string, tags map[string]string) error {
	if err := m.check("put-tags", key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put tags %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return err
	}
	v.tags = maps.Clone(tags)
	return nil
}

// ClearRetention removes a version's retention as a privileged GOVERNANCE
// bypass would (or a store that silently dropped it): for tests that check
// evidenced notices an object that is no longer locked.
func (m *Store) ClearRetention(key, versionID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := m.versionLocked(key, versionID)
	if err != nil {
		return err
	}
	v.mode, v.until = "", time.Time{}
	return nil
}
