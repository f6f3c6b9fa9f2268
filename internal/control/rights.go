package control

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// Right is what a command needs of the user on the other end of the socket.
type Right int

const (
	// OwnerOnly: root and the daemon's own user only (the zero value, so a
	// command nobody classified is never opened to a group by mistake).
	OwnerOnly Right = iota
	// Read: look at custody and status (find, custody, access, status,
	// verify, key, fleet): control.read_group, write_group or
	// retrieve_group.
	Read
	// Write: ingest footage and change its retention (ingest, hold,
	// release, classify, scrub), or what a console serves (fleet clear):
	// control.write_group.
	Write
	// Retrieve: take footage or a package out of the host (get, export):
	// control.retrieve_group only. Looking up custody does not grant it,
	// nor does ingesting: releasing bytes is its own decision.
	Retrieve
)

func (r Right) String() string {
	switch r {
	case Read:
		return "read"
	case Write:
		return "ingest and retention"
	case Retrieve:
		return "retrieve"
	}
	return "owner-only"
}

// Groups are the Unix groups whose members may use the daemon besides root
// and its own user (config control.read_group, control.write_group,
// control.retrieve_group; "" means nobody). Write and retrieve rights each
// include read rights, and neither includes the other: a custodian who
// ingests does not thereby take footage out, nor does a reader.
type Groups struct {
	Read, Write, Retrieve string
}

// ErrNotAllowed: the peer's user may not run the command.
var ErrNotAllowed = errors.New("not allowed")

// Authorize says whether peer may use a command that needs right: root and
// the daemon's effective uid always may; anyone else only as a member of
// the group that grants it (the primary gid SO_PEERCRED reports, or a
// supplementary group of the uid's user in the group database). A peer
// whose credentials could not be read is refused.
func (g Groups) Authorize(peer Peer, right Right) error {
	if peer.UID == 0 || (peer.UID >= 0 && peer.UID == os.Geteuid()) {
		return nil
	}
	var want []string
	switch right {
	case Read:
		want = []string{g.Read, g.Write, g.Retrieve}
	case Write:
		want = []string{g.Write}
	case Retrieve:
		want = []string{g.Retrieve}
	}
	want = slices.DeleteFunc(want, func(s string) bool { return s == "" })
	if peer.UID < 0 {
		return fmt.Errorf("%w: the peer's credentials could not be read", ErrNotAllowed)
	}
	if len(want) > 0 {
		have, err := peerGIDs(peer)
		if err != nil {
			return fmt.Errorf("%w: groups of %s (uid %d): %w", ErrNotAllowed, peer.Identity(), peer.UID, err)
		}
		for _, name := range want {
			gr, err := user.LookupGroup(name)
			if err != nil {
				continue // a group that does not exist grants nothing
			}
			if slices.Contains(have, gr.Gid) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s (uid %d) has no %s rights on this daemon: %s", ErrNotAllowed, peer.Identity(), peer.UID, right, grantedBy(right, want))
}

// grantedBy says who would have been allowed.
func grantedBy(right Right, groups []string) string {
	if len(groups) == 0 {
		if right == OwnerOnly {
			return "only root and the daemon's user may"
		}
		return fmt.Sprintf("no group is configured for them (%s); only root and the daemon's user may", grantingKeys[right])
	}
	return fmt.Sprintf("members of %q may (control.%s_group)", groups[0], map[Right]string{Read: "read", Write: "write", Retrieve: "retrieve"}[right])
}

// grantingKeys names the config keys that would grant a right.
var grantingKeys = map[Right]string{
	Read:     "control.read_group, control.write_group, control.retrieve_group",
	Write:    "control.write_group",
	Retrieve: "control.retrieve_group",
}

// peerGIDs are the peer's primary gid and its user's supplementary groups.
func peerGIDs(peer Peer) ([]string, error) {
	gids := []string{}
	if peer.GID >= 0 {
		gids = append(gids, strconv.Itoa(peer.GID))
	}
	u, err := user.LookupId(strconv.Itoa(peer.UID))
	if err != nil {
		var unknown user.UnknownUserIdError
		if errors.As(err, &unknown) {
			return gids, nil // no user entry: only the primary gid counts
		}
		return nil, err
	}
	more, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	return append(gids, more...), nil
}

// chownSocket is os.Chown; a test replaces it to answer as a seccomp
// filter that denies chown(2) does.
var chownSocket = os.Chown

// ShareWithGroup opens the socket to members of group: group-owned by it,
// mode 0660. Who may run what is then decided per command (Authorize);
// the group only lets its members connect. A socket created in a setgid
// directory of that group already has it and is not chowned (a unit whose
// seccomp filter denies chown(2) still works); otherwise the daemon's user
// must be a member of group (or the daemon root) to hand the socket to it.
func (s *Server) ShareWithGroup(group string) error {
	gr, err := user.LookupGroup(group)
	if err != nil {
		return fmt.Errorf("control socket %s: group %q: %w", s.path, group, err)
	}
	gid, err := strconv.Atoi(gr.Gid)
	if err != nil {
		return fmt.Errorf("control socket %s: group %q has gid %q", s.path, group, gr.Gid)
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", s.path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Gid) != gid {
		if err := chownSocket(s.path, -1, gid); err != nil {
			return fmt.Errorf("control socket %s: hand it to group %s: %w", s.path, group, err)
		}
	}
	if err := os.Chmod(s.path, 0o660); err != nil {
		return fmt.Errorf("chmod control socket %s: %w", s.path, err)
	}
	return nil
}
