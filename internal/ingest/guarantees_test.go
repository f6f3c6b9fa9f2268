package ingest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidenced/evidenced/internal/custody"
	"github.com/evidenced/evidenced/internal/digest"
	"github.com/evidenced/evidenced/internal/vault"
)

// damagingVault is a real vault whose finished copy of the file named
// target is damaged after Store returns, before ReadBack: what a lost or
// misdirected write, or a device that did not keep what it acknowledged,
// leaves behind. The stream's hash is right; only the cold read-back can
// tell.
type damagingVault struct {
	*vault.Vault
	target string              // id of the item to damage; "" damages none
	damage func([]byte) []byte // returns the bytes the copy holds instead
	// readBackErr, when set, is what ReadBack of target returns instead
	// of reading (a disk that fails the read).
	readBackErr error
}

func (d *damagingVault) StoreRecorded(ctx context.Context, id string, src io.Reader, size int64, progress func(int64), record func(vault.Stored) error) (vault.Stored, error) {
	st, err := d.Vault.StoreRecorded(ctx, id, src, size, progress, record)
	if err != nil || id != d.target || d.damage == nil {
		return st, err
	}
	b, rerr := os.ReadFile(st.Path)
	if rerr != nil {
		return st, rerr
	}
	if err := os.Chmod(st.Path, 0o640); err != nil {
		return st, err
	}
	if err := os.WriteFile(st.Path, d.damage(b), 0o440); err != nil {
		return st, err
	}
	return st, os.Chmod(st.Path, 0o440)
}

func (d *damagingVault) ReadBackParts(ctx context.Context, id string, partSize int64) (digest.Sum, int64, []digest.Sum, error) {
	if id == d.target && d.readBackErr != nil {
		return digest.Sum{}, 0, nil, d.readBackErr
	}
	return d.Vault.ReadBackParts(ctx, id, partSize)
}

func flipOneByte(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }

// lostWrite zeroes one 4 KiB block, as a write the device acknowledged and
// never made would leave it.
func lostWrite(b []byte) []byte { clear(b[8192 : 8192+4096]); return b }

var dockReq = Request{Serial: "BWC-0001", Actor: "t", Via: "test"}

func (f *fixture) dock(t *testing.T, p Progress) (Result, error) {
	t.Helper()
	req := dockReq
	req.Root = f.cam
	return f.in.Dock(context.Background(), req, p)
}

// itemOf is the id ingest derives for the camera file rel as it is now.
func (f *fixture) itemOf(t *testing.T, rel string) string {
	t.Helper()
	fi, err := os.Stat(filepath.Join(f.cam, rel))
	if err != nil {
		t.Fatal(err)
	}
	return custody.ItemID(dockReq.Serial, rel, fi.Size(), fi.ModTime())
}

