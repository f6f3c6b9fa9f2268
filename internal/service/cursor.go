package service

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
)

// A find cursor (FindOptions.After, FoundPage.Next) is where the next page
// of one search starts, opaque to its holder: the search it belongs to
// (a digest of the filter and host), how many matches come before the
// page, the total counted when the search's first page was made, and the
// position of the last item shown (the index key at a console). It is
// checked before use: its version, its MAC (a damaged or edited cursor is
// refused, not followed to some other page) and that it belongs to the
// search it is sent with. It grants nothing: the search is the request's
// own, authorized and recorded as any search. But what it carries (the
// offset, the total) goes into the access record of the page, so a holder
// must not be able to choose it: the MAC is keyed by a secret derived from
// the host key (cursorKey), the same in every process of this host, so a
// cursor printed by one `find` is taken by the next.
type findCursor struct {
	offset, total int
	pos           []byte
}

const (
	cursorVersion = 1
	cursorSum     = 16 // bytes of HMAC-SHA-256 over the rest
	cursorDigest  = 16 // bytes of the search's digest
	// maxCursor bounds a cursor's length (a position is an index key:
	// an officer, a host and an item id).
	maxCursor = 2048
)

// searchDigest names the search a cursor belongs to: everything that
// selects, not the page.
func searchDigest(o FindOptions) []byte {
	h := sha256.New()
	states := make([]string, len(o.Filter.States))
	for i, s := range o.Filter.States {
		states[i] = string(s)
	}
	slices.Sort(states)
	for _, v := range []string{o.Filter.Camera, o.Filter.AssignedTo, stamp(o.Filter.Since), stamp(o.Filter.Until), strings.Join(states, ","), o.Host} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return h.Sum(nil)[:cursorDigest]
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// cursorKey is the find cursors' MAC key: a hash of the host key's
// signature over a fixed message no record ever carries (Ed25519 signs
// deterministically, so every process of the host derives the same key,
// and nobody without the host key can).
func cursorKey(sign func([]byte) ([]byte, error)) ([]byte, error) {
	sig, err := sign([]byte("evidenced find cursor key v1\n"))
	if err != nil {
		return nil, fmt.Errorf("derive the find cursors' key: %w", err)
	}
	k := sha256.Sum256(sig)
	return k[:], nil
}

func cursorMAC(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:cursorSum]
}

// encode is c as the opaque text handed out for search o, under key.
func (c findCursor) encode(key []byte, o FindOptions) string {
	b := []byte{cursorVersion}
	b = append(b, searchDigest(o)...)
	b = binary.AppendUvarint(b, uint64(c.offset))
	b = binary.AppendUvarint(b, uint64(c.total))
	b = append(b, c.pos...)
	return base64.RawURLEncoding.EncodeToString(append(b, cursorMAC(key, b)...))
}

// decodeCursor reads the cursor s sent with search o, refusing one that
// is damaged, edited, made without key, or another search's (ErrInvalid,
// naming flag).
func decodeCursor(key []byte, flag, s string, o FindOptions) (findCursor, error) {
	bad := func(why string) (findCursor, error) {
		return findCursor{}, invalidf("%s: %s; start again from the first page", flag, why)
	}
	if len(s) > maxCursor {
		return bad("too long to be a cursor this console gave")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1+cursorDigest+2+cursorSum {
		return bad("not a cursor this console gave")
	}
	body, sum := b[:len(b)-cursorSum], b[len(b)-cursorSum:]
	if !hmac.Equal(sum, cursorMAC(key, body)) {
		return bad("the cursor is damaged or was altered (or was made before a host key rotation)")
	}
	if body[0] != cursorVersion {
		return bad("a cursor of another version")
	}
	if !bytes.Equal(body[1:1+cursorDigest], searchDigest(o)) {
		return bad("the cursor belongs to another search (other filters)")
	}
	rest := body[1+cursorDigest:]
	off, n := binary.Uvarint(rest)
	if n <= 0 {
		return bad("not a cursor this console gave")
	}
	rest = rest[n:]
	total, n := binary.Uvarint(rest)
	if n <= 0 || off > total || total > 1<<40 {
		return bad("not a cursor this console gave")
	}
	return findCursor{offset: int(off), total: int(total), pos: bytes.Clone(rest[n:])}, nil
}
