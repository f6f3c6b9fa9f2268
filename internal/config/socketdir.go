package config

import (
	"os"
	"path/filepath"
	"syscall"
)

// socketDir refuses a control socket directory that someone other than the
// daemon could use to put their own server on the socket path: one writable
// by group or others (even sticky, like /tmp: another user can bind the
// name first), or owned by anyone but root, the state directory's owner (the
// daemon's user) or the user validating. A directory that does not exist
// yet is left to whoever creates it.
func (v *validator) socketDir(c *Config) {
	sp := c.SocketPath()
	if !filepath.IsAbs(sp) {
		return
	}
	key := "control_socket"
	if c.ControlSocket == "" {
		key = "state_dir"
	}
	dir := filepath.Dir(sp)
	st, err := os.Stat(dir)
	if err != nil {
		return
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		v.add(key, "the control socket's directory %s is writable by group or others (mode %04o): another user could serve a fake daemon there; make it 0750 or stricter", dir, perm)
	}
	owner, ok := ownerOf(st)
	if !ok {
		return
	}
	allowed := []int{0, os.Geteuid()}
	if sst, err := os.Stat(c.StateDir); err == nil {
		if o, ok := ownerOf(sst); ok {
			allowed = append(allowed, o)
		}
	}
	for _, a := range allowed {
		if owner == a {
			return
		}
	}
	v.add(key, "the control socket's directory %s is owned by uid %d, neither root nor the daemon's user (the owner of state_dir): that user could serve a fake daemon there", dir, owner)
}

func ownerOf(st os.FileInfo) (int, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}
