// Package factsdb makes a facts index (internal/facts) look as one written
// by an older evidenced, for the tests of its upgrade at open: it works on
// the closed file with bbolt, by the layout, not through the facts
// package.
package factsdb

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ForgetSpans removes every source's span of facts ("first", "last") and
// the mark that the spans were filled, as in an index written before the
// index kept them, and returns how many sources had one. The index at path
// must be closed.
func ForgetSpans(path string) (int, error) {
	db, err := bolt.Open(path, 0o640, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		src := tx.Bucket([]byte("sources"))
		if src == nil {
			return fmt.Errorf("%s has no sources bucket", path)
		}
		rewrite := map[string][]byte{}
		if err := src.ForEach(func(k, v []byte) error {
			var m map[string]any
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if _, ok := m["first"]; !ok {
				return nil
			}
			delete(m, "first")
			delete(m, "last")
			b, err := json.Marshal(m)
			rewrite[string(k)] = b
			return err
		}); err != nil {
			return err
		}
		for k, v := range rewrite {
			if err := src.Put([]byte(k), v); err != nil {
				return err
			}
			n++
		}
		if p := tx.Bucket([]byte("progress")); p != nil {
			return p.Delete([]byte("spans"))
		}
		return nil
	})
	return n, err
}
