// Package tsa is an RFC 3161 time-stamping client: it asks a configured
// time-stamping authority (TSA) to sign "this SHA-256 existed at time T",
// and checks what comes back.
//
// evidenced timestamps its Merkle checkpoints (package anchor), so that a
// checkpoint's existence at a time is attested by a party other than the dock
// host, whose clock and key are exactly what a court may doubt.
//
// What this package owns and keeps true:
//   - A request (TimeStampReq) carries a SHA-256 message imprint, a fresh
//     64-bit random nonce and certReq TRUE (so the token carries the TSA's
//     certificate and can be checked later without fetching it).
//   - Timestamp returns a Token only when the response's status is granted
//     (0) or grantedWithMods (1), its TSTInfo's imprint is the one asked for
//     and its nonce is the one sent. Otherwise an error wrapping
//     ErrRejected or ErrMismatch says which.
//   - Token.Response is the DER TimeStampResp exactly as received (what
//     `openssl ts -reply -in resp.tsr -text` and `openssl ts -verify -in
//     resp.tsr` read); Token.Token is the DER TimeStampToken inside it.
//   - Verify checks the CMS signature of a token and its certificate chain
//     to configured roots, with the TSA certificate's extended key usage
//     exactly timeStamping (RFC 3161 2.3). ParseResponse alone checks no
//     signature: it is for reading a stored reply.
//
// Everything is encoding/asn1 and crypto/x509 from the standard library; the
// imprint itself is built by package digest.
package tsa

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/evidenced/evidenced/internal/digest"
)

// Sentinel errors.
var (
	// ErrRejected: the TSA answered with a status other than granted, or
	// not with a time-stamp reply at all.
	ErrRejected = errors.New("tsa: request not granted")
	// ErrMismatch: the reply is well formed but is not for what was asked
	// (another imprint, another nonce, another hash algorithm).
	ErrMismatch = errors.New("tsa: reply does not match the request")
	// ErrMalformed: the bytes are not a TimeStampResp / TimeStampToken.
	ErrMalformed = errors.New("tsa: malformed time-stamp reply")
	// ErrSignature: the token's signature or certificate chain does not
	// verify.
	ErrSignature = errors.New("tsa: time-stamp token does not verify")
)

// Content types of the HTTP transport (RFC 3161 3.4).
const (
	QueryContentType = "application/timestamp-query"
	ReplyContentType = "application/timestamp-reply"
)

// maxReply bounds what is read from a TSA; a reply with a certificate chain
// is a few kilobytes.
const maxReply = 1 << 20

// DefaultTimeout bounds one request when the caller's context has no
// deadline: a TSA that hangs must not hold up anchoring forever.
const DefaultTimeout = 30 * time.Second

var (
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
)

// Client asks one TSA for time-stamps. The zero value is not usable: set URL.
type Client struct {
	// URL is the TSA's HTTP(S) endpoint.
	URL string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// Roots, when set, makes Timestamp also Verify the token against them,
	// so a misconfigured or impostor TSA is caught when the token is taken,
	// not years later in court.
	Roots *x509.CertPool
}

// Token is one granted time-stamp.
type Token struct {
	// Response is the DER TimeStampResp as received.
	Response []byte
	// Token is the DER TimeStampToken (a CMS ContentInfo) inside Response.
	Token []byte
	// Imprint is the SHA-256 the TSA signed.
	Imprint digest.Sum
	// GenTime is the TSA's time of the stamp.
	GenTime time.Time
	// Serial is the TSA's serial number of the stamp.
	Serial *big.Int
	// Policy is the TSA policy the stamp was issued under.
	Policy asn1.ObjectIdentifier
	// Nonce is the nonce in the stamp (nil if none).
	Nonce *big.Int

	signed signedData
}

// ASN.1 structures (RFC 3161, RFC 5652).

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	Nonce          *big.Int `asn1:"optional"`
	CertReq        bool
}

type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"`
	FailInfo     asn1.BitString  `asn1:"optional"`
}

