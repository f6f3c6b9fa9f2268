//go:build linux

package catalog

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped drops the index file's pages from this process's resident
// memory (madvise MADV_DONTNEED over bbolt's read-only shared map). They
// stay in the page cache, and a later read through the map finds them
// there (a minor fault); nothing is lost, the map only forgets them.
//
// Why: bbolt reads through its map, and every page a walk of the whole
// index touched stays counted in the process's RSS (RssFile) until the
// kernel reclaims it: a walk of every item would count the whole items
// bucket, ≈ 300 MiB at a million items, against the console's memory
// (docs/BENCHMARKS.md). Called inside a read transaction, so bbolt cannot
// remap the file meanwhile.
func (c *Catalog) releaseMapped() {
	_ = c.db.View(func(tx *bolt.Tx) error {
		info := c.db.Info()
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
		return nil
	})
}
