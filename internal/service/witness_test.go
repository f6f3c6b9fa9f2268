package service

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/testutil/forge"
	"github.com/evidenced/evidenced/internal/tlog"
	"github.com/evidenced/evidenced/internal/witness"
)

// Issue #12, finding 2: records that released nothing and were never
// anchored (a find, a custody look) could be trimmed from the ledger by
// anyone who can write state_dir: put the ledger back as it was, consistent
// in itself, no key needed. Every signed head is now witnessed outside
// state_dir, and verify and the daemon's start compare the ledger with the
// newest one. A head planted in the witness without the host key is not
// trusted; a witness that cannot be read leaves verify incomplete, never
// failed.
func TestWitnessCatchesTrimmedUnanchoredTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wfile := filepath.Join(dir, "witness", "heads.jsonl")
	if err := os.MkdirAll(filepath.Dir(wfile), 0o750); err != nil {
		t.Fatal(err)
	}
	extra := "custody:\n  witness_file: " + wfile + "\n"
	open := func() *Service {
		t.Helper()
		s, err := Open(ctx, testConfig(t, dir, extra), nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	who := Caller{Actor: "alice"}
	s := open()
	id := ingestOne(t, s, dir, who)
	db := s.config.LedgerPath()
	s.Close()
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	s = open()
	if rep := s.verify(ctx, false); !rep.OK || !rep.Complete() || rep.WitnessedSize == 0 {
		t.Fatalf("verify of the intact ledger: %+v", rep)
	}
	if _, err := s.Find(ctx, who, FindOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Custody(ctx, who, id, "look"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(db, before, 0o600); err != nil { // the tail trimmed
		t.Fatal(err)
	}

	s = open()
	rep := s.verify(ctx, false)
	if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Kind != "witness" ||
		!strings.Contains(rep.Problems[0].What, "records were removed") {
		t.Errorf("verify of the trimmed ledger: %+v", rep)
	}
	if err := s.checkNotBehind(ctx); !errors.Is(err, ErrBehindWitness) {
		t.Errorf("start check on the trimmed ledger: %v, want ErrBehindWitness", err)
	}
	s.Close()

	// A head planted in the witness, signed by a key that is not the
	// host's, claiming a larger ledger: not trusted, so it neither fails
	// verify nor stops the start.
	if err := os.WriteFile(db, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(wfile); err != nil {
		t.Fatal(err)
	}
	note := forge.Checkpoint(t, "test-dock", 1000, tlog.Hash{})
	b, _ := json.Marshal(witness.Head{Host: "test-dock", Size: 1000, Note: string(note), At: time.Now()})
	if err := os.WriteFile(wfile, append(b, '\n'), 0o640); err != nil {
		t.Fatal(err)
	}
	s = open()
	rep = s.verify(ctx, false)
	if !rep.OK || !rep.Complete() || !strings.Contains(noticesText(rep), "not signed by a host key the ledger vouches for (for their size) were not trusted") {
		t.Errorf("verify with a planted witnessed head: %+v", rep)
	}
	if err := s.checkNotBehind(ctx); err != nil {
		t.Errorf("start check with a planted witnessed head: %v", err)
	}
	s.Close()

	// A witness that cannot be read: verify is incomplete, not failed,
	// and the start goes on.
	if err := os.Remove(wfile); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(wfile, 0o750); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	rep = s.verify(ctx, false)
	if !rep.OK || rep.Complete() || !strings.Contains(rep.Unchecked(), "not compared with its witness") {
		t.Errorf("verify with an unreadable witness: %+v", rep)
	}
	if err := s.checkNotBehind(ctx); err != nil {
		t.Errorf("start check with an unreadable witness: %v", err)
	}
}

func noticesText(rep VerifyReport) string {
	var b strings.Builder
	for _, n := range rep.Notices {
		b.WriteString(n.What + "\n")
	}
	return b.String()
}
