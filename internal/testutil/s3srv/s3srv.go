// Package s3srv runs real S3 servers for tests (VersityGW with its posix
// backend, and Ceph RGW: see rgw.go), so that object-store behaviour —
// checksum refusal, versioning, Object Lock, composite checksums — is
// tested against a server, not a fake.
//
// Each Start is one server process with its own data directory under the
// test's temporary directory, on a free 127.0.0.1 port; the test's cleanup
// stops it. Buckets from NewBucket are unique, so COMPLIANCE-locked versions
// never get in the way of another test.
//
// The binary is looked up in $EVIDENCED_VERSITYGW, then
// $HOME/.cache/evidenced/bin/versitygw (where scripts/s3-server.sh install
// puts it), then PATH. When it is missing or does not start, the test is
// skipped — unless CI or EVIDENCED_REQUIRE_S3 is set, where it fails: CI must
// never pass by skipping the tests that matter.
//
// Import it only from _test.go files.
package s3srv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sys/unix"
)

// Root credentials of every test server.
const (
	AccessKey = "testaccess"
	SecretKey = "testsecret123"
	Region    = "us-east-1"
)

// startTimeout bounds how long a server may take to answer /health (it
// takes ~0.25 s; the margin is for a loaded CI machine).
const startTimeout = 30 * time.Second

// Server is one running S3 server: a VersityGW of its own (Start) or the
// test binary's shared Ceph RGW (RGW).
type Server struct {
	// Name says which implementation it is: "versitygw" or "rgw".
	Name      string
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // data, versions, sidecar metadata and server.log live here

	bin  string
	port int
	// iam: the server keeps accounts besides root (--iam-dir), see
	// StartWithUsers.
	iam bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

var bucketSeq atomic.Int64

// Binary returns the path of the versitygw binary, or an error saying where
// it looked.
func Binary() (string, error) {
	if p := os.Getenv("EVIDENCED_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("EVIDENCED_VERSITYGW=%s: %w", p, err)
		}
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "evidenced", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw not found in $EVIDENCED_VERSITYGW, ~/.cache/evidenced/bin or PATH (run scripts/s3-server.sh install)")
}

// unavailable skips the test, or fails it where a real server is required.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" || os.Getenv("EVIDENCED_REQUIRE_S3") != "" {
		t.Fatalf("S3 server required (CI / EVIDENCED_REQUIRE_S3 set): %s", msg)
	}
	t.Skipf("no S3 server: %s", msg)
}

// Start starts a fresh server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

// StartWithUsers is Start for a server that also knows the accounts
// AddUser creates: users without root's rights, allowed only what a
// bucket policy grants them.
func StartWithUsers(t testing.TB) *Server {
	t.Helper()
	return startServer(t, true)
}

func startServer(t testing.TB, iam bool) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		unavailable(t, "%v", err)
	}
	dir := t.TempDir()
	if dir, err = filepath.Abs(dir); err != nil { // versitygw chdirs: absolute paths only
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		unavailable(t, "find a free port: %v", err)
	}
	s := &Server{
		Name:      "versitygw",
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: AccessKey, SecretKey: SecretKey, Dir: dir,
		bin: bin, port: port, iam: iam,
	}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		unavailable(t, "%v", err)
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	data, versions := filepath.Join(s.Dir, "data"), filepath.Join(s.Dir, "versions")
	for _, d := range []string{data, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	args := []string{"--port", "127.0.0.1:" + strconv.Itoa(s.port), "--health", "/health", "--quiet", "--keep-alive"}
	if s.iam {
		iam := filepath.Join(s.Dir, "iam")
		if err := os.MkdirAll(iam, 0o700); err != nil {
			return err
		}
		args = append(args, "--iam-dir", iam)
	}
	args = append(args, "posix", "--versioning-dir", versions)
	// Without user xattrs the posix backend cannot keep metadata beside the
	// data; a sidecar directory does the same job.
	if err := unix.Setxattr(data, "user.evidenced-probe", []byte("1"), 0); err != nil {
		meta := filepath.Join(s.Dir, "meta")
		if err := os.MkdirAll(meta, 0o755); err != nil {
			return err
		}
		args = append(args, "--sidecar", meta)
	} else {
		_ = unix.Removexattr(data, "user.evidenced-probe")
	}
	args = append(args, data)
	logf, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited during start-up:\n%s", s.logTail())
		default:
		}
		if resp, err := client.Get(s.Endpoint + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("versitygw did not answer %s/health within %s:\n%s", s.Endpoint, startTimeout, s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// PID is the server's process id, 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop ends the server with SIGTERM (SIGKILL if it lingers) and waits for
// it. Safe to call more than once.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL, as a crash or power cut would, and
// waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart starts the server again on the same port and data directory
// (after Stop or Kill), so stored objects survive: the "store came back"
// half of a fault test.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.bin == "" {
		t.Fatalf("restart: the shared %s server cannot be restarted by a test", s.Name)
	}
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("restart S3 server: %v", err)
	}
}