type timeStampResp struct {
	Status pkiStatusInfo
	Token  asn1.RawValue `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type accuracy struct {
	Seconds int `asn1:"optional"`
	Millis  int `asn1:"optional,tag:0"`
	Micros  int `asn1:"optional,tag:1"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time     `asn1:"generalized"`
	Accuracy       accuracy      `asn1:"optional"`
	Ordering       bool          `asn1:"optional"`
	Nonce          *big.Int      `asn1:"optional"`
	TSA            asn1.RawValue `asn1:"optional,explicit,tag:0"`
	Extensions     asn1.RawValue `asn1:"optional,tag:1"`
}

// Request is the DER TimeStampReq for sum with nonce (nil: no nonce) and
// certReq TRUE.
func Request(sum digest.Sum, nonce *big.Int) ([]byte, error) {
	req := timeStampReq{
		Version: 1,
		MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue},
			HashedMessage: sum[:],
		},
		Nonce:   nonce,
		CertReq: true,
	}
	der, err := asn1.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("tsa: encode request: %w", err)
	}
	return der, nil
}

// newNonce is a random positive 64-bit integer.
func newNonce() (*big.Int, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	b[0] &= 0x7f // positive, so the DER is at most 8 bytes
	b[0] |= 0x01 // never zero
	return new(big.Int).SetBytes(b[:]), nil
}

// Timestamp asks the TSA to stamp sum and returns the checked token.
func (c *Client) Timestamp(ctx context.Context, sum digest.Sum) (*Token, error) {
	if c == nil || c.URL == "" {
		return nil, errors.New("tsa: no TSA URL configured")
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, fmt.Errorf("tsa %s: nonce: %w", c.URL, err)
	}
	query, err := Request(sum, nonce)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(query))
	if err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	hreq.Header.Set("Content-Type", QueryContentType)
	hreq.Header.Set("Accept", ReplyContentType)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("tsa %s: read reply: %w", c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tsa %s: %w: HTTP %s", c.URL, ErrRejected, resp.Status)
	}
	if len(body) > maxReply {
		return nil, fmt.Errorf("tsa %s: %w: reply larger than %d bytes", c.URL, ErrMalformed, maxReply)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, ReplyContentType) {
		return nil, fmt.Errorf("tsa %s: %w: reply has content type %q, want %s", c.URL, ErrRejected, ct, ReplyContentType)
	}
	tok, err := ParseResponse(body, sum, nonce)
	if err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	if c.Roots != nil {
		if err := tok.Verify(c.Roots); err != nil {
			return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
		}
	}
	return tok, nil
}

// ParseResponse parses a DER TimeStampResp and checks that it grants a
// stamp of sum, with nonce when nonce is not nil. It does not check the
// signature (see Verify).
func ParseResponse(der []byte, sum digest.Sum, nonce *big.Int) (*Token, error) {
	var r timeStampResp
	rest, err := asn1.Unmarshal(der, &r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the reply", ErrMalformed, len(rest))
	}
	if s := r.Status.Status; s != 0 && s != 1 {
		return nil, fmt.Errorf("%w: status %d (%s)%s", ErrRejected, s, statusName(s), statusText(r.Status))
	}
	if len(r.Token.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: status granted but no token", ErrMalformed)
	}
	tok, err := ParseToken(r.Token.FullBytes)
	if err != nil {
		return nil, err
	}
	tok.Response = bytes.Clone(der)
	if tok.Imprint != sum {
		return nil, fmt.Errorf("%w: the token stamps %s, asked for %s", ErrMismatch, tok.Imprint.Hex(), sum.Hex())
	}
	if nonce != nil && (tok.Nonce == nil || tok.Nonce.Cmp(nonce) != 0) {
		return nil, fmt.Errorf("%w: nonce %v, sent %v", ErrMismatch, tok.Nonce, nonce)
	}
	return tok, nil
}

