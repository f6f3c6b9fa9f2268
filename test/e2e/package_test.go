package e2e

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/testutil/s3srv"
)

// buildDeb runs scripts/package.sh into dir and returns the package.
func buildDeb(t *testing.T, dir string) string {
	t.Helper()
	start := time.Now()
	c := exec.Command(filepath.Join(repoRoot(t), "scripts/package.sh"), dir)
	c.Dir = repoRoot(t)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`/evidenced_[^/]+_amd64\.deb$`).MatchString(deb) {
		t.Fatalf("scripts/package.sh printed %q, not a package path", out)
	}
	t.Logf("scripts/package.sh: %s in %s", filepath.Base(deb), time.Since(start).Round(time.Second))
	return deb
}

// readmeUSBDropIn is the README's command that enables the USB drop-in the
// package ships as an example: the test runs what the README says.
func readmeUSBDropIn(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	must(t, err)
	m := regexp.MustCompile("`(install -D -m 0644 /usr/share/evidenced/evidenced-usb.conf /etc/systemd/system/evidenced.service.d/usb.conf)`").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md gives no command that installs the packaged USB drop-in")
	}
	return string(m[1])
}

// TestDebianPackageSystemd installs the project's Debian package the way a
// dock host's administrator does, in the systemd guest of
// TestUSBDockSystemd (systemd as PID 1, udevd, journald; dpkg and apt from
// this Debian host, with a dpkg database of the packages the guest's files
// come from, so that apt resolves the package's Depends): `apt install
// ./evidenced_*.deb` (nothing started), the config and credentials edited,
// the README's USB drop-in and a udev line for the camera's profile,
// `systemctl enable --now evidenced`. Then, in the same boot:
//
//   - a camera docks, and the daemon is frozen (SIGSTOP) mid-dock, after
//     its second recording is stored: the unit's watchdog (WatchdogSec=)
//     makes systemd kill it and Restart= start it again, and the dock
//     completes: every recording VAULTED exactly once, uploaded and verified
//     in the store, the ledger verifies;
//   - `apt remove` with the daemon running stops it and leaves the ledger,
//     the vault (byte for byte), the config and the evidenced user;
//   - `apt purge` removes /etc/evidenced and nothing under /var/lib/evidenced,
//     as the README says.
//
// It builds the package (external linking) and waits out a watchdog timeout
// (up to 60 s), so it runs in the long run only (EVIDENCED_USB_LONG=1).
func TestDebianPackageSystemd(t *testing.T) {
	if !longRun() {
		t.Skip("builds the package and waits for the watchdog (minutes): EVIDENCED_USB_LONG=1")
	}
	cache := prepare(t)
	rootCPIO := prepareSystemd(t)
	tStart := time.Now()
	m := &metrics{t: t}
	dir := runDir(t)
	deb := buildDeb(t, filepath.Join(dir, "dist"))
	debData, err := os.ReadFile(deb)
	must(t, err)

	if _, err := s3srv.Binary(); err != nil && !required() {
		unavailable(t, "no S3 server binary (scripts/s3-server.sh install): %v", err)
	}
	srv := s3srv.Start(t)
	bucket := srv.NewBucket(t)
	storeCfg := fmt.Sprintf("object_store: {endpoint: \"http://10.0.2.100:8080\", bucket: %s, region: us-east-1, path_style: true}", bucket)

	// Three ~20 MB recordings keep the dock going for several seconds after
	// the second one is stored, even on a fast host: the freeze lands
	// mid-dock.
	body := makeCamera(t, filepath.Join(cache, "images"), "sdpkg", 128, true, map[string]string{
		"DCIM/100MEDIA/BWC00001.MP4": "clip:4", "DCIM/100MEDIA/BWC00002.MP4": "noise:3",
		"DCIM/100MEDIA/BWC00003.MP4": "noise:3", "DCIM/100MEDIA/BWC00004.MP4": "noise:3",
		"DCIM/100MEDIA/BWC00001.NMEA": "text:$GPGGA,092750.000,2546.2345,S,02814.3456,E,1,8,1.03,1340.0,M,,,,*76\n",
	})
	img := filepath.Join(dir, "bwc1.img")
	b, err := os.ReadFile(body.image)
	must(t, err)
	must(t, os.WriteFile(img, b, 0o644))

	// The overlay holds only what the administrator brings: the package,
	// the site's config, its credentials and its camera profile's udev
	// line. No binary or library of the project: the guest gets those from
	// the package and its Depends.
	rules, err := os.ReadFile(filepath.Join(repoRoot(t), "systemd/99-evidenced-cameras.rules"))
	must(t, err)
	files := map[string]File{
		"/root/" + filepath.Base(deb):          {Mode: 0o644, Data: debData},
		"/e2e/site/evidenced.yaml":             {Mode: 0o644, Data: []byte(fmt.Sprintf(guestConfig, storeCfg))},
		"/e2e/site/credentials":                {Mode: 0o600, Data: []byte(fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", s3srv.AccessKey, s3srv.SecretKey))},
		"/e2e/site/99-evidenced-cameras.rules": {Mode: 0o644, Data: []byte(guestRule(t, string(rules)))},
	}
	sroot, err := os.ReadFile(rootCPIO)
	must(t, err)
	initrd := writeInitrd(t, cache, dir, files, sroot)

	u, err := url.Parse(srv.Endpoint)
	must(t, err)
	port := 0
	fmt.Sscan(u.Port(), &port)
	// PID 1 logs to the journal, so that its messages about the unit (the
	// watchdog) are in the unit's journal.
	vm := startSystemdGuest(t, cache, dir, initrd, port, "journal-or-kmsg")
	wait := func(from int, re string, d time.Duration) Line { t.Helper(); return mustWait(t, vm, from, re, d) }
	sh := func(cmd string, d time.Duration) string { t.Helper(); return mustSh(t, vm, cmd, d) }
	ready := wait(0, `^READY `, 240*time.Second)
	m.add("boot_to_systemd_ready_s", fmt.Sprintf("%.1f", ready.At.Sub(vm.Started).Seconds()))

	// apt install: the user, the directories, the modules; nothing started.
	tInst := time.Now()
	out, rc, err := vm.Sh("cd /root && apt install -y ./"+filepath.Base(deb)+" 2>&1", 300*time.Second)
	if err != nil || rc != 0 {
		t.Fatalf("apt install ./%s: rc=%d %v\n%s", filepath.Base(deb), rc, err, out)
	}
	m.add("apt_install_s", fmt.Sprintf("%.1f", time.Since(tInst).Seconds()))
	t.Logf("apt install:\n%s", out)
	if !strings.Contains(out, "evidenced is installed but not started") {
		t.Errorf("apt install did not print the post-install message")
	}
	if got := sh("echo $(dpkg-query -W -f='${db:Status-Abbrev}' evidenced); systemctl is-enabled evidenced || true; systemctl is-active evidenced || true; "+
		"id -un evidenced; stat -c '%n %a %U:%G' /var/lib/evidenced /etc/evidenced/evidenced.yaml /usr/bin/evidenced; grep -c -E '^ *[0-9]+ sd$' /proc/devices || true", 60*time.Second); got !=
		"ii\ndisabled\ninactive\nevidenced\n/var/lib/evidenced 750 evidenced:evidenced\n/etc/evidenced/evidenced.yaml 644 root:root\n/usr/bin/evidenced 755 root:root\n16" {
		t.Errorf("after apt install, want the package installed, the unit disabled and inactive, the evidenced user and its state directory, "+
			"sd_mod loaded (16 sd majors) for the USB drop-in; got:\n%s", got)
	}

	// Configured as the README says, then started.
	mk := vm.Mark()
	configure := strings.Join([]string{
		"set -e",
		"cp /e2e/site/evidenced.yaml /etc/evidenced/evidenced.yaml",
		"install -m 0600 /dev/null /etc/evidenced/credentials",
		"cat /e2e/site/credentials > /etc/evidenced/credentials",
		readmeUSBDropIn(t),
		"install -m 0644 /e2e/site/99-evidenced-cameras.rules /etc/udev/rules.d/",
		"udevadm control --reload",
		"systemctl daemon-reload",
		"systemctl enable --now evidenced",
	}, "; ")
	if out, rc, err := vm.Sh("sh -c '"+configure+"' 2>&1", 180*time.Second); err != nil || rc != 0 {
		t.Fatalf("configure and start: rc=%d %v\n%s", rc, err, out)
	}
	wait(mk, `msg="watching USB for docked cameras"`, 90*time.Second)
	m.add("install_to_watching_s", fmt.Sprintf("%.1f", time.Since(tInst).Seconds()))
	pid1 := strings.TrimSpace(sh("systemctl show -p MainPID --value evidenced", 30*time.Second))
	if got := sh("systemctl is-enabled evidenced; systemctl is-active evidenced; readlink /proc/"+pid1+"/exe; grep -E '^CapEff' /proc/"+pid1+"/status", 30*time.Second); got !=
		"enabled\nactive\n/usr/bin/evidenced\nCapEff:\t0000000000200000" {
		t.Errorf("after enable --now: want the packaged binary running enabled with CAP_SYS_ADMIN only (the USB drop-in); got:\n%s", got)
	}

	// The freeze: a guest loop on the unit's journal stops the daemon
	// (SIGSTOP) as soon as it logs its second "vault stored" (the first
	// recording is VAULTED by then, the rest of the dock is not). (One
	// line: the agent reads one command per line.)
	sh(`sh -c 'n=0; journalctl -f -n 0 -o cat -u evidenced.service | while IFS= read -r l; do case "$l" in *"msg=\"vault stored\""*) n=$((n+1)); `+
		`if [ $n = 2 ]; then kill -STOP `+pid1+`; echo "@@ FROZEN $l" > /dev/ttyS1; exit 0; fi;; esac; done' > /tmp/freeze.out 2>&1 &`, 30*time.Second)

	mk = vm.Mark()
	tAdd := time.Now()
	plugWritable(t, vm, img, "BWC-0001")
	wait(mk, `msg=docked camera=BWC-0001 via=usb`, 60*time.Second)
	frozen := wait(mk, `^FROZEN `, 180*time.Second)
	m.add("device_add_to_frozen_s", fmt.Sprintf("%.1f", frozen.At.Sub(tAdd).Seconds()))
	if l := vm.Lines(mk, `msg="dock complete" camera=BWC-0001`); len(l) != 0 {
		t.Fatalf("the dock completed before the daemon was frozen (%s): nothing would be in progress", l[0].Text)
	}

	// systemd's watchdog: no ping for WatchdogSec, SIGABRT (and SIGCONT),
	// a restart; the new daemon finds the camera still docked and finishes.
	wd := wait(mk, `Watchdog timeout`, 150*time.Second)
	m.add("frozen_to_watchdog_s", fmt.Sprintf("%.1f", wd.At.Sub(frozen.At).Seconds()))
	mkRestart := vm.Mark()
	wait(mkRestart, `msg="watching USB for docked cameras"`, 120*time.Second)
	m.add("frozen_to_restarted_s", fmt.Sprintf("%.1f", time.Since(frozen.At).Seconds()))
	done := wait(mkRestart, `msg="dock complete" camera=BWC-0001 .*safe_to_undock=true`, 300*time.Second)
	m.add("frozen_to_dock_complete_s", fmt.Sprintf("%.1f", done.At.Sub(frozen.At).Seconds()))
	out = sh("systemctl show -p NRestarts -p MainPID -p ActiveState evidenced", 30*time.Second)
	pid2 := regexp.MustCompile(`(?m)^MainPID=(\d+)$`).FindStringSubmatch(out)
	if !regexp.MustCompile(`(?m)^NRestarts=1$`).MatchString(out) || !strings.Contains(out, "ActiveState=active") || pid2 == nil || pid2[1] == pid1 {
		t.Errorf("after the watchdog: want one restart and a new, active daemon (was pid %s); got:\n%s", pid1, out)
	}
	for _, want := range []string{"SIGABRT: abort", "status=6/ABRT"} {
		// GOTRACEBACK=crash: the stacks, then death by the signal (an exit
		// code 2 would be RestartPreventExitStatus=2: no restart).
		if n := sh("journalctl -u evidenced.service -o cat --no-pager | grep -c '"+want+"' || true", 60*time.Second); n == "0" {
			t.Errorf("journal of evidenced.service: no %q after the watchdog", want)
		}
	}

	checkStore(t, srv, bucket, body.manifest, 240*time.Second)
	waitVerified(t, vm, len(body.manifest), 120*time.Second)
	m.add("device_add_to_all_verified_s", fmt.Sprintf("%.1f", time.Since(tAdd).Seconds()))
	mk = vm.Mark()
	must(t, vm.Yank("cam1"))
	wait(mk, `msg="camera undocked" camera=BWC-0001 .*clean=true`, 60*time.Second)
	if after := sha256File(t, img); after != body.sum {
		t.Errorf("camera image changed while docked: sha256 %s before, %s after", body.sum, after)
	}

	// apt remove, with the daemon running: prerm stops it (it drains and
	// exits); the evidence stays byte for byte.
	stateSums := "cd /var/lib/evidenced && find . -type f | LC_ALL=C sort | xargs sha256sum"
	before := sh(stateSums, 60*time.Second)
	if !strings.Contains(before, "./ledger.db") || !strings.Contains(before, "./vault/items/") {
		t.Fatalf("state directory before remove holds no ledger or vault items:\n%s", before)
	}
	tRm := time.Now()
	if out, rc, err := vm.Sh("apt remove -y evidenced 2>&1", 300*time.Second); err != nil || rc != 0 {
		t.Fatalf("apt remove evidenced: rc=%d %v\n%s", rc, err, out)
	}
	m.add("apt_remove_s", fmt.Sprintf("%.1f", time.Since(tRm).Seconds()))
	if got := sh("echo $(dpkg-query -W -f='${db:Status-Abbrev}' evidenced); [ -e /proc/"+pid2[1]+" ] && echo running || echo gone; "+
		"ls /usr/bin/evidenced /usr/lib/systemd/system/evidenced.service 2>&1 | grep -c 'No such file'; ls /etc/evidenced; id -un evidenced", 60*time.Second); got !=
		"rc\ngone\n2\ncredentials\nevidenced.yaml\nevidenced" {
		t.Errorf("after apt remove: want the package removed with its config kept (rc), the daemon stopped, binary and unit gone, "+
			"/etc/evidenced and the evidenced user kept; got:\n%s", got)
	}
	if after := sh(stateSums, 60*time.Second); after != before {
		t.Errorf("apt remove changed the state directory:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	sh("cp /var/lib/evidenced/ledger.db /out/ledger.db && sync", 60*time.Second)
	checkRestartedLedger(t, filepath.Join(dir, "out/ledger.db"), "BWC-0001", body.manifest)

	// apt purge: /etc/evidenced goes, the evidence and its owner stay.
	if out, rc, err := vm.Sh("apt purge -y evidenced 2>&1", 300*time.Second); err != nil || rc != 0 {
		t.Fatalf("apt purge evidenced: rc=%d %v\n%s", rc, err, out)
	}
	if got := sh("dpkg-query -W evidenced 2>&1 | grep -c 'no packages found' || true; [ -e /etc/evidenced ] && echo etc-kept || echo etc-gone; id -un evidenced", 60*time.Second); got !=
		"1\netc-gone\nevidenced" {
		t.Errorf("after apt purge: want the package unknown to dpkg, /etc/evidenced removed, the evidenced user kept; got:\n%s", got)
	}
	if after := sh(stateSums, 60*time.Second); after != before {
		t.Errorf("apt purge changed the state directory:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	m.add("total_s", fmt.Sprintf("%.1f", time.Since(tStart).Seconds()))
	t.Logf("metrics:\n  %s", strings.Join(m.m, "\n  "))
}

// checkRestartedLedger checks the ledger of a dock interrupted by a
// watchdog restart: it verifies; the daemon started twice, the second time
// after at least one recording and before all were VAULTED; every camera
// file was COPIED with its hash (again after the restart if it was not
// VAULTED before), every item VAULTED exactly once and VERIFIED in the
// store; the camera's custody ends SAFE_TO_UNDOCK … UNDOCKED(clean=true).
func checkRestartedLedger(t *testing.T, path, camera string, manifest map[string]string) {
	t.Helper()
	started := 0
	var story []string
	copied := map[string]string{}
	vaulted := map[string]int{}
	vaultedBeforeRestart := 0
	verified := map[string]bool{}
	for _, e := range ledgerEvents(t, path) {
		switch e.Type {
		case custody.HostStarted:
			started++
			story = append(story, "HOST_STARTED")
		case custody.Copied:
			if got, ok := copied[e.Details["source_path"]]; ok && got != e.SHA256 {
				t.Errorf("%s COPIED twice with different hashes: %s, %s", e.Details["source_path"], got, e.SHA256)
			}
			copied[e.Details["source_path"]] = e.SHA256
		case custody.Vaulted:
			vaulted[e.Item]++
			if started == 1 {
				vaultedBeforeRestart++
			}
		case custody.Verified:
			verified[e.Item] = true
		}
		if e.Camera == camera {
			s := string(e.Type)
			if e.Type == custody.Undocked {
				s += "(clean=" + e.Details["clean"] + ")"
			}
			story = append(story, s)
		}
	}
	s := strings.Join(story, " ")
	t.Logf("custody %s: %s", camera, s)
	if started != 2 {
		t.Errorf("HOST_STARTED %d times; want 2 (the first start and the watchdog's restart)", started)
	}
	if vaultedBeforeRestart == 0 || vaultedBeforeRestart >= len(manifest) {
		t.Errorf("%d of %d recordings VAULTED before the restart; want some and not all (the daemon was frozen mid-dock)", vaultedBeforeRestart, len(manifest))
	}
	if !regexp.MustCompile(`^HOST_STARTED DOCKED .*HOST_STARTED .*SAFE_TO_UNDOCK.* UNDOCKED\(clean=true\)$`).MatchString(s) {
		t.Errorf("%s custody: %s; want DOCKED, the restart, then SAFE_TO_UNDOCK … UNDOCKED(clean=true)", camera, s)
	}
	for rel, sum := range manifest {
		if copied[rel] != sum {
			t.Errorf("%s %s: COPIED sha256 %q, camera file %s", camera, rel, copied[rel], sum)
		}
	}
	if len(vaulted) != len(manifest) {
		t.Errorf("%d items vaulted; the camera has %d files", len(vaulted), len(manifest))
	}
	for id, n := range vaulted {
		if n != 1 {
			t.Errorf("item %s VAULTED %d times; want exactly once", id, n)
		}
		if !verified[id] {
			t.Errorf("item %s vaulted but never VERIFIED in the store", id)
		}
	}
}
