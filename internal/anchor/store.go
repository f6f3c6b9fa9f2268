package anchor

import (
	"github.com/evidenced/evidenced/internal/objstore"
)

// Version is one stored version of an object (objstore's listing entry).
type Version = objstore.Version

// Lister lists object versions: anchoring learns what was anchored from
// the store rather than from state the host could roll back. See
// objstore.Lister for its contract.
type Lister = objstore.Lister

// Store is an object store that can also list versions. s3store.Store and
// memstore.Store are both one.
type Store interface {
	objstore.Store
	objstore.Lister
}
