package daemon

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/safepath"
)

// self is what every stage re-executes: the running binary, even if it was replaced or
// deleted on disk meanwhile.
const self = "/proc/self/exe"

// starter is the starting process's view of stage 1.
type starter struct {
	cmd  *exec.Cmd
	pipe *os.File // read end of the readiness pipe
}

// startStage1 starts the intermediate process in a new session (setsid at exec), with
// stdin /dev/null, stdout and stderr on the output, the extra files at 3.. and the write
// end of the readiness pipe after them.
func startStage1(opts DetachOptions) (*starter, error) {
	in, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := openOutput(opts.Output)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	defer out.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close() // the children hold their own copies

	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = withStage(os.Environ(), "1:"+strconv.Itoa(len(opts.ExtraFiles)))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, out
	cmd.ExtraFiles = append(slices.Clone(opts.ExtraFiles), w)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, err
	}
	return &starter{cmd: cmd, pipe: r}, nil
}

// kill sends SIGKILL to the daemon's process group. Its ID is stage 1's PID, which
// cannot be reused while stage 1 is our unreaped child: reap only after kill.
func (s *starter) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// reap waits for stage 1 (it exits at once after starting the daemon) and closes the pipe.
func (s *starter) reap() {
	_ = s.cmd.Wait()
	s.pipe.Close()
}

// runStage1 is the intermediate process: a session leader without a terminal. It starts
// the daemon, tells the starting process the daemon's PID and exits without waiting.
func runStage1(extra int) {
	setName()
	ready := os.NewFile(uintptr(3+extra), "daemon-ready")
	fail := func(err error) {
		fmt.Fprintf(ready, "fail %d %s\n", ExitFailure, strconv.Quote("start daemon: "+err.Error()))
		os.Exit(ExitFailure)
	}
	if sid, err := unix.Getsid(0); err != nil || sid != os.Getpid() {
		fail(fmt.Errorf("intermediate process is not a session leader (sid %d, %v)", sid, err))
	}
	// Descriptors leaked by whoever started us (not close-on-exec) end at the next exec.
	if err := cloexecFrom(3 + extra + 1); err != nil {
		fail(err)
	}
	files := make([]*os.File, 0, extra+1)
	for i := range extra {
		files = append(files, os.NewFile(uintptr(3+i), "extra"))
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = withStage(os.Environ(), "2:"+strconv.Itoa(extra))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = append(files, ready)
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	fmt.Fprintf(ready, "pid %d\n", cmd.Process.Pid)
	os.Exit(0)
}

// becomeDaemon finishes stage 2: checks the readiness pipe, marks every descriptor above
// 2 close-on-exec, unsets the marker, sets the umask and changes to "/".
// Errors after the pipe is found are reported to the starting process too.
func becomeDaemon(extra int, opts DetachOptions) (*Handle, error) {
	setName()
	readyFD := 3 + extra
	var st unix.Stat_t
	if err := unix.Fstat(readyFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, fmt.Errorf("daemon: %s is set but descriptor %d is not the readiness pipe", StageEnv, readyFD)
	}
	h := &Handle{detached: true, pipe: os.NewFile(uintptr(readyFD), "daemon-ready")}
	if err := h.setUp(extra, opts); err != nil {
		h.Fail(err)
		return nil, err
	}
	return h, nil
}

// setUp does the daemon's share of Detach once the readiness pipe is known.
func (h *Handle) setUp(extra int, opts DetachOptions) error {
	if err := cloexecFrom(3); err != nil {
		return err
	}
	if err := os.Unsetenv(StageEnv); err != nil {
		return fmt.Errorf("daemon: unset %s: %w", StageEnv, err)
	}
	for i := range extra {
		h.files = append(h.files, os.NewFile(uintptr(3+i), "extra-fd-"+strconv.Itoa(3+i)))
	}
	if opts.Output != "" {
		abs, err := filepath.Abs(opts.Output) // still in the starter's directory
		if err != nil {
			return fmt.Errorf("daemon: output: %w", err)
		}
		h.output = abs
	}
	syscall.Umask(opts.umask())
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}

// cloexecFrom marks every descriptor >= first close-on-exec: close_range(2) with
// CLOSE_RANGE_CLOEXEC (Linux 5.11), else one fcntl per entry of /proc/self/fd. Closing
// them outright is not safe: the Go runtime owns some (epoll, eventfd), all close-on-exec.
func cloexecFrom(first int) error {
	err := unix.CloseRange(uint(first), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("daemon: close_range: %w", err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("daemon: list descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is expected for it.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("daemon: mark descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// openOutput opens the output file for appending, created 0640 (less the umask) if
// missing, or /dev/null when path is empty. The file is opened through
// safepath.OpenFile: no symbolic link is followed that root or we do not own in a
// directory only root or we can change, no directory on the way may be writable by
// others without the sticky bit, and the file must be a regular file of root's or ours
// (refusals match safepath.ErrUnsafe).
func openOutput(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	return safepath.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

// reopenOutput opens path as openOutput does onto descriptors 1 and 2.
func reopenOutput(path string) error {
	f, err := openOutput(path)
	if err != nil {
		return fmt.Errorf("reopen output: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	for _, target := range []int{1, 2} {
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("reopen output %q onto descriptor %d: %w", path, target, err)
		}
	}
	return nil
}

// setName gives a re-executed stage its program's name instead of "exe", the
// name of /proc/self/exe, so that ps -C, pgrep and the journal find it. It
// writes /proc/self/comm, which names the thread group's leader whatever
// thread runs this; the kernel keeps the first 15 bytes.
func setName() {
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15]
	}
	_ = os.WriteFile("/proc/self/comm", []byte(name), 0)
}
