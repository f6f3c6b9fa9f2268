package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/evidenced/evidenced/internal/custody"
)

// tempGroup creates a Unix group for the test (root only) and removes it
// afterwards; it returns the group's gid.
func tempGroup(t *testing.T, name string) uint32 {
	t.Helper()
	return tempAccount(t, []string{"groupadd", name}, []string{"groupdel", name}, func() (string, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

// tempUser creates a user (root only) whose primary group is primary and
// who is a member of also, and removes it afterwards; it returns its uid.
func tempUser(t *testing.T, name, primary, also string) uint32 {
	t.Helper()
	return tempAccount(t, []string{"useradd", "-M", "-N", "-g", primary, "-G", also, "-s", "/usr/sbin/nologin", name},
		[]string{"userdel", name}, func() (string, error) {
			u, err := user.Lookup(name)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
}

// tempAccount runs create, schedules remove, and returns the numeric id
// lookup finds for what was created.
func tempAccount(t *testing.T, create, remove []string, lookup func() (string, error)) uint32 {
	t.Helper()
	if out, err := exec.Command(create[0], create[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", create, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(remove[0], remove[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", remove, err, out)
		}
	})
	id, err := lookup()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// openUp makes dir and every directory above it up to / traversable by
// other users (the test's temporary directories are 0700).
func openUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o011 != 0o011 {
			if err := os.Chmod(d, st.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Issue #12, finding 3: the socket was owner-only, so everyone who used the
// daemon could do everything (find and get, but also ingest, hold and
// classify). Rights are now by Unix group, checked on the daemon's side
// from the client's SO_PEERCRED uid: control.read_group may look,
// control.write_group may also ingest and change retention; the socket is
// 0660 to the read group, so nobody else connects at all. A refusal is
// recorded as a failed access naming the OS user and exits non-zero.
// Taking footage out is its own right: get and export need
// control.retrieve_group, which neither looking up custody nor ingesting
// grants (a reader and a custodian are both refused, nothing is written).
// Clients run as uids that are not the daemon's (the daemon runs as root
// here), with the groups the kernel gives them.
func TestControlRightsByGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates groups and runs clients as other uids")
	}
	suffix := strconv.Itoa(os.Getpid())
	readName, writeName, retrieveName := "evt-read-"+suffix, "evt-write-"+suffix, "evt-get-"+suffix
	readGID, writeGID, retrieveGID := tempGroup(t, readName), tempGroup(t, writeName), tempGroup(t, retrieveName)

	sockDir := filepath.Join(t.TempDir(), "ctl")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{noStore: true, extra: fmt.Sprintf("control_socket: %s\ncontrol:\n  read_group: %s\n  write_group: %s\n  retrieve_group: %s\n",
		filepath.Join(sockDir, "evidenced.sock"), readName, writeName, retrieveName)})
	h.socket = filepath.Join(sockDir, "evidenced.sock")
	openUp(t, sockDir)
	openUp(t, h.dir)
	openUp(t, filepath.Dir(binPath))
	cam := filepath.Join(h.dir, "cam")
	writeCamera(t, cam, map[string]int{"DCIM/A.MP4": 1000})
	openUp(t, filepath.Join(cam, "DCIM"))

	stop, logs := h.daemon(t)
	defer stop()
	st, err := os.Stat(h.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || st.Sys().(*syscall.Stat_t).Gid != readGID {
		t.Fatalf("control socket mode %v gid %d, want 0660 and the read group %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Gid, readGID)
	}

	as := func(uid, gid uint32, groups []uint32, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{args[0], "--config", h.cfgPath}, args[1:]...)...)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("run %v as uid %d: %v", args, uid, err)
		return 0, ""
	}
	const reader, custodian, stranger, retriever = 61001, 61002, 61003, 61004

	// A reader may look but not ingest.
	if code, out := as(reader, readGID, nil, "find", "--json"); code != 0 {
		t.Errorf("find by a member of the read group: exit %d\n%s", code, out)
	}
	code, out := as(reader, readGID, nil, "ingest", "--camera", "BWC-0001", "--from", cam)
	if code == 0 || !strings.Contains(out, "uid:61001 (uid 61001) has no ingest and retention rights") || !strings.Contains(out, writeName) {
		t.Errorf("ingest by a member of the read group: exit %d\n%s", code, out)
	}
	if items := h.find(); len(items) != 0 {
		t.Fatalf("refused ingest vaulted %+v", items)
	}
	// A custodian (write group, and the socket's group to connect) may
	// ingest: by its primary group, or by a supplementary group the group
	// database gives its user.
	if code, out := as(custodian, writeGID, []uint32{readGID}, "ingest", "--camera", "BWC-0001", "--from", cam); code != 0 {
		t.Errorf("ingest by a user whose primary group is the write group: exit %d\n%s", code, out)
	}
	items := h.find()
	if len(items) != 1 {
		t.Fatalf("after the custodian's ingest: %+v", items)
	}
	// The reader looks at what the custodian ingested, but may neither
	// change its retention nor run what is root's and the daemon user's.
	if code, out := as(reader, readGID, nil, "custody", items[0].ID, "--reason", "review"); code != 0 {
		t.Errorf("custody by a member of the read group: exit %d\n%s", code, out)
	}
	code, out = as(reader, readGID, nil, "hold", items[0].ID, "--case", "C-1", "--reason", "keep")
	if code == 0 || !strings.Contains(out, "has no ingest and retention rights") {
		t.Errorf("hold by a member of the read group: exit %d\n%s", code, out)
	}
	// Neither the reader nor the custodian takes the recording out; a
	// member of the retrieve group (connecting through the read group) does.
	outDir := filepath.Join(h.dir, "out")
	if err := os.Mkdir(outDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(outDir, 0o1777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who      string
		uid, gid uint32
		args     []string
		out      string
	}{
		{"a reader's get", reader, readGID, []string{"get", items[0].ID}, "reader.mp4"},
		{"a reader's export", reader, readGID, []string{"export", items[0].ID, "--footage"}, "reader-pkg"},
		{"a custodian's get", custodian, writeGID, []string{"get", items[0].ID}, "custodian.mp4"},
	} {
		dst := filepath.Join(outDir, tc.out)
		code, out := as(tc.uid, tc.gid, []uint32{readGID}, append(tc.args, "--reason", "take it", "--out", dst)...)
		if code == 0 || !strings.Contains(out, "has no retrieve rights") || !strings.Contains(out, retrieveName) {
			t.Errorf("%s: exit %d, want refused naming the retrieve group\n%s", tc.who, code, out)
		}
		if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was refused but left %s: %v", tc.who, dst, err)
		}
	}
	if code, out := as(retriever, retrieveGID, []uint32{readGID}, "get", items[0].ID, "--reason", "court order", "--out", filepath.Join(outDir, "retriever.mp4")); code != 0 {
		t.Errorf("get by a member of the retrieve group: exit %d\n%s", code, out)
	} else {
		got, err := os.ReadFile(filepath.Join(outDir, "retriever.mp4"))
		want, err2 := os.ReadFile(filepath.Join(cam, "DCIM", "A.MP4"))
		if err != nil || err2 != nil || !bytes.Equal(got, want) {
			t.Errorf("get by a member of the retrieve group wrote %d bytes (%v), want the recording's %d (%v)", len(got), err, len(want), err2)
		}
	}
	pkg := filepath.Join(outDir, "retriever-pkg")
	if code, out := as(retriever, retrieveGID, []uint32{readGID}, "export", items[0].ID, "--footage", "--reason", "court order", "--out", pkg); code != 0 {
		t.Errorf("export by a member of the retrieve group: exit %d\n%s", code, out)
	} else if _, err := os.Stat(filepath.Join(pkg, "VERIFY.md")); err != nil {
		t.Errorf("export by a member of the retrieve group: %v", err)
	}
	// A search by number plate or by place answers from the sidecars'
	// contents (where a vehicle was read, where a camera was): retrieving,
	// not looking. The reader is refused naming the retrieve group; the
	// retriever passes the rights check (this host has no facts to find).
	for _, args := range [][]string{{"find", "--plate", "CA 123-456"}, {"find", "--near", "-33.9249,18.4241", "--radius", "300"}} {
		if code, out := as(reader, readGID, nil, append(args, "--reason", "who was there")...); code == 0 ||
			!strings.Contains(out, "has no retrieve rights") || !strings.Contains(out, retrieveName) {
			t.Errorf("a reader's %v: exit %d, want refused naming the retrieve group\n%s", args, code, out)
		}
		if code, out := as(retriever, retrieveGID, []uint32{readGID}, append(args, "--reason", "case C-1")...); strings.Contains(out, "rights") {
			t.Errorf("a retriever's %v: exit %d, refused\n%s", args, code, out)
		}
	}
	// Retrieving does not include ingesting.
	code, out = as(retriever, retrieveGID, []uint32{readGID}, "ingest", "--camera", "BWC-0001", "--from", cam)
	if code == 0 || !strings.Contains(out, "has no ingest and retention rights") {
		t.Errorf("ingest by a member of the retrieve group: exit %d\n%s", code, out)
	}
	// fleet shows (read); fleet clear lifts what a console withholds
	// (write): the subcommand's right, not the command's. Past the rights
	// check, this host says it is no console.
	for _, tc := range []struct {
		uid, gid uint32
		groups   []uint32
		args     []string
		says     string
	}{
		{reader, readGID, nil, []string{"fleet"}, "not a console"},
		{reader, readGID, nil, []string{"fleet", "clear", "dock-01", "--reason", "looked"}, "has no ingest and retention rights"},
		{reader, readGID, nil, []string{"fleet", "--reason", "looked", "clear", "dock-01"}, "has no ingest and retention rights"},
		{custodian, writeGID, []uint32{readGID}, []string{"fleet", "clear", "dock-01", "--reason", "looked"}, "not a console"},
	} {
		code, out := as(tc.uid, tc.gid, tc.groups, tc.args...)
		if code == 0 || !strings.Contains(out, tc.says) || (tc.says == "not a console" && strings.Contains(out, "rights")) {
			t.Errorf("%v by uid %d: exit %d, want it to say %q\n%s", tc.args, tc.uid, code, tc.says, out)
		}
	}
	code, out = as(custodian, writeGID, []uint32{readGID}, "store-init")
	if code == 0 || !strings.Contains(out, "has no owner-only rights") {
		t.Errorf("store-init by a member of the write group: exit %d\n%s", code, out)
	}
	// key shows the public key (read); key rotate replaces the host key:
	// owner only, not even the write group's.
	code, out = as(custodian, writeGID, []uint32{readGID}, "key", "rotate", "--reason", "leaked")
	if code == 0 || !strings.Contains(out, "has no owner-only rights") {
		t.Errorf("key rotate by a member of the write group: exit %d\n%s", code, out)
	}
	if code, out := as(reader, readGID, nil, "key", "--fingerprint"); code != 0 {
		t.Errorf("key --fingerprint by a reader: exit %d\n%s", code, out)
	}
	member := tempUser(t, "evt-cust-"+suffix, readName, writeName)
	writeCamera(t, filepath.Join(h.dir, "cam2"), map[string]int{"DCIM/B.MP4": 1000})
	openUp(t, filepath.Join(h.dir, "cam2", "DCIM"))
	if code, out := as(member, readGID, []uint32{writeGID}, "ingest", "--camera", "BWC-0002", "--from", filepath.Join(h.dir, "cam2")); code != 0 {
		t.Errorf("ingest by a user in the write group as a supplementary group: exit %d\n%s", code, out)
	}
	// Anyone else cannot even connect.
	code, out = as(stranger, 61003, nil, "find")
	if code == 0 || !strings.Contains(out, "permission denied") {
		t.Errorf("find by a user in neither group: exit %d\n%s", code, out)
	}

	// The refusal is on record: who, what, and that it failed.
	var evs []custody.Event
	if err := json.Unmarshal([]byte(h.mustCLI("access", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	refused := map[string]int{}
	for _, ev := range evs {
		if d := ev.Details; d["outcome"] == "failed" && d["refused"] == "rights" {
			refused[ev.Actor+" "+d["action"]]++
		}
	}
	want := map[string]int{"uid:61001 ingest": 1, "uid:61001 hold": 1, "uid:61001 get": 1, "uid:61001 export": 1,
		"uid:61001 fleet": 2, "uid:61001 find": 2, "uid:61002 get": 1, "uid:61002 store-init": 1, "uid:61002 key": 1, "uid:61004 ingest": 1}
	if fmt.Sprint(refused) != fmt.Sprint(want) {
		t.Errorf("recorded refusals %v, want %v: %+v", refused, want, evs)
	}
	if code := stop(); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, logs)
	}
}
