package digest

import (
	stdsha "crypto/sha256"
	"strings"
	"testing"
)

func TestKnownVectors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tt := range tests {
		if got := Bytes([]byte(tt.in)).Hex(); got != tt.want {
			t.Errorf("Bytes(%q) = %s, want %s", tt.in, got, tt.want)
		}
		s, n, err := Reader(strings.NewReader(tt.in))
		if err != nil || n != int64(len(tt.in)) || s.Hex() != tt.want {
			t.Errorf("Reader(%q) = %s, %d, %v", tt.in, s.Hex(), n, err)
		}
		p, err := ParseHex(tt.want)
		if err != nil || p.Hex() != tt.want {
			t.Errorf("ParseHex(%s) = %s, %v", tt.want, p.Hex(), err)
		}
	}
	if _, err := ParseHex("abc"); err == nil {
		t.Error("ParseHex accepted a short digest")
	}
	if _, err := ParseHex(strings.Repeat("zz", 32)); err == nil {
		t.Error("ParseHex accepted non-hex digits")
	}
}

// The two benchmarks run side by side (go test -bench . ./internal/digest) so
// the choice made in New stays measured on the machine at hand.
func benchHash(b *testing.B, newHash func() interface {
	Write([]byte) (int, error)
}) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	h := newHash()
	for b.Loop() {
		h.Write(buf)
	}
}

func BenchmarkSHA256SIMD(b *testing.B) {
	benchHash(b, func() interface{ Write([]byte) (int, error) } { return New() })
}

func BenchmarkSHA256Stdlib(b *testing.B) {
	benchHash(b, func() interface{ Write([]byte) (int, error) } { return stdsha.New() })
}
