package anchor_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidenced/evidenced/internal/anchor"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/signing"
)

// putObject overwrites key in s with b (a new version, as an insider's PUT
// makes one).
func putObject(t *testing.T, s anchor.Store, key string, b []byte) {
	t.Helper()
	sum := digest.Bytes(b)
	if _, err := s.Put(context.Background(), objstore.PutRequest{
		Key: key, Body: bytes.NewReader(b), Size: int64(len(b)), SHA256: sum,
		Metadata: map[string]string{"sha256": sum.Hex()},
	}); err != nil {
		t.Fatal(err)
	}
}

// The anchored .sig files are checked record by record with the key in
// force at that record, following the HOST_KEY and KEY_ROTATED records
// through a key rotation; a changed or dropped signature is named.
func TestCheckAnchoredSignatures(t *testing.T) {
	ctx := context.Background()
	k1, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), k1)
	defer l.Close()
	s := newMemStore()
	until := time.Now().Add(time.Hour)
	appendDocks(t, l, 0, 3) // HOST_KEY + 3, signed by k1
	if _, err := anchor.Anchor(ctx, l, s, host, until, anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RotateKey(ctx, k2); err != nil { // record 5, signed by k1
		t.Fatal(err)
	}
	appendDocks(t, l, 3, 2) // records 6, 7, signed by k2
	if _, err := anchor.Anchor(ctx, l, s, host, until, anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	opts := anchor.CheckOptions{Verifiers: []note.Verifier{k1.NoteVerifier(), k2.NoteVerifier()}}
	rep, err := anchor.CheckWith(ctx, l, s, host, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 7 || rep.Signatures != 7 {
		t.Fatalf("clean check: records %d, signatures %d\n%s", rep.Records, rep.Signatures, problems(rep))
	}

	sk := anchor.SigsKey(host, 5, 7)
	orig := read(t, s, sk, "")
	lines := bytes.Split(bytes.TrimSuffix(orig, []byte("\n")), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%s: %d lines", sk, len(lines))
	}
	recs := bytes.Split(bytes.TrimSuffix(read(t, s, anchor.RecordsKey(host, 5, 7), ""), []byte("\n")), []byte("\n"))
	sigLine := func(seq int, sig []byte) []byte {
		return []byte(strconv.Itoa(seq) + " " + base64.StdEncoding.EncodeToString(sig))
	}
	k1Sig, _ := k1.Sign(recs[1]) // record 6 signed with the rotated-out key
	cases := []struct {
		name  string
		edit  func() []byte
		wants string
	}{
		{"signature by the key no longer in force", func() []byte {
			return join(lines[0], sigLine(6, k1Sig), lines[2])
		}, "record 6: the signature does not verify with the key in force (" + k2.KeyID() + ")"},
		{"signature bit flipped", func() []byte {
			sig, _ := base64.StdEncoding.DecodeString(string(bytes.Fields(lines[0])[1]))
			sig[ed25519.SignatureSize-1] ^= 1
			return join(sigLine(5, sig), lines[1], lines[2])
		}, "record 5: the signature does not verify with the key in force (" + k1.KeyID() + ")"},
		{"signature removed", func() []byte {
			return join(lines[0], lines[1], []byte("7"))
		}, "record 7: no anchored signature, but a host key is in force"},
		{"line missing", func() []byte {
			return join(lines[0], lines[1])
		}, "has 2 lines for the 3 records 5..7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			putObject(t, s, sk, c.edit())
			defer putObject(t, s, sk, orig) // back to the original bytes for the next case
			rep, err := anchor.CheckWith(ctx, l, s, host, opts)
			if err != nil {
				t.Fatal(err)
			}
			requireProblem(t, rep, sk, c.wants)
		})
	}
}

func join(lines ...[]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// A process killed mid-anchor leaves a proof whose checkpoint was never
// written (the checkpoint goes last), locked for good. That is a notice, not
// an integrity failure: a crash must not make verify fail forever.
func TestInterruptedAnchorIsANotice(t *testing.T) {
	ctx := context.Background()
	k, err := signing.Generate(host)
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t, filepath.Join(t.TempDir(), "ledger.db"), k)
	defer l.Close()
	s := newMemStore()
	until := time.Now().Add(time.Hour)
	appendDocks(t, l, 0, 3)
	if _, err := anchor.Anchor(ctx, l, s, host, until, anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	// The leftover of an anchor at size 9 killed before its checkpoint.
	putObject(t, s, anchor.CheckpointKey(host, 9)[:len(anchor.CheckpointKey(host, 9))-len(".note")]+".proof",
		[]byte("evidenced-tlog-proof/v1\nconsistency 4 9\n"))
	appendDocks(t, l, 3, 2)
	if _, err := anchor.Anchor(ctx, l, s, host, until, anchor.Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := anchor.CheckWith(ctx, l, s, host, anchor.CheckOptions{Verifiers: []note.Verifier{k.NoteVerifier()}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("an interrupted anchor's leftover made the check fail:\n%s", problems(rep))
	}
	if len(rep.Notices) != 1 || !strings.Contains(rep.Notices[0], "9.proof") {
		t.Errorf("notices %q, want one naming 9.proof", rep.Notices)
	}
}