// ParseToken parses a DER TimeStampToken (CMS SignedData over a TSTInfo)
// with a SHA-256 imprint. It checks no signature.
func ParseToken(der []byte) (*Token, error) {
	var ci contentInfo
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: token is not a CMS ContentInfo: %v", ErrMalformed, err)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: token content type %v, want SignedData", ErrMalformed, ci.ContentType)
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: token SignedData: %v", ErrMalformed, err)
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: token encapsulates %v, want TSTInfo", ErrMalformed, sd.EncapContentInfo.EContentType)
	}
	var info tstInfo
	if rest, err := asn1.Unmarshal(sd.EncapContentInfo.EContent, &info); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: TSTInfo: %v", ErrMalformed, err)
	}
	if !info.MessageImprint.HashAlgorithm.Algorithm.Equal(oidSHA256) {
		return nil, fmt.Errorf("%w: imprint algorithm %v, want SHA-256", ErrMismatch, info.MessageImprint.HashAlgorithm.Algorithm)
	}
	if len(info.MessageImprint.HashedMessage) != digest.Size {
		return nil, fmt.Errorf("%w: imprint of %d bytes", ErrMalformed, len(info.MessageImprint.HashedMessage))
	}
	t := &Token{
		Token:   bytes.Clone(der),
		GenTime: info.GenTime.UTC(),
		Serial:  info.SerialNumber,
		Policy:  info.Policy,
		Nonce:   info.Nonce,
		signed:  sd,
	}
	copy(t.Imprint[:], info.MessageImprint.HashedMessage)
	return t, nil
}

func statusName(s int) string {
	switch s {
	case 0:
		return "granted"
	case 1:
		return "grantedWithMods"
	case 2:
		return "rejection"
	case 3:
		return "waiting"
	case 4:
		return "revocationWarning"
	case 5:
		return "revocationNotification"
	}
	return "unknown"
}

func statusText(si pkiStatusInfo) string {
	var parts []string
	for _, rv := range si.StatusString {
		parts = append(parts, string(rv.Bytes))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, "; ")
}

