package tlog

import (
	"bytes"
	stdsha256 "crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"
)

func hd(t testing.TB, s string) Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		t.Fatalf("bad hex %q", s)
	}
	return Hash(b)
}

// Leaf inputs and roots: the RFC 6962 reference vectors published with
// github.com/transparency-dev/merkle (testonly/constants.go).
var vecLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var vecRoots = []string{
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func vecLeafHashes(t testing.TB) []Hash {
	var out []Hash
	for _, s := range vecLeaves {
		b, _ := hex.DecodeString(s)
		out = append(out, LeafHash(b))
	}
	return out
}

func TestRootsMatchReferenceVectors(t *testing.T) {
	leaves := vecLeafHashes(t)
	var f Frontier
	for n := 0; n <= len(leaves); n++ {
		want := hd(t, vecRoots[n])
		if got := f.Root(); got != want {
			t.Errorf("frontier root of %d leaves %s, want %s", n, got, want)
		}
		if got := RootOf(leaves[:n]); got != want {
			t.Errorf("RootOf %d leaves %s, want %s", n, got, want)
		}
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		g, err := UnmarshalFrontier(b)
		if err != nil || g.Root() != want || g.Size != uint64(n) {
			t.Errorf("frontier %d does not round-trip: %v", n, err)
		}
		if n < len(leaves) {
			f.Append(leaves[n])
		}
	}
}

func TestProofsMatchReferenceVectors(t *testing.T) {
	leaves := vecLeafHashes(t)
	incl := []struct {
		index, size uint64
		want        []string
	}{
		{0, 1, nil},
		{0, 2, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"}},
		{1, 2, []string{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"}},
		{2, 3, []string{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
		{1, 5, []string{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{0, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{5, 8, []string{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	}
	for _, tc := range incl {
		got, err := InclusionProof(leaves[:tc.size], tc.index)
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(got); s != fmt.Sprint(hashes(t, tc.want)) {
			t.Errorf("inclusion %d/%d = %v, want %v", tc.index, tc.size, got, tc.want)
		}
		if err := VerifyInclusion(leaves[tc.index], tc.index, tc.size, got, hd(t, vecRoots[tc.size])); err != nil {
			t.Errorf("inclusion %d/%d does not verify: %v", tc.index, tc.size, err)
		}
	}
	cons := []struct {
		old, size uint64
		want      []string
	}{
		{1, 1, nil},
		{1, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{2, 5, []string{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{6, 8, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	}
	for _, tc := range cons {
		got, err := ConsistencyProof(leaves[:tc.size], tc.old)
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(got); s != fmt.Sprint(hashes(t, tc.want)) {
			t.Errorf("consistency %d->%d = %v, want %v", tc.old, tc.size, got, tc.want)
		}
		if err := VerifyConsistency(tc.old, tc.size, hd(t, vecRoots[tc.old]), hd(t, vecRoots[tc.size]), got); err != nil {
			t.Errorf("consistency %d->%d does not verify: %v", tc.old, tc.size, err)
		}
	}
}

func hashes(t testing.TB, ss []string) []Hash {
	var out []Hash
	for _, s := range ss {
		out = append(out, hd(t, s))
	}
	return out
}

// TestAgainstSumdbTlog cross-checks every proof for every size up to 70
// against golang.org/x/mod/sumdb/tlog, an independent RFC 6962
// implementation, and checks that tampered proofs fail.
func TestAgainstSumdbTlog(t *testing.T) {
	const N = 70
	var leaves []Hash
	var stored []xtlog.Hash
	reader := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		out := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range N {
		data := []byte(fmt.Sprintf("record %d", i))
		leaves = append(leaves, LeafHash(data))
		if xtlog.RecordHash(data) != xtlog.Hash(leaves[i]) {
			t.Fatalf("leaf %d hash differs from sumdb/tlog", i)
		}
		hs, err := xtlog.StoredHashes(int64(i), data, reader)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	for n := uint64(1); n <= N; n++ {
		th, err := xtlog.TreeHash(int64(n), reader)
		if err != nil {
			t.Fatal(err)
		}
		root := RootOf(leaves[:n])
		if Hash(th) != root {
			t.Fatalf("root of %d differs from sumdb/tlog", n)
		}
		for i := range n {
			p, _ := InclusionProof(leaves[:n], i)
			if err := xtlog.CheckRecord(toX(p), int64(n), th, int64(i), xtlog.Hash(leaves[i])); err != nil {
				t.Fatalf("sumdb/tlog rejects our inclusion proof %d/%d: %v", i, n, err)
			}
			if err := VerifyInclusion(leaves[i], i, n, p, root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", i, n, err)
			}
			xp, err := xtlog.ProveRecord(int64(n), int64(i), reader)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(toX(p)) != fmt.Sprint(xp) {
				t.Fatalf("inclusion %d/%d differs from sumdb/tlog", i, n)
			}
			if len(p) > 0 {
				bad := append([]Hash(nil), p...)
				bad[len(bad)/2][3] ^= 1
				if err := VerifyInclusion(leaves[i], i, n, bad, root); !errors.Is(err, ErrProof) {
					t.Fatalf("tampered inclusion %d/%d: %v", i, n, err)
				}
				if err := VerifyInclusion(leaves[i], i, n, p[:len(p)-1], root); !errors.Is(err, ErrProof) {
					t.Fatalf("short inclusion %d/%d: %v", i, n, err)
				}
			}
			if err := VerifyInclusion(leaves[i], i, n, append(p, root), root); !errors.Is(err, ErrProof) {
				t.Fatalf("long inclusion %d/%d: %v", i, n, err)
			}
			if i+1 < n {
				if err := VerifyInclusion(leaves[i+1], i, n, p, root); !errors.Is(err, ErrProof) {
					t.Fatalf("wrong leaf %d/%d verified", i, n)
				}
			}
		}
		for m := uint64(1); m < n; m++ {
			p, _ := ConsistencyProof(leaves[:n], m)
			oldRoot := RootOf(leaves[:m])
			oth, _ := xtlog.TreeHash(int64(m), reader)
			if err := xtlog.CheckTree(toX(p), int64(n), th, int64(m), oth); err != nil {
				t.Fatalf("sumdb/tlog rejects our consistency proof %d->%d: %v", m, n, err)
			}
			if err := VerifyConsistency(m, n, oldRoot, root, p); err != nil {
				t.Fatalf("consistency %d->%d: %v", m, n, err)
			}
			bad := append([]Hash(nil), p...)
			bad[0][0] ^= 1
			if err := VerifyConsistency(m, n, oldRoot, root, bad); !errors.Is(err, ErrProof) {
				t.Fatalf("tampered consistency %d->%d verified", m, n)
			}
			forked := oldRoot
			forked[31] ^= 1
			if err := VerifyConsistency(m, n, forked, root, p); !errors.Is(err, ErrProof) {
				t.Fatalf("forked old root %d->%d verified", m, n)
			}
		}
	}
}

func toX(p []Hash) []xtlog.Hash {
	out := make([]xtlog.Hash, len(p))
	for i, h := range p {
		out[i] = xtlog.Hash(h)
	}
	return out
}

func TestRangeErrors(t *testing.T) {
	leaves := vecLeafHashes(t)
	if _, err := InclusionProof(leaves, 8); !errors.Is(err, ErrRange) {
		t.Errorf("inclusion past the end: %v", err)
	}
	if _, err := ConsistencyProof(leaves, 9); !errors.Is(err, ErrRange) {
		t.Errorf("consistency past the end: %v", err)
	}
	r := RootOf(leaves)
	if err := VerifyConsistency(9, 8, r, r, nil); !errors.Is(err, ErrProof) {
		t.Errorf("old above new: %v", err)
	}
	if err := VerifyConsistency(8, 8, r, r, nil); err != nil {
		t.Errorf("equal: %v", err)
	}
	if err := VerifyConsistency(3, 8, r, r, nil); !errors.Is(err, ErrProof) {
		t.Errorf("empty proof: %v", err)
	}
	if _, err := UnmarshalFrontier([]byte{0, 0, 0, 0, 0, 0, 0, 3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("short frontier: %v", err)
	}
}

func testSigner(t testing.TB) (note.Signer, note.Verifier) {
	skey, vkey, err := note.GenerateKey(zeroReader{}, "evidenced-depot-test")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return s, v
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestCheckpointRoundTrip(t *testing.T) {
	s, v := testSigner(t)
	c := Checkpoint{Origin: "evidenced/depot-test", Size: 8, Root: RootOf(vecLeafHashes(t)), Extensions: []string{"time 2026-11-30T07:00:00Z"}}
	msg, err := SignCheckpoint(c, s)
	if err != nil {
		t.Fatal(err)
	}
	want := "evidenced/depot-test\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\ntime 2026-11-30T07:00:00Z\n\n— evidenced-depot-test "
	if !bytes.HasPrefix(msg, []byte(want)) {
		t.Fatalf("signed checkpoint:\n%s\nwant prefix\n%s", msg, want)
	}
	got, err := OpenCheckpoint(msg, "evidenced/depot-test", v)
	if err != nil || got.Size != 8 || got.Root != c.Root || len(got.Extensions) != 1 {
		t.Fatalf("open: %+v %v", got, err)
	}
	if _, err := OpenCheckpoint(msg, "evidenced/other", v); !errors.Is(err, ErrMalformed) {
		t.Errorf("wrong origin: %v", err)
	}
	bad := bytes.Replace(msg, []byte("\n8\n"), []byte("\n7\n"), 1)
	if _, err := OpenCheckpoint(bad, "", v); err == nil {
		t.Error("a checkpoint with an edited size opened")
	}
	_, other := func() (note.Signer, note.Verifier) {
		skey, vkey, _ := note.GenerateKey(nil, "evidenced-depot-test")
		s, _ := note.NewSigner(skey)
		v, _ := note.NewVerifier(vkey)
		return s, v
	}()
	if _, err := OpenCheckpoint(msg, "", other); err == nil {
		t.Error("a checkpoint opened with another key of the same name")
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	root := Hash{}.Base64()
	for _, in := range []string{
		"", "o\n1\n" + root, "o\n1\n", "\n1\n" + root + "\n", "o\n01\n" + root + "\n", "o\n-1\n" + root + "\n",
		"o\n1\n" + root[:40] + "\n", "o\n1\n" + root + "\n\n", "o\n18446744073709551616\n" + root + "\n",
		"o\n1\n" + root + "x\n", "o\xff\n1\n" + root + "\n",
	} {
		if c, err := ParseCheckpoint([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCheckpoint(%q) = %+v, %v", in, c, err)
		}
	}
}

func TestProofTextRoundTrip(t *testing.T) {
	leaves := vecLeafHashes(t)
	p, _ := InclusionProof(leaves, 5)
	pr := Proof{Kind: Inclusion, A: 5, B: 8, Hashes: p}
	b, err := pr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseProof(b)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(pr) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if err := got.Verify(leaves[5], Hash{}, RootOf(leaves)); err != nil {
		t.Fatal(err)
	}
	c, _ := ConsistencyProof(leaves, 3)
	cp := Proof{Kind: Consistency, A: 3, B: 8, Hashes: c}
	b, _ = cp.Marshal()
	got, err = ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(Hash{}, RootOf(leaves[:3]), RootOf(leaves)); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"", proofHeader + "\n", proofHeader + "\ninclusion 1\n", proofHeader + "\nfoo 1 2\n",
		proofHeader + "\ninclusion 1 2\nAAAA\n", proofHeader + "\ninclusion 1 2", proofHeader + "\ninclusion 01 2\n"} {
		if _, err := ParseProof([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseProof(%q): %v", in, err)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	s, v := testSigner(f)
	c := Checkpoint{Origin: "evidenced/depot-test", Size: 8, Root: RootOf(vecLeafHashes(f))}
	text, _ := c.Marshal()
	msg, _ := SignCheckpoint(c, s)
	f.Add(text)
	f.Add(msg)
	f.Add([]byte("o\n0\n" + EmptyRoot().Base64() + "\next\n"))
	f.Add([]byte("o\n1\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err == nil {
			again, err := c.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("parsed %q but re-encodes as %q (%v)", b, again, err)
			}
		}
		_, _ = OpenCheckpoint(b, "", v)
	})
}

func FuzzParseProof(f *testing.F) {
	leaves := vecLeafHashes(f)
	p, _ := InclusionProof(leaves, 5)
	b, _ := Proof{Kind: Inclusion, A: 5, B: 8, Hashes: p}.Marshal()
	f.Add(b)
	c, _ := ConsistencyProof(leaves, 3)
	b, _ = Proof{Kind: Consistency, A: 3, B: 8, Hashes: c}.Marshal()
	f.Add(b)
	f.Add([]byte(proofHeader + "\ninclusion 0 1\n"))
	root := RootOf(leaves)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		again, err := p.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed %q but re-encodes as %q (%v)", b, again, err)
		}
		// Verification of arbitrary proofs must not panic either.
		_ = p.Verify(leaves[0], root, root)
	})
}

// TestLeafHashEveryLength: LeafHash is SHA-256(0x00 || data) for leaves
// hashed from the stack copy and for those too long for it, on both sides
// of the boundary.
func TestLeafHashEveryLength(t *testing.T) {
	data := make([]byte, 3000)
	for i := range data {
		data[i] = byte(i*7 + 3)
	}
	for _, n := range []int{0, 1, 64, 1022, 1023, 1024, 1025, 3000} {
		want := stdsha256.Sum256(append([]byte{0}, data[:n]...))
		if got := LeafHash(data[:n]); got != Hash(want) {
			t.Errorf("LeafHash of %d bytes = %s, want %x", n, got, want)
		}
	}
}
