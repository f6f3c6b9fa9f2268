package vault

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// syncLog records, through the Vault's durability seams, every fsync Store
// asks for and what the vault looked like at that moment, so a test can
// tell the order of fsync and rename without a power cut: a kill -9 keeps
// the page cache, so only watching the calls shows a missing one.
type syncLog struct {
	v     *Vault
	id    string
	steps []string
	// failFile / failDir make the fsync of the partial or of that
	// directory fail (after it is recorded).
	failFile bool
	failDir  string
}

var errInjected = errors.New("injected fsync failure")

func watchSyncs(v *Vault, id string) *syncLog {
	l := &syncLog{v: v, id: id}
	realFile, realDir := v.syncFile, v.syncDir
	v.syncFile = func(f *os.File) error {
		l.steps = append(l.steps, "file "+l.where(f.Name()))
		if l.failFile {
			return errInjected
		}
		return realFile(f)
	}
	v.syncDir = func(dir string) error {
		l.steps = append(l.steps, "dir "+l.where(dir))
		if dir == l.failDir {
			return errInjected
		}
		return realDir(dir)
	}
	return l
}

// where names path relative to the vault and says whether the final copy
// exists yet ("+final") and the partial still does ("+partial").
func (l *syncLog) where(path string) string {
	rel, _ := filepath.Rel(l.v.dir, path)
	if _, err := os.Lstat(l.v.Path(l.id)); err == nil {
		rel += " +final"
	}
	if p, _ := filepath.Glob(filepath.Join(l.v.tmp, l.id+".*"+partialSuffix)); len(p) > 0 {
		rel += " +partial"
	}
	return rel
}

// TestStoreSyncsBeforeAndAfterRename: the partial is fsynced while it is
// still the partial (the final name does not exist yet), complete and
// read-only; the new shard's parent (items/) is fsynced once the shard
// exists, and the shard itself once the final name is in it and the
// partial's is gone (after the rename); all before Store returns. A second Store into the same shard fsyncs the
// partial and the shard again (no new directory, so not items/).
func TestStoreSyncsBeforeAndAfterRename(t *testing.T) {
	v := openVault(t)
	ctx := context.Background()
	data := randomBytes(3*bufSize+17, 1)
	id := "ab0001"
	l := watchSyncs(v, id)
	var sizeAtSync int64 = -1
	var modeAtSync os.FileMode
	realFile := v.syncFile
	v.syncFile = func(f *os.File) error {
		if fi, err := f.Stat(); err == nil {
			sizeAtSync, modeAtSync = fi.Size(), fi.Mode().Perm()
		}
		return realFile(f)
	}
	if _, err := v.Store(ctx, id, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	partial := "file tmp/"
	want := []string{"dir items +partial", "dir items/ab +final"}
	if len(l.steps) != 3 || !strings.HasPrefix(l.steps[0], partial) || !strings.HasSuffix(l.steps[0], partialSuffix+" +partial") ||
		!slices.Equal(l.steps[1:], want) {
		t.Fatalf("fsyncs %q\nwant    [%s<id>.<random>%s +partial] then %q", l.steps, partial, partialSuffix, want)
	}
	if sizeAtSync != int64(len(data)) || modeAtSync != 0o440 {
		t.Errorf("the partial was fsynced at %d bytes, mode %v; want all %d bytes, read-only 0440", sizeAtSync, modeAtSync, len(data))
	}

	l2 := watchSyncs(v, "ab0002")
	if _, err := v.Store(ctx, "ab0002", bytes.NewReader(data[:10]), 10, nil); err != nil {
		t.Fatal(err)
	}
	if len(l2.steps) != 2 || !strings.HasSuffix(l2.steps[0], " +partial") || strings.Contains(l2.steps[0], "+final") ||
		l2.steps[1] != "dir items/ab +final" {
		t.Errorf("second store into the shard: fsyncs %q, want the partial then items/ab", l2.steps)
	}
}

// TestStoreFailingFileSyncKeepsNothing: when the partial's fsync fails the
// copy is not durable, so it is not a copy: Store fails, the partial is
// removed and nothing appears under items/.
func TestStoreFailingFileSyncKeepsNothing(t *testing.T) {
	v := openVault(t)
	l := watchSyncs(v, "cd0001")
	l.failFile = true
	data := randomBytes(bufSize+5, 2)
	_, err := v.Store(context.Background(), "cd0001", bytes.NewReader(data), int64(len(data)), nil)
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "fsync") {
		t.Fatalf("Store with a failing fsync = %v, want the fsync error", err)
	}
	if len(l.steps) != 1 {
		t.Errorf("fsyncs %q: want the partial's only, then stop", l.steps)
	}
	assertNothingLeft(t, v)
}