// events lists the ledger's records of item id, by type.
func (f *fixture) events(t *testing.T, id string) []custody.EventType {
	t.Helper()
	var out []custody.EventType
	if err := f.ledger.Events(context.Background(), 0, func(e custody.Event) error {
		if e.Item == id {
			out = append(out, e.Type)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// vaultFiles lists the regular files under the vault's items/.
func (f *fixture) vaultFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(f.vault.Dir(), "items"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, filepath.Base(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireNotVaulted checks that item id of rel failed in res for reason and
// left nothing behind: no item in the ledger, exactly the custody records
// want (never VAULTED), no copy under items/, and the camera is not safe to
// undock.
func (f *fixture) requireNotVaulted(t *testing.T, res Result, err error, id, rel, reason string, want ...custody.EventType) {
	t.Helper()
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("dock: %v, want ErrIncomplete", err)
	}
	i := slices.IndexFunc(res.Failed, func(fe FileError) bool { return fe.Rel == rel })
	if i < 0 || !strings.Contains(res.Failed[i].Reason, reason) || res.SafeToUndock || slices.Contains(res.Items, id) {
		t.Fatalf("result %+v: want %s failed (%q), not safe to undock", res, rel, reason)
	}
	if _, err := f.ledger.Item(context.Background(), id); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("ledger item %s: %v, want ErrNotFound", id, err)
	}
	if evs := f.events(t, id); !slices.Equal(evs, want) {
		t.Errorf("custody of %s: %v, want %v", id, evs, want)
	}
	if slices.Contains(f.vaultFiles(t), id) {
		t.Errorf("the copy of %s is still under items/", id)
	}
}

// requireVaultedAs checks that rel was vaulted on a later pass with content
// want: the camera still held it, and the retry took it whole.
func (f *fixture) requireVaultedAs(t *testing.T, rel string, want []byte) {
	t.Helper()
	res, err := f.dock(t, nil)
	if err != nil || !res.SafeToUndock {
		t.Fatalf("next pass: %+v, %v", res, err)
	}
	it, err := f.ledger.Item(context.Background(), f.itemOf(t, rel))
	if err != nil || it.SHA256 != digest.Bytes(want).Hex() || it.Size != int64(len(want)) {
		t.Fatalf("item of %s after the next pass: %+v %v; want its content", rel, it, err)
	}
	if sum, n, err := f.vault.ReadBack(context.Background(), it.ID); err != nil || sum.Hex() != it.SHA256 || n != it.Size {
		t.Errorf("vault copy of %s: %s %d %v", rel, sum.Hex(), n, err)
	}
}

// TestVaultCopyThatReadsBackDifferentIsNotVaulted: one byte of the finished
// vault copy differs from what was streamed (same size). Only the cold
// read-back sees it: the file is COPY_FAILED, not an item, its copy is
// removed from items/, the camera is not safe to undock, and the next pass
// copies it again.
func TestVaultCopyThatReadsBackDifferentIsNotVaulted(t *testing.T) {
	f := newFixture(t)
	data := []byte(strings.Repeat("evidence", 4096))
	f.write(t, "DCIM/A.MP4", data)
	id := f.itemOf(t, "DCIM/A.MP4")
	dv := &damagingVault{Vault: f.vault, target: id, damage: flipOneByte}
	f.in.vault = dv
	res, err := f.dock(t, nil)
	f.requireNotVaulted(t, res, err, id, "DCIM/A.MP4", "reads back as", custody.Copied, custody.CopyFailed)
	dv.damage = nil
	f.requireVaultedAs(t, "DCIM/A.MP4", data)
}

// TestVaultCopyWithLostWriteIsNotVaulted: a 4 KiB block of a multi-MiB copy
// reads back as zeros. The other recordings of the dock are vaulted; the
// damaged one is COPY_FAILED and gone from the vault.
func TestVaultCopyWithLostWriteIsNotVaulted(t *testing.T) {
	f := newFixture(t)
	big := make([]byte, 3<<20+123)
	for i := range big {
		big[i] = byte(i*31 + 7)
	}
	f.write(t, "DCIM/A.MP4", []byte("first"))
	f.write(t, "DCIM/B.MP4", big)
	f.write(t, "DCIM/C.MP4", []byte("third"))
	id := f.itemOf(t, "DCIM/B.MP4")
	dv := &damagingVault{Vault: f.vault, target: id, damage: lostWrite}
	f.in.vault = dv
	res, err := f.dock(t, nil)
	f.requireNotVaulted(t, res, err, id, "DCIM/B.MP4", "reads back as", custody.Copied, custody.CopyFailed)
	if res.Vaulted != 2 || len(res.Failed) != 1 {
		t.Errorf("result %+v: want the two intact files vaulted, one failed", res)
	}
	if got := f.vaultFiles(t); len(got) != 2 {
		t.Errorf("items/ holds %v, want the two intact copies only", got)
	}
	dv.damage = nil
	f.requireVaultedAs(t, "DCIM/B.MP4", big)
}

// TestVaultCopyThatCannotBeReadBackIsNotKept: the read-back itself fails
// (an I/O error from the disk). Nothing proves the copy, so it is treated
// like one that reads back different: COPY_FAILED, removed, not an item.
func TestVaultCopyThatCannotBeReadBackIsNotKept(t *testing.T) {
	f := newFixture(t)
	data := []byte("a recording whose copy cannot be read")
	f.write(t, "DCIM/A.MP4", data)
	id := f.itemOf(t, "DCIM/A.MP4")
	dv := &damagingVault{Vault: f.vault, target: id, readBackErr: errors.New("input/output error")}
	f.in.vault = dv
	res, err := f.dock(t, nil)
	f.requireNotVaulted(t, res, err, id, "DCIM/A.MP4", "input/output error", custody.Copied, custody.CopyFailed)
	dv.readBackErr = nil
	f.requireVaultedAs(t, "DCIM/A.MP4", data)
}

// rewriteOnProgress rewrites part of the file being copied in place at its
// first progress report, keeping its length and moving its mtime on: a
// camera that rewrites a recording (its index, a repaired header) while it
// is docked. The length check cannot see it; only the re-check of size and
// mtime at end of file can.
type rewriteOnProgress struct {
	t    *testing.T
	path string
	off  int64 // where to write; negative: from the end
	// shift moves the mtime; 0 means 2 s later.
	shift time.Duration
	// atStart rewrites when the dock reports its listing, before any file
	// is opened, instead of at the first progress report.
	atStart bool
	done    bool
}

func (r *rewriteOnProgress) Start(string, int, int64) {
	if r.atStart {
		r.rewrite()
	}
}
func (r *rewriteOnProgress) Done(string, Result) {}
func (r *rewriteOnProgress) File(_, rel string, _, _ int64) {
	if !r.atStart && strings.HasSuffix(r.path, rel) {
		r.rewrite()
	}
}

func (r *rewriteOnProgress) rewrite() {
	if r.done {
		return
	}
	r.done = true
	fi, err := os.Stat(r.path)
	if err != nil {
		r.t.Error(err)
		return
	}
	off := r.off
	if off < 0 {
		off += fi.Size()
	}
	fh, err := os.OpenFile(r.path, os.O_WRONLY, 0)
	if err != nil {
		r.t.Error(err)
		return
	}
	if _, err := fh.WriteAt([]byte("REWRITTEN"), off); err != nil {
		r.t.Error(err)
	}
	fh.Close()
	shift := r.shift
	if shift == 0 {
		shift = 2 * time.Second
	}
	mt := fi.ModTime().Add(shift)
	if err := os.Chtimes(r.path, mt, mt); err != nil {
		r.t.Error(err)
	}
}

// TestSameSizeRewriteDuringCopyIsNotVaulted: a recording rewritten in
// place during its copy, same length, later mtime, is reported as changed
// and nothing of it is vaulted, whether the rewritten bytes were already
// copied (the copy would hold stale bytes) or not yet read (it would hold a
// mix). The next pass vaults the file as it is now.
func TestSameSizeRewriteDuringCopyIsNotVaulted(t *testing.T) {
	for _, tt := range []struct {
		name string
		off  int64
	}{{"already copied part", 0}, {"part not yet read", -64}} {
		t.Run(tt.name, func(t *testing.T) {
			testRewriteDuringCopy(t, &rewriteOnProgress{t: t, off: tt.off})
		})
	}
}

// TestRewriteWithEarlierMtimeDuringCopyIsNotVaulted: the same rewrite by a
// camera whose clock was set back, so the new mtime is a day earlier than
// the one listed. "Changed" means different, not newer.
func TestRewriteWithEarlierMtimeDuringCopyIsNotVaulted(t *testing.T) {
	testRewriteDuringCopy(t, &rewriteOnProgress{t: t, off: 4096, shift: -24 * time.Hour})
}

// TestRewriteBetweenListingAndOpeningIsNotVaulted: the same rewrite lands
// after the camera was listed and before the file is opened. The copy
// itself then sees a steady file; only the comparison of what was opened
// with what was listed can tell that the bytes are not those of the listed
// recording (whose size and mtime name the item).
// Nothing was read, so nothing of the item is on record: the dock's result
// names the file as changed, and the next pass takes it.
func TestRewriteBetweenListingAndOpeningIsNotVaulted(t *testing.T) {
	testRewriteDuringCopy(t, &rewriteOnProgress{t: t, off: 0, atStart: true})
}

func testRewriteDuringCopy(t *testing.T, p *rewriteOnProgress) {
	t.Helper()
	f := newFixture(t)
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	const rel = "DCIM/REWRITE.MP4"
	f.write(t, rel, big)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(f.cam, rel), old, old); err != nil {
		t.Fatal(err)
	}
	id := f.itemOf(t, rel)
	p.path = filepath.Join(f.cam, rel)
	res, err := f.dock(t, p)
	if !p.done {
		t.Fatal("the test did not manage to rewrite the file during the copy")
	}
	if fi, _ := os.Stat(p.path); fi.Size() != int64(len(big)) {
		t.Fatalf("the rewrite changed the length to %d", fi.Size())
	}
	var want []custody.EventType
	if !p.atStart {
		want = []custody.EventType{custody.CopyFailed}
	}
	f.requireNotVaulted(t, res, err, id, rel, "changed", want...)
	if got := f.vaultFiles(t); len(got) != 0 {
		t.Errorf("items/ holds %v after a changed file", got)
	}
	now, err := os.ReadFile(p.path)
	if err != nil {
		t.Fatal(err)
	}
	f.requireVaultedAs(t, rel, now)
}

// TestDirectorySwappedForLinkIsNotFollowed: between the listing and the
// copy, the camera's folder is replaced by a symbolic link to a folder
// outside the camera holding a file of the same name, size and mtime but
// other content. Ingest must not follow it: the file fails, nothing from
// outside is vaulted.
func TestDirectorySwappedForLinkIsNotFollowed(t *testing.T) {
	f := newFixture(t)
	const rel = "DCIM/100MEDIA/VID.MP4"
	onCamera := []byte("the recording on the camera")
	fake := []byte("planted outside the camera!")
	if len(onCamera) != len(fake) {
		t.Fatal("test data must have the same length")
	}
	if err := os.MkdirAll(filepath.Join(f.cam, "DCIM/100MEDIA"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, rel, onCamera)
	mt := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(filepath.Join(f.cam, rel), mt, mt)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "VID.MP4"), fake, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(outside, "VID.MP4"), mt, mt)
	id := f.itemOf(t, rel)
	p := &swapOnStart{do: func() error {
		if err := os.Rename(filepath.Join(f.cam, "DCIM/100MEDIA"), filepath.Join(f.cam, "moved")); err != nil {
			return err
		}
		return os.Symlink(outside, filepath.Join(f.cam, "DCIM/100MEDIA"))
	}}
	res, err := f.dock(t, p)
	if p.err != nil {
		t.Fatal(p.err)
	}
	// The open is refused before a byte is read: no record of a copy.
	f.requireNotVaulted(t, res, err, id, rel, "not a regular file")
	if len(f.vaultFiles(t)) != 0 {
		t.Errorf("items/ holds %v: something behind the link was copied", f.vaultFiles(t))
	}
}

// swapOnStart runs do once the camera has been listed, before any file is
// opened.
type swapOnStart struct {
	do  func() error
	err error
}

func (s *swapOnStart) Start(string, int, int64)     { s.err = s.do() }
func (s *swapOnStart) File(_, _ string, _, _ int64) {}
func (s *swapOnStart) Done(string, Result)          {}

// copiedFails is the real ledger, failing the append of COPIED: a ledger
// that cannot take the record (disk full, I/O error) at the moment the
// copy is durable.
type copiedFails struct{ *custody.Ledger }

func (c copiedFails) Append(ctx context.Context, ev custody.Event, it *custody.Item) (custody.Event, error) {
	if ev.Type == custody.Copied {
		return custody.Event{}, errors.New("ledger write failed")
	}
	return c.Ledger.Append(ctx, ev, it)
}

// TestNoVaultFileWithoutItsCopied: COPIED is recorded before the copy is
// published under items/, so a copy whose COPIED could not be recorded is
// never there, and a file under items/ is always one the ledger names (a
// crash after the rename leaves a copy that verify can tell from footage
// the ledger lost).
func TestNoVaultFileWithoutItsCopied(t *testing.T) {
	f := newFixture(t)
	f.write(t, "DCIM/A.MP4", []byte("a recording"))
	f.in.ledger = copiedFails{f.ledger}
	if _, err := f.dock(t, nil); err == nil || !strings.Contains(err.Error(), "ledger write failed") {
		t.Fatalf("dock with COPIED failing: %v, want the ledger's error", err)
	}
	if got := f.vaultFiles(t); len(got) != 0 {
		t.Errorf("items/ holds %v although no COPIED was recorded", got)
	}
}
