package s3store

import (
	"context"
	"fmt"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/evidenced/evidenced/internal/digest"
)

// computePayloadHashID is the Finalize middleware of aws-sdk-go-v2 that
// decides the SigV4 payload hash (x-amz-content-sha256): for PutObject and
// UploadPart it is v4's dynamic payload signing middleware, which over
// plain HTTP reads and SHA-256-hashes the whole body and seeks back
// (ComputePayloadSHA256), and over HTTPS signs "UNSIGNED-PAYLOAD".
const computePayloadHashID = "ComputePayloadHash"

// knownPayloadHashID names our middleware in the stack.
const knownPayloadHashID = "evidenced.KnownPayloadSHA256"

// withPayloadSHA256 is a per-call option for a request whose body is known
// to hash to sum: it puts sum in the signing context ahead of the SDK's
// payload hash middleware, which then leaves it alone (ComputePayloadSHA256
// and UnsignedPayload both skip when v4.GetPayloadHash is already set).
//
// Why: every body we send (a vault copy or one part of it) was already
// hashed on this host, in the same pass that checked it against the item's
// recorded SHA-256, and its sum travels as x-amz-checksum-sha256. Without
// this the SDK hashes the body a second time over plain HTTP only to sign
// it, which for a 60 GB recording is a full extra read and SHA-256 pass on
// the dock host. Nothing is weakened: the server recomputes the body's
// SHA-256 against x-amz-content-sha256 and refuses a mismatch (the sum is
// that of the bytes we meant to send, not of whatever the file gives at
// send time, so a body that changed after hashing is refused rather than
// signed as it is), and over HTTPS the signature now covers the body where
// UNSIGNED-PAYLOAD did not.
//
// The value is a stack value, set again on every attempt (the retry loop
// runs the Finalize step once per attempt), and the option is applied to a
// copy of the client's options, so concurrent calls do not share it.
func withPayloadSHA256(sum digest.Sum) func(*s3.Options) {
	h := sum.Hex()
	mw := middleware.FinalizeMiddlewareFunc(knownPayloadHashID, func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			if err := st.Finalize.Insert(mw, computePayloadHashID, middleware.Before); err != nil {
				return fmt.Errorf("set the known payload sha256 for signing: %w", err)
			}
			return nil
		})
	}
}
