package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// StatusReport is each dock bay's state and the upload queue.
type StatusReport struct {
	Daemon bool                  `json:"daemon_running"`
	Bays   []Bay                 `json:"bays"`
	Queue  map[custody.State]int `json:"items_by_state"`
	// Failed counts items not verified whose last upload or verification
	// failed permanently (last_error set).
	Failed int `json:"items_failed"`
}

// Status reports the bays (inDaemon: this process is the daemon watching
// them) and how many items are in each state.
func (s *Service) Status(ctx context.Context, inDaemon bool) (StatusReport, error) {
	out := StatusReport{Daemon: inDaemon, Bays: s.bays.List(), Queue: map[custody.State]int{}}
	if err := s.ledger.Items(ctx, custody.Filter{}, func(it custody.Item) error {
		out.Queue[it.State]++
		if it.State != custody.StateVerified && it.LastError != "" {
			out.Failed++
		}
		return nil
	}); err != nil {
		return out, fmt.Errorf("status: %w", err)
	}
	return out, nil
}

// StoreInit creates the configured bucket with versioning and Object Lock,
// or checks an existing one, and returns its name.
func (s *Service) StoreInit(ctx context.Context) (string, error) {
	st, ok := s.store.(*s3store.Store)
	if !ok || st == nil {
		return "", errors.New("no object_store configured")
	}
	if err := st.EnsureBucket(ctx); err != nil {
		return "", s.storeErr(err)
	}
	return s.config.ObjectStore.Bucket, nil
}
