package witness

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readNative decodes one journald native-protocol datagram
// (systemd.journal-fields(7)): KEY=value lines, or KEY\n, a 64-bit
// little-endian length, the value and \n.
func readNative(t *testing.T, b []byte) map[string]string {
	t.Helper()
	f := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("unterminated field %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte{'='}); ok {
			f[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		rest := b[nl+1:]
		if len(rest) < 8 {
			t.Fatalf("field %s without its length", line)
		}
		n := binary.LittleEndian.Uint64(rest[:8])
		if uint64(len(rest)) < 8+n+1 || rest[8+n] != '\n' {
			t.Fatalf("field %s: length %d does not frame its value", line, n)
		}
		f[string(line)] = string(rest[8 : 8+n])
		b = rest[8+n+1:]
	}
	return f
}

// A head is one structured journal entry with the fixed MESSAGE_ID, the
// multi-line signed note framed with its length (a "KEY=value" line would
// cut it at its first newline).
func TestJournalWritesNativeEntry(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "socket")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	j := &Journal{Socket: sock}
	h := Head{Host: "dock-1", Size: 42, Root: "cm9vdA==", Key: "SHA256:abc",
		Note: "evidenced/dock-1\n42\ncm9vdA==\n\n— evidenced-dock-1 c2ln\n"}
	for range 2 { // the connection is reused
		if err := j.Write(h); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		f := readNative(t, buf[:n])
		want := map[string]string{"MESSAGE_ID": MessageID, "EVIDENCED_HOST": "dock-1", "EVIDENCED_TREE_SIZE": "42",
			"EVIDENCED_ROOT": "cm9vdA==", "EVIDENCED_KEY": "SHA256:abc", "EVIDENCED_HEAD": h.Note, "PRIORITY": "6"}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("%s = %q, want %q", k, f[k], v)
			}
		}
		if !strings.Contains(f["MESSAGE"], "size 42") {
			t.Errorf("MESSAGE %q", f["MESSAGE"])
		}
	}
}

// journalctl -o json gives a field as a string, or as an array of byte
// values when it deems it unprintable; both are read, and entries of
// another host or message are not taken.
func TestParseJournal(t *testing.T) {
	out := `{"MESSAGE_ID":"` + MessageID + `","EVIDENCED_HOST":"dock-1","EVIDENCED_TREE_SIZE":"7","EVIDENCED_ROOT":"r","EVIDENCED_KEY":"k","EVIDENCED_HEAD":"a\nb\n","__REALTIME_TIMESTAMP":"1700000000000000"}
{"MESSAGE_ID":"` + MessageID + `","EVIDENCED_HOST":"dock-1","EVIDENCED_TREE_SIZE":"8","EVIDENCED_HEAD":[97,10,27,10]}
{"MESSAGE_ID":"` + MessageID + `","EVIDENCED_HOST":"dock-2","EVIDENCED_TREE_SIZE":"9","EVIDENCED_HEAD":"x"}
{"MESSAGE_ID":"00000000000000000000000000000000","EVIDENCED_HOST":"dock-1","EVIDENCED_TREE_SIZE":"10"}

`
	hs, err := parseJournal([]byte(out), "dock-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].Size != 7 || hs[0].Note != "a\nb\n" || hs[0].Root != "r" || hs[0].Key != "k" ||
		hs[0].At.Unix() != 1700000000 || hs[1].Size != 8 || hs[1].Note != "a\n\x1b\n" {
		t.Errorf("parsed %+v", hs)
	}
	if _, err := parseJournal([]byte("not json\n"), "dock-1"); err == nil {
		t.Error("journalctl output that is not JSON was read as no heads")
	}
}

// The file witness appends one line per head; a torn last line (a crash
// mid-write) is skipped, a missing file is nothing witnessed yet, and only
// the file's tail is read.
func TestFileRecent(t *testing.T) {
	ctx := context.Background()
	f := File{Path: filepath.Join(t.TempDir(), "heads.jsonl")}
	if hs, err := f.Recent(ctx, "dock-1"); err != nil || len(hs) != 0 {
		t.Fatalf("missing file: %v, %v", hs, err)
	}
	pad := strings.Repeat("n", 1000)
	for i := range uint64(400) { // ~400 KiB: more than the tail read
		if err := f.Write(Head{Host: "dock-1", Size: i + 1, Note: pad}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Write(Head{Host: "dock-2", Size: 999}); err != nil {
		t.Fatal(err)
	}
	fd, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd.WriteString(`{"host":"dock-1","tree_size":5000,"no`)
	fd.Close()
	hs, err := f.Recent(ctx, "dock-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) == 0 || len(hs) >= 400 || hs[len(hs)-1].Size != 400 {
		t.Fatalf("%d heads, last %+v", len(hs), hs[len(hs)-1])
	}
	for i, h := range hs {
		if h.Host != "dock-1" || (i > 0 && h.Size != hs[i-1].Size+1) {
			t.Fatalf("head %d: %+v", i, h)
		}
	}
	if st, err := os.Stat(f.Path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("witness file mode: %v, %v", st.Mode(), err)
	}
}
