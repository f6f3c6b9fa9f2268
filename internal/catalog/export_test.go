package catalog

// SetEachItemBatch sets how many items EachItem reads in one read
// transaction, for a test; the returned func restores it.
func SetEachItemBatch(n int) (restore func()) {
	old := eachItemBatch
	eachItemBatch = n
	return func() { eachItemBatch = old }
}
