package vault

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tinyVault opens a vault on a fresh 1 MiB tmpfs, so the file system really
// runs out. Mounting needs root (CAP_SYS_ADMIN); elsewhere the test skips.
func tinyVault(t *testing.T) *Vault {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs for a real ENOSPC (needs root with CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	v, err := Open(dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() }) // runs before the unmount
	return v
}

func TestStoreRealENOSPC(t *testing.T) {
	data := bytes.Repeat([]byte("footage!"), 2*bufSize/8) // 2 MiB on a 1 MiB file system
	plenty := func() (uint64, error) { return 1 << 40, nil }
	tests := []struct {
		name        string
		free        bool // trust statfs (else pretend there is plenty)
		preallocate bool
		errno       bool // the kernel's ENOSPC is wrapped too
		msg         string
	}{
		{"caught by the free-space check", true, true, false, "need 2097152 bytes"},
		{"caught by fallocate", false, true, true, "reserving"},
		{"hit while writing", false, false, true, "write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tinyVault(t)
			if !tt.free {
				v.free = plenty
			}
			v.preallocate = tt.preallocate
			_, err := v.Store(context.Background(), "too-big", bytes.NewReader(data), int64(len(data)), nil)
			if !errors.Is(err, ErrNoSpace) || (tt.errno && !errors.Is(err, unix.ENOSPC)) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Store = %v, want ErrNoSpace (ENOSPC wrapped: %v) mentioning %q", err, tt.errno, tt.msg)
			}
			assertNothingLeft(t, v)
			// The space the failed copy took is given back: a small one fits.
			small := []byte("a short sidecar")
			if _, err := v.Store(context.Background(), "small", bytes.NewReader(small), int64(len(small)), nil); err != nil {
				t.Errorf("Store after ENOSPC: %v", err)
			}
		})
	}
}
