package service

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Under journald ($JOURNAL_STREAM is stderr) each line carries its syslog
// priority and stays key=value; elsewhere the lines are plain logfmt.
func TestDaemonLoggerPriorities(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	level := new(slog.LevelVar)
	log := DaemonLogger(f, level).With("camera", "BWC-0001")
	log.Debug("hidden")
	log.Info("dock complete", "bytes", 42)
	log.WithGroup("upload").Warn("slow", "item", "x")
	log.Error("dock incomplete", "err", "no space")
	level.Set(slog.LevelDebug)
	log.Debug("shown")
	data, _ := os.ReadFile(f.Name())
	want := []string{
		`<6>level=INFO msg="dock complete" camera=BWC-0001 bytes=42`,
		`<4>level=WARN msg=slow camera=BWC-0001 upload.item=x`,
		`<3>level=ERROR msg="dock incomplete" camera=BWC-0001 err="no space"`,
		`<7>level=DEBUG msg=shown camera=BWC-0001`,
	}
	if got := strings.Split(strings.TrimSpace(string(data)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal lines:\n%s\nwant:\n%s", data, strings.Join(want, "\n"))
	}

	t.Setenv("JOURNAL_STREAM", "1:2") // another stream: not the journal
	g, _ := os.Create(filepath.Join(t.TempDir(), "other"))
	defer g.Close()
	DaemonLogger(g, level).Error("x")
	if other, _ := os.ReadFile(g.Name()); !strings.HasPrefix(string(other), "time=") {
		t.Errorf("not the journal, yet: %q", other)
	}
}
