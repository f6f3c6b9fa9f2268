package witness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MessageID marks every witnessed head in the journal
// (`journalctl MESSAGE_ID=e05bdead1cd947798723e15d42d0f44a`).
const MessageID = "e05bdead1cd947798723e15d42d0f44a"

// JournalSocket is journald's native protocol socket (systemd.journal-fields(7),
// "Native Protocol").
const JournalSocket = "/run/systemd/journal/socket"

// Journal is a witness in the systemd journal: each head is one structured
// entry written over journald's native socket, read back with journalctl.
// The journal is owned by root and kept outside state_dir; the daemon's
// user reads it as a member of systemd-journal (the unit's
// SupplementaryGroups).
type Journal struct {
	// Socket is the native socket; "" means JournalSocket.
	Socket string
	// Journalctl is the reader; "" means journalctl on PATH.
	Journalctl string

	mu   sync.Mutex
	conn *net.UnixConn
}

// JournalAvailable reports whether journald's native socket is there.
func JournalAvailable() bool {
	st, err := os.Stat(JournalSocket)
	return err == nil && st.Mode()&os.ModeSocket != 0
}

func (j *Journal) socket() string {
	if j.Socket != "" {
		return j.Socket
	}
	return JournalSocket
}

// Write sends h as one journal entry. journald acknowledges nothing: a
// datagram accepted by the socket is in its queue.
func (j *Journal) Write(h Head) error {
	var b bytes.Buffer
	field(&b, "MESSAGE_ID", MessageID)
	field(&b, "MESSAGE", fmt.Sprintf("custody head %s size %d root %s", h.Host, h.Size, h.Root))
	field(&b, "PRIORITY", "6")
	field(&b, "SYSLOG_IDENTIFIER", "evidenced")
	field(&b, "EVIDENCED_HOST", h.Host)
	field(&b, "EVIDENCED_TREE_SIZE", strconv.FormatUint(h.Size, 10))
	field(&b, "EVIDENCED_ROOT", h.Root)
	field(&b, "EVIDENCED_KEY", h.Key)
	field(&b, "EVIDENCED_HEAD", h.Note)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.conn == nil {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: j.socket(), Net: "unixgram"})
		if err != nil {
			return fmt.Errorf("witness journal %s: %w", j.socket(), err)
		}
		j.conn = c
	}
	if _, err := j.conn.Write(b.Bytes()); err != nil {
		j.conn.Close()
		j.conn = nil
		return fmt.Errorf("witness journal %s: write head %d: %w", j.socket(), h.Size, err)
	}
	return nil
}

// field appends one native-protocol field: KEY=value\n, or for a value with
// a newline KEY\n, its length as 64-bit little-endian, the value and \n.
func field(b *bytes.Buffer, k, v string) {
	if !strings.ContainsRune(v, '\n') {
		b.WriteString(k + "=" + v + "\n")
		return
	}
	b.WriteString(k + "\n")
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
	b.Write(n[:])
	b.WriteString(v + "\n")
}

// recentEntries is how many of the newest entries Recent asks journalctl
// for.
const recentEntries = 256

// Recent asks journalctl for host's newest witnessed heads.
func (j *Journal) Recent(ctx context.Context, host string) ([]Head, error) {
	bin := j.Journalctl
	if bin == "" {
		bin = "journalctl"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--no-pager", "--quiet", "-o", "json", "-r",
		"-n", strconv.Itoa(recentEntries), "MESSAGE_ID="+MessageID, "EVIDENCED_HOST="+host)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(errb.String()))
	}
	return parseJournal(out, host)
}

// parseJournal reads `journalctl -o json` lines. A field is a JSON string,
// or an array of byte values when journalctl deems it not printable.
func parseJournal(out []byte, host string) ([]Head, error) {
	var hs []Head
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("journalctl output: %w", err)
		}
		get := func(k string) string {
			raw := e[k]
			var s string
			if json.Unmarshal(raw, &s) == nil {
				return s
			}
			var bs []byte
			var ns []int
			if json.Unmarshal(raw, &ns) == nil {
				for _, n := range ns {
					bs = append(bs, byte(n))
				}
			}
			return string(bs)
		}
		if get("MESSAGE_ID") != MessageID || get("EVIDENCED_HOST") != host {
			continue
		}
		size, err := strconv.ParseUint(get("EVIDENCED_TREE_SIZE"), 10, 64)
		if err != nil {
			continue
		}
		h := Head{Host: host, Size: size, Root: get("EVIDENCED_ROOT"), Key: get("EVIDENCED_KEY"), Note: get("EVIDENCED_HEAD")}
		if us, err := strconv.ParseInt(get("__REALTIME_TIMESTAMP"), 10, 64); err == nil {
			h.At = time.UnixMicro(us).UTC()
		}
		hs = append(hs, h)
	}
	return hs, sc.Err()
}

func (j *Journal) String() string { return "the systemd journal (MESSAGE_ID=" + MessageID + ")" }
