// Package forge makes what someone without the host key can produce, for
// the tests that prove it is not believed: a checkpoint of a host's custody
// ledger signed by a key of the forger's own (planted in the object store,
// in the witness, or in an export package in place of the host's).
//
// It imports package custody for the checkpoint's origin, so custody's own
// tests cannot use it (an import cycle); they sign their forged heads in
// place.
package forge

import (
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Checkpoint returns a signed note for host's ledger of size records with
// root, exactly as the host would write it (origin evidenced/<host>, signer
// name evidenced-<host>) but signed by a freshly generated key that is not
// the host's: only a verifier that pins the host key tells it apart.
func Checkpoint(t testing.TB, host string, size uint64, root tlog.Hash) []byte {
	t.Helper()
	stranger, err := signing.Generate(host)
	if err != nil {
		t.Fatalf("forge: a stranger's key for %s: %v", host, err)
	}
	ns, err := signing.NoteSignerFor(host, stranger)
	if err != nil {
		t.Fatalf("forge: note signer for %s: %v", host, err)
	}
	note, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: custody.CheckpointOrigin(host), Size: size, Root: root}, ns)
	if err != nil {
		t.Fatalf("forge: sign a checkpoint of %s: %v", host, err)
	}
	return note
}
