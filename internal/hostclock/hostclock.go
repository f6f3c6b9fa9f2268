// Package hostclock reports whether the dock host's clock is synchronised,
// so that every dock records how far its timestamps can be trusted.
//
// Why: custody times are only as good as the host clock. A court asks "how do
// you know the time was right?"; the answer recorded at each dock is the
// kernel's own view of NTP discipline, read with adjtimex(2) (the same
// source `timedatectl` and `chronyc tracking` report from), not a guess.
package hostclock

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Status is the host clock as the kernel sees it.
type Status struct {
	// Now is the host's time when the status was read.
	Now time.Time
	// Synced: the kernel's clock is disciplined by a time service (NTP,
	// chrony, systemd-timesyncd, PTP). False also when the read failed.
	Synced bool
	// Known is false when the kernel could not be asked.
	Known bool
	// MaxError and EstError are the kernel's bounds on the clock error.
	MaxError, EstError time.Duration
	// Method says how Synced was determined.
	Method string
	// Err is why the status is unknown.
	Err string
}

// Read asks the kernel.
func Read() Status {
	var tx unix.Timex // Modes 0: read only, changes nothing
	state, err := unix.Adjtimex(&tx)
	st := fromTimex(state, &tx, err)
	st.Now = time.Now().UTC()
	return st
}

// fromTimex interprets an adjtimex(2) reply. The clock counts as synchronised
// only when the kernel says neither TIME_ERROR nor STA_UNSYNC.
func fromTimex(state int, tx *unix.Timex, err error) Status {
	st := Status{Method: "adjtimex"}
	if err != nil {
		st.Err = err.Error()
		return st
	}
	st.Known = true
	st.Synced = state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	st.MaxError = time.Duration(tx.Maxerror) * time.Microsecond
	st.EstError = time.Duration(tx.Esterror) * time.Microsecond
	return st
}

// Details renders the status for a custody event's details.
func (s Status) Details() map[string]string {
	d := map[string]string{
		"host_time":    s.Now.Format(time.RFC3339Nano),
		"clock_method": s.Method,
	}
	if !s.Known {
		d["clock_synced"] = "unknown"
		d["clock_error"] = s.Err
		return d
	}
	d["clock_synced"] = strconv.FormatBool(s.Synced)
	d["clock_max_error"] = s.MaxError.String()
	d["clock_est_error"] = s.EstError.String()
	return d
}
