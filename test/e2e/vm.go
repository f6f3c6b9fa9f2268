// Package e2e proves USB docking end to end: a real Linux kernel under QEMU
// sees emulated USB mass-storage cameras hot-plugged and yanked (QMP
// device_add / device_del) while the evidenced USB source runs inside it,
// uploading to a real S3 server on the host.
//
// This file drives the VM: boot the cached kernel with the base initramfs
// (scripts/usb-e2e-setup.sh) plus a per-test overlay archive, talk QMP, and
// read the guest's harness channel on ttyS1, where every guest line starts
// with "@@ " and the host can run shell commands ("ID LEN cmd" → "@@
// CMD_START ID", "@@ CMD_OUT ID …", "@@ CMD_DONE ID rc=N"; see Sh).
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe one VM.
type Options struct {
	Accel    string // "tcg" (default) or "kvm"
	Kernel   string
	Initrd   string
	SMP      int // default 2
	MemMB    int // default 1024
	Append   string
	HostPort int    // host 127.0.0.1 port the guest reaches as 10.0.2.100:8080
	Dir      string // run dir: sockets, logs, 9p share (Dir/out). No '=' or ',' (QEMU syntax).
	Extra    []string
}

// Line is one "@@ " line from the guest, stamped when the host read it.
type Line struct {
	At   time.Time
	Text string
}

// VM is one running QEMU.
type VM struct {
	Opts    Options
	Started time.Time

	cmd    *exec.Cmd
	exited chan error
	ev     net.Conn
	qmp    net.Conn
	qmpR   *bufio.Reader
	qmpMu  sync.Mutex
	qmpID  atomic.Int64
	events []map[string]any // async QMP events (under qmpMu)
	cmdSeq atomic.Int64

	mu    sync.Mutex
	cond  *sync.Cond
	lines []Line

	closeOnce sync.Once
}

// Start boots a VM and connects to its channel and QMP.
func Start(o Options) (*VM, error) {
	if strings.ContainsAny(o.Dir, "=,") {
		return nil, fmt.Errorf("run dir %q: QEMU options cannot carry '=' or ','", o.Dir)
	}
	if o.SMP == 0 {
		o.SMP = 2
	}
	if o.MemMB == 0 {
		o.MemMB = 1024
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "out"), 0o755); err != nil {
		return nil, err
	}
	evSock, qmpSock := filepath.Join(o.Dir, "ev.sock"), filepath.Join(o.Dir, "qmp.sock")
	accel := []string{"-accel", "tcg,thread=multi", "-cpu", "max"}
	if o.Accel == "kvm" { // only where real VT-x/AMD-V exists; kvm-pvm hosts abort (see the recipe)
		accel = []string{"-accel", "kvm", "-cpu", "host"}
	}
	netdev := "user,id=n0,restrict=on"
	if o.HostPort != 0 {
		// -cmd: one socat per guest connection; a plain tcp: forward would
		// connect once, at QEMU start.
		netdev += fmt.Sprintf(",guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:%d", o.HostPort)
	}
	args := append(accel,
		"-M", "q35", "-smp", fmt.Sprint(o.SMP), "-m", fmt.Sprint(o.MemMB),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", o.Kernel, "-initrd", o.Initrd,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=4 usb_storage.delay_use=0 "+o.Append,
		"-serial", "file:"+filepath.Join(o.Dir, "console.log"),
		"-chardev", "socket,id=ev,path="+evSock+",server=on,wait=on", "-serial", "chardev:ev",
		"-qmp", "unix:"+qmpSock+",server=on,wait=off",
		// Two host controllers: two USB 3 buses (2 and 4 in the guest), so
		// cameras on separate buses copy in parallel.
		"-device", "qemu-xhci,id=xhci,p2=8,p3=8",
		"-device", "qemu-xhci,id=xhci2,p2=4,p3=4",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
		"-fsdev", "local,id=fs0,path="+filepath.Join(o.Dir, "out")+",security_model=none",
		"-device", "virtio-9p-pci,fsdev=fs0,mount_tag=out",
	)
	args = append(args, o.Extra...)
	vm := &VM{Opts: o, exited: make(chan error, 1)}
	vm.cond = sync.NewCond(&vm.mu)
	stderr, err := os.Create(filepath.Join(o.Dir, "qemu.stderr"))
	if err != nil {
		return nil, err
	}
	vm.cmd = exec.Command("qemu-system-x86_64", args...)
	vm.cmd.Stdout, vm.cmd.Stderr = stderr, stderr
	vm.Started = time.Now()
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() { vm.exited <- vm.cmd.Wait(); stderr.Close() }()
	if vm.ev, err = dialRetry(evSock, 20*time.Second, vm.exited); err != nil {
		vm.Close()
		b, _ := os.ReadFile(filepath.Join(o.Dir, "qemu.stderr"))
		return nil, fmt.Errorf("guest channel: %w; qemu: %s", err, b)
	}
	go vm.readEv()
	if vm.qmp, err = dialRetry(qmpSock, 20*time.Second, vm.exited); err != nil {
		vm.Close()
		return nil, fmt.Errorf("qmp: %w", err)
	}
	vm.qmpR = bufio.NewReader(vm.qmp)
	if _, err := vm.qmpR.ReadString('\n'); err != nil { // greeting
		vm.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, err := vm.QMP("qmp_capabilities", nil); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func dialRetry(path string, d time.Duration, exited chan error) (net.Conn, error) {
	deadline := time.Now().Add(d)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case e := <-exited:
			exited <- e
			return nil, fmt.Errorf("qemu exited: %v", e)
		default:
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (vm *VM) readEv() {
	sc := bufio.NewScanner(vm.ev)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	log, _ := os.Create(filepath.Join(vm.Opts.Dir, "ev.log"))
	defer log.Close()
	for sc.Scan() {
		now := time.Now()
		t := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintf(log, "%8.3f %s\n", now.Sub(vm.Started).Seconds(), t)
		i := strings.Index(t, "@@ ")
		if i < 0 {
			continue
		}
		vm.mu.Lock()
		vm.lines = append(vm.lines, Line{At: now, Text: t[i+3:]})
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}
	vm.mu.Lock()
	vm.lines = append(vm.lines, Line{At: time.Now(), Text: "EOF"})
	vm.cond.Broadcast()
	vm.mu.Unlock()
}

// Mark is the current end of the line stream: Wait(Mark(), …) waits for
// something that happens from now on.
func (vm *VM) Mark() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return len(vm.lines)
}

// Wait returns the first line at index >= from matching re, and its index.
func (vm *VM) Wait(from int, re string, timeout time.Duration) (Line, int, error) {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { vm.mu.Lock(); vm.cond.Broadcast(); vm.mu.Unlock() })
	defer timer.Stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for i := from; ; {
		for ; i < len(vm.lines); i++ {
			if rx.MatchString(vm.lines[i].Text) {
				return vm.lines[i], i, nil
			}
			if vm.lines[i].Text == "EOF" {
				return Line{}, i, fmt.Errorf("guest channel closed while waiting for %q", re)
			}
		}
		if time.Now().After(deadline) {
			return Line{}, i, fmt.Errorf("no %q after %v", re, timeout)
		}
		vm.cond.Wait()
	}
}

