// Package tlog owns the Merkle tree that makes a custody ledger a
// transparency log: RFC 6962 (RFC 9162 section 2.1) tree hashing, the
// O(log n) compact state kept while appending, inclusion and consistency
// proofs (generation and verification), their text encoding, and C2SP
// tlog-checkpoint signed notes.
//
// # Invariants
//
//   - Hashing is RFC 6962's: a leaf is SHA-256(0x00 || data), an interior
//     node SHA-256(0x01 || left || right), the empty tree SHA-256(""). The
//     tree over n leaves splits at the largest power of two below n. Any
//     RFC 6962 / C2SP tlog tool computes the same roots and checks the same
//     proofs.
//   - A Frontier over n leaves holds exactly the roots of the perfect
//     subtrees of n's binary decomposition, largest first (popcount(n)
//     hashes): enough to append and to compute the root in O(log n).
//   - Parsers (ParseCheckpoint, ParseProof, UnmarshalFrontier) accept only
//     what the matching encoder writes, bound their input and never panic.
//
// Proof generation works over the leaf hashes of the tree (O(n) hashing);
// proof verification needs only the proof, so a third party can check one
// with any RFC 9162 verifier.
package tlog

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"

	"github.com/evidenced/evidenced/internal/digest"
)

// Sentinel errors.
var (
	// ErrProof: a proof does not verify (or does not fit the sizes given).
	ErrProof = errors.New("tlog: proof does not verify")
	// ErrMalformed: bytes do not parse as a checkpoint, proof or frontier.
	ErrMalformed = errors.New("tlog: malformed input")
	// ErrRange: an index or size outside the tree.
	ErrRange = errors.New("tlog: index or size out of range")
)

// HashSize is the size of a tree hash.
const HashSize = digest.Size

// Hash is a tree hash (leaf, node or root).
type Hash [HashSize]byte

// String is the lower-hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Base64 is the standard base64 form checkpoints and proofs carry.
func (h Hash) Base64() string { return base64.StdEncoding.EncodeToString(h[:]) }

// LeafHash is SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	// A leaf that fits is hashed from a copy on the stack: a verify takes
	// a leaf hash of every record, and a streaming hash costs two
	// allocations each.
	var buf [1024]byte
	if len(data) < len(buf) {
		buf[0] = 0
		n := 1 + copy(buf[1:], data)
		return Hash(digest.Bytes(buf[:n]))
	}
	h := digest.New()
	h.Write([]byte{0})
	h.Write(data)
	return Hash(digest.FromHash(h))
}

// NodeHash is SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return Hash(digest.Bytes(buf[:]))
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
func EmptyRoot() Hash { return Hash(digest.Bytes(nil)) }

// Frontier is the compact state of a tree over Size leaves: the roots of
// the perfect subtrees of Size's binary decomposition, largest (leftmost)
// first. The zero value is the empty tree.
type Frontier struct {
	Size  uint64
	Nodes []Hash
}

// Append adds one leaf hash in O(log n).
func (f *Frontier) Append(leaf Hash) { f.AppendFunc(leaf, nil) }

// AppendFunc is Append that also passes every perfect subtree the leaf
// completes above it to node (when not nil): its level (1 for a pair of
// leaves) and its index among the subtrees of that level, bottom up. Those
// are the interior hashes a store keeps to answer proofs in O(log n); they
// are computed by Append anyway.
func (f *Frontier) AppendFunc(leaf Hash, node func(level int, index uint64, h Hash)) {
	h := leaf
	level := 0
	for s := f.Size; s&1 == 1; s >>= 1 {
		last := len(f.Nodes) - 1
		h = NodeHash(f.Nodes[last], h)
		f.Nodes = f.Nodes[:last]
		level++
		if node != nil {
			node(level, f.Size>>level, h)
		}
	}
	f.Nodes = append(f.Nodes, h)
	f.Size++
}

// Root is the tree root in O(log n).
func (f Frontier) Root() Hash {
	if len(f.Nodes) == 0 {
		return EmptyRoot()
	}
	r := f.Nodes[len(f.Nodes)-1]
	for i := len(f.Nodes) - 2; i >= 0; i-- {
		r = NodeHash(f.Nodes[i], r)
	}
	return r
}

// Clone returns a copy that shares nothing with f.
func (f Frontier) Clone() Frontier {
	return Frontier{Size: f.Size, Nodes: append([]Hash(nil), f.Nodes...)}
}

// MarshalBinary is 8-byte big-endian Size followed by the node hashes.
func (f Frontier) MarshalBinary() ([]byte, error) {
	if len(f.Nodes) != bits.OnesCount64(f.Size) {
		return nil, fmt.Errorf("%w: frontier of size %d has %d nodes", ErrMalformed, f.Size, len(f.Nodes))
	}
	b := make([]byte, 8, 8+HashSize*len(f.Nodes))
	binary.BigEndian.PutUint64(b, f.Size)
	for _, n := range f.Nodes {
		b = append(b, n[:]...)
	}
	return b, nil
}

