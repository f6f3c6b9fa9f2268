package control

import (
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ownGroup is the name of this process's primary group: a group that
// exists on any machine the test runs on.
func ownGroup(t *testing.T) (string, int) {
	t.Helper()
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("this process's group %d has no name: %v", os.Getgid(), err)
	}
	return g.Name, os.Getgid()
}

// strangers are two peers of a uid that is neither root nor this process
// and has no user entry, so only the primary gid SO_PEERCRED reports
// counts: member's is group (this process's), outsider's a gid of no
// group.
func strangers(t *testing.T) (group string, member, outsider Peer) {
	t.Helper()
	group, gid := ownGroup(t)
	const stranger = 61001
	if os.Geteuid() == stranger {
		t.Skip("runs as the test's stranger uid")
	}
	if _, err := user.LookupId(strconv.Itoa(stranger)); err == nil {
		t.Skipf("uid %d has a user entry on this machine", stranger)
	}
	other := gid + 1
	if _, err := user.LookupGroupId(strconv.Itoa(other)); err == nil {
		other = 61009
	}
	return group, Peer{PID: 1, UID: stranger, GID: gid}, Peer{PID: 1, UID: stranger, GID: other}
}

// Issue #12, finding 3: rights by Unix group, decided from what the kernel
// says about the peer. A peer in the read group may look but not ingest or
// change retention; one in the write group may do both; nobody but root and
// the daemon's user runs an owner-only command; a peer in neither group, or
// whose credentials could not be read, is refused; a configured group that
// does not exist grants nothing. Taking footage out (get, export) needs the
// retrieve group: neither the read nor the write group grants it, and with
// no retrieve group set nobody but root and the daemon's user retrieves.
func TestAuthorizeByGroup(t *testing.T) {
	group, member, outsider := strangers(t)
	gid, other := member.GID, outsider.GID

	cases := []struct {
		name   string
		groups Groups
		peer   Peer
		right  Right
		ok     bool
	}{
		{"reader looks", Groups{Read: group}, member, Read, true},
		{"reader ingests", Groups{Read: group}, member, Write, false},
		{"reader runs an owner-only command", Groups{Read: group}, member, OwnerOnly, false},
		{"custodian looks", Groups{Write: group}, member, Read, true},
		{"custodian ingests", Groups{Write: group}, member, Write, true},
		{"custodian runs an owner-only command", Groups{Read: group, Write: group}, member, OwnerOnly, false},
		{"outsider looks", Groups{Read: group, Write: group}, outsider, Read, false},
		{"outsider ingests", Groups{Read: group, Write: group}, outsider, Write, false},
		{"retriever retrieves", Groups{Retrieve: group}, member, Retrieve, true},
		{"retriever looks", Groups{Retrieve: group}, member, Read, true},
		{"retriever ingests", Groups{Retrieve: group}, member, Write, false},
		{"reader retrieves", Groups{Read: group, Retrieve: "evidenced-no-such-group"}, member, Retrieve, false},
		{"custodian retrieves", Groups{Read: group, Write: group}, member, Retrieve, false},
		{"outsider retrieves", Groups{Retrieve: group}, outsider, Retrieve, false},
		{"the daemon's user retrieves", Groups{}, Peer{PID: 1, UID: os.Geteuid(), GID: other}, Retrieve, true},
		{"no groups configured", Groups{}, member, Read, false},
		{"a group that does not exist", Groups{Read: "evidenced-no-such-group", Write: "evidenced-no-such-group"}, member, Read, false},
		{"unreadable credentials", Groups{Read: group, Write: group}, Peer{PID: -1, UID: -1, GID: gid}, Read, false},
		{"root runs an owner-only command", Groups{}, Peer{PID: 1, UID: 0, GID: other}, OwnerOnly, true},
		{"the daemon's user ingests", Groups{}, Peer{PID: 1, UID: os.Geteuid(), GID: other}, Write, true},
	}
	for _, tc := range cases {
		err := tc.groups.Authorize(tc.peer, tc.right)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v, want allowed", tc.name, err)
		case !tc.ok && !errors.Is(err, ErrNotAllowed):
			t.Errorf("%s: %v, want ErrNotAllowed", tc.name, err)
		case !tc.ok && tc.peer.UID >= 0 && !strings.Contains(err.Error(), "uid:"+strconv.Itoa(tc.peer.UID)):
			t.Errorf("%s: %q does not name the peer", tc.name, err)
		}
	}
}

