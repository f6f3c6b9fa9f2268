package anchor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/signing"
)

// An audit from what an earlier one verified (Since) checks the first
// new checkpoint's consistency proof from the remembered checkpoint: a
// continuation signed by the host key that does not extend it (another
// history, anchored elsewhere and copied in) is found, as a check from the
// first checkpoint finds it; Since is refused for a ledger's check.
func TestCheckSinceChecksTheNextProofFromTheRemembered(t *testing.T) {
	ctx := context.Background()
	k, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.NoteVerifier(host, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	a := openLedger(t, filepath.Join(t.TempDir(), "a.db"), k)
	defer a.Close()
	s := newMemStore()
	appendDocks(t, a, 0, 3)
	first, err := anchor.Anchor(ctx, a, s, host, until, anchor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := anchor.CheckOptions{Verifiers: []note.Verifier{v}, SkipRecords: true, Through: first.Size}
	rep, err := anchor.CheckWith(ctx, nil, s, host, o)
	if err != nil || !rep.OK() || rep.Audited == nil || rep.Audited.Size != first.Size {
		t.Fatalf("first audit: %+v %v", rep, err)
	}
	if _, err := anchor.CheckWith(ctx, a, s, host, anchor.CheckOptions{Verifiers: o.Verifiers, Since: rep.Audited}); err == nil {
		t.Error("Since accepted for a check with the ledger")
	}

	// Another history under the same key, anchored twice elsewhere: its
	// second checkpoint and the proof from its first, copied in.
	b := openLedger(t, filepath.Join(t.TempDir(), "b.db"), k)
	defer b.Close()
	other := newMemStore()
	appendDocks(t, b, 10, 1)
	if _, err := anchor.Anchor(ctx, b, other, host, until, anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	appendDocks(t, b, 11, 6)
	second, err := anchor.Anchor(ctx, b, other, host, until, anchor.Options{})
	if err != nil || second.Size <= first.Size {
		t.Fatalf("the other history's second anchor: %+v %v", second, err)
	}
	proof := strings.TrimSuffix(anchor.CheckpointKey(host, second.Size), ".note") + ".proof"
	for _, key := range []string{anchor.CheckpointKey(host, second.Size), proof} {
		putObject(t, s, key, read(t, other, key, ""))
	}
	o.Since, o.Through = rep.Audited, first.Size
	again, err := anchor.CheckWith(ctx, nil, s, host, o)
	if err != nil {
		t.Fatal(err)
	}
	requireProblem(t, again, proof, "want consistency")
}
