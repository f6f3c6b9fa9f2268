package control

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
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
// a group that grants it (the primary gid SO_PEERCRED reports, or a
// supplementary group of the uid's user in the group database). A peer
// whose credentials could not be read is refused. A refusal names every
// group that would grant the right, each with its config key, and the
// groups the peer is in that grant something else: what to change is in
// the message, whichever group happens to be configured first.
func (g Groups) Authorize(peer Peer, right Right) error {
	if peer.UID == 0 || (peer.UID >= 0 && peer.UID == os.Geteuid()) {
		return nil
	}
	if peer.UID < 0 {
		return fmt.Errorf("%w: the peer's credentials could not be read", ErrNotAllowed)
	}
	configured := g.grants()
	var granting, in []grant
	for _, gr := range configured {
		if gr.grants(right) {
			granting = append(granting, gr)
		}
	}
	if len(configured) > 0 {
		have, err := peerGIDs(peer)
		if err != nil && len(granting) > 0 {
			return fmt.Errorf("%w: groups of %s (uid %d): %w", ErrNotAllowed, peer.Identity(), peer.UID, err)
		}
		for _, gr := range configured {
			ent, err := user.LookupGroup(gr.name)
			if err != nil || !slices.Contains(have, ent.Gid) {
				continue // a group that does not exist grants nothing
			}
			if gr.grants(right) {
				return nil
			}
			in = append(in, gr)
		}
	}
	msg := fmt.Sprintf("%s (uid %d) has no %s rights on this daemon: %s", peer.Identity(), peer.UID, right, grantedBy(right, granting))
	if len(in) > 0 {
		msg += fmt.Sprintf("; it is a member of %s, which grant%s %s", groupList(in, "and"), map[bool]string{true: "s"}[len(in) == 1], grantsOf(in))
	}
	return fmt.Errorf("%w: %s", ErrNotAllowed, msg)
}

// grant is a configured group and the config key that names it.
type grant struct {
	name, key string
	right     Right
}

// grants reports whether the group grants r: each grants its own right,
// and every group grants read.
func (gr grant) grants(r Right) bool {
	return r != OwnerOnly && (gr.right == r || r == Read)
}

// grants are the configured groups, in config order.
func (g Groups) grants() []grant {
	var out []grant
	for _, gr := range []grant{
		{g.Read, "control.read_group", Read}, {g.Write, "control.write_group", Write}, {g.Retrieve, "control.retrieve_group", Retrieve},
	} {
		if gr.name != "" {
			out = append(out, gr)
		}
	}
	return out
}

// grantedBy says who would have been allowed.
func grantedBy(right Right, granting []grant) string {
	switch {
	case right == OwnerOnly:
		return "only root and the daemon's user may"
	case len(granting) == 0:
		return fmt.Sprintf("no group is configured for them (%s); only root and the daemon's user may", grantingKeys[right])
	}
	return "members of " + groupList(granting, "or") + " may"
}

// groupList is `"a" (control.read_group), "b" (control.write_group) or "c" (...)`.
func groupList(gs []grant, last string) string {
	var b strings.Builder
	for i, gr := range gs {
		switch {
		case i == 0:
		case i == len(gs)-1:
			b.WriteString(" " + last + " ")
		default:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q (%s)", gr.name, gr.key)
	}
	return b.String()
}

// grantsOf names the rights the groups grant, each once.
func grantsOf(gs []grant) string {
	var rs []string
	for _, gr := range gs {
		if r := gr.right.String() + " rights"; !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	return strings.Join(rs, " and ")
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
