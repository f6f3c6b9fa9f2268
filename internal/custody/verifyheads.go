package custody

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/tlog"
)

// accelCheck is what Verify carries about the stored nodes and the signed
// tree heads (heads.go) while it walks the chain.
type accelCheck struct {
	present   bool              // v1/nodes, v1/heads and both meta keys exist
	nodesSize uint64            // v1/meta nodes_size when the walk started
	inStep    bool              // nodesSize was the head then: check every node
	sigsSize  uint64            // v1/meta sigs_hash size when the walk started
	sigsAt    tlog.Hash         // the hash over the signatures at sigsSize
	heads     map[uint64][]byte // v1/heads, by the record its key is in force from
	sigs      tlog.Hash         // the hash over the signatures walked so far

	// the stored-node lockstep walk
	cur     *bolt.Cursor // v1/nodes cursor of the current chunk (nil: seek)
	lastKey []byte       // the last node key checked
	bucket  *bolt.Bucket

	cover   *headCover // the signed head of the key in force, if it has one
	recheck []sigRange // records whose signatures the heads did not cover after all

	bad   []string // what is wrong with them; reported only on an otherwise sound ledger
	stale bool     // the nodes end before the head (an older release appended since)
	// the hash over the signatures when the walk passed sigsSize
	sigsWalk tlog.Hash
	sigsSeen bool
	ok       uint64 // signatures vouched for by heads that checked out
}

// headCover is a signed tree head that vouches for the signatures of the
// records of one key period from `from` up to `size`.
type headCover struct {
	from, size uint64
	count      uint64 // signatures it is to vouch for
	c          tlog.Checkpoint
	key        *verKey
}

// sigRange is records from..to whose signatures are to be checked one by one
// with key.
type sigRange struct {
	from, to uint64
	key      *verKey
}

// read reads the state in the meta step.
func (a *accelCheck) read(b bkts) {
	ns, sh := b.meta.Get(metaNodesSize), b.meta.Get(metaSigsHash)
	if b.nodes == nil && b.heads == nil && ns == nil && sh == nil {
		return // an older release's file: nothing to use, nothing to check
	}
	if b.nodes == nil || b.heads == nil || len(ns) != 8 || len(sh) != 8+tlog.HashSize {
		a.bad = append(a.bad, fmt.Sprintf("the stored Merkle nodes and signed tree heads are incomplete (v1/nodes %s, v1/heads %s, v1/meta nodes_size %s, sigs_hash %s)",
			presence(b.nodes != nil), presence(b.heads != nil), presence(len(ns) == 8), presence(len(sh) == 8+tlog.HashSize)))
		return
	}
	a.present = true
	a.nodesSize = binary.BigEndian.Uint64(ns)
	a.sigsSize, a.sigsAt = binary.BigEndian.Uint64(sh), tlog.Hash(sh[8:])
	a.sigsSeen = a.sigsSize == 0
	if hs, _, err := readHead(b.meta); err == nil && hs == a.nodesSize {
		a.inStep = true
	}
	a.heads = map[uint64][]byte{}
	c := b.heads.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || v == nil {
			a.bad = append(a.bad, fmt.Sprintf("v1/heads has a malformed entry %x", k))
			continue
		}
		a.heads[binary.BigEndian.Uint64(k)] = bytes.Clone(v)
	}
}

func presence(ok bool) string {
	if ok {
		return "present"
	}
	return "missing or malformed"
}

