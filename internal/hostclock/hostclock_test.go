package hostclock

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFromTimex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		state  int
		status int32
		err    error
		synced bool
		known  bool
	}{
		{"disciplined", unix.TIME_OK, 0, nil, true, true},
		{"unsync flag", unix.TIME_OK, unix.STA_UNSYNC, nil, false, true},
		{"time error", unix.TIME_ERROR, 0, nil, false, true},
		{"leap pending still synced", unix.TIME_INS, unix.STA_INS, nil, true, true},
		{"syscall refused", 0, 0, errors.New("operation not permitted"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := unix.Timex{Status: tc.status, Maxerror: 16000, Esterror: 250}
			st := fromTimex(tc.state, &tx, tc.err)
			if st.Synced != tc.synced || st.Known != tc.known {
				t.Errorf("synced=%v known=%v, want %v %v", st.Synced, st.Known, tc.synced, tc.known)
			}
			d := st.Details()
			if d["clock_method"] != "adjtimex" {
				t.Errorf("details %v", d)
			}
			if !tc.known {
				if d["clock_synced"] != "unknown" || d["clock_error"] == "" {
					t.Errorf("unknown status rendered as %v", d)
				}
				return
			}
			if st.MaxError != 16*time.Millisecond || d["clock_max_error"] != "16ms" {
				t.Errorf("max error %v / %q", st.MaxError, d["clock_max_error"])
			}
		})
	}
}

// On the real kernel the read works unprivileged and says something.
func TestReadRealKernel(t *testing.T) {
	st := Read()
	if !st.Known {
		t.Fatalf("adjtimex read failed: %s", st.Err)
	}
	if time.Since(st.Now) > time.Minute || st.Now.Location() != time.UTC {
		t.Errorf("Now %v", st.Now)
	}
}