// A refusal names every group that would grant the right that was needed,
// each with its config key (read: any of the three; ingest: the write
// group; retrieve: the retrieve group), and the groups the caller is in
// that grant something else; never a key that grants nothing here.
func TestRefusalNamesTheGroupsThatGrant(t *testing.T) {
	group, member, outsider := strangers(t)
	for _, c := range []struct {
		name   string
		groups Groups
		peer   Peer
		right  Right
		want   []string
		never  []string
	}{
		{"read, no read group", Groups{Write: "custody", Retrieve: "court"}, outsider, Read,
			[]string{`has no read rights on this daemon: members of "custody" (control.write_group) or "court" (control.retrieve_group) may`},
			[]string{"control.read_group", "it is a member"}},
		{"read, every group", Groups{Read: "readers", Write: "custody", Retrieve: "court"}, outsider, Read,
			[]string{`members of "readers" (control.read_group), "custody" (control.write_group) or "court" (control.retrieve_group) may`}, nil},
		{"ingest, a reader", Groups{Read: group, Write: "custody", Retrieve: "court"}, member, Write,
			[]string{`has no ingest and retention rights on this daemon: members of "custody" (control.write_group) may; it is a member of "` + group + `" (control.read_group), which grants read rights`},
			[]string{"control.retrieve_group"}},
		{"retrieve, a custodian", Groups{Read: "readers", Write: group, Retrieve: "court"}, member, Retrieve,
			[]string{`has no retrieve rights on this daemon: members of "court" (control.retrieve_group) may; it is a member of "` + group + `" (control.write_group), which grants ingest and retention rights`},
			[]string{"control.read_group"}},
		{"retrieve, no retrieve group", Groups{Read: group, Write: group}, member, Retrieve,
			[]string{`no group is configured for them (control.retrieve_group); only root and the daemon's user may; it is a member of "` + group + `" (control.read_group) and "` + group + `" (control.write_group), which grant read rights and ingest and retention rights`}, nil},
		{"ingest, a retriever", Groups{Write: "custody", Retrieve: group}, member, Write,
			[]string{`members of "custody" (control.write_group) may; it is a member of "` + group + `" (control.retrieve_group), which grants retrieve rights`}, nil},
		{"owner-only, a reader", Groups{Read: group}, member, OwnerOnly,
			[]string{`has no owner-only rights on this daemon: only root and the daemon's user may; it is a member of "` + group + `" (control.read_group)`}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.groups.Authorize(c.peer, c.right)
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("%v, want ErrNotAllowed", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q\ndoes not say %q", err, w)
				}
			}
			for _, n := range c.never {
				if strings.Contains(err.Error(), n) {
					t.Errorf("%q names %q", err, n)
				}
			}
		})
	}
}

// ShareWithGroup hands the socket to the group, mode 0660: members connect,
// others do not (file permissions on the socket decide connect(2)).
func TestShareWithGroup(t *testing.T) {
	group, gid := ownGroup(t)
	path := serve(t, func(context.Context, Request, Peer, io.Writer, io.Writer, func(k, v string)) int { return 0 })
	srv := &Server{path: path}
	if os.Geteuid() == 0 {
		// The socket is born with the daemon's group; as root, start it
		// from another so that the group is really handed over.
		if err := os.Chown(path, -1, gid+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.ShareWithGroup(group); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || int(st.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("socket mode %v gid %d, want 0660 and gid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Gid, gid)
	}
	if err := srv.ShareWithGroup("evidenced-no-such-group"); err == nil || !strings.Contains(err.Error(), "evidenced-no-such-group") {
		t.Errorf("an unknown group: %v", err)
	}
}

// A daemon whose unit denies chown(2) (SystemCallFilter=~@privileged)
// shares its socket through a setgid directory of the group instead: the
// socket is born with the group, is not chowned, and only its mode is set.
func TestShareWithGroupWithoutChown(t *testing.T) {
	group, gid := ownGroup(t)
	path := serve(t, func(context.Context, Request, Peer, io.Writer, io.Writer, func(k, v string)) int { return 0 })
	chowned := 0
	defer func(old func(string, int, int) error) { chownSocket = old }(chownSocket)
	chownSocket = func(string, int, int) error {
		chowned++
		return syscall.EPERM // as the unit's seccomp filter answers
	}
	if err := (&Server{path: path}).ShareWithGroup(group); err != nil || chowned != 0 {
		t.Fatalf("a socket already of group %s: %v after %d chown calls, want shared without one", group, err, chowned)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || int(st.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("socket mode %v gid %d, want 0660 and gid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Gid, gid)
	}
	if os.Geteuid() != 0 {
		return
	}
	// A socket of another group needs the chown, and says so when it fails.
	if err := os.Chown(path, -1, gid+1); err != nil {
		t.Fatal(err)
	}
	if err := (&Server{path: path}).ShareWithGroup(group); err == nil || chowned != 1 || !strings.Contains(err.Error(), "hand it to group "+group) {
		t.Errorf("a socket of another group with chown denied: %v after %d chown calls", err, chowned)
	}
}