// node checks one interior node the walk computed against v1/nodes, in
// lockstep: the stored keys must be exactly the computed ones, in order.
func (a *accelCheck) node(level int, index uint64, h tlog.Hash, leafSeq uint64) {
	if !a.present || a.bucket == nil || (!a.inStep && leafSeq > a.nodesSize) || len(a.bad) > 0 {
		return
	}
	want := nodeKey(level, index)
	var k, v []byte
	switch {
	case a.cur != nil:
		k, v = a.cur.Next()
	case a.lastKey == nil:
		a.cur = a.bucket.Cursor()
		k, v = a.cur.First()
	default:
		a.cur = a.bucket.Cursor()
		k, v = walk(a.cur, a.lastKey)
	}
	if !bytes.Equal(k, want) || !bytes.Equal(v, h[:]) {
		a.bad = append(a.bad, fmt.Sprintf("the stored Merkle node at level %d, index %d (v1/nodes key %x) is not the hash of the records below it", level, index, want))
		return
	}
	a.lastKey = want
}

// endNodes checks, in the transaction that found the end of the chain, that
// nothing lies beyond the last node checked and that the sizes in v1/meta
// are the ones walked.
func (a *accelCheck) endNodes(b bkts, lastSeq uint64) {
	if !a.present || len(a.bad) > 0 || b.nodes == nil {
		return
	}
	ns, sh := b.meta.Get(metaNodesSize), b.meta.Get(metaSigsHash)
	if len(ns) != 8 || len(sh) != 8+tlog.HashSize {
		a.bad = append(a.bad, "v1/meta nodes_size or sigs_hash went missing during the walk")
		return
	}
	n, s, sh32 := binary.BigEndian.Uint64(ns), binary.BigEndian.Uint64(sh), tlog.Hash(sh[8:])
	switch {
	case a.inStep && n != lastSeq:
		a.bad = append(a.bad, fmt.Sprintf("v1/meta nodes_size is %d, but the stored Merkle nodes are those of records 1 to %d", n, lastSeq))
	case !a.inStep && n != a.nodesSize:
		a.bad = append(a.bad, fmt.Sprintf("v1/meta nodes_size changed from %d to %d during the walk", a.nodesSize, n))
	case s != n:
		a.bad = append(a.bad, fmt.Sprintf("v1/meta sigs_hash is for %d records but nodes_size is %d", s, n))
	case a.inStep && sh32 != a.sigs, !a.inStep && (a.sigsAt != sh32 || !a.sigsSeen || a.sigsWalk != sh32):
		a.bad = append(a.bad, fmt.Sprintf("v1/meta sigs_hash is not the hash over the signatures of records 1 to %d", s))
	}
	c := b.nodes.Cursor()
	var k []byte
	if a.lastKey == nil {
		k, _ = c.First()
	} else {
		k, _ = walk(c, a.lastKey)
	}
	if k != nil {
		a.bad = append(a.bad, fmt.Sprintf("v1/nodes holds node key %x, beyond the nodes of the records", k))
	}
	a.stale = !a.inStep
}

// keyFrom is called when the key in force changes at record seq (a HOST_KEY
// record, or the record after a KEY_ROTATED one): the previous key's head,
// if it did not reach its size, covered nothing.
func (v *verifier) keyFrom(seq uint64) {
	a := &v.acc
	v.endCover(seq - 1)
	if !a.present || v.key == nil {
		return
	}
	msg, ok := a.heads[v.key.from]
	if !ok {
		return
	}
	delete(a.heads, v.key.from) // what is left is not the head of a key period
	bad := func(why string) {
		a.bad = append(a.bad, fmt.Sprintf("the signed tree head in v1/heads of the key in force from record %d %s", v.key.from, why))
	}
	nv, err := signing.NoteVerifier(v.l.host, v.key.pub)
	if err != nil {
		bad("cannot be checked: " + err.Error())
		return
	}
	c, err := tlog.OpenCheckpoint(msg, CheckpointOrigin(v.l.host), nv)
	if err != nil {
		bad(fmt.Sprintf("does not verify with key %s: %v", v.key.id, err))
		return
	}
	if c.Size < seq {
		bad(fmt.Sprintf("has size %d, before the key came into force", c.Size))
		return
	}
	a.cover = &headCover{from: seq, size: c.Size, c: c, key: v.key}
}

