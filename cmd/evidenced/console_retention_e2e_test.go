package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/service"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// Issue #13: hold, release and classify at the console, through the built
// binary on a real S3 server. The console applies each to the object the
// dock host recorded (read back with the AWS CLI), records it in its own
// signed ledger, anchored under _custody/hq/, with the host that ingested
// the item; the item's custody at the console shows the dock host's
// records and the console's, each with the host that signed it; the dock
// host's own verify --remote accepts the longer, stronger retention the
// console set; what the console cannot do is refused by name.
func TestConsoleRetentionE2E(t *testing.T) {
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	srv.SetEnv(t)
	classes := "    - {name: complaint, days: 30, mode: GOVERNANCE}\n    - {name: serious, days: 60, mode: COMPLIANCE}\n"
	dock := newFleetHost(t, srv, bucket, "dock-01", "cameras:\n  - {serial: BWC-0001, kind: body, assigned_to: officer-1}\n")
	addClasses(t, dock.cfg, classes)
	pem := dock.publicKey()
	console := newFleetHost(t, srv, bucket, "hq", fmt.Sprintf("role: console\nconsole:\n  poll: 1s\n  hosts:\n    - {id: dock-01, public_key_file: %s}\n", pem))
	addClasses(t, console.cfg, classes)
	console.must("store-init")

	cam := filepath.Join(dock.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/100MEDIA/VID_0001.MP4": 48 << 10})
	dock.must("ingest", "--camera", "BWC-0001", "--from", cam)
	it := dock.findJSON()[0]
	legalHold := func() string { t.Helper(); return srv.CLILegalHold(t, bucket, it.ObjectKey, it.VersionID) }

	stop := console.daemon()
	waitFor(t, "dock-01's item at the console", 15*time.Second, func() bool { return len(console.findJSON()) == 1 })

	out := console.must("hold", it.ID, "--case", "IA-2026-7", "--reason", "complaint 7", "--actor", "custodian-3")
	if !strings.Contains(out, "ingested at dock-01") || !strings.Contains(out, "legal hold ON") {
		t.Errorf("hold at the console said: %s", out)
	}
	if got := legalHold(); got != "ON" {
		t.Fatalf("legal hold after the console's hold: %q, want ON", got)
	}

	out = console.must("classify", it.ID, "--class", "serious", "--reason", "charges filed")
	if !strings.Contains(out, "ingested at dock-01") || !strings.Contains(out, "uncategorized → serious") {
		t.Errorf("classify at the console said: %s", out)
	}
	want := it.IngestedAt.UTC().AddDate(0, 0, 60).Truncate(time.Second).Add(time.Second)
	if mode, until := srv.CLIRetention(t, bucket, it.ObjectKey, it.VersionID); mode != "COMPLIANCE" || !until.Equal(want) {
		t.Errorf("retention after the console's classify: %s until %s, want COMPLIANCE until %s", mode, until, want)
	}
	// Refusals name what is wrong; nothing is changed by them.
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"hold", "no-such-item", "--case", "IA-1", "--reason", "r"}, 1, `item "no-such-item": no trusted host's anchored records name it`},
		{[]string{"classify", it.ID, "--class", "eternal", "--reason", "r"}, 2, `--class "eternal" is not one of the configured retention classes`},
		{[]string{"release", it.ID, "--case", "IA-9", "--reason", "r"}, 1, `not held by case "IA-9" (held by: IA-2026-7)`},
		{[]string{"classify", it.ID, "--class", "uncategorized", "--reason", "r"}, 1, "classify " + it.ID + " as uncategorized (GOVERNANCE until"},
	} {
		code, stdout, stderr := run(t, nil, append([]string{c.args[0], "--config", console.cfg}, c.args[1:]...)...)
		if code != c.code || !strings.Contains(stderr, c.says) {
			t.Errorf("console %s: exit %d, want %d saying %q\n%s%s", strings.Join(c.args, " "), code, c.code, c.says, stdout, stderr)
		}
	}

	out = console.must("release", it.ID, "--case", "IA-2026-7", "--reason", "case closed")
	if !strings.Contains(out, "legal hold OFF") {
		t.Errorf("release at the console said: %s", out)
	}
	if got := legalHold(); got != "OFF" {
		t.Fatalf("legal hold after the console's release: %q, want OFF", got)
	}

	// The merged custody: the dock host's records, then the console's,
	// each with the host that signed it.
	var evs []custody.Event
	if err := json.Unmarshal([]byte(console.must("custody", it.ID, "--json", "--reason", "audit")), &evs); err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, ev := range evs {
		switch ev.Type {
		case custody.Accessed, service.Scrubbed:
			continue
		}
		trail = append(trail, ev.Host+":"+string(ev.Type))
		if ev.Host == "hq" && (ev.Details["host"] != "dock-01" || ev.Item != it.ID) {
			t.Errorf("console record %s does not name the item's host: %+v", ev.Type, ev)
		}
	}
	got := strings.Join(trail, " ")
	if !strings.HasPrefix(got, "dock-01:DOCKED dock-01:COPIED dock-01:VAULTED") ||
		!strings.HasSuffix(got, "dock-01:VERIFIED hq:HOLD_SET hq:RETENTION_CHANGED hq:REFUSED hq:HOLD_RELEASED") {
		t.Errorf("custody at the console: %s", got)
	}
	hold := lastOf(t, evs, custody.HoldSet)
	if hold.Details["case"] != "IA-2026-7" || hold.Details["on_behalf_of"] != "custodian-3" || hold.Details["version_id"] != it.VersionID {
		t.Errorf("HOLD_SET at the console: %+v", hold.Details)
	}

	// The console's records are anchored under its own host id, signed by
	// its key: stopped, its daemon anchors what is left.
	stop()
	var listed struct{ Contents []struct{ Key string } }
	srv.CLI(t, &listed, "list-objects-v2", "--bucket", bucket, "--prefix", "_custody/hq/records/")
	var anchored strings.Builder
	for _, o := range listed.Contents {
		out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		anchored.Write(b)
	}
	for _, typ := range []string{"HOLD_SET", "RETENTION_CHANGED", "HOLD_RELEASED"} {
		if !strings.Contains(anchored.String(), `"`+typ+`"`) {
			t.Errorf("no %s record anchored under _custody/hq/records/ (%d objects)", typ, len(listed.Contents))
		}
	}
	console.must("verify", "--remote")

	// The dock host accepts the retention the console set: longer, and
	// COMPLIANCE where its own class said GOVERNANCE.
	dock.must("verify", "--remote")
}

// addClasses adds retention classes to a test config's class list.
func addClasses(t *testing.T, cfg, classes string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const last = "    - {name: uncategorized, days: 1, mode: GOVERNANCE}\n"
	if !strings.Contains(string(b), last) {
		t.Fatalf("%s has no class list to extend", cfg)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), last, last+classes, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
