package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// nobody is the account a test runs doctor as when root would pass a
// permission check by being root.
const nobody = 65534

// fixLine returns the fix printed under the check's line, or "".
func fixLine(out, name string) string {
	m := regexp.MustCompile(`(?m)^FAIL\s+` + regexp.QuoteMeta(name) + `: .*\n      fix: (.*)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// expectFailure asserts that check name failed saying detail, with a fix
// that says fix, that doctor exited 1, and that each check in passed said
// ok.
func expectFailure(t *testing.T, code int, out, name, detail, fix string, passed ...string) {
	t.Helper()
	want := map[string]string{name: "FAIL"}
	for _, p := range passed {
		want[p] = "ok"
	}
	expectChecks(t, out, want)
	if l := checkLine(out, name); !strings.Contains(l, detail) {
		t.Errorf("check %q: line %q does not say %q", name, l, detail)
	}
	if f := fixLine(out, name); !strings.Contains(f, fix) {
		t.Errorf("check %q: fix %q does not say %q", name, f, fix)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if t.Failed() {
		t.Logf("doctor output:\n%s", out)
	}
}

// editConfig replaces old (which must be there) with new in the config.
func (h *harness) editConfig(t *testing.T, old, new string) {
	t.Helper()
	cfg, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(old)) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(h.cfgPath, bytes.Replace(cfg, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// asNobody returns the edit that runs doctor as nobody, after letting
// nobody reach the binary and the config and making state_dir nobody's
// (as the packaged state_dir is the service account's). Without root
// there is nobody to switch to: the test is skipped.
func (h *harness) asNobody(t *testing.T) func(*exec.Cmd) {
	t.Helper()
	asRootWithoutServiceUser(t)
	// Add search (and read) permission only: a shared TMPDIR keeps its own
	// mode, sticky bit included.
	for _, d := range []string{filepath.Dir(h.dir), h.dir, filepath.Dir(binPath)} {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, st.Mode()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(h.cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(h.state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(h.state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
}

// asRootWithoutServiceUser skips a test that gives files to another user
// (which needs root) or expects root (or nobody) to be the owner doctor
// wants (which it is only where the service account does not exist).
func asRootWithoutServiceUser(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	if _, err := user.Lookup(serviceUserName); err == nil {
		t.Skipf("the %s account exists here: doctor expects it to own state_dir", serviceUserName)
	}
}

// serviceUserName is the account the package creates (service.serviceUser).
const serviceUserName = "evidenced"

// Every other way a check can fail that can be brought about on this host
// for real: one FAIL line naming the check, what was found and the fix,
// exit 1, and the checks before it ok.
func TestDoctorEachFailingCheck(t *testing.T) {
	t.Run("state_dir owned by another user", func(t *testing.T) {
		asRootWithoutServiceUser(t)
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		if err := os.Chown(h.state, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "state_dir", "is owned by nobody, not root", "install -d -o root -g root -m 0750 "+h.state, "config")
	})
	t.Run("state_dir not a directory", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		if err := os.WriteFile(h.state, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "state_dir", h.state+" is not a directory", "point state_dir at a directory", "config")
	})
	t.Run("state_dir cannot be created", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		edit := h.asNobody(t)
		if err := os.Remove(h.state); err != nil { // its parent is root's, 0755
			t.Fatal(err)
		}
		code, out := h.doctor(t, edit)
		expectFailure(t, code, out, "state_dir", "does not exist and its parent is not writable", "install -d -o nobody", "config")
	})
	t.Run("state_dir behind a directory the service user cannot enter", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		edit := h.asNobody(t)
		locked := filepath.Join(h.dir, "locked")
		if err := os.Mkdir(locked, 0o700); err != nil { // root's
			t.Fatal(err)
		}
		h.editConfig(t, "state_dir: "+h.state, "state_dir: "+filepath.Join(locked, "state"))
		code, out := h.doctor(t, edit)
		expectFailure(t, code, out, "state_dir", "permission denied", "install -d -o nobody -g nobody -m 0750 "+filepath.Join(locked, "state"), "config")
	})
	t.Run("state_dir without room above vault_reserve", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		h.editConfig(t, "vault_reserve: 0\n", "vault_reserve: 1000000TiB\n")
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "state_dir", "not more than vault_reserve 1024000000.0 GiB: every dock would be refused",
			"free space on "+h.state+" (or lower vault_reserve)", "config", "host key")
	})
	t.Run("host key readable by others", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		key := filepath.Join(h.state, "host.key")
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "host key", "has mode 0644: others can read the key that signs custody",
			"chmod 600 "+key+"; it may have been copied: evidenced key rotate --reason TEXT replaces it", "config", "state_dir")
	})
	t.Run("host key corrupt", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		key := filepath.Join(h.state, "host.key")
		if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "host key", key, "restore the key from its backup", "config", "state_dir")
	})
	t.Run("host key unreadable by the service user", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t) // the key is root's, 0600
		edit := h.asNobody(t)
		key := filepath.Join(h.state, "host.key")
		code, out := h.doctor(t, edit)
		expectFailure(t, code, out, "host key", "permission denied", "chown nobody "+key, "config", "state_dir")
	})
	t.Run("host key owned by another user", func(t *testing.T) {
		asRootWithoutServiceUser(t)
		h := newHarness(t, harnessOpts{noStore: true})
		h.firstIngest(t)
		key := filepath.Join(h.state, "host.key")
		if err := os.Chown(key, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "host key", "is owned by nobody, not root", "chown root "+key, "config", "state_dir")
	})
	t.Run("bucket without versioning", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		plain := h.bucket + "-plain"
		if _, err := h.srv.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(plain)}); err != nil {
			t.Fatal(err)
		}
		h.editConfig(t, "bucket: "+h.bucket, "bucket: "+plain)
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "store: bucket", `versioning is "", not Enabled`, "use a new bucket made by evidenced store-init",
			"config", "store: reachable")
	})
	t.Run("bucket does not exist", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.editConfig(t, "bucket: "+h.bucket, "bucket: "+h.bucket+"-missing")
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "store: reachable", "bucket does not exist", "evidenced store-init creates it", "config")
	})
	t.Run("unknown access key", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		code, out := h.doctor(t, func(c *exec.Cmd) { c.Env = append(c.Env, "AWS_ACCESS_KEY_ID=NOBODYKNOWSTHISKEY") })
		expectFailure(t, code, out, "store: reachable", "the store does not know the access key", "/etc/evidenced/credentials", "config")
	})
	t.Run("no credentials", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		code, out := h.doctor(t, func(c *exec.Cmd) {
			c.Env = append(c.Env, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
		})
		expectFailure(t, code, out, "store: reachable", "no S3 credentials found", "/etc/evidenced/credentials", "config")
	})
	t.Run("part integrity could not be probed", func(t *testing.T) {
		// The store cannot start a multipart upload (its directory for
		// them is a file): single PUTs, the probe object included, still
		// work, so only the part probe fails, with the store's 500.
		h := newHarness(t, harnessOpts{})
		tmp := filepath.Join(h.srv.Dir, "data", h.bucket, ".sgwtmp")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(tmp, "multipart"))
		if err := os.WriteFile(filepath.Join(tmp, "multipart"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, "store: part integrity", "could not probe whether the store checks x-amz-checksum-sha256 on a part: ",
			"run doctor again once the store answers", "store: reachable", "store: bucket", "store: permissions", "store: probe removed")
		if l := checkLine(out, "store: part integrity"); !strings.Contains(l, "parts are bound by the signed payload hash") {
			t.Errorf("the line does not say what parts are bound by meanwhile: %q", l)
		}
	})
	t.Run("inventory key", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.firstIngest(t)
		pem := filepath.Join(h.dir, "console.pem")
		h.editConfig(t, "upload:\n", "inventory:\n  from_console: hq\n  public_key_file: "+pem+"\nupload:\n")
		const name = "console inventory key"
		fix := "at console hq run `evidenced key --public` and copy its output to " + pem
		code, out := h.doctor(t, nil)
		expectFailure(t, code, out, name, "no such file or directory", fix, "config", "store: reachable")
		if err := os.WriteFile(pem, []byte("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out = h.doctor(t, nil)
		expectFailure(t, code, out, name, pem+": ", fix, "config")
		// A real key (this host's own, standing in for the console's) loads.
		if err := os.WriteFile(pem, []byte(h.mustCLI("key", "--public")), 0o644); err != nil {
			t.Fatal(err)
		}
		_, out = h.doctor(t, nil)
		expectChecks(t, out, map[string]string{name: "ok"})
		if l := checkLine(out, name); !strings.Contains(l, "loads: console hq, key id ") {
			t.Errorf("inventory key line: %q", l)
		}
	})
	t.Run("usb without the mount capability or the udev rule", func(t *testing.T) {
		h := newHarness(t, harnessOpts{noStore: true})
		h.editConfig(t, "sources:\n", "sources:\n  usb:\n    enabled: true\n    mount_dir: "+filepath.Join(h.dir, "mnt")+
			"\n    profiles: [{name: bodycam-x1, vendor_id: \"1209\", product_id: \"0001\", recordings: [DCIM]}]\n")
		edit := h.asNobody(t) // without CAP_SYS_ADMIN
		if _, err := os.Stat("/etc/systemd/system/evidenced.service.d/usb.conf"); err == nil {
			t.Skip("the unit's USB drop-in is installed here: it grants the capability")
		}
		code, out := h.doctor(t, edit)
		expectFailure(t, code, out, "usb: mount capability", "no CAP_SYS_ADMIN: cameras cannot be mounted",
			"install systemd/evidenced-usb.conf as /etc/systemd/system/evidenced.service.d/usb.conf", "config", "state_dir")
		if udevRuleInstalled() {
			expectChecks(t, out, map[string]string{"usb: udev rule": "ok"})
		} else {
			expectFailure(t, code, out, "usb: udev rule", "99-evidenced-cameras.rules is not installed: desktop automounters may write to cameras",
				"install -m 0644 systemd/99-evidenced-cameras.rules /etc/udev/rules.d/ && udevadm control --reload")
		}
		// libusb is a dependency of the build host: found.
		expectChecks(t, out, map[string]string{"usb: libusb": "ok"})
	})
}

// udevRuleInstalled says whether this host has the package's udev rule
// where doctor looks for it.
func udevRuleInstalled() bool {
	for _, d := range []string{"/etc/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d"} {
		if _, err := os.Stat(filepath.Join(d, "99-evidenced-cameras.rules")); err == nil {
			return true
		}
	}
	return false
}

// On Ceph RGW, which takes a part whose x-amz-checksum-sha256 is wrong,
// doctor says so and that the signed payload hash binds parts instead; the
// other store checks pass there too and the probe is gone afterwards.
func TestDoctorStoreIgnoresPartChecksum(t *testing.T) {
	h := newHarness(t, harnessOpts{rgw: true})
	code, out := h.doctor(t, nil)
	expectChecks(t, out, map[string]string{
		"config": "ok", "store: reachable": "ok", "store: bucket": "ok", "store: permissions": "ok",
		"store: probe removed": "ok", "store: part integrity": "ok",
	})
	if l := checkLine(out, "store: part integrity"); !strings.Contains(l, "the store ignores x-amz-checksum-sha256 on a part, so each part is bound to its SHA-256 by the signed payload hash") {
		t.Errorf("part integrity on RGW: %q", l)
	}
	if code != 0 && clockStatus() == "ok" {
		t.Errorf("exit %d on a healthy host", code)
	}
	if n := doctorVersions(t, h); n != 0 {
		t.Errorf("doctor left %d versions or delete markers under _doctor/", n)
	}
}

// storeActions is every action doctor's store checks use (the grant list
// its fix names) and s3:DeleteObject, which an uploading host has too.
var storeActions = []string{
	"s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration",
	"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectVersion",
	"s3:PutObjectTagging", "s3:PutObjectVersionTagging", "s3:DeleteObject", "s3:DeleteObjectVersion",
	"s3:AbortMultipartUpload",
}

// Credentials allowed some of what uploads need and not the rest: a
// versitygw account that is not root, given by a bucket policy every
// action doctor uses but the ones each case leaves out. All granted, every
// store check passes (so the failures below are the missing permission's,
// not the account's).
func TestDoctorStorePermissions(t *testing.T) {
	h := newHarness(t, harnessOpts{users: true})
	const access, secret = "dock-limited", "dock-limited-secret-0123"
	h.srv.AddUser(t, access, secret)
	ctx := context.Background()
	asUser := func(c *exec.Cmd) {
		c.Env = append(c.Env, "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret)
	}
	grantAllBut := func(t *testing.T, without ...string) []string {
		t.Helper()
		var actions []string
		for _, a := range storeActions {
			if !slices.Contains(without, a) {
				actions = append(actions, a)
			}
		}
		policy, err := json.Marshal(map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect": "Allow", "Principal": map[string]any{"AWS": []string{access}}, "Action": actions,
				"Resource": []string{"arn:aws:s3:::" + h.bucket, "arn:aws:s3:::" + h.bucket + "/*"},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.srv.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(h.bucket), Policy: aws.String(string(policy))}); err != nil {
			t.Fatal(err)
		}
		return without
	}
	// namesAll: the fix of the failed check names every action left out.
	namesAll := func(t *testing.T, out, check string, actions []string) {
		t.Helper()
		words := strings.FieldsFunc(fixLine(out, check), func(r rune) bool { return r == ',' || r == ';' || r == ' ' })
		for _, a := range actions {
			if !slices.Contains(words, a) {
				t.Errorf("%s: the fix does not name %s: %q", check, a, fixLine(out, check))
			}
		}
	}
	const grant = "grant the credentials s3:GetBucketVersioning"
	stores := []string{"store: reachable", "store: bucket", "store: permissions", "store: probe removed", "store: part integrity"}

	t.Run("all granted", func(t *testing.T) {
		grantAllBut(t)
		_, out := h.doctor(t, asUser)
		want := map[string]string{}
		for _, c := range stores {
			want[c] = "ok"
		}
		expectChecks(t, out, want)
		if l := checkLine(out, "store: part probe removed"); l != "" {
			t.Errorf("all granted, yet %q", l)
		}
	})
	t.Run("no GetBucketVersioning", func(t *testing.T) {
		without := grantAllBut(t, "s3:GetBucketVersioning")
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: reachable", "access denied", grant, "config")
		namesAll(t, out, "store: reachable", without)
	})
	t.Run("no GetBucketObjectLockConfiguration", func(t *testing.T) {
		without := grantAllBut(t, "s3:GetBucketObjectLockConfiguration")
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: bucket", "cannot read the Object Lock configuration: access denied", grant, "store: reachable")
		namesAll(t, out, "store: bucket", without)
	})
	t.Run("no get", func(t *testing.T) {
		without := grantAllBut(t, "s3:GetObject", "s3:GetObjectVersion")
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: permissions", "get (done: put): access denied", grant, "store: reachable", "store: bucket", "store: probe removed")
		namesAll(t, out, "store: permissions", without)
	})
	t.Run("no tagging", func(t *testing.T) {
		without := grantAllBut(t, "s3:PutObjectTagging", "s3:PutObjectVersionTagging")
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: permissions", "tag (done: put, get): access denied", grant, "store: reachable", "store: bucket", "store: probe removed")
		namesAll(t, out, "store: permissions", without)
	})
	t.Run("no delete", func(t *testing.T) {
		without := grantAllBut(t, "s3:DeleteObjectVersion") // s3:DeleteObject stays: doctor deletes a version
		before := doctorVersions(t, h)
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: probe removed", "access denied", "delete that version by hand", "store: permissions")
		namesAll(t, out, "store: probe removed", without)
		if n := doctorVersions(t, h) - before; n != 1 {
			t.Errorf("the probe that could not be deleted: %d new versions under _doctor/, want 1 (said so in the line)", n)
		}
	})
	t.Run("no abort", func(t *testing.T) {
		without := grantAllBut(t, "s3:AbortMultipartUpload")
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: part probe removed", "could not be aborted: access denied", "abort it", "store: part integrity", "store: probe removed")
		namesAll(t, out, "store: part probe removed", without)
		ups, err := h.srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(h.bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) != 1 || !strings.Contains(checkLine(out, "store: part probe removed"), "upload "+aws.ToString(ups.Uploads[0].UploadId)+" of ") {
			t.Errorf("uploads left: %d; the line should name the one left", len(ups.Uploads))
		}
		for _, u := range ups.Uploads {
			if _, err := h.srv.Client().AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(h.bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("no retention, bucket locks by default", func(t *testing.T) {
		h.lockByDefault(t)
		without := grantAllBut(t, "s3:PutObjectRetention")
		before := doctorVersions(t, h)
		code, out := h.doctor(t, asUser)
		expectFailure(t, code, out, "store: permissions", "put with retention _doctor/", grant, "store: reachable", "store: bucket")
		namesAll(t, out, "store: permissions", without)
		if l := checkLine(out, "store: permissions"); !strings.Contains(l, ": access denied") {
			t.Errorf("the refused put does not say access denied: %q", l)
		}
		if n := doctorVersions(t, h) - before; n != 0 {
			t.Errorf("a refused probe left %d versions", n)
		}
	})
}
