package tlog

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the
// signed statement "the log named Origin had Size entries with root Root".
// Its text is
//
//	<origin>\n<size in decimal>\n<base64 root>\n[<extension line>\n ...]
//
// and it travels as a C2SP signed note (the text, a blank line, then one
// "— <key name> <base64 signature>" line per signature).
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       Hash
	Extensions []string // optional extra lines, without newlines
}

// maxNote bounds what the parsers read; a checkpoint is ~200 bytes.
const maxNote = 64 << 10

// Marshal is the checkpoint text (the note body, ending in a newline).
func (c Checkpoint) Marshal() ([]byte, error) {
	if err := checkLine("origin", c.Origin); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, c.Root.Base64())
	for _, e := range c.Extensions {
		if err := checkLine("extension", e); err != nil {
			return nil, err
		}
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

func checkLine(what, s string) error {
	if s == "" || !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r") {
		return fmt.Errorf("%w: checkpoint %s %q must be one non-empty line of UTF-8", ErrMalformed, what, s)
	}
	return nil
}

// ParseCheckpoint parses checkpoint text as Marshal writes it.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	if len(text) > maxNote {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint of %d bytes", ErrMalformed, len(text))
	}
	if !utf8.Valid(text) || len(text) == 0 || text[len(text)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint is not UTF-8 text ending in a newline", ErrMalformed)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint has %d lines, want at least 3", ErrMalformed, len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if err := checkLine("origin", c.Origin); err != nil {
		return Checkpoint{}, err
	}
	size, err := parseDecimal(lines[1])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint size: %v", ErrMalformed, err)
	}
	c.Size = size
	if c.Root, err = parseHash(lines[2]); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint root: %v", ErrMalformed, err)
	}
	for _, e := range lines[3:] {
		if err := checkLine("extension", e); err != nil {
			return Checkpoint{}, err
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// parseDecimal reads a decimal integer without sign or leading zeros.
func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseHash reads canonical standard base64 of exactly HashSize bytes.
func parseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != base64.StdEncoding.EncodedLen(HashSize) {
		return h, fmt.Errorf("%q is not the base64 of a %d-byte hash", s, HashSize)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != HashSize {
		return h, fmt.Errorf("%q is not the base64 of a %d-byte hash", s, HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// SignCheckpoint returns the signed note of c.
func SignCheckpoint(c Checkpoint, signers ...note.Signer) ([]byte, error) {
	text, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint %s size %d: %w", c.Origin, c.Size, err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint note with v (at least its
// signature must be present and valid; signatures by unknown keys are
// ignored, as C2SP signed notes allow) and parses it. A non-empty origin
// must match the checkpoint's.
func OpenCheckpoint(msg []byte, origin string, v note.Verifier) (Checkpoint, error) {
	if len(msg) > maxNote {
		return Checkpoint{}, fmt.Errorf("%w: signed checkpoint of %d bytes", ErrMalformed, len(msg))
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint signed by %s: %w", v.Name(), err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if origin != "" && c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrMalformed, c.Origin, origin)
	}
	return c, nil
}

// Proof is an inclusion or a consistency proof with the sizes it is for.
// Its text form (Marshal, ParseProof) is
//
//	evidenced-tlog-proof/v1
//	inclusion <leaf index> <tree size>      (or: consistency <old size> <new size>)
//	<base64 hash>
//	...
//
// one hash per line, each line ending in a newline, hashes in RFC 9162
// order.
type Proof struct {
	Kind   ProofKind
	A, B   uint64 // inclusion: leaf index, tree size; consistency: old size, new size
	Hashes []Hash
}

// ProofKind tells the two proofs apart.
type ProofKind string

// Proof kinds.
const (
	Inclusion   ProofKind = "inclusion"
	Consistency ProofKind = "consistency"
)

const proofHeader = "evidenced-tlog-proof/v1"

// maxProofHashes: an RFC 9162 proof over 2^64 leaves has at most 2*64
// hashes (consistency) or 64 (inclusion).
const maxProofHashes = 128

// Marshal is the proof's text form.
func (p Proof) Marshal() ([]byte, error) {
	if p.Kind != Inclusion && p.Kind != Consistency {
		return nil, fmt.Errorf("%w: proof kind %q", ErrMalformed, p.Kind)
	}
	if len(p.Hashes) > maxProofHashes {
		return nil, fmt.Errorf("%w: proof of %d hashes", ErrMalformed, len(p.Hashes))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%s %d %d\n", proofHeader, p.Kind, p.A, p.B)
	for _, h := range p.Hashes {
		b.WriteString(h.Base64())
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// ParseProof parses a proof's text form.
func ParseProof(text []byte) (Proof, error) {
	if len(text) > maxNote {
		return Proof{}, fmt.Errorf("%w: proof of %d bytes", ErrMalformed, len(text))
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return Proof{}, fmt.Errorf("%w: proof does not end in a newline", ErrMalformed)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 2 || lines[0] != proofHeader {
		return Proof{}, fmt.Errorf("%w: proof does not start with %q", ErrMalformed, proofHeader)
	}
	f := strings.Split(lines[1], " ")
	if len(f) != 3 || (f[0] != string(Inclusion) && f[0] != string(Consistency)) {
		return Proof{}, fmt.Errorf("%w: proof line 2 %q is not \"inclusion|consistency <n> <n>\"", ErrMalformed, lines[1])
	}
	var p Proof
	p.Kind = ProofKind(f[0])
	var err error
	if p.A, err = parseDecimal(f[1]); err != nil {
		return Proof{}, fmt.Errorf("%w: proof: %v", ErrMalformed, err)
	}
	if p.B, err = parseDecimal(f[2]); err != nil {
		return Proof{}, fmt.Errorf("%w: proof: %v", ErrMalformed, err)
	}
	if len(lines)-2 > maxProofHashes {
		return Proof{}, fmt.Errorf("%w: proof of %d hashes", ErrMalformed, len(lines)-2)
	}
	for i, l := range lines[2:] {
		h, err := parseHash(l)
		if err != nil {
			return Proof{}, fmt.Errorf("%w: proof hash %d: %v", ErrMalformed, i+1, err)
		}
		p.Hashes = append(p.Hashes, h)
	}
	return p, nil
}

// Verify checks an inclusion proof for leaf against root, or a
// consistency proof between oldRoot and root (leaf unused).
func (p Proof) Verify(leaf, oldRoot, root Hash) error {
	switch p.Kind {
	case Inclusion:
		return VerifyInclusion(leaf, p.A, p.B, p.Hashes, root)
	case Consistency:
		return VerifyConsistency(p.A, p.B, oldRoot, root, p.Hashes)
	}
	return fmt.Errorf("%w: proof kind %q", ErrMalformed, p.Kind)
}
