package e2e

import (
	"bufio"
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

// prepareSystemd builds (or finds cached) the systemd guest root
// (scripts/usb-e2e-systemd-setup.sh) and returns its archive.
func prepareSystemd(t *testing.T) string {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("bash", filepath.Join(repoRoot(t), "scripts/usb-e2e-systemd-setup.sh")).CombinedOutput()
	if err != nil {
		unavailable(t, "scripts/usb-e2e-systemd-setup.sh: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("usb-e2e-systemd-setup: %s", time.Since(start).Round(time.Millisecond))
	return lines[len(lines)-1]
}

// installSteps returns the commands a file of systemd/ documents in its
// header comment ("#   install …", "#   systemd-sysusers …", "#   systemctl
// …", "#   udevadm …"), in order, without their "(edit it)" remarks.
func installSteps(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	cmd := regexp.MustCompile(`^#\s+((?:install|systemd-sysusers|systemctl|udevadm)\b.*)$`)
	remark := regexp.MustCompile(`\s{2,}\(.*\)$`)
	var steps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l != "" && !strings.HasPrefix(l, "#") {
			break // the header ends at the first directive
		}
		if m := cmd.FindStringSubmatch(l); m != nil {
			steps = append(steps, strings.TrimSpace(remark.ReplaceAllString(m[1], "")))
		}
	}
	must(t, sc.Err())
	return steps
}

// installScript is what a dock host's administrator types, taken from the
// install comments of the project's files: the unit's steps (binary, unit,
// sysusers, tmpfiles, config, credentials), the modules-load file, the udev
// rule (with its reload and trigger), the USB drop-in; then the unit's own
// `systemctl daemon-reload && systemctl enable --now evidenced`. It runs in
// /e2e/src, which holds the files under the names the comments use. The one
// change of order: the service is started once, at the end, with every file
// in place (the drop-in's "systemctl restart" is then not needed).
func installScript(t *testing.T, src, creds string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("set -ex\ncd /e2e/src\n")
	var start []string
	wantDst := map[string]bool{
		"/usr/local/bin/evidenced": false, "/etc/systemd/system/": false, "/etc/sysusers.d/evidenced.conf": false,
		"/etc/tmpfiles.d/evidenced.conf": false, "/etc/evidenced/evidenced.yaml": false, "/etc/evidenced/credentials": false,
		"/etc/modules-load.d/evidenced.conf": false, "/etc/udev/rules.d/": false,
		"/etc/systemd/system/evidenced.service.d/usb.conf": false,
	}
	for _, file := range []string{"evidenced.service", "evidenced-modules.conf", "99-evidenced-cameras.rules", "evidenced-usb.conf"} {
		steps := installSteps(t, filepath.Join(src, "systemd", file))
		if len(steps) == 0 {
			t.Fatalf("systemd/%s documents no install step", file)
		}
		fmt.Fprintf(&b, "# systemd/%s\n", file)
		for _, s := range steps {
			f := strings.Fields(s)
			if dst := f[len(f)-1]; strings.HasPrefix(s, "install ") {
				if _, ok := wantDst[dst]; ok {
					wantDst[dst] = true
				}
			}
			switch {
			case strings.HasPrefix(s, "systemctl ") && strings.Contains(s, "enable --now"):
				start = append(start, s)
				continue
			case strings.HasPrefix(s, "systemctl "):
				continue // a restart of the service, which is not running yet
			}
			b.WriteString(s + "\n")
			if strings.HasSuffix(s, " /etc/evidenced/credentials") {
				// "(fill it in)": the object store's keys.
				fmt.Fprintf(&b, "printf '%%s' '%s' > /etc/evidenced/credentials\n", creds)
			}
		}
		if file == "evidenced-modules.conf" {
			// A dock host loads modules-load.d at its next boot; here the
			// file was installed after boot, so start that boot step again.
			b.WriteString("systemctl restart systemd-modules-load.service\n")
		}
	}
	for dst, seen := range wantDst {
		if !seen {
			t.Fatalf("no documented install step puts a file at %s", dst)
		}
	}
	if !strings.Contains(b.String(), "\nsystemd-sysusers") {
		t.Fatal("evidenced.service documents no systemd-sysusers step")
	}
	if len(start) != 1 {
		t.Fatalf("evidenced.service documents %d 'enable --now' steps, want 1: %q", len(start), start)
	}
	b.WriteString(start[0] + "\n")
	return b.String()
}

// guestRule adds the rule line systemd/99-evidenced-cameras.rules asks for
// for every camera profile: the test's config has QEMU's usb-storage
// (46f4:0001, profile qemu-bodycam) besides the file's bodycam-x1.
func guestRule(t *testing.T, rules string) string {
	t.Helper()
	tmpl := regexp.MustCompile(`(?m)^ATTRS\{idVendor\}=="1209", ATTRS\{idProduct\}=="0001", ENV\{EVIDENCED_CAMERA\}="bodycam-x1", GOTO="evidenced_camera"$`)
	loc := tmpl.FindStringIndex(rules)
	if loc == nil {
		t.Fatal("systemd/99-evidenced-cameras.rules: no bodycam-x1 line to copy for another profile")
	}
	line := rules[loc[0]:loc[1]]
	add := strings.NewReplacer(`"1209"`, `"46f4"`, `"bodycam-x1"`, `"qemu-bodycam"`).Replace(line)
	return rules[:loc[1]] + "\n# qemu-bodycam (the test's config)\n" + add + rules[loc[1]:]
}

// startSystemdGuest boots the systemd guest (systemd as PID 1, udevd,
// journald; the agent as a unit) from initrd, its S3 forward to host port
// port (0: none). logTarget is PID 1's systemd.log_target: "console", or
// "journal-or-kmsg" to have its messages about a unit (a watchdog timeout)
// in the unit's journal. The VM is powered off when the test ends; if the
// test failed, the journal's tail is logged first.
func startSystemdGuest(t *testing.T, cache, dir, initrd string, port int, logTarget string) *VM {
	t.Helper()
	vm, err := Start(Options{Accel: os.Getenv("EVIDENCED_USBVM_ACCEL"), Kernel: filepath.Join(cache, "build/vmlinux"), Initrd: initrd,
		MemMB: 1536, HostPort: port, Dir: dir,
		Append: "rdinit=/e2e/init systemd.show_status=true systemd.log_target=" + logTarget + " systemd.log_level=info"})
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, vm, 6000) // runs after the journal is read (cleanups run last first)
	t.Cleanup(func() {
		if t.Failed() {
			if out, _, err := vm.Sh("journalctl -b --no-pager -o short-monotonic | grep -v -e ' kernel: ' -e systemd-sysusers | tail -120; systemctl --failed --no-legend", 60*time.Second); err == nil {
				t.Logf("guest journal (tail):\n%s", out)
			}
		}
	})
	return vm
}

// plugWritable hot-plugs img as a writable USB mass-storage camera with
// the given serial (QMP id "cam1", xHCI bus 0, port 1), as a real card is
// plugged: QEMU would report a read-only backing file as write-protected,
// which would make the udev rule's blockdev --setro unobservable.
func plugWritable(t *testing.T, vm *VM, img, serial string) {
	t.Helper()
	if _, err := vm.QMP("blockdev-add", map[string]any{
		"driver": "raw", "node-name": "cam1-drv",
		"file": map[string]any{"driver": "file", "filename": img},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.QMP("device_add", map[string]any{
		"driver": "usb-storage", "id": "cam1", "drive": "cam1-drv", "serial": serial,
		"bus": "xhci.0", "port": "1", "removable": true,
	}); err != nil {
		t.Fatal(err)
	}
}

// TestUSBDockSystemd proves that a dock host needs only the documented unit,
// drop-in, udev rule, modules-load, sysusers and tmpfiles files and the
// config: the guest boots systemd as PID 1 with systemd-udevd, the files are
// installed by the commands their comments give, systemd starts
// evidenced.service, and a camera hot-plugged over QMP (writable, as a real
// card is) is detected, made read-only by the rule, mounted read-only in the
// unit's private mount namespace and ingested (uploaded and verified when
// the S3 server runs). What systemd applied is read in the guest: the
// daemon's credentials, capabilities, no_new_privs and seccomp mode, its
// mounts against PID 1's, the rule's effects on the block devices; then the
// unit is stopped and its ledger verified on the host.
func TestUSBDockSystemd(t *testing.T) {
	cache := prepare(t)
	rootCPIO := prepareSystemd(t)
	tStart := time.Now()
	m := &metrics{t: t}
	dir := runDir(t)

	var srv *s3srv.Server
	var bucket string
	storeCfg := ""
	if _, err := s3srv.Binary(); err == nil || required() {
		srv = s3srv.Start(t)
		bucket = srv.NewBucket(t)
		storeCfg = fmt.Sprintf("object_store: {endpoint: \"http://10.0.2.100:8080\", bucket: %s, region: us-east-1, path_style: true}", bucket)
	} else {
		t.Log("no S3 server binary (scripts/s3-server.sh install): vault only, uploads not checked")
	}

	// A ~20 MB recording beside the clips keeps the camera mounted for a few
	// seconds even on a fast host, so the mount-table check below does not
	// race the end of the dock.
	body := makeCamera(t, filepath.Join(cache, "images"), "sdbody", 64, true, map[string]string{
		"DCIM/100MEDIA/BWC00001.MP4": "clip:4", "DCIM/100MEDIA/BWC00002.MP4": "clip:6", "DCIM/100MEDIA/BWC00003.MP4": "noise:3",
		"DCIM/100MEDIA/BWC00001.NMEA": "text:$GPGGA,092750.000,2546.2345,S,02814.3456,E,1,8,1.03,1340.0,M,,,,*76\n",
	})
	// The camera is plugged writable, as a real card is (QEMU reports a
	// read-only backing file as write-protected, which would make the udev
	// rule's blockdev --setro unobservable): a copy, hashed again at the end.
	img := filepath.Join(dir, "bwc1.img")
	b, err := os.ReadFile(body.image)
	must(t, err)
	must(t, os.WriteFile(img, b, 0o644))

	// The overlay: the project's files under /e2e/src as the install
	// comments name them, the daemon's libraries, the install script.
	bin, _ := daemon(t, dir)
	binData, err := os.ReadFile(bin)
	must(t, err)
	files := sharedLibs(t, bin)
	files["/e2e/src/evidenced"] = File{Mode: 0o755, Data: binData}
	root := repoRoot(t)
	for _, name := range []string{"evidenced.service", "evidenced-usb.conf", "99-evidenced-cameras.rules",
		"evidenced-modules.conf", "evidenced.sysusers.conf", "evidenced.tmpfiles.conf"} {
		d, err := os.ReadFile(filepath.Join(root, "systemd", name))
		must(t, err)
		if name == "99-evidenced-cameras.rules" {
			d = []byte(guestRule(t, string(d)))
		}
		files["/e2e/src/systemd/"+name] = File{Mode: 0o644, Data: d}
	}
	// "(edit it)": the test's config stands in for the example.
	files["/e2e/src/configs/evidenced.example.yaml"] = File{Mode: 0o644, Data: []byte(fmt.Sprintf(guestConfig, storeCfg))}
	creds := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", s3srv.AccessKey, s3srv.SecretKey)
	install := installScript(t, root, creds)
	files["/e2e/install.sh"] = File{Mode: 0o755, Data: []byte(install)}
	sroot, err := os.ReadFile(rootCPIO)
	must(t, err)
	initrd := writeInitrd(t, cache, dir, files, sroot)

	port := 0
	if srv != nil {
		u, err := url.Parse(srv.Endpoint)
		must(t, err)
		fmt.Sscan(u.Port(), &port)
	}
	vm := startSystemdGuest(t, cache, dir, initrd, port, "console")
	wait := func(from int, re string, d time.Duration) Line { t.Helper(); return mustWait(t, vm, from, re, d) }
	sh := func(cmd string, d time.Duration) string { t.Helper(); return mustSh(t, vm, cmd, d) }

	// Boot: systemd as PID 1, udevd, journald; the agent says READY once
	// `systemctl is-system-running --wait` returns.
	ready := wait(0, `^READY `, 240*time.Second)
	m.add("boot_to_systemd_ready_s", fmt.Sprintf("%.1f", ready.At.Sub(vm.Started).Seconds()))
	if !strings.HasSuffix(ready.Text, "state=running") {
		t.Errorf("system state after boot: %s; failed units:\n%s", ready.Text, sh("systemctl --failed --no-legend --plain", 30*time.Second))
	}
	if out := sh("readlink /proc/1/exe; systemctl is-active systemd-udevd.service systemd-journald.service", 30*time.Second); out != "/lib/systemd/systemd\nactive\nactive" {
		t.Fatalf("PID 1 is not systemd with udevd and journald running:\n%s", out)
	}
	// (The agent drops a last line without a newline: echo ends it.)
	fsMods := `echo $(grep -E '^(vfat|exfat|nls_utf8|nls_cp437) ' /proc/modules | cut -d' ' -f1 | sort)`
	// The drop-in's DeviceAllow=block-sd is resolved against /proc/devices
	// when the unit starts: the "sd" majors must be there by then, and no
	// disk of this guest registers them (evidenced-modules.conf must).
	sdMajors := `echo $(grep -E '^ *[0-9]+ sd$' /proc/devices | wc -l)`
	if out := sh(sdMajors, 30*time.Second); out != "0" {
		t.Fatalf("sd majors registered before evidenced-modules.conf was installed (%s): the guest cannot show whether the file loads sd_mod", out)
	}
	if out := sh(fsMods, 30*time.Second); out != "" {
		t.Fatalf("file system modules loaded before evidenced-modules.conf was installed: %q", out)
	}

	// The dock host's files, installed as documented; systemd starts the unit.
	mk := vm.Mark()
	tInst := time.Now()
	if out, rc, err := vm.Sh("sh /e2e/install.sh 2>&1", 300*time.Second); err != nil || rc != 0 {
		t.Fatalf("documented install steps: rc=%d %v\n%s\n--- script:\n%s", rc, err, out, install)
	} else {
		t.Logf("install steps:\n%s", out)
	}
	m.add("install_and_enable_s", fmt.Sprintf("%.1f", time.Since(tInst).Seconds()))
	wait(mk, `msg="watching USB for docked cameras"`, 90*time.Second)
	m.add("enable_to_watching_s", fmt.Sprintf("%.1f", time.Since(tInst).Seconds()))
	if out := sh("systemctl is-enabled evidenced; systemctl is-active evidenced; systemctl show -p Result --value systemd-modules-load.service; "+fsMods,
		30*time.Second); out != "enabled\nactive\nsuccess\nexfat nls_cp437 nls_utf8 vfat" {
		t.Errorf("after install: want evidenced enabled and active, systemd-modules-load successful with vfat exfat nls_utf8 nls_cp437 loaded; got:\n%s", out)
	}
	if out := sh(sdMajors, 30*time.Second); out != "16" {
		t.Errorf("%s sd majors in /proc/devices once evidenced-modules.conf is loaded; want 16 (sd_mod)", out)
	}
	if out := sh("stat -c '%n %a %U:%G' /etc/evidenced /etc/evidenced/evidenced.yaml /etc/evidenced/credentials /var/lib/evidenced /run/evidenced /run/evidenced/mnt", 30*time.Second); out !=
		"/etc/evidenced 750 root:evidenced\n/etc/evidenced/evidenced.yaml 640 root:evidenced\n/etc/evidenced/credentials 600 root:root\n"+
			"/var/lib/evidenced 750 evidenced:evidenced\n/run/evidenced 750 evidenced:evidenced\n/run/evidenced/mnt 750 evidenced:evidenced" {
		t.Errorf("installed files and directories:\n%s", out)
	}

	// What systemd applied to the daemon.
	pid := strings.TrimSpace(sh("systemctl show -p MainPID --value evidenced", 30*time.Second))
	ids := strings.Fields(sh("id -u evidenced; grep '^disk:' /etc/group | cut -d: -f3", 30*time.Second))
	if len(ids) != 2 || ids[0] == "0" {
		t.Fatalf("evidenced user / disk group: %q", ids)
	}
	status := sh("cat /proc/"+pid+"/status; readlink /proc/"+pid+"/exe; cat /proc/"+pid+"/cgroup", 30*time.Second)
	t.Logf("daemon pid %s under systemd:\n%s", pid, strings.Join(regexp.MustCompile(`(?m)^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):.*$|^/usr/local/bin/evidenced$|^0::.*$`).FindAllString(status, -1), "\n"))
	for _, re := range []string{
		`(?m)^Uid:\s+` + ids[0] + `\s+` + ids[0] + `\s+` + ids[0] + `\s+` + ids[0] + `$`,
		`(?m)^Groups:.*\b` + ids[1] + `\b`,
		`(?m)^CapInh:\s+0000000000200000$`, `(?m)^CapPrm:\s+0000000000200000$`, `(?m)^CapEff:\s+0000000000200000$`,
		`(?m)^CapBnd:\s+0000000000200000$`, `(?m)^CapAmb:\s+0000000000200000$`,
		`(?m)^NoNewPrivs:\s+1$`, `(?m)^Seccomp:\s+2$`,
		`(?m)^/usr/local/bin/evidenced$`, `(?m)^0::/system.slice/evidenced.service$`,
	} {
		if !regexp.MustCompile(re).MatchString(status) {
			t.Errorf("daemon (pid %s) as systemd runs it: no %s in\n%s", pid, re, status)
		}
	}

	// While the camera is mounted (between "mounted" and "dock complete"),
	// a guest loop takes the daemon's and PID 1's mount tables at once.
	// (One line: the agent reads one command per line.)
	sh(`sh -c 'for i in $(seq 1200); do if grep -q " /run/evidenced/mnt/" /proc/`+pid+`/mountinfo; then `+
		`grep " /run/evidenced/mnt/" /proc/`+pid+`/mountinfo | sed "s/^/DAEMON /"; echo "PID1 $(grep -c /run/evidenced/mnt/ /proc/1/mountinfo)"; `+
		`echo "AGENT $(grep -c /run/evidenced/mnt/ /proc/self/mountinfo)"; exit 0; fi; sleep 0.05; done; echo TIMEOUT' > /tmp/mwatch.out 2>&1 &`, 30*time.Second)

	mk = vm.Mark()
	tAdd := time.Now()
	plugWritable(t, vm, img, "BWC-0001")
	seen := wait(mk, `camera docked" camera=BWC-0001 bay=2-1`, 60*time.Second)
	docked := wait(mk, `msg=docked camera=BWC-0001 via=usb`, 60*time.Second)
	m.add("device_add_to_detected_ms", seen.At.Sub(tAdd).Milliseconds())
	m.add("device_add_to_DOCKED_ms", docked.At.Sub(tAdd).Milliseconds())
	mounted := wait(mk, `camera volume mounted read-only" camera=BWC-0001 bay=2-1 source=/dev/sd[a-z]1 fs=vfat`, 60*time.Second)
	m.add("device_add_to_mounted_ms", mounted.At.Sub(tAdd).Milliseconds())
	part := strings.TrimPrefix(strings.Fields(mounted.Text[strings.Index(mounted.Text, "source=")+len("source="):])[0], "/dev/")
	disk := strings.TrimRight(part, "0123456789")
	done := wait(mk, `msg="dock complete" camera=BWC-0001 .*vaulted=4 .*safe_to_undock=true`, 180*time.Second)
	m.add("DOCKED_to_safe_ms", done.At.Sub(docked.At).Milliseconds())

	// PrivateMounts=: the camera's mount was in the daemon's namespace only.
	mw := sh("for i in $(seq 100); do grep -q -E '^(PID1|TIMEOUT)' /tmp/mwatch.out && break; sleep 0.1; done; cat /tmp/mwatch.out", 60*time.Second)
	mnt := regexp.MustCompile(`(?m)^DAEMON \S+ \S+ \S+ / /run/evidenced/mnt/BWC-0001\S* (\S+) .* - vfat /dev/` + part + ` (\S+)$`).FindStringSubmatch(mw)
	switch {
	case mnt == nil:
		t.Errorf("the daemon's mount table never showed the camera at /run/evidenced/mnt/BWC-0001… from /dev/%s:\n%s", part, mw)
	case !strings.Contains(mw, "\nPID1 0\n") || !strings.Contains(mw, "\nAGENT 0"):
		t.Errorf("the camera's mount is visible outside the unit (PrivateMounts=):\n%s", mw)
	default:
		t.Logf("camera mount, seen by the daemon only:\n%s", mw)
		opts := "," + mnt[1] + "," + mnt[2] + ","
		for _, o := range []string{",ro,", ",nosuid,", ",nodev,", ",noexec,"} {
			if !strings.Contains(opts, o) {
				t.Errorf("camera mount options %s lack %s", opts, o)
			}
		}
	}
	if out := sh("grep -c ' /run/evidenced/mnt/' /proc/"+pid+"/mountinfo || true", 30*time.Second); out != "0" {
		t.Errorf("camera still mounted in the daemon's namespace after its dock finished (%s)", out)
	}

	// The udev rule, applied by systemd-udevd: the card came writable
	// (the kernel says so) and the rule's blockdev --setro made both its
	// disk and its partition read-only; udisks is told to keep away.
	if out := sh("dmesg | grep -E '\\["+disk+"\\] Write Protect is (on|off)'", 30*time.Second); !strings.Contains(out, "Write Protect is off") {
		t.Errorf("camera not writable to the kernel at arrival (the rule's --setro would be unobservable): %s", out)
	}
	for _, dev := range []string{disk, part} {
		out := sh("blockdev --getro /dev/"+dev+"; cat /sys/class/block/"+dev+"/ro; stat -c %G /dev/"+dev+"; udevadm info --query=property /dev/"+dev, 30*time.Second)
		t.Logf("/dev/%s (getro, sysfs ro, group, udev properties):\n%s", dev, strings.Join(regexp.MustCompile(`(?m)^([01]|disk|.*(UDISKS|EVIDENCED|TAGS).*)$`).FindAllString(out, -1), "\n"))
		if !strings.HasPrefix(out, "1\n1\ndisk\n") {
			t.Errorf("/dev/%s: want read-only (blockdev --getro, sysfs ro) and group disk; got\n%s", dev, out)
		}
		for _, want := range []string{"UDISKS_IGNORE=1", "UDISKS_AUTO=0", "EVIDENCED_CAMERA=qemu-bodycam", ":evidenced-camera:"} {
			if !strings.Contains(out, want) {
				t.Errorf("udevadm info /dev/%s: no %s in\n%s", dev, want, out)
			}
		}
	}

	wantItems := len(body.manifest)
	if srv != nil {
		checkStore(t, srv, bucket, body.manifest, 240*time.Second)
		waitVerified(t, vm, wantItems, 120*time.Second)
		m.add("device_add_to_all_verified_s", fmt.Sprintf("%.1f", time.Since(tAdd).Seconds()))
	}

	mk = vm.Mark()
	must(t, vm.Yank("cam1"))
	wait(mk, `msg="camera undocked" camera=BWC-0001 .*clean=true`, 60*time.Second)
	if after := sha256File(t, img); after != body.sum {
		t.Errorf("camera image changed while docked: sha256 %s before, %s after", body.sum, after)
	}

	// Warnings and errors of the daemon under the sandbox (a blocked system
	// call surfaces as EPERM in one of them).
	for _, l := range vm.Lines(0, `^LOG .*level=(WARN|ERROR)`) {
		t.Logf("daemon: %s", l.Text)
	}
	// The vault's read-back asks mincore(2) which pages are still cached:
	// -1 is the kernel (here: the seccomp filter) refusing to say.
	if l := vm.Lines(0, `^LOG .*resident_pages=-1 `); len(l) != 0 {
		t.Errorf("mincore refused under the unit's system call filter: %s", l[0].Text)
	}

	// Stopped by systemd: SIGTERM, a clean exit, then the ledger goes to the
	// host through 9p.
	tStop := time.Now()
	sh("systemctl stop evidenced", 150*time.Second)
	m.add("systemctl_stop_s", fmt.Sprintf("%.1f", time.Since(tStop).Seconds()))
	out := sh("systemctl show -p Result -p ExecMainCode -p ExecMainStatus -p NRestarts evidenced", 30*time.Second)
	for _, want := range []string{"Result=success", "ExecMainCode=1", "ExecMainStatus=0", "NRestarts=0"} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("evidenced.service after stop: no %s (a clean exit on SIGTERM, never restarted) in\n%s", want, out)
		}
	}
	sh("cp /var/lib/evidenced/ledger.db /out/ledger.db && sync", 60*time.Second)
	checkSystemdLedger(t, filepath.Join(dir, "out/ledger.db"), "BWC-0001", body.manifest, srv != nil)
	m.add("total_s", fmt.Sprintf("%.1f", time.Since(tStart).Seconds()))
	t.Logf("metrics:\n  %s", strings.Join(m.m, "\n  "))
}

// checkSystemdLedger opens the guest's ledger read-only: it verifies, the
// camera's custody reads DOCKED … SAFE_TO_UNDOCK … UNDOCKED(clean=true), its
// COPIED hashes are the camera's files, every item was VAULTED once (and
// VERIFIED in the store when there is one).
func checkSystemdLedger(t *testing.T, path, camera string, manifest map[string]string, uploads bool) {
	t.Helper()
	var story []string
	copied := map[string]string{}
	vaulted := map[string]int{}
	verified := map[string]bool{}
	started := 0
	for _, e := range ledgerEvents(t, path) {
		switch {
		case e.Type == custody.HostStarted:
			started++
		case e.Camera != camera:
		case e.Type == custody.Undocked:
			story = append(story, string(e.Type)+"(clean="+e.Details["clean"]+")")
		default:
			story = append(story, string(e.Type))
		}
		switch e.Type {
		case custody.Docked:
			// adjtimex(2), read-only, under the unit's filters: the
			// clock's NTP state is known (synced or not), not "unknown".
			if e.Camera == camera && (e.Details["clock_synced"] != "true" && e.Details["clock_synced"] != "false" || e.Details["clock_error"] != "") {
				t.Errorf("DOCKED of %s: clock_synced=%q clock_error=%q; want the host clock's state read (adjtimex)", camera, e.Details["clock_synced"], e.Details["clock_error"])
			}
		case custody.Copied:
			copied[e.Details["source_path"]] = e.SHA256
		case custody.Vaulted:
			vaulted[e.Item]++
		case custody.Verified:
			verified[e.Item] = true
		}
	}
	s := strings.Join(story, " ")
	t.Logf("custody %s: %s", camera, s)
	if started != 1 {
		t.Errorf("HOST_STARTED %d times; want 1 (systemd started the daemon once)", started)
	}
	if !regexp.MustCompile(`^DOCKED .*SAFE_TO_UNDOCK.* UNDOCKED\(clean=true\)$`).MatchString(s) {
		t.Errorf("%s custody: %s; want DOCKED … SAFE_TO_UNDOCK … UNDOCKED(clean=true)", camera, s)
	}
	for rel, sum := range manifest {
		if copied[rel] != sum {
			t.Errorf("%s %s: COPIED sha256 %q, camera file %s", camera, rel, copied[rel], sum)
		}
	}
	if len(copied) != len(manifest) || len(vaulted) != len(manifest) {
		t.Errorf("%s: %d files copied, %d items vaulted; the camera has %d", camera, len(copied), len(vaulted), len(manifest))
	}
	for id, n := range vaulted {
		if n != 1 {
			t.Errorf("item %s VAULTED %d times", id, n)
		}
		if uploads && !verified[id] {
			t.Errorf("item %s vaulted but never VERIFIED in the store", id)
		}
	}
}
