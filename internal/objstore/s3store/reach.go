package s3store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// ErrNoCredentials: the AWS credential chain (environment, shared files,
// instance role) gave no credentials, so no request could be signed. The
// SDK says so only in prose; this names it so callers can tell the user.
var ErrNoCredentials = errors.New("no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")

// namedCredentials marks every failure of the credential chain with
// ErrNoCredentials, keeping the SDK's own error beside it.
type namedCredentials struct{ aws.CredentialsProvider }

func (n namedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := n.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrNoCredentials, err)
	}
	return c, nil
}

// sdkLogger sends the SDK's own log lines (such as its IMDS fallback
// warning when no credentials are configured) to the debug log instead of
// the user's terminal: what they mean reaches the user as the error of the
// operation that failed.
func sdkLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		log.Debug("aws sdk: "+fmt.Sprintf(format, v...), "class", string(c))
	})
}

// Probe asks the store about the bucket (its versioning state, a GET whose
// error has a code, unlike HEAD's), so a caller can tell "the store could
// not be asked" (unreachable, no or wrong credentials, no bucket) from what
// the store says about one object.
func (s *Store) Probe(ctx context.Context) error {
	if _, err := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(s.bucket)}); err != nil {
		return mapErr("reach bucket", s.bucket, err)
	}
	return nil
}

// Endpoint is where the store is: the configured endpoint, or "s3 (AWS)"
// when the SDK resolves it.
func (s *Store) Endpoint() string {
	if s.endpoint != "" {
		return s.endpoint
	}
	return "s3 (AWS, region " + s.region + ")"
}