// TestStoreFailingDirSyncRemovesCopy: the rename is only durable once its
// directory is fsynced. When that fails the final file is removed again and
// Store fails, so a caller never records a copy whose name may vanish in a
// power cut; the same id stores cleanly afterwards, its shard's entry in
// items/ fsynced then if it failed before. Both directory fsyncs
// are covered: of items/ after creating the shard, and of the shard after
// the rename.
func TestStoreFailingDirSyncRemovesCopy(t *testing.T) {
	for _, failing := range []string{"items", "items/ef"} {
		t.Run(failing, func(t *testing.T) {
			v := openVault(t)
			id := "ef0001"
			l := watchSyncs(v, id)
			l.failDir = filepath.Join(v.dir, failing)
			data := randomBytes(bufSize/2, 3)
			_, err := v.Store(context.Background(), id, bytes.NewReader(data), int64(len(data)), nil)
			if !errors.Is(err, errInjected) {
				t.Fatalf("Store with a failing directory fsync = %v, want that error", err)
			}
			if ok, err := v.Exists(id); ok || err != nil {
				t.Errorf("Exists after the failed store = %v, %v: the copy must be gone", ok, err)
			}
			assertNothingLeft(t, v)

			l.failDir = ""
			l.steps = nil
			st, err := v.Store(context.Background(), id, bytes.NewReader(data), int64(len(data)), nil)
			if err != nil {
				t.Fatalf("Store once fsync works again: %v", err)
			}
			// The shard whose entry in items/ was never made durable is not
			// trusted by the retry: items/ is fsynced before it holds a copy.
			if failing == "items" && (len(l.steps) < 2 || !strings.HasPrefix(l.steps[1], "dir items ")) {
				t.Errorf("retry after items/'s fsync failed: fsyncs %q, want items/ fsynced again before the rename", l.steps)
			}
			if sum, n, err := v.ReadBack(context.Background(), id); err != nil || sum != st.SHA256 || n != int64(len(data)) {
				t.Errorf("read back after the retry: %v %d %v", sum, n, err)
			}
		})
	}
}

// TestNewDirectoriesSynced: a directory the vault makes is durable before
// anything is kept in it: parts/, made by the first WritePartSums, has its
// entry in the vault's directory fsynced (with parts/ in place) before the
// sums file is written, as its shard's in parts/; and mkdirSynced fsyncs
// the parent of every level it makes, not of those it finds.
func TestNewDirectoriesSynced(t *testing.T) {
	v := openVault(t)
	id := "nd0001"
	l := watchSyncs(v, id)
	realDir := v.syncDir
	partsThere := map[string]bool{}
	v.syncDir = func(dir string) error {
		_, err := os.Stat(filepath.Join(v.dir, "parts"))
		partsThere[dir] = err == nil
		return realDir(dir)
	}
	if err := v.WritePartSums(id, bufSize, partsOf(randomBytes(3*bufSize, 4), bufSize)); err != nil {
		t.Fatal(err)
	}
	if len(l.steps) != 4 || l.steps[0] != "dir ." || l.steps[1] != "dir parts" ||
		!strings.HasPrefix(l.steps[2], "file tmp/") || l.steps[3] != "dir parts/nd" {
		t.Fatalf("fsyncs %q\nwant    [dir . (for parts/), dir parts (for parts/nd), file tmp/<id>.<random>%s +partial, dir parts/nd]", l.steps, partialSuffix)
	}
	if !partsThere[v.dir] {
		t.Error("the vault's directory was fsynced before parts/ was in it")
	}

	l = watchSyncs(v, id)
	nested := filepath.Join(v.dir, "a", "b", "c")
	if made, err := v.mkdirSynced(nested); err != nil || !made {
		t.Fatalf("mkdirSynced(a/b/c) = %v, %v", made, err)
	}
	if want := []string{"dir .", "dir a", "dir a/b"}; !slices.Equal(l.steps, want) {
		t.Errorf("mkdirSynced(a/b/c) fsyncs %q, want %q (each new level's parent)", l.steps, want)
	}
	l.steps = nil
	if made, err := v.mkdirSynced(nested); err != nil || made || len(l.steps) != 0 {
		t.Errorf("mkdirSynced of a directory in place = %v, %v, fsyncs %q; want nothing made or fsynced", made, err, l.steps)
	}
}
