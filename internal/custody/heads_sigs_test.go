package custody

import (
	stdsha256 "crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/evidenced/evidenced/internal/tlog"
)

// TestSigsStepIsTheHash: a step of the hash over the signatures is
// SHA-256(previous || seq as 8-byte big-endian || signature), for an
// Ed25519 signature (hashed from one buffer on the stack) and for a
// signature of any other length (streamed), as the layout in doc.go says.
func TestSigsStepIsTheHash(t *testing.T) {
	prev := tlog.Hash(stdsha256.Sum256([]byte("previous")))
	for _, n := range []int{0, 63, 64, 65, 200} {
		sig := make([]byte, n)
		for i := range sig {
			sig[i] = byte(i*5 + n)
		}
		in := append(append(prev[:0:0], prev[:]...), binary.BigEndian.AppendUint64(nil, 0x0102030405060708)...)
		want := stdsha256.Sum256(append(in, sig...))
		if got := sigsStep(prev, 0x0102030405060708, sig); got != tlog.Hash(want) {
			t.Errorf("sigsStep with a %d-byte signature = %s, want %x", n, got, want)
		}
	}
}