// covered says whether record seq's signature is vouched for by the head of
// its key period (checked when the walk reaches the head's size).
func (v *verifier) covered(seq uint64) bool {
	cv := v.acc.cover
	return cv != nil && cv.key == v.key && seq >= cv.from && seq <= cv.size
}

// atHead checks the cover when the walk has just taken record seq: its
// tree and signature hash must be those the head signed. If not, every
// record it was to cover is checked one by one after the walk.
func (v *verifier) atHead(seq uint64) {
	cv := v.acc.cover
	if cv == nil || seq != cv.size {
		return
	}
	sigs, ok := headSigs(cv.c)
	switch {
	case !ok:
		v.acc.bad = append(v.acc.bad, fmt.Sprintf("the signed tree head of the key in force from record %d has no signature hash", cv.from))
	case v.tree.Size != seq || v.tree.Root() != cv.c.Root:
		v.acc.bad = append(v.acc.bad, fmt.Sprintf("the signed tree head of the key in force from record %d (size %d) has root %s, the records give %s",
			cv.from, seq, cv.c.Root, v.tree.Root()))
	case sigs != v.acc.sigs:
		v.acc.bad = append(v.acc.bad, fmt.Sprintf("the signed tree head of the key in force from record %d (size %d) does not match the signatures of records 1 to %d",
			cv.from, seq, seq))
	default:
		v.acc.ok += cv.count
		v.acc.cover = nil
		return
	}
	v.acc.recheck = append(v.acc.recheck, sigRange{cv.from, seq, cv.key})
	v.acc.cover = nil
}

// endCover ends a cover whose head size the walk did not reach by record
// last (the key changed, or the chain ended): nothing was vouched for.
func (v *verifier) endCover(last uint64) {
	cv := v.acc.cover
	if cv == nil {
		return
	}
	v.acc.bad = append(v.acc.bad, fmt.Sprintf("the signed tree head of the key in force from record %d has size %d, beyond the last record %d of that key",
		cv.from, cv.size, last))
	if last >= cv.from {
		v.acc.recheck = append(v.acc.recheck, sigRange{cv.from, last, cv.key})
	}
	v.acc.cover = nil
}

// recheckSignatures queues the signatures of the ranges a head did not
// cover after all, reading them in chunks of short read transactions.
func (v *verifier) recheckSignatures(ctx context.Context) error {
	for _, r := range v.acc.recheck {
		for next := r.from; next <= r.to; {
			err := v.view(ctx, func(b bkts) error {
				if b.events == nil || b.sigs == nil {
					next = r.to + 1
					return nil
				}
				for n := 0; n < v.l.chunk && next <= r.to; n++ {
					k := seqKey(next)
					next++
					rec, sig := b.events.Get(k), b.sigs.Get(k)
					if rec != nil && sig != nil {
						v.sigc.check(binary.BigEndian.Uint64(k), rec, sig, r.key)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// reportAccel reports what is wrong with the stored nodes and heads, only
// when nothing else is: any altered record or signature already changes
// them, and is reported as such.
func (v *verifier) reportAccel() {
	if v.acc.stale {
		v.notices = append(v.notices, Notice{Seq: v.acc.nodesSize + 1, What: fmt.Sprintf(
			"the stored Merkle nodes end at record %d (appended to by an older release since): proofs beyond it are recomputed from the records until the ledger is opened writable", v.acc.nodesSize)})
	}
	for from := range v.acc.heads {
		if from <= v.lastSeq {
			v.acc.bad = append(v.acc.bad, fmt.Sprintf("v1/heads holds a signed tree head for a key in force from record %d, which no HOST_KEY or KEY_ROTATED record introduced", from))
		}
	}
	if v.stats.Problems > 0 || len(v.acc.bad) == 0 {
		return
	}
	slices.Sort(v.acc.bad)
	for _, s := range slices.Compact(v.acc.bad) {
		v.report(0, "", "%s", s)
	}
	v.flush()
}
