package custody

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/tlog"
)

// requireRootNamed checks that err is the checkpoint failure of a ledger
// whose first size records have a Merkle root other than the checkpoint's
// want, and that it names both roots, so an auditor sees what differs.
func requireRootNamed(t *testing.T, err error, size uint64, want, have tlog.Hash) {
	t.Helper()
	if !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("VerifyAgainst a checkpoint of the same size with another root: %v, want ErrCheckpoint", err)
	}
	for _, s := range []string{"Merkle root", want.String(), have.String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
	if want == have {
		t.Fatalf("test bug: both roots are %s", want)
	}
	t.Logf("size %d: %v", size, err)
}

// TestCheckpointWithAnotherRootSameSize: a checkpoint properly signed by the
// host's key, of exactly the ledger's size, whose root differs in one bit.
// Only the root comparison can tell: sizes agree, the signature verifies.
func TestCheckpointWithAnotherRootSameSize(t *testing.T) {
	key := newKey(t)
	f := newSignedFixture(t, key)
	populate(f)
	ctx := context.Background()
	cp, err := f.l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.l.VerifyAgainst(ctx, cp, key.NoteVerifier())
	if err != nil {
		t.Fatalf("the ledger does not reproduce its own checkpoint: %v", err)
	}
	other := c
	other.Root[len(other.Root)-1] ^= 1
	forged, err := tlog.SignCheckpoint(other, key.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.l.VerifyAgainst(ctx, forged, key.NoteVerifier())
	requireRootNamed(t, err, c.Size, other.Root, c.Root)
}

// TestForkedLedgerFailsCheckpointAtSameSize: two ledgers of the same host
// and key share their history up to the last record, which differs (a fork,
// or a ledger rewritten by someone holding the key). Each has as many
// records as the other's checkpoint, each is internally clean, and each
// fails the other's checkpoint naming both roots.
func TestForkedLedgerFailsCheckpointAtSameSize(t *testing.T) {
	key := newKey(t)
	ctx := context.Background()
	var cps [2][]byte
	var cs [2]tlog.Checkpoint
	var fs [2]*fixture
	for i, reason := range []string{"complaint 7", "complaint 8"} {
		f := newSignedFixture(t, key)
		populate(f)
		f.append(Event{Type: Accessed, Actor: "investigator", Item: "item-a", Details: map[string]string{"reason": reason}}, nil)
		f.requireClean()
		cp, err := f.l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cs[i], err = f.l.VerifyAgainst(ctx, cp, key.NoteVerifier()); err != nil {
			t.Fatalf("ledger %d does not reproduce its own checkpoint: %v", i, err)
		}
		fs[i], cps[i] = f, cp
	}
	if cs[0].Size != cs[1].Size {
		t.Fatalf("test bug: sizes %d and %d", cs[0].Size, cs[1].Size)
	}
	_, err := fs[1].l.VerifyAgainst(ctx, cps[0], key.NoteVerifier())
	requireRootNamed(t, err, cs[0].Size, cs[0].Root, cs[1].Root)
	_, err = fs[0].l.VerifyAgainst(ctx, cps[1], key.NoteVerifier())
	requireRootNamed(t, err, cs[1].Size, cs[1].Root, cs[0].Root)
}
