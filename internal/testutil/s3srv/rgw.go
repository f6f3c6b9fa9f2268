package s3srv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Ceph RGW, the second real S3 implementation the store contract is proven
// on (most municipal object storage is Ceph). A single-node cluster (one
// monitor, one in-memory OSD, the gateway) takes ~15 s to start, so a test
// binary starts at most one, on first use (RGW), and its TestMain stops it
// (Main). scripts/ceph-rgw.sh does the starting and stopping; the tests use
// the same script a person would.
//
// When Ceph is not installed or does not start, the test is skipped —
// unless EVIDENCED_REQUIRE_RGW is set (scripts/test.sh sets it), where it
// fails. With -short the RGW tests are skipped.

// rgwStartTimeout bounds scripts/ceph-rgw.sh start (~15 s when the machine
// is quiet).
const rgwStartTimeout = 3 * time.Minute

var rgw struct {
	once sync.Once
	srv  *Server
	err  error
}

// RGW returns the test binary's Ceph RGW, starting it on first use. Its
// Stop and Kill do nothing (it is shared); Main stops it when the tests end.
// Give each test its own bucket (NewBucket).
func RGW(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		// Starting a cluster costs ~15-20 s; -short runs (the mutation
		// gate) leave it out.
		t.Skip("Ceph RGW: not in -short")
	}
	rgw.once.Do(func() { rgw.srv, rgw.err = startRGW() })
	if rgw.err != nil {
		if os.Getenv("EVIDENCED_REQUIRE_RGW") != "" {
			t.Fatalf("Ceph RGW required (EVIDENCED_REQUIRE_RGW set): %v", rgw.err)
		}
		t.Skipf("no Ceph RGW: %v", rgw.err)
	}
	return rgw.srv
}

// Main runs the tests of a package that uses RGW and stops the RGW
// afterwards; call it from TestMain: os.Exit(s3srv.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if rgw.srv != nil {
		if err := stopRGW(rgw.srv.Dir); err != nil {
			fmt.Fprintf(os.Stderr, "s3srv: stop Ceph RGW: %v\n", err)
		}
		_ = os.RemoveAll(rgw.srv.Dir)
	}
	return code
}

// RGWScript is the path of scripts/ceph-rgw.sh: $EVIDENCED_CEPH_RGW_SCRIPT,
// else found from the working directory up to the module root.
func RGWScript() (string, error) {
	if p := os.Getenv("EVIDENCED_CEPH_RGW_SCRIPT"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "scripts", "ceph-rgw.sh")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("module root %s has no scripts/ceph-rgw.sh: %w", dir, err)
			}
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory: cannot find scripts/ceph-rgw.sh")
		}
		dir = up
	}
}

func startRGW() (*Server, error) {
	for _, c := range []string{"ceph-mon", "ceph-osd", "radosgw"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("%s is not installed (run scripts/ceph-rgw.sh install)", c)
		}
	}
	script, err := RGWScript()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "evidenced-rgw-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	monPort, err := freePort()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), rgwStartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start", dir)
	cmd.Env = append(os.Environ(),
		"RGW_PORT="+strconv.Itoa(port), "RGW_MON_PORT="+strconv.Itoa(monPort),
		"RGW_OWNER_PID="+strconv.Itoa(os.Getpid()), // stopped even if this binary is killed
		"RGW_ACCESS_KEY="+AccessKey, "RGW_SECRET_KEY="+SecretKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = stopRGW(dir)
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("%s start %s: %w\n%s", script, dir, err, out)
	}
	return &Server{
		Name:     "rgw",
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), AccessKey: AccessKey, SecretKey: SecretKey,
		Dir: dir, port: port,
	}, nil
}

func stopRGW(dir string) error {
	script, err := RGWScript()
	if err != nil {
		return err
	}
	out, err := exec.Command(script, "stop", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s stop %s: %w\n%s", script, dir, err, out)
	}
	return nil
}
