package tsa_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/tsa"
	"github.com/evidenced/evidenced/internal/tsa/tsatest"
)

func TestTimestampWithOpenSSL(t *testing.T) {
	o := tsatest.Start(t)
	roots, err := tsa.LoadRoots(o.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &tsa.Client{URL: o.URL, Roots: roots}
	sum := digest.Bytes([]byte("evidenced/host-1\n42\nroot\n"))
	tok, err := c.Timestamp(context.Background(), sum)
	if err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	if tok.Imprint != sum || tok.Nonce == nil || tok.Serial == nil || tok.GenTime.IsZero() {
		t.Fatalf("token fields: %+v", tok)
	}
	if tok.Policy.String() != tsatest.Policy {
		t.Errorf("policy %s, want %s", tok.Policy, tsatest.Policy)
	}
	// The reply as stored is what openssl, an independent implementation,
	// verifies against the CA with the imprint we asked for.
	resp := filepath.Join(t.TempDir(), "resp.tsr")
	if err := os.WriteFile(resp, tok.Response, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := o.Verify(resp, sum.Hex()); err != nil {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	// ... and refuses for another imprint.
	other := digest.Bytes([]byte("something else"))
	if out, err := o.Verify(resp, other.Hex()); err == nil {
		t.Fatalf("openssl ts -verify accepted the reply for another digest:\n%s", out)
	}
	// The stored reply parses again (no nonce to compare any more).
	again, err := tsa.ParseResponse(tok.Response, sum, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Verify(roots); err != nil {
		t.Fatalf("verify parsed reply: %v", err)
	}
	if _, err := tsa.ParseResponse(tok.Response, other, nil); !errors.Is(err, tsa.ErrMismatch) {
		t.Errorf("parse for another imprint: %v, want ErrMismatch", err)
	}
	if _, err := tsa.ParseResponse(tok.Response, sum, big.NewInt(7)); !errors.Is(err, tsa.ErrMismatch) {
		t.Errorf("parse with another nonce: %v, want ErrMismatch", err)
	}
	// A CA that did not issue the TSA certificate does not verify it.
	otherCA := tsatest.Start(t)
	otherRoots, err := tsa.LoadRoots(otherCA.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Verify(otherRoots); !errors.Is(err, tsa.ErrSignature) {
		t.Errorf("verify with another CA: %v, want ErrSignature", err)
	}
}

// Flipping any byte of the TSTInfo breaks the signature check, never
// passes silently.
func TestTamperedTokenFailsVerify(t *testing.T) {
	o := tsatest.Start(t)
	roots, err := tsa.LoadRoots(o.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := digest.Bytes([]byte("checkpoint"))
	tok, err := (&tsa.Client{URL: o.URL}).Timestamp(context.Background(), sum)
	if err != nil {
		t.Fatal(err)
	}
	// The stamp's generalized time is in the TSTInfo; change one digit.
	gt := []byte(tok.GenTime.Format("20060102150405"))
	i := bytes.Index(tok.Response, gt)
	if i < 0 {
		t.Fatalf("gen time %s not found in the reply", gt)
	}
	bad := bytes.Clone(tok.Response)
	bad[i+3] ^= 0x01 // year digit: still a digit, another time
	p, err := tsa.ParseResponse(bad, sum, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := p.Verify(roots); !errors.Is(err, tsa.ErrSignature) {
		t.Fatalf("tampered token verified: %v", err)
	}
}

func TestReplyChecks(t *testing.T) {
	o := tsatest.Start(t)
	sum := digest.Bytes([]byte("ask for this"))
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"another imprint", func(w http.ResponseWriter, r *http.Request) {
			// A TSA that stamps something else (and with its own nonce).
			q := o.Query(t, []byte("not what was asked"))
			o.ServeQuery(w, q)
		}, tsa.ErrMismatch},
		{"replayed reply", func(w http.ResponseWriter, r *http.Request) {
			// An old reply for the same imprint: its nonce is not ours.
			q := o.QueryDigest(t, sum.Hex())
			o.ServeQuery(w, q)
		}, tsa.ErrMismatch},
		{"rejection", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			o.ServeQueryConfig(w, body, "sha512only")
		}, tsa.ErrRejected},
		{"http error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}, tsa.ErrRejected},
		{"not asn1", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tsa.ReplyContentType)
			_, _ = w.Write([]byte("hello"))
		}, tsa.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := (&tsa.Client{URL: srv.URL}).Timestamp(context.Background(), sum)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// The request we build is one openssl reads back with our imprint, nonce
// and certReq.
func TestRequestReadByOpenSSL(t *testing.T) {
	o := tsatest.Start(t)
	sum := digest.Bytes([]byte("x"))
	der, err := tsa.Request(sum, big.NewInt(0x1234))
	if err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(t.TempDir(), "q.tsq")
	if err := os.WriteFile(q, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(o.OpenSSL, "ts", "-query", "-in", q, "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	text := strings.ToLower(strings.ReplaceAll(string(out), ":", ""))
	for _, want := range []string{"sha256", "nonce 0x1234", "certificate required yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl's reading of the request lacks %q:\n%s", want, out)
		}
	}
	// The imprint hex appears as "xx xx xx ..." in openssl's dump.
	var spaced []string
	for _, b := range sum[:4] {
		spaced = append(spaced, fmt.Sprintf("%02x", b))
	}
	if !strings.Contains(text, strings.Join(spaced, " ")) {
		t.Errorf("imprint %s not in openssl's reading:\n%s", sum.Hex(), out)
	}
}
