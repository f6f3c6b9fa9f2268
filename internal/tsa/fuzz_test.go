package tsa_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/tsa"
)

// The seed corpus is a real reply: testdata/openssl-reply.tsr was made by
// `openssl ts -reply` (a throwaway CA, testdata/openssl-ca.pem, and a TSA
// certificate valid for a century) over the SHA-256 of
// testdata/openssl-reply.data. Replies are read back from the object store
// and from export packages, where anyone may have put any bytes.
func seedReply(tb testing.TB) (reply []byte, sum digest.Sum, roots string) {
	tb.Helper()
	reply, err := os.ReadFile(filepath.Join("testdata", "openssl-reply.tsr"))
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "openssl-reply.data"))
	if err != nil {
		tb.Fatal(err)
	}
	return reply, digest.Bytes(data), filepath.Join("testdata", "openssl-ca.pem")
}

// The seed itself parses and verifies: the fuzz target starts from a reply
// that reaches every check, not one rejected at the first byte.
func TestSeedReplyVerifies(t *testing.T) {
	reply, sum, ca := seedReply(t)
	roots, err := tsa.LoadRoots(ca)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tsa.ParseResponse(reply, sum, nil)
	if err != nil {
		t.Fatalf("parse the openssl reply: %v", err)
	}
	if err := tok.Verify(roots); err != nil {
		t.Fatalf("verify the openssl reply: %v", err)
	}
}

// FuzzParseResponse: whatever the bytes, ParseResponse, ParseToken and
// Verify return an error or a token, never panic; a token always stamps the
// imprint asked for.
func FuzzParseResponse(f *testing.F) {
	reply, sum, ca := seedReply(f)
	roots, err := tsa.LoadRoots(ca)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reply)
	f.Add(reply[:len(reply)/2])
	f.Add(reply[:2])
	f.Add([]byte{})
	tok, err := tsa.ParseResponse(reply, sum, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.Token) // a bare token is not a reply
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := tsa.ParseResponse(b, sum, nil)
		if err == nil {
			if tok.Imprint != sum {
				t.Fatalf("token for imprint %s accepted, asked for %s", tok.Imprint.Hex(), sum.Hex())
			}
			_ = tok.Verify(roots)
		}
		if tok, err := tsa.ParseToken(b); err == nil {
			_ = tok.Verify(roots)
		}
	})
}