// Lines returns the lines from index from matching re.
func (vm *VM) Lines(from int, re string) []Line {
	rx := regexp.MustCompile(re)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	var out []Line
	for _, l := range vm.lines[min(from, len(vm.lines)):] {
		if rx.MatchString(l.Text) {
			out = append(out, l)
		}
	}
	return out
}

// Sh runs a shell command in the guest and returns its output and status.
//
// The serial line can lose bytes (a port the guest's tty layer hangs up or
// flushes drops what is in flight), so the command goes as "ID LEN cmd": the
// guest runs it only if ID and LEN check out, acknowledges it with
// "CMD_START ID", and skips an ID it has already run. Until that
// acknowledgement arrives the line is sent again, a few times, so a
// command is never silently lost nor run twice.
func (vm *VM) Sh(cmd string, timeout time.Duration) (string, int, error) {
	if strings.ContainsAny(cmd, "\n\r") {
		return "", -1, fmt.Errorf("guest command %q: one line only", cmd)
	}
	id := fmt.Sprintf("c%d", vm.cmdSeq.Add(1))
	m := vm.Mark()
	line := fmt.Sprintf("%s %d %s\n", id, len(cmd), cmd)
	deadline := time.Now().Add(timeout)
	const sends, ackWait = 4, 10 * time.Second
	for n := 1; ; n++ {
		if _, err := io.WriteString(vm.ev, line); err != nil {
			return "", -1, fmt.Errorf("sending guest command %s: %w", id, err)
		}
		_, _, err := vm.Wait(m, "^CMD_(START|DONE) "+id+"( |$)", min(ackWait, time.Until(deadline)))
		if err == nil {
			break
		}
		if n == sends || time.Now().After(deadline) {
			return "", -1, fmt.Errorf("guest never acknowledged command %s after %d sends: %w", id, n, err)
		}
	}
	done, _, err := vm.Wait(m, "^CMD_DONE "+id+" rc=", time.Until(deadline))
	if err != nil {
		return "", -1, err
	}
	var rc int
	fmt.Sscanf(strings.TrimPrefix(done.Text, "CMD_DONE "+id+" "), "rc=%d", &rc)
	var out []string
	for _, l := range vm.Lines(m, "^CMD_OUT "+id+" ") {
		out = append(out, strings.TrimPrefix(l.Text, "CMD_OUT "+id+" "))
	}
	return strings.Join(out, "\n"), rc, nil
}

