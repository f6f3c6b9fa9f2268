package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidenced/evidenced/internal/config"
	"github.com/evidenced/evidenced/internal/custody"
)

// Finding 6: `verify` on a deleted ledger created a new host key and
// ledger and said OK. With MustExist, Open names the missing ledger and
// creates nothing: no state dir, no key, no ledger.
func TestOpenMustExistCreatesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	cfg, err := config.Parse([]byte(`host_id: unit
state_dir: `+state+`
retention:
  default_class: uncategorized
  classes:
    - {name: uncategorized, days: 90, mode: GOVERNANCE}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Open(ctx, cfg, nil, Options{MustExist: true}); !errors.Is(err, custody.ErrNoLedger) || !strings.Contains(err.Error(), "no ledger at "+cfg.LedgerPath()) {
		t.Fatalf("Open of a host without a ledger: %v, want ErrNoLedger naming it", err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the state dir was created: %v", err)
	}
	s, err := Open(ctx, cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The ledger is there but its key is gone: refused, not replaced.
	if err := os.Rename(cfg.KeyPath(), cfg.KeyPath()+".moved"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, cfg, nil, Options{MustExist: true}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open with the key gone: %v, want it refused", err)
	}
	if _, err := os.Stat(cfg.KeyPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a new key was created: %v", err)
	}
	os.Rename(cfg.KeyPath()+".moved", cfg.KeyPath())
	s, err = Open(ctx, cfg, nil, Options{MustExist: true})
	if err != nil {
		t.Fatalf("MustExist on an existing host: %v", err)
	}
	s.Close()
}
