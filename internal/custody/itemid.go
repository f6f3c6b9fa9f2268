package custody

import (
	"fmt"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// ItemID derives the item identity from what the camera says about the file:
// serial, path on the camera, size and modification time. It is the ledger's
// key for an item (every package that asks "is this recording held?" derives
// it here), and deterministic so that a crash-and-retry or a re-dock finds
// the same item.
func ItemID(serial, rel string, size int64, mtime time.Time) string {
	h := digest.New()
	fmt.Fprintf(h, "evidenced-item-v1\x00%s\x00%s\x00%d\x00%d", serial, rel, size, mtime.UnixNano())
	return digest.FromHash(h).Hex()[:24]
}