// QMP runs one command and returns its result; events are kept.
func (vm *VM) QMP(execute string, args map[string]any) (json.RawMessage, error) {
	vm.qmpMu.Lock()
	defer vm.qmpMu.Unlock()
	id := vm.qmpID.Add(1)
	req := map[string]any{"execute": execute, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := vm.qmp.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", execute, err)
	}
	_ = vm.qmp.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		l, err := vm.qmpR.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", execute, err)
		}
		var r struct {
			ID     int64           `json:"id"`
			Return json.RawMessage `json:"return"`
			Error  *struct{ Class, Desc string }
			Event  string `json:"event"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", execute, err)
		}
		if r.Event != "" {
			var ev map[string]any
			_ = json.Unmarshal(l, &ev)
			vm.events = append(vm.events, ev)
			continue
		}
		if r.ID != id {
			continue
		}
		if r.Error != nil {
			return nil, fmt.Errorf("qmp %s: %s: %s", execute, r.Error.Class, r.Error.Desc)
		}
		return r.Return, nil
	}
}

// waitQMPEvent waits for an async event name about device dev.
func (vm *VM) waitQMPEvent(name, dev string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		vm.qmpMu.Lock()
		for _, e := range vm.events {
			if d, _ := e["data"].(map[string]any); e["event"] == name && d != nil && d["device"] == dev {
				vm.qmpMu.Unlock()
				return nil
			}
		}
		vm.qmpMu.Unlock()
		if _, err := vm.QMP("query-status", nil); err != nil { // reads pending events
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no QMP %s for %s within %v", name, dev, timeout)
}

// Plug hot-plugs a usb-storage device backed read-only by image on port of
// the first xHCI controller. QEMU's usb-storage is always 46f4:0001; only
// serial can be chosen.
func (vm *VM) Plug(id, image, serial string, port int) error {
	return vm.PlugOn("xhci.0", id, image, serial, port)
}

// PlugOn is Plug on a given USB bus ("xhci.0", "xhci2.0").
func (vm *VM) PlugOn(bus, id, image, serial string, port int) error {
	if _, err := vm.QMP("blockdev-add", map[string]any{
		"driver": "raw", "node-name": id + "-drv", "read-only": true,
		"file": map[string]any{"driver": "file", "filename": image, "read-only": true},
	}); err != nil {
		return err
	}
	_, err := vm.QMP("device_add", map[string]any{
		"driver": "usb-storage", "id": id, "drive": id + "-drv", "serial": serial,
		"bus": bus, "port": fmt.Sprint(port), "removable": true,
	})
	return err
}

// Yank pulls the device: device_del completes without guest cooperation, as
// a cable pulled out would.
func (vm *VM) Yank(id string) error {
	if _, err := vm.QMP("device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	if err := vm.waitQMPEvent("DEVICE_DELETED", id, 20*time.Second); err != nil {
		return err
	}
	_, err := vm.QMP("blockdev-del", map[string]any{"node-name": id + "-drv"})
	return err
}

// Close powers the VM off. It may be called more than once.
func (vm *VM) Close() { vm.closeOnce.Do(vm.close) }

func (vm *VM) close() {
	if vm.qmp != nil {
		_, _ = vm.QMP("quit", nil)
	}
	select {
	case <-vm.exited:
	case <-time.After(10 * time.Second):
		_ = vm.cmd.Process.Kill()
		<-vm.exited
	}
	if vm.ev != nil {
		vm.ev.Close()
	}
	if vm.qmp != nil {
		vm.qmp.Close()
	}
}

// File is one file of an overlay archive.
type File struct {
	Mode os.FileMode
	Data []byte
}

// WriteCPIO writes files as a newc cpio archive (what the kernel unpacks
// as an initramfs), with every parent directory. Archives concatenated to
// the base initramfs overlay it.
func WriteCPIO(w io.Writer, files map[string]File) error {
	dirs := map[string]bool{}
	for name := range files {
		for d := filepath.Dir(name); d != "." && d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	ino := 1
	entry := func(name string, mode uint32, data []byte) {
		name = strings.TrimPrefix(name, "/")
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		buf.WriteString(name)
		buf.WriteByte(0)
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
		buf.Write(data)
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	for _, d := range names {
		entry(d, 0o040755, nil)
	}
	var fnames []string
	for n := range files {
		fnames = append(fnames, n)
	}
	sort.Strings(fnames)
	for _, n := range fnames {
		entry(n, 0o100000|uint32(files[n].Mode.Perm()), files[n].Data)
	}
	entry("TRAILER!!!", 0, nil)
	_, err := w.Write(buf.Bytes())
	return err
}
