package job

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// initEnv marks a process started by Start as the init of the job's own PID
// namespace (Spec.PIDNamespace): "EXTRA,POLICY,KILLAFTER" (the number of
// inherited descriptors from 3 on, the leftovers policy, the time between
// SIGTERM and SIGKILL).
const initEnv = "GUARD_JOB_INIT"

// wrapInit rewrites cmd to run this very program as the init of a new PID
// namespace, which then runs cmd's program as its child (see RunInit). It
// returns the read end of a pipe on which the init reports whether the
// command started (see awaitInit); the write end is the init's last
// inherited descriptor.
func wrapInit(cmd *exec.Cmd, s *Spec) (*os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("PID namespace: find this program: %w", err)
	}
	if s.Leftovers == Ignore {
		return nil, errors.New("PID namespace: leftovers cannot outlive the namespace's init; --leftovers ignore does not go with it")
	}
	path := cmd.Path
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("PID namespace: %w", err)
	}
	args := append([]string{exe, path}, cmd.Args...)
	cmd.Path, cmd.Args = exe, args
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, fmt.Sprintf("%s=%d,%d,%s", initEnv, len(cmd.ExtraFiles), int(s.Leftovers), s.KillAfter))
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	cmd.SysProcAttr.Cloneflags |= unix.CLONE_NEWPID
	return r, nil
}

// initStarted is what the init writes on its report pipe once the command
// runs; anything else is "CODE MESSAGE" from a command that could not start.
const initStarted = "started"

// awaitInit waits for the init's report: nil once the command runs, so that
// Start returns only after the command itself has started (a supervisor
// tells systemd READY=1 then), or the command's start error, after reaping
// the init. It closes r and the parent's copy of the write end.
func awaitInit(cmd *exec.Cmd, r *os.File) error {
	cmd.ExtraFiles[len(cmd.ExtraFiles)-1].Close()
	b, err := io.ReadAll(r)
	r.Close()
	if err == nil && string(b) == initStarted {
		return nil
	}
	cmd.Wait()
	code, msg, ok := strings.Cut(string(b), " ")
	if !ok {
		return fmt.Errorf("PID namespace: the init ended before starting %s (%v)", cmd.Args[1], cmd.ProcessState)
	}
	n, _ := strconv.Atoi(code)
	return &initStartError{code: n, msg: msg}
}

// initStartError is a command the init could not start; with code 127 it
// matches os.ErrNotExist, as exec's own error would.
type initStartError struct {
	code int
	msg  string
}

func (e *initStartError) Error() string { return e.msg }

func (e *initStartError) Is(target error) bool { return e.code == 127 && target == os.ErrNotExist }

// RunInit runs the init of a job's PID namespace if this process is one
// (started by Start with Spec.PIDNamespace), and reports its exit code; ok
// is false in any other process. A program that runs jobs with
// PIDNamespace calls it first thing in main:
//
//	if code, ok := job.RunInit(); ok {
//		os.Exit(code)
//	}
//
// The init starts the job's command as its child and reaps every process of
// the namespace. When the command ends it deals with the rest as the
// leftovers policy says (Kill: SIGTERM to every process of the namespace,
// SIGKILL KillAfter later; Wait: waits for them), then exits with the
// command's status (128+N for signal N). If the init dies (its supervisor
// was SIGKILLed, and Pdeathsig killed it), the kernel kills every process of
// the namespace: the tree cannot outlive its supervisor.
func RunInit() (code int, ok bool) {
	spec := os.Getenv(initEnv)
	if spec == "" || len(os.Args) < 3 {
		return 0, false
	}
	os.Unsetenv(initEnv)
	var extra int
	var policy Policy
	var killAfter time.Duration
	f := strings.Split(spec, ",")
	if len(f) == 3 {
		extra, _ = strconv.Atoi(f[0])
		p, _ := strconv.Atoi(f[1])
		policy = Policy(p)
		killAfter, _ = time.ParseDuration(f[2])
	}
	// The supervisor outside signals every process directly; the init
	// drops what reaches it (caught, not ignored: the command starts with
	// every signal at its default).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	cmd := exec.Command(os.Args[1])
	cmd.Args = os.Args[2:]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for i := range extra {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "inherited"))
	}
	// The report pipe: close-on-exec, so the command does not hold it.
	unix.CloseOnExec(3 + extra)
	report := os.NewFile(uintptr(3+extra), "report")
	if err := cmd.Start(); err != nil {
		code = 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		fmt.Fprintf(report, "%d %s", code, err)
		return code, true
	}
	report.WriteString(initStarted)
	report.Close()
	main := cmd.Process.Pid
	code = -1
	var killAt time.Time
	for {
		var ws unix.WaitStatus
		opts := 0 // block until a child ends ...
		if !killAt.IsZero() {
			opts = unix.WNOHANG // ... unless SIGKILL is due
		}
		pid, err := unix.Wait4(-1, &ws, opts, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return max(code, 0), true
		case err == nil && pid == main:
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			if policy == Kill {
				_ = unix.Kill(-1, unix.SIGTERM) // every process of the namespace but this one
				killAt = time.Now().Add(killAfter)
			}
			continue
		case err == nil && pid > 0:
			continue
		}
		if !killAt.IsZero() && time.Now().After(killAt) {
			_ = unix.Kill(-1, unix.SIGKILL)
			killAt = time.Time{}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