// UnmarshalFrontier parses MarshalBinary's output.
func UnmarshalFrontier(b []byte) (Frontier, error) {
	if len(b) < 8 {
		return Frontier{}, fmt.Errorf("%w: frontier of %d bytes", ErrMalformed, len(b))
	}
	size := binary.BigEndian.Uint64(b)
	n := bits.OnesCount64(size)
	if len(b) != 8+n*HashSize {
		return Frontier{}, fmt.Errorf("%w: frontier of size %d needs %d hashes, has %d bytes", ErrMalformed, size, n, len(b)-8)
	}
	f := Frontier{Size: size, Nodes: make([]Hash, n)}
	for i := range f.Nodes {
		copy(f.Nodes[i][:], b[8+i*HashSize:])
	}
	return f, nil
}

// RootOf is the root of the tree over leaves (O(n)).
func RootOf(leaves []Hash) Hash {
	var f Frontier
	f.Nodes = make([]Hash, 0, 64)
	for _, l := range leaves {
		f.Append(l)
	}
	return f.Root()
}

// split is the largest power of two smaller than n (n >= 2).
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// InclusionProof is the RFC 9162 inclusion path of leaf index in the tree
// over leaves.
func InclusionProof(leaves []Hash, index uint64) ([]Hash, error) {
	n := uint64(len(leaves))
	if index >= n {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d", ErrRange, index, n)
	}
	return inclusion(leaves, index), nil
}

func inclusion(leaves []Hash, index uint64) []Hash {
	n := uint64(len(leaves))
	if n <= 1 {
		return nil
	}
	k := split(n)
	if index < k {
		return append(inclusion(leaves[:k], index), RootOf(leaves[k:]))
	}
	return append(inclusion(leaves[k:], index-k), RootOf(leaves[:k]))
}

// ConsistencyProof is the RFC 9162 consistency proof between the tree over
// leaves[:oldSize] and the tree over leaves. Sizes 0 and len(leaves) give
// an empty proof.
func ConsistencyProof(leaves []Hash, oldSize uint64) ([]Hash, error) {
	n := uint64(len(leaves))
	if oldSize > n {
		return nil, fmt.Errorf("%w: old size %d above new size %d", ErrRange, oldSize, n)
	}
	if oldSize == 0 || oldSize == n {
		return nil, nil
	}
	return subproof(leaves, oldSize, true), nil
}

func subproof(leaves []Hash, m uint64, whole bool) []Hash {
	n := uint64(len(leaves))
	if m == n {
		if whole {
			return nil
		}
		return []Hash{RootOf(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(leaves[:k], m, whole), RootOf(leaves[k:]))
	}
	return append(subproof(leaves[k:], m-k, false), RootOf(leaves[:k]))
}

// VerifyInclusion checks that leaf is at index in the tree of size with
// root (RFC 9162 section 2.1.3.2).
func VerifyInclusion(leaf Hash, index, size uint64, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d in a tree of %d", ErrProof, index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: inclusion proof too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: inclusion proof too short", ErrProof)
	}
	if r != root {
		return fmt.Errorf("%w: leaf %d does not lead to root %s of tree size %d", ErrProof, index, root, size)
	}
	return nil
}

// VerifyConsistency checks that the tree of oldSize with oldRoot is a prefix
// of the tree of newSize with newRoot (RFC 9162 section 2.1.4.2). An old
// size of 0 is consistent with every tree (empty proof).
func VerifyConsistency(oldSize, newSize uint64, oldRoot, newRoot Hash, proof []Hash) error {
	switch {
	case oldSize > newSize:
		return fmt.Errorf("%w: old size %d above new size %d", ErrProof, oldSize, newSize)
	case oldSize == newSize:
		if len(proof) != 0 {
			return fmt.Errorf("%w: proof between equal sizes must be empty", ErrProof)
		}
		if oldRoot != newRoot {
			return fmt.Errorf("%w: two different roots for tree size %d", ErrProof, oldSize)
		}
		return nil
	case oldSize == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: proof from the empty tree must be empty", ErrProof)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty consistency proof", ErrProof)
	}
	path := proof
	if oldSize&(oldSize-1) == 0 { // a power of two: the old root is a node of the new tree
		path = append([]Hash{oldRoot}, proof...)
	}
	fn, sn := oldSize-1, newSize-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: consistency proof too long", ErrProof)
		}
		if fn&1 == 1 || fn == sn {
			fr = NodeHash(c, fr)
			sr = NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: consistency proof too short", ErrProof)
	}
	if fr != oldRoot {
		return fmt.Errorf("%w: proof does not lead to the old root %s of size %d", ErrProof, oldRoot, oldSize)
	}
	if sr != newRoot {
		return fmt.Errorf("%w: proof does not lead to the new root %s of size %d", ErrProof, newRoot, newSize)
	}
	return nil
}
