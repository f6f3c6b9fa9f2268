package service

import (
	"errors"
	"fmt"
)

// The kinds of failure a caller maps to its own answer (the CLI to exit
// codes 2 and 3, a console to its status). Every error an operation returns
// wraps at most one of them; anything else is a plain failure.
var (
	// ErrInvalid: the request itself is wrong (a missing or malformed
	// value, an unknown class); nothing was done.
	ErrInvalid = errors.New("invalid request")
	// ErrIntegrity: a hash, record, chain or object does not check out.
	ErrIntegrity = errors.New("integrity failure")
	// ErrNotFound: the item is not in the ledger.
	ErrNotFound = errors.New("not in the ledger")
	// ErrNotVerified: the item's object is not yet verified in the store,
	// and the request (classify, hold) must wait until it is.
	ErrNotVerified = errors.New("not yet verified in the object store")
)

// kindError is an error of one kind whose text is only its message.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() error        { return e.err }
func (e *kindError) Is(target error) bool { return target == e.kind }

// invalidf is an ErrInvalid with the given message.
func invalidf(format string, a ...any) error {
	return &kindError{kind: ErrInvalid, err: fmt.Errorf(format, a...)}
}

// integrityf is an ErrIntegrity with the given message.
func integrityf(format string, a ...any) error {
	return &kindError{kind: ErrIntegrity, err: fmt.Errorf(format, a...)}
}
