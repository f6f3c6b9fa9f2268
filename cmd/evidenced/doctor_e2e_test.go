package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/evidenced/evidenced/internal/hostclock"
)

// doctor runs the built binary's `doctor` and returns its exit code and
// output.
func (h *harness) doctor(t *testing.T, edit func(*exec.Cmd)) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, "doctor", "--config", h.cfgPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = os.Environ()
	if edit != nil {
		edit(cmd)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// line returns the check's line ("ok    store: reachable: ...") or "".
func checkLine(out, name string) string {
	m := regexp.MustCompile(`(?m)^(ok|FAIL|skip)\s+` + regexp.QuoteMeta(name) + `: .*$`).FindString(out)
	return m
}

// expectChecks asserts each named check's outcome and, for failures, that
// the next line is a fix.
func expectChecks(t *testing.T, out string, want map[string]string) {
	t.Helper()
	for name, status := range want {
		l := checkLine(out, name)
		if !strings.HasPrefix(l, status+" ") {
			t.Errorf("check %q: got line %q, want status %s", name, l, status)
			continue
		}
		if status == "FAIL" && !strings.Contains(out, l+"\n      fix: ") {
			t.Errorf("failed check %q has no fix line", name)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("doctor output:\n%s", out)
	}
}

// clockStatus is what doctor must say about this machine's clock, which
// the test cannot change.
func clockStatus() string {
	if hostclock.Read().Synced {
		return "ok"
	}
	return "FAIL"
}

// doctorVersions lists what is left under _doctor/ in the bucket.
func doctorVersions(t *testing.T, h *harness) int {
	t.Helper()
	out, err := h.srv.Client().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{
		Bucket: aws.String(h.bucket), Prefix: aws.String("_doctor/")})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// A healthy host: every check passes (the clock as it really is here), the
// probe object is gone afterwards, with and without a bucket default
// retention (which would otherwise lock the probe for days).
func TestDoctorHealthyHost(t *testing.T) {
	for _, withDefault := range []bool{false, true} {
		name := "no default retention"
		if withDefault {
			name = "default retention"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.firstIngest(t) // creates state_dir, the host key and the ledger
			if withDefault {
				h.lockByDefault(t)
			}
			code, out := h.doctor(t, nil)
			expectChecks(t, out, map[string]string{
				"config": "ok", "state_dir": "ok", "host key": "ok", "store: reachable": "ok", "store: bucket": "ok",
				"store: permissions": "ok", "store: probe removed": "ok", "store: part integrity": "ok",
				"clock": clockStatus(), "usb": "skip",
			})
			if !strings.Contains(checkLine(out, "store: part integrity"), "x-amz-checksum-sha256 (checked by the store)") {
				t.Errorf("versitygw refuses a part with a wrong x-amz-checksum-sha256; doctor should say parts are bound by it:\n%s", out)
			}
			if clockStatus() == "FAIL" && !strings.Contains(fixLine(out, "clock"), "timedatectl set-ntp true") {
				t.Errorf("an unsynchronised clock's fix does not say how to enable a time service:\n%s", out)
			}
			if !strings.Contains(checkLine(out, "host key"), "loads, key id ") {
				t.Errorf("host key line does not say the key loads:\n%s", out)
			}
			if withDefault && !strings.Contains(checkLine(out, "store: permissions"), "put with retention, get, tag") {
				t.Errorf("with a default retention the probe must carry its own short lock:\n%s", out)
			}
			wantCode := 0
			if clockStatus() == "FAIL" {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d\n%s", code, wantCode, out)
			}
			if n := doctorVersions(t, h); n != 0 {
				t.Errorf("doctor left %d versions or delete markers under _doctor/", n)
			}
		})
	}
}

// Each fault doctor can see here is one FAIL line with its fix, and exit 1.
func TestDoctorFailingChecks(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true, extra: "bogus_key: 1\n"})
		code, out := h.doctor(t, nil)
		expectChecks(t, out, map[string]string{"config": "FAIL"})
		if code != 1 || !strings.Contains(out, "bogus_key") {
			t.Errorf("exit %d, want 1 naming the bad key:\n%s", code, out)
		}
	})
	t.Run("store down", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.srv.Stop()
		code, out := h.doctor(t, nil)
		expectChecks(t, out, map[string]string{"store: reachable": "FAIL"})
		if code != 1 || !strings.Contains(checkLine(out, "store: reachable"), "connection refused") {
			t.Errorf("exit %d, want 1 saying connection refused:\n%s", code, out)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		code, out := h.doctor(t, func(c *exec.Cmd) { c.Env = append(c.Env, "AWS_SECRET_ACCESS_KEY=not-the-secret") })
		expectChecks(t, out, map[string]string{"store: reachable": "FAIL"})
		if code != 1 || !strings.Contains(checkLine(out, "store: reachable"), "wrong secret key") ||
			!strings.Contains(out, "/etc/evidenced/credentials") {
			t.Errorf("exit %d, want 1 saying the secret key is wrong, fix naming the credentials file:\n%s", code, out)
		}
	})
	t.Run("bucket without object lock", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		plain := h.bucket + "-nolock"
		c := h.srv.Client()
		if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(plain)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(plain),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
		cfg, _ := os.ReadFile(h.cfgPath)
		os.WriteFile(h.cfgPath, bytes.Replace(cfg, []byte("bucket: "+h.bucket), []byte("bucket: "+plain), 1), 0o644)
		code, out := h.doctor(t, nil)
		expectChecks(t, out, map[string]string{"store: reachable": "ok", "store: bucket": "FAIL"})
		if code != 1 || !strings.Contains(checkLine(out, "store: bucket"), "Object Lock is not enabled") {
			t.Errorf("exit %d, want 1 saying Object Lock is off:\n%s", code, out)
		}
	})
	t.Run("state_dir not writable", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		edit := func(*exec.Cmd) {}
		if os.Getuid() == 0 {
			// root writes anywhere: run doctor as nobody, owning state_dir
			// (so the ownership check passes) with no write permission.
			edit = h.asNobody(t)
		}
		if err := os.Chmod(h.state, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(h.state, 0o750) })
		code, out := h.doctor(t, edit)
		expectChecks(t, out, map[string]string{"config": "ok", "state_dir": "FAIL"})
		if code != 1 || !strings.Contains(checkLine(out, "state_dir"), "is not writable by") {
			t.Errorf("exit %d, want 1 saying state_dir is not writable:\n%s", code, out)
		}
	})
}

// lockByDefault gives the harness's bucket a default retention (GOVERNANCE,
// 30 days), which would lock a probe object that names none for that long.
func (h *harness) lockByDefault(t *testing.T) {
	t.Helper()
	if _, err := h.srv.Client().PutObjectLockConfiguration(context.Background(), &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(h.bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
				Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(30)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
}

// firstIngest ingests one small recording: the first open that creates
// state_dir, the host key and the ledger (read-only commands such as
// status create nothing).
func (h *harness) firstIngest(t *testing.T) {
	t.Helper()
	cam := filepath.Join(h.dir, "first-cam")
	writeCamera(t, cam, map[string]int{"DCIM/FIRST.MP4": 1000})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
}