// AddUser creates an account with role "user" on a server from
// StartWithUsers, through versitygw's admin command: it may do only what a
// bucket policy grants its access key.
func (s *Server) AddUser(t testing.TB, access, secret string) {
	t.Helper()
	if !s.iam {
		t.Fatal("AddUser: the server was not started with StartWithUsers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.bin, "admin", "--access", s.AccessKey, "--secret", s.SecretKey, "--endpoint-url", s.Endpoint,
		"create-user", "--access", access, "--secret", secret, "--role", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("create user %s: %v\n%s", access, err, out)
	}
}

// Client returns an SDK client for the server with the root credentials,
// independent of the process environment.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a bucket with a unique lower-case name, Object Lock
// and versioning enabled, and returns its name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("evt-%s-%d", hex.EncodeToString(rnd[:]), bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatalf("enable versioning on %s: %v", name, err)
	}
	return name
}

// SetEnv points the standard AWS credential chain of this process at the
// server for the rest of t: credentials, region and endpoint from the
// environment, and nothing from the user's own AWS files or profile.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	none := filepath.Join(s.Dir, "no-aws-config")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       s.SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_ENDPOINT_URL":            s.Endpoint,
		"AWS_ENDPOINT_URL_S3":         s.Endpoint,
		"AWS_CA_BUNDLE":               "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// AWSCLI is where the AWS CLI is expected (Debian's awscli package).
const AWSCLI = "/usr/bin/aws"

// CLI runs `aws s3api ARGS` against the server and decodes its JSON
// answer into v: a reader independent of evidenced's own client and of the
// SDK it uses. The CLI gets the server's endpoint and root credentials and
// nothing of the user's AWS files; pass a version id as --version-id=V (an
// id may begin with "-"). When the CLI is missing the test is skipped,
// unless CI or EVIDENCED_REQUIRE_S3 is set, where it fails.
func (s *Server) CLI(t testing.TB, v any, args ...string) {
	t.Helper()
	if _, err := os.Stat(AWSCLI); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("EVIDENCED_REQUIRE_S3") != "" {
			t.Fatalf("the AWS CLI is required (CI / EVIDENCED_REQUIRE_S3 set): %v", err)
		}
		t.Skipf("no AWS CLI to read the store with: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, AWSCLI, append(append([]string{"s3api"}, args...), "--endpoint-url", s.Endpoint, "--output", "json")...)
	// The CLI reads an empty AWS_PROFILE as a profile named "": every AWS_
	// variable of the process is dropped and only the server's are set.
	none := filepath.Join(s.Dir, "no-aws-config")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+s.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.SecretKey,
		"AWS_DEFAULT_REGION="+Region, "AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("aws s3api %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("aws s3api %s output %q: %v", args[0], out, err)
	}
}

// CLIRetention reads the Object Lock retention of one object version with
// the AWS CLI (`aws s3api get-object-retention`, see CLI).
func (s *Server) CLIRetention(t testing.TB, bucket, key, versionID string) (mode string, until time.Time) {
	t.Helper()
	var r struct {
		Retention struct{ Mode, RetainUntilDate string }
	}
	s.CLI(t, &r, "get-object-retention", "--bucket", bucket, "--key", key, "--version-id="+versionID)
	until, err := time.Parse(time.RFC3339, r.Retention.RetainUntilDate)
	if err != nil {
		t.Fatalf("aws s3api get-object-retention: RetainUntilDate %q: %v", r.Retention.RetainUntilDate, err)
	}
	return r.Retention.Mode, until
}

// CLILegalHold reads the legal hold status ("ON" or "OFF") of one object
// version with the AWS CLI (`aws s3api get-object-legal-hold`, see CLI).
func (s *Server) CLILegalHold(t testing.TB, bucket, key, versionID string) string {
	t.Helper()
	var r struct{ LegalHold struct{ Status string } }
	s.CLI(t, &r, "get-object-legal-hold", "--bucket", bucket, "--key", key, "--version-id="+versionID)
	return r.LegalHold.Status
}
