//go:build !linux

package catalog

// releaseMapped is a no-op where madvise is not used: the kernel reclaims
// the mapped pages under pressure.
func (c *Catalog) releaseMapped() {}
