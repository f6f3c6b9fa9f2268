// Package tsatest runs `openssl ts` as an RFC 3161 time-stamping authority
// for tests: a real, independent implementation, so that evidenced's client
// is not only checked against itself.
//
// Start makes a throwaway CA and a TSA certificate (extendedKeyUsage
// critical, timeStamping) with openssl in the test's temporary directory and
// serves HTTP POSTs of application/timestamp-query by piping them to
// `openssl ts -reply`. When openssl is missing the test is skipped, unless
// CI is set, where it fails.
//
// Import it only from _test.go files.
package tsatest

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Policy is the TSA policy OID the test TSA stamps under.
const Policy = "1.3.6.1.4.1.55555.3161.1"

// TSA is one running test TSA.
type TSA struct {
	URL     string // the HTTP endpoint
	Dir     string // keys, certificates, config
	CAFile  string // the CA certificate (PEM): the trust anchor
	TSAFile string // the TSA certificate (PEM)
	OpenSSL string // the openssl binary

	mu sync.Mutex // openssl ts -reply updates the serial file
	n  int
}

// OpenSSL returns the openssl binary, skipping (or, with CI set, failing)
// the test when there is none.
func OpenSSL(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return p
}

// Start creates the CA, the TSA certificate and the HTTP server; the
// server is closed when t ends.
func Start(t testing.TB) *TSA {
	t.Helper()
	o := &TSA{OpenSSL: OpenSSL(t), Dir: t.TempDir()}
	o.CAFile = filepath.Join(o.Dir, "ca.pem")
	o.TSAFile = filepath.Join(o.Dir, "tsa.pem")
	ext := "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=critical,timeStamping\n"
	o.write(t, "tsa.ext", ext)
	o.write(t, "serial", "01\n")
	o.write(t, "tsa.cnf", config(o.Dir))
	o.run(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=evidenced test CA", "-days", "2",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	o.run(t, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=evidenced test TSA")
	o.run(t, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2",
		"-out", "tsa.pem", "-days", "2", "-extfile", "tsa.ext")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
			http.Error(w, "POST application/timestamp-query", http.StatusBadRequest)
			return
		}
		var q bytes.Buffer
		if _, err := q.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<16)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.ServeQuery(w, q.Bytes())
	}))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

// config is an openssl ts configuration with two sections: the default one
// stamps SHA-256 imprints; "sha512only" rejects them.
func config(dir string) string {
	section := func(name, digests string) string {
		return "[ " + name + " ]\n" +
			"dir = " + dir + "\n" +
			"serial = $dir/serial\n" +
			"crypto_device = builtin\n" +
			"signer_cert = $dir/tsa.pem\n" +
			"certs = $dir/ca.pem\n" +
			"signer_key = $dir/tsa.key\n" +
			"signer_digest = sha256\n" +
			"default_policy = " + Policy + "\n" +
			"digests = " + digests + "\n" +
			"accuracy = secs:1, millisecs:500, microsecs:100\n" +
			"ordering = yes\n" +
			"tsa_name = yes\n" +
			"ess_cert_id_chain = no\n" +
			"ess_cert_id_alg = sha256\n\n"
	}
	return "[ tsa ]\ndefault_tsa = tsa_config\n\n" + section("tsa_config", "sha256, sha384, sha512") + section("sha512only", "sha512")
}

func (o *TSA) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(o.Dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (o *TSA) run(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(o.OpenSSL, args...)
	cmd.Dir = o.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// ServeQuery answers the DER query q with `openssl ts -reply`.
func (o *TSA) ServeQuery(w http.ResponseWriter, q []byte) { o.ServeQueryConfig(w, q, "tsa_config") }

// ServeQueryConfig answers q using the given section of the config.
func (o *TSA) ServeQueryConfig(w http.ResponseWriter, q []byte, section string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	tmp, err := os.MkdirTemp(o.Dir, "q")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.RemoveAll(tmp)
	qf, rf := filepath.Join(tmp, "q.tsq"), filepath.Join(tmp, "r.tsr")
	if err := os.WriteFile(qf, q, 0o600); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	cmd := exec.Command(o.OpenSSL, "ts", "-reply", "-config", filepath.Join(o.Dir, "tsa.cnf"),
		"-section", section, "-queryfile", qf, "-out", rf)
	cmd.Dir = o.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		http.Error(w, "openssl ts -reply: "+err.Error()+"\n"+string(out), http.StatusInternalServerError)
		return
	}
	resp, err := os.ReadFile(rf)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}

// Query makes a request for data with openssl (its own nonce, certReq).
func (o *TSA) Query(t testing.TB, data []byte) []byte {
	t.Helper()
	df := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(df, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return o.query(t, "-data", df)
}

// QueryDigest makes a request for a SHA-256 given in hex with openssl.
func (o *TSA) QueryDigest(t testing.TB, hexDigest string) []byte {
	t.Helper()
	return o.query(t, "-digest", hexDigest)
}

func (o *TSA) query(t testing.TB, args ...string) []byte {
	t.Helper()
	qf := filepath.Join(t.TempDir(), "q.tsq")
	o.run(t, append(append([]string{"ts", "-query"}, args...), "-sha256", "-cert", "-out", qf)...)
	b, err := os.ReadFile(qf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Verify runs `openssl ts -verify -in resp -digest hexDigest -CAfile ca.pem
// -untrusted tsa.pem` and returns its output; err is non-nil when openssl
// does not say the reply verifies.
func (o *TSA) Verify(resp, hexDigest string) ([]byte, error) {
	cmd := exec.Command(o.OpenSSL, "ts", "-verify", "-in", resp, "-digest", hexDigest,
		"-CAfile", o.CAFile, "-untrusted", o.TSAFile)
	out, err := cmd.CombinedOutput()
	if err == nil && !bytes.Contains(out, []byte("Verification: OK")) {
		err = errors.New("openssl did not print Verification: OK")
	}
	return out, err
}
