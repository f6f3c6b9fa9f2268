package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/objstore"
)

// bareUpload is the yardstick for issue-level claims about the upload
// engine's own cost: the same multipart upload (part size, parts in flight,
// same server and file) done with nothing but aws-sdk-go-v2 and nothing the
// engine guarantees — no checksum of any kind (RequestChecksumCalculation
// WhenRequired, UNSIGNED-PAYLOAD, so neither side hashes the body), no
// Object Lock, no tags, no ledger, no verification. Parts are section
// readers over the file, so the client copies nothing it does not send, and
// go out without an Expect: 100-continue wait, as the engine's do.
// What evidenced costs above this is what its guarantees cost.
//
// With withSHA256 it is the second yardstick, "bare + store checks
// SHA-256": the same upload with each part's x-amz-checksum-sha256 sent
// (and the upload created with ChecksumAlgorithm SHA256, the parts listed
// with their sums at complete), so the store hashes every part to check it
// as it does for evidenced. The part sums are computed before the clock
// starts: the client hashes nothing in the timed part. bare → bare+SHA-256
// is then the cost of that check on the store; bare+SHA-256 → evidenced is
// the engine's own.
func bareUpload(ctx context.Context, endpoint, bucket, file string, partSize int64, pc int, withSHA256 bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	var sums []digest.Sum
	if withSHA256 {
		if _, sums, err = objstore.HashParts(ctx, f, size, partSize); err != nil {
			return fmt.Errorf("bare: hash parts: %w", err)
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		awsconfig.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	if err != nil {
		return fmt.Errorf("bare: load AWS configuration: %w", err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		// No "Expect: 100-continue" wait before each part's body, as the
		// engine's transport (s3store: ExpectContinueTimeout 0): the
		// yardstick must not pay a round trip per part that evidenced
		// does not.
		o.ContinueHeaderThresholdBytes = -1
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	key := "bare.bin"
	label := "bare"
	if withSHA256 {
		key, label = "baresha.bin", "baresha"
	}
	cpu0, t0 := cpuTime(), time.Now()
	cin := &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key}
	if withSHA256 {
		cin.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	}
	mu, err := c.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return fmt.Errorf("bare: create multipart upload: %w", err)
	}
	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pc)
	for i := range n {
		off := int64(i) * partSize
		l := min(partSize, size-off)
		g.Go(func() error {
			in := &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), ContentLength: aws.Int64(l), Body: io.NewSectionReader(f, off, l)}
			if withSHA256 {
				in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
				in.ChecksumSHA256 = aws.String(sums[i].Base64())
			}
			out, err := c.UploadPart(gctx, in)
			if err != nil {
				return fmt.Errorf("bare: part %d: %w", i+1, err)
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumSHA256: in.ChecksumSHA256}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		return fmt.Errorf("bare: complete multipart upload: %w", err)
	}
	el, cpu := time.Since(t0), cpuTime()-cpu0
	fmt.Printf("bytes=%d %s_s=%.3f %s_MBps=%.1f cpu_s=%.3f\n", size, label, el.Seconds(), label, float64(size)/1e6/el.Seconds(), cpu.Seconds())
	return nil
}
