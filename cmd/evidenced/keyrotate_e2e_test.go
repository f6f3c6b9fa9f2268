package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/evidenced/evidenced/internal/signing"
)

// `evidenced key rotate` on a dock host, run through the daemon's control
// socket (built binary, real versitygw): the output names both
// fingerprints, the new public key is in the store at once, the host
// ingests with the new key after the daemon stops, verify and verify
// --remote pass across the rotation, and an export made after it verifies
// with verify-export given only the first key's fingerprint (the later
// key is accepted through the KEY_ROTATED record). Tampered: a key file
// swapped for an unrelated key fails verify with exit 3 naming the key
// file; a package without its KEY_ROTATED record fails verify-export with
// exit 3 naming the record.
func TestKeyRotateEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 100 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0001", "--from", cam)
	first := h.fingerprint(t)

	d, logs := startDaemon(t, h)
	code, out, errs := run(t, nil, "key", "rotate", "--config", h.cfgPath, "--reason", "yearly rotation")
	if code != 0 {
		t.Fatalf("key rotate: exit %d\n%s%s\ndaemon:\n%s", code, out, errs, logs)
	}
	t.Logf("key rotate:\n%s", out)
	m := regexp.MustCompile(`old (SHA256:[0-9a-f]{64}).*\n\s+new (SHA256:[0-9a-f]{64})`).FindStringSubmatch(out)
	if m == nil || m[1] != first || m[2] == first || !strings.Contains(out, "old private key removed") || !strings.Contains(out, "anchored") {
		t.Fatalf("key rotate output does not name old %s and a new key:\n%s", first, out)
	}
	second := m[2]
	d.signal(syscall.SIGTERM)

	// The new public key is where the old one is published.
	st := openStore(t, h)
	newID, _ := signing.ParseFingerprint(second)
	rc, err := st.Open(context.Background(), "_custody/test-dock/keys/"+newID+".pem", "")
	if err != nil {
		t.Fatalf("new public key not in the store: %v", err)
	}
	var pemb bytes.Buffer
	pemb.ReadFrom(rc)
	rc.Close()
	if pub, err := signing.ParsePublicPEM(pemb.Bytes()); err != nil || signing.Fingerprint(pub) != second {
		t.Fatalf("keys/%s.pem: %v", newID, err)
	}
	if fps := h.mustCLI("key", "--fingerprint"); !strings.Contains(fps, first) || !strings.Contains(fps, second+" from record") {
		t.Fatalf("key --fingerprint after the rotation:\n%s", fps)
	}

	// A next key no KEY_ROTATED record names (a rotation cut short before
	// its record) is removed when the daemon starts, which then ingests
	// with the key in force.
	stray := filepath.Join(h.state, "host.key.next")
	if _, err := signing.Create(stray, "test-dock"); err != nil {
		t.Fatal(err)
	}
	d, logs = startDaemon(t, h)
	cam2 := filepath.Join(h.dir, "cam2")
	writeCamera(t, cam2, map[string]int{"DCIM/100MEDIA/VID_0002.MP4": 100 << 10})
	h.mustCLI("ingest", "--camera", "BWC-0002", "--from", cam2)
	d.signal(syscall.SIGTERM)
	if _, err := os.Stat(stray); !os.IsNotExist(err) || !strings.Contains(logs.String(), "removed the next host key of a rotation that did not commit") {
		t.Fatalf("stray next key at start: %v\n%s", err, logs)
	}
	if fp := h.mustCLI("key", "--public"); !strings.Contains(fp, "BEGIN PUBLIC KEY") {
		t.Fatalf("key --public: %s", fp)
	}
	if _, _, errs := h.cli("key", "--public"); !strings.Contains(errs, second) {
		t.Fatalf("the host key after the restart is not %s: %s", second, errs)
	}
	h.mustCLI("verify")
	h.mustCLI("verify", "--remote")
	items := h.find("--camera", "BWC-0002")
	if len(items) != 1 {
		t.Fatalf("items %+v", items)
	}
	pkg := filepath.Join(h.dir, "pkg")
	h.mustCLI("export", items[0].ID, "--reason", "case 2026/77", "--out", pkg)
	code, vout, verrs := verifyExport(t, pkg, "--key-fingerprint", first)
	if code != 0 || !strings.Contains(vout, "KEY_ROTATED") {
		t.Fatalf("verify-export of a package made after the rotation: exit %d\n%s%s", code, vout, verrs)
	}

	t.Run("package without its KEY_ROTATED record", func(t *testing.T) {
		cp := exportCopy(t, pkg)
		recs, _ := filepath.Glob(filepath.Join(cp, "records", "*.json"))
		removed := ""
		for _, r := range recs {
			b, _ := os.ReadFile(r)
			if bytes.Contains(b, []byte(`"type":"KEY_ROTATED"`)) {
				os.Remove(r)
				removed = filepath.Base(r)
			}
		}
		if removed == "" {
			t.Fatalf("no KEY_ROTATED record among %v", recs)
		}
		rehashManifest(t, cp)
		code, vout, verrs := verifyExport(t, cp, "--key-fingerprint", first)
		if code != exitIntegrity || !strings.Contains(vout+verrs, "KEY_ROTATED") {
			t.Fatalf("verify-export without %s: exit %d, want %d naming the KEY_ROTATED record\n%s%s", removed, code, exitIntegrity, vout, verrs)
		}
	})

	t.Run("key file swapped without a rotation", func(t *testing.T) {
		kp := filepath.Join(h.state, "host.key")
		if err := os.Remove(kp); err != nil {
			t.Fatal(err)
		}
		if _, err := signing.Create(kp, "test-dock"); err != nil {
			t.Fatal(err)
		}
		code, out, errs := h.cli("verify")
		if code != exitIntegrity || !strings.Contains(out, "host key file "+kp) || !strings.Contains(out, "without a KEY_ROTATED record") {
			t.Fatalf("verify with a swapped key file: exit %d, want %d naming it\n%s%s", code, exitIntegrity, out, errs)
		}
	})
}
