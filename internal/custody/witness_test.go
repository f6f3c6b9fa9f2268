package custody

import (
	"context"
	"errors"
	"testing"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Every signed head an Append writes reaches Options.Witness after the
// commit, in order, each a note the host key signs for exactly the
// ledger's size and root then; a witness that fails does not undo or fail
// the append.
func TestWitnessGetsEverySignedHead(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	f := newFixture(t)
	f.close()
	var got []WitnessedHead
	fail := false
	f.open(Options{Host: testHost, Signer: key, Witness: func(h WitnessedHead) error {
		if fail {
			return errors.New("witness down")
		}
		got = append(got, h)
		return nil
	}})
	populate(f) // HOST_KEY is written with the first record, in its transaction
	th, err := f.l.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != int(th.Size)-1 || got[len(got)-1].Size != th.Size || got[len(got)-1].Root != th.Root {
		t.Fatalf("%d heads witnessed, last %+v; the ledger has %d records, root %s", len(got), got[len(got)-1], th.Size, th.Root)
	}
	for i, h := range got {
		if i > 0 && h.Size != got[i-1].Size+1 {
			t.Errorf("head %d has size %d after %d", i, h.Size, got[i-1].Size)
		}
		c, err := tlog.OpenCheckpoint(h.Note, CheckpointOrigin(testHost), key.NoteVerifier())
		if err != nil || c.Size != h.Size || c.Root != h.Root || h.Key != signing.Fingerprint(key.Public()) {
			t.Errorf("head %d: %+v (%v)", i, c, err)
		}
	}
	fail = true
	if _, err := f.l.Append(ctx, Event{Type: HostStarted, Actor: "test"}, nil); err != nil {
		t.Errorf("append with the witness down: %v", err)
	}
}