// Verify checks the token's CMS signature (signed attributes with the
// TSTInfo content type and its message digest) with the signer's
// certificate carried in the token, and that certificate's chain to roots
// at the stamp's time, with an extended key usage of exactly timeStamping.
func (t *Token) Verify(roots *x509.CertPool) error {
	sd := t.signed
	if len(sd.SignerInfos) != 1 {
		return fmt.Errorf("%w: %d signer infos, want 1", ErrSignature, len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil || len(certs) == 0 {
		return fmt.Errorf("%w: the token carries no usable certificate (was certReq sent?): %v", ErrSignature, err)
	}
	signer, err := findSigner(si.SID, certs)
	if err != nil {
		return err
	}
	if len(si.SignedAttrs.FullBytes) == 0 {
		return fmt.Errorf("%w: no signed attributes", ErrSignature)
	}
	contentDigest, err := hashFor(si.DigestAlgorithm.Algorithm, sd.EncapContentInfo.EContent)
	if err != nil {
		return err
	}
	if err := checkAttrs(si.SignedAttrs.Bytes, contentDigest); err != nil {
		return err
	}
	// The signature is over the DER of the attributes as a SET OF, not
	// with the [0] IMPLICIT tag they travel under (RFC 5652 5.4).
	signedBytes := bytes.Clone(si.SignedAttrs.FullBytes)
	signedBytes[0] = 0x31
	alg, err := sigAlgorithm(si.DigestAlgorithm.Algorithm, signer)
	if err != nil {
		return err
	}
	if err := signer.CheckSignature(alg, signedBytes, si.Signature); err != nil {
		return fmt.Errorf("%w: signature by %s: %v", ErrSignature, signer.Subject, err)
	}
	if len(signer.ExtKeyUsage) != 1 || signer.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(signer.UnknownExtKeyUsage) != 0 {
		return fmt.Errorf("%w: signer %s is not a time-stamping certificate (extended key usage must be timeStamping only)", ErrSignature, signer.Subject)
	}
	inter := x509.NewCertPool()
	for _, c := range certs {
		if c != signer {
			inter.AddCert(c)
		}
	}
	_, err = signer.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: t.GenTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return fmt.Errorf("%w: certificate chain of %s: %v", ErrSignature, signer.Subject, err)
	}
	return nil
}

func findSigner(sid asn1.RawValue, certs []*x509.Certificate) (*x509.Certificate, error) {
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil {
			return nil, fmt.Errorf("%w: signer identifier: %v", ErrMalformed, err)
		}
		for _, c := range certs {
			if c.SerialNumber.Cmp(ias.Serial) == 0 && bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) {
				return c, nil
			}
		}
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0:
		for _, c := range certs {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: the signer's certificate is not in the token", ErrSignature)
}

// checkAttrs requires the content-type attribute to be TSTInfo and the
// message-digest attribute to equal want.
func checkAttrs(set []byte, want []byte) error {
	var sawType, sawDigest bool
	for rest := set; len(rest) > 0; {
		var a attribute
		var err error
		if rest, err = asn1.Unmarshal(rest, &a); err != nil {
			return fmt.Errorf("%w: signed attribute: %v", ErrMalformed, err)
		}
		switch {
		case a.Type.Equal(oidContentType):
			var oid asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(a.Values.Bytes, &oid); err != nil || !oid.Equal(oidTSTInfo) {
				return fmt.Errorf("%w: signed content type is not TSTInfo", ErrSignature)
			}
			sawType = true
		case a.Type.Equal(oidMessageDigest):
			var md []byte
			if _, err := asn1.Unmarshal(a.Values.Bytes, &md); err != nil {
				return fmt.Errorf("%w: message digest attribute: %v", ErrMalformed, err)
			}
			if !bytes.Equal(md, want) {
				return fmt.Errorf("%w: the signed message digest does not match the TSTInfo (the stamp was altered)", ErrSignature)
			}
			sawDigest = true
		}
	}
	if !sawType || !sawDigest {
		return fmt.Errorf("%w: signed attributes lack content type or message digest", ErrSignature)
	}
	return nil
}

func sigAlgorithm(digestOID asn1.ObjectIdentifier, c *x509.Certificate) (x509.SignatureAlgorithm, error) {
	var i int
	switch {
	case digestOID.Equal(oidSHA256):
		i = 0
	case digestOID.Equal(oidSHA384):
		i = 1
	case digestOID.Equal(oidSHA512):
		i = 2
	default:
		return 0, fmt.Errorf("%w: signer digest algorithm %v is not supported", ErrSignature, digestOID)
	}
	switch c.PublicKeyAlgorithm {
	case x509.RSA:
		return []x509.SignatureAlgorithm{x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA}[i], nil
	case x509.ECDSA:
		return []x509.SignatureAlgorithm{x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512}[i], nil
	case x509.Ed25519:
		return x509.PureEd25519, nil
	}
	return 0, fmt.Errorf("%w: signer key algorithm %v is not supported", ErrSignature, c.PublicKeyAlgorithm)
}

// LoadRoots reads PEM certificates (the TSA's CA, tsa_ca in the config).
func LoadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tsa roots %s: %w", path, err)
	}
	return ParseRoots(path, b)
}

// ParseRoots reads PEM certificates from b (a CA file carried in an export
// package); name is what errors call it.
func ParseRoots(name string, b []byte) (*x509.CertPool, error) {
	path := name
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tsa roots %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tsa roots %s: no PEM certificate", path)
	}
	return pool, nil
}

// hashFor hashes the signed content with the signer's digest algorithm.
// SHA-256 comes from package digest like every SHA-256 in evidenced; a TSA
// may sign with SHA-384 or SHA-512, which the standard library provides.
func hashFor(oid asn1.ObjectIdentifier, b []byte) ([]byte, error) {
	switch {
	case oid.Equal(oidSHA256):
		s := digest.Bytes(b)
		return s[:], nil
	case oid.Equal(oidSHA384):
		s := sha512.Sum384(b)
		return s[:], nil
	case oid.Equal(oidSHA512):
		s := sha512.Sum512(b)
		return s[:], nil
	}
	return nil, fmt.Errorf("%w: signer digest algorithm %v is not supported", ErrSignature, oid)
}
