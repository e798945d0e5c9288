package job

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// setSubreaper makes this process a child subreaper (prctl(2)
// PR_SET_CHILD_SUBREAPER). It stays one.
func setSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}

// member is a process of the tree as found in /proc.
type member struct {
	pid   int
	pgid  int
	start uint64
}

// descendants lists every descendant of this process, from one pass over
// /proc. Zombies are left out: they are dead, and only their parent can
// remove them.
func descendants() []member {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	kids := map[int][]member{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := proc.ReadStat(pid)
		if err != nil || st.Zombie() {
			continue
		}
		kids[st.PPID] = append(kids[st.PPID], member{pid: pid, pgid: st.PGID, start: st.StartTicks})
	}
	var out []member
	queue := []int{os.Getpid()}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, m := range kids[p] {
			out = append(out, m)
			queue = append(queue, m.pid)
		}
	}
	return out
}

// signalTree sends sig to every descendant, each through a pidfd opened and
// checked against the start time /proc showed, so a PID reused since the scan
// is never hit. While the main process is unreaped, members of its process
// group are skipped: signalGroup reaches them, and a second copy of a signal
// could mean "force" to them. It returns the first error other than "already
// gone".
func (s *supervisor) signalTree(sig syscall.Signal) error {
	var first error
	for _, m := range descendants() {
		if !s.reaped && m.pgid == s.cmd.Process.Pid {
			continue
		}
		p, err := proc.Open(m.pid, m.start)
		if err == nil {
			err = p.Signal(sig)
			_ = p.Close() // a pidfd; closing it cannot lose anything
		}
		if err != nil && !errors.Is(err, proc.ErrGone) && !errors.Is(err, proc.ErrChanged) && first == nil {
			first = err
		}
	}
	return first
}

// siginfoPIDOffset is where si_pid sits in siginfo_t: after three int32
// fields, at the union, which is aligned like a pointer.
const siginfoPIDOffset = (12 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)

// peekExited returns the PID of a child that has exited, without reaping it
// (waitid(P_ALL, WEXITED|WNOHANG|WNOWAIT)); 0 when none has, an error
// (ECHILD) when there are no children.
func peekExited() (int, error) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return siginfoPID(&info), nil
	}
}

func siginfoPID(info *unix.Siginfo) int {
	raw := (*[unsafe.Sizeof(*info)]byte)(unsafe.Pointer(info))
	return int(int32(binary.NativeEndian.Uint32(raw[siginfoPIDOffset:])))
}

// watchExits reports on exits, without reaping, each child that exits:
// blocked in waitid(P_ALL, WEXITED|WNOWAIT), it sends the PID and waits for
// ack (the loop reaped it) before it looks again, and sends -1 once there are
// no children left. It returns when quit is closed; a wait it is blocked in
// then ends with the next child's exit, or at once if there is none.
func watchExits(exits chan<- int, ack, quit <-chan struct{}) {
	for {
		pid := -1
		for {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil {
				pid = siginfoPID(&info)
			}
			break
		}
		select {
		case exits <- pid:
		case <-quit:
			return
		}
		if pid < 0 {
			return
		}
		select {
		case <-ack:
		case <-quit:
			return
		}
	}
}

// hasChildren reports whether this process has any child, running or not
// yet reaped.
func hasChildren() bool {
	_, err := peekExited()
	return !errors.Is(err, unix.ECHILD)
}

// reapPID reaps the exited child pid, reporting whether it did.
func reapPID(pid int) bool {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && got == pid
	}
}

func signalName(sig os.Signal) string {
	if n, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(n); name != "" {
			return name
		}
	}
	return sig.String()
}
