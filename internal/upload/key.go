package upload

import (
	"fmt"
	"path"
	"strings"

	"github.com/evidenced/evidenced/internal/custody"
)

// ObjectKey is the documented key layout of an item in the object store
// (before the configured prefix): <camera>/<YYYY>/<MM>/<DD>/<item id><.ext>,
// dated by the recording time in UTC. The extension is kept (lower-cased,
// alphanumeric only) so that a downloaded object opens in a player; everything
// else about the source path lives in the ledger and the object's metadata.
func ObjectKey(it custody.Item) string {
	ext := strings.ToLower(path.Ext(it.SourcePath))
	clean := strings.Builder{}
	for _, r := range strings.TrimPrefix(ext, ".") {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			clean.WriteRune(r)
		}
	}
	suffix := ""
	if c := clean.String(); c != "" && len(c) <= 8 {
		suffix = "." + c
	}
	t := it.RecordedAt.UTC()
	return fmt.Sprintf("%s/%04d/%02d/%02d/%s%s", it.Camera, t.Year(), t.Month(), t.Day(), it.ID, suffix)
}
