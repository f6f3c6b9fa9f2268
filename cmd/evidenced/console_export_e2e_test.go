package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/export"
	"github.com/evidenced/evidenced/internal/signing"
	"github.com/evidenced/evidenced/internal/testutil/forge"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
	"github.com/evidenced/evidenced/internal/tlog"
)

// Issue #13: export and verify-export of a console's package, through the
// built binary on a real S3 server. Two dock hosts each ingest a
// recording; the console holds one and exports both. The package carries
// each dock host's records proven in the checkpoint that host signed and
// anchored, and the console's own records (the hold, the export's
// accesses) proven in the console's anchored checkpoint; verify-export
// --keys FILE (the three hosts' keys) accepts it. Without the console's
// key, with a dock host's checkpoint re-signed by a key not in the file,
// with a record changed (and the manifest fixed), or with one key vouching
// for two hosts, it exits 3 naming the file.
func TestConsoleExportE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	dir := t.TempDir()
	var pems []string
	ids := map[string]string{}
	docks := map[string]*fleetHost{}
	for i, id := range []string{"dock-01", "dock-02"} {
		serial := fmt.Sprintf("BWC-%04d", i+1)
		d := newFleetHost(t, srv, bucket, id, fmt.Sprintf("cameras:\n  - {serial: %s, kind: body, assigned_to: officer-%d}\n", serial, i+1))
		docks[id] = d
		pems = append(pems, d.publicKey())
		cam := filepath.Join(d.dir, "cam")
		writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": (20 + i) << 10})
		d.must("ingest", "--camera", serial, "--from", cam)
		ids[id] = d.findJSON()[0].ID
	}
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n    - {id: dock-02, public_key_file: %s}\n", pems[0], pems[1]))
	consolePEM := console.publicKey()
	docksOnly := filepath.Join(dir, "docks.pem")
	all := filepath.Join(dir, "fleet.pem")
	var b []byte
	for _, p := range pems {
		k, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, k...)
	}
	if err := os.WriteFile(docksOnly, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k, _ := os.ReadFile(consolePEM)
	if err := os.WriteFile(all, append(b, k...), 0o644); err != nil {
		t.Fatal(err)
	}

	console.must("hold", ids["dock-01"], "--case", "IA-7", "--reason", "complaint 7")
	pkg := filepath.Join(dir, "pkg")
	out := console.must("export", ids["dock-01"], ids["dock-02"], "--reason", "court order 12", "--out", pkg)
	if !strings.Contains(out, "MANIFEST.sha256 sha256 ") {
		t.Errorf("export at the console said: %s", out)
	}
	code, stdout, stderr := run(t, nil, "verify-export", pkg, "--keys", all)
	if code != 0 {
		t.Fatalf("verify-export --keys (docks and console): exit %d\n%s%s", code, stdout, stderr)
	}
	for _, h := range []string{"dock-01", "dock-02", "hq"} {
		if !strings.Contains(stdout, "host "+h+" signed with SHA256:") {
			t.Errorf("verify-export does not say which key vouched for %s:\n%s", h, stdout)
		}
	}
	var info export.FleetInfo
	readJSON(t, filepath.Join(pkg, "fleet.json"), &info)
	if len(info.Items) != 2 || info.Items[0].Host != "dock-01" || info.Items[1].Host != "dock-02" || info.Console != "hq" || len(info.Hosts) != 3 {
		t.Fatalf("fleet.json: %+v", info)
	}
	for _, h := range info.Hosts {
		if !strings.HasPrefix(h.Object, "_custody/"+h.ID+"/checkpoints/") {
			t.Errorf("host %s's checkpoint is not the one anchored under _custody/%s/: %q", h.ID, h.ID, h.Object)
		}
	}
	var custody1 []export.FleetEntry
	readJSON(t, filepath.Join(pkg, "items", ids["dock-01"], "custody.json"), &custody1)
	var trail []string
	for _, e := range custody1 {
		trail = append(trail, e.Host+":"+string(e.Type)+":"+e.Details["action"])
	}
	got := strings.Join(trail, " ")
	if !strings.HasPrefix(got, "dock-01:DOCKED:") || !strings.Contains(got, "dock-01:VERIFIED:") ||
		!strings.Contains(got, "hq:HOLD_SET:") || !strings.HasSuffix(got, "hq:ACCESSED:export") {
		t.Errorf("custody.json of %s in the package: %s", ids["dock-01"], got)
	}

	fails := func(what, pkg, keys, says string) {
		t.Helper()
		code, stdout, stderr := run(t, nil, "verify-export", pkg, "--keys", keys)
		if code != 3 || !strings.Contains(stderr, says) {
			t.Errorf("%s: verify-export exit %d, want 3 saying %q\n%s%s", what, code, says, stdout, stderr)
		}
	}
	fails("without the console's key", pkg, docksOnly, "FAILED hosts/hq/checkpoint.note: no key of host hq in the package is one you trust")

	// dock-01's checkpoint re-signed by a key that is not in the file,
	// over the same tree: its records now rest on that key alone.
	forged := exportCopy(t, pkg)
	h1 := info.Hosts[0]
	root, err := hashOf(h1.Root)
	if err != nil {
		t.Fatal(err)
	}
	note := forge.Checkpoint(t, "dock-01", h1.TreeSize, root)
	exportEdit(t, filepath.Join(forged, "hosts/dock-01/checkpoint.note"), func([]byte) []byte { return note })
	rehashManifest(t, forged)
	fails("dock-01 re-signed by an unlisted key", forged, all, "FAILED hosts/dock-01/checkpoint.note: is not signed by a key of dock-01 you trust")

	// dock-02's checkpoint signed with dock-01's (trusted) key, which the
	// package lists as one of dock-02's keys: one key may not vouch for two
	// hosts.
	dual := exportCopy(t, pkg)
	k1, err := signing.Load(filepath.Join(docks["dock-01"].dir, "state", "host.key"), "dock-01")
	if err != nil {
		t.Fatal(err)
	}
	as2, err := signing.NoteSignerFor("dock-02", k1)
	if err != nil {
		t.Fatal(err)
	}
	h2 := info.Hosts[1]
	root2, err := hashOf(h2.Root)
	if err != nil {
		t.Fatal(err)
	}
	note2, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: custody.CheckpointOrigin("dock-02"), Size: h2.TreeSize, Root: root2}, as2)
	if err != nil {
		t.Fatal(err)
	}
	exportEdit(t, filepath.Join(dual, "hosts/dock-02/checkpoint.note"), func([]byte) []byte { return note2 })
	keyFile := "hosts/dock-02/keys/" + k1.KeyID() + ".pem"
	if err := os.WriteFile(filepath.Join(dual, keyFile), k1.PublicPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	exportEdit(t, filepath.Join(dual, "fleet.json"), func([]byte) []byte {
		in := info
		in.Hosts = append([]export.FleetHostRef(nil), info.Hosts...)
		in.Hosts[1].Keys = append(append([]string(nil), h2.Keys...), keyFile)
		b, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	})
	rehashManifest(t, dual)
	fails("one key for two hosts", dual, all, "FAILED hosts/dock-02/checkpoint.note: is signed by key SHA256:"+k1.KeyID()+", which already vouches for host dock-01")

	// A record of dock-02 changed, the manifest fixed.
	changed := exportCopy(t, pkg)
	recs, _ := filepath.Glob(filepath.Join(changed, "hosts/dock-02/records/*.json"))
	if len(recs) == 0 {
		t.Fatal("no record of dock-02 in the package")
	}
	exportEdit(t, recs[0], func(b []byte) []byte { return []byte(strings.Replace(string(b), "officer-2", "officer-9", 1)) })
	rehashManifest(t, changed)
	rel, _ := filepath.Rel(changed, recs[0])
	fails("a record changed", changed, all, "FAILED "+filepath.ToSlash(rel)+": is not proven in dock-02's checkpoint")
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

func hashOf(hexs string) (tlog.Hash, error) {
	b, err := hex.DecodeString(hexs)
	if err != nil || len(b) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("root %q: %v", hexs, err)
	}
	return tlog.Hash(b), nil
}
