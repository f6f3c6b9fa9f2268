package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/aws/smithy-go"

	"github.com/evidenced/evidenced/internal/objstore"
	"github.com/evidenced/evidenced/internal/objstore/s3store"
)

// ErrStoreUnavailable: the object store could not be asked at all (not
// reachable, no or wrong credentials, no such bucket). Nothing was learnt
// about the evidence in it, so it is a failure to check, never a finding.
var ErrStoreUnavailable = errors.New("object store unavailable")

// whyUnavailable says, in a few words, why err means the store could not be
// asked, or "" when the store did answer (a missing object, a checksum that
// does not match: findings, not outages).
func whyUnavailable(err error) string {
	var dns *net.DNSError
	var ne net.Error
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidAccessKeyId", "XAdminUserNotFound": // the latter: versitygw
			return "access denied: the store does not know the access key (AWS_ACCESS_KEY_ID)"
		case "SignatureDoesNotMatch":
			return "access denied: wrong secret key (AWS_SECRET_ACCESS_KEY)"
		}
	}
	switch {
	case errors.Is(err, s3store.ErrNoCredentials):
		return s3store.ErrNoCredentials.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer (timed out)"
	case errors.Is(err, objstore.ErrAccessDenied):
		return "access denied (check the credentials and the bucket policy)"
	case errors.Is(err, objstore.ErrNoSuchBucket):
		return "the bucket does not exist (run store-init)"
	}
	return ""
}

// endpoint names the configured object store for the user.
func (s *Service) endpoint() string {
	if e, ok := s.store.(interface{ Endpoint() string }); ok {
		return e.Endpoint()
	}
	return "the object store"
}

// storeErr turns an error that means the store could not be asked into one
// line naming the store and why (an ErrStoreUnavailable); any other error
// is returned as is.
func (s *Service) storeErr(err error) error { return s.storeErrAs("reached", err) }

// storeErrAs is storeErr saying what could not be done ("reached",
// "checked").
func (s *Service) storeErrAs(done string, err error) error {
	if err == nil || errors.Is(err, ErrStoreUnavailable) {
		return err
	}
	why := whyUnavailable(err)
	if why == "" {
		return err
	}
	return &kindError{kind: ErrStoreUnavailable, err: fmt.Errorf("object store %s could not be %s: %s", s.endpoint(), done, why)}
}

// probeStore asks the store whether it can be asked at all, when it knows
// how (an S3 store); nil means go ahead. The raw store error is returned.
func (s *Service) probeStore(ctx context.Context) error {
	p, ok := s.store.(interface{ Probe(context.Context) error })
	if !ok {
		return nil
	}
	return p.Probe(ctx)
}
