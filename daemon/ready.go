package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ExitFailure is the starting process's exit code when the daemon did not become ready
// and did not say why with a code of its own.
const ExitFailure = 1

var (
	// ErrExited means the daemon exited (or closed its readiness pipe) before it was
	// ready.
	ErrExited = errors.New("daemon exited before it was ready")
	// ErrStartTimeout means the daemon was not ready within DetachOptions.StartTimeout.
	ErrStartTimeout = errors.New("daemon not ready within the start timeout")
)

// ExitError carries the exit code a failure should end the program with. Error returns
// Err's text alone, so the code never shows in messages.
type ExitError struct {
	Code int
	Err  error
}

// Error returns Err's text.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ExitError) Unwrap() error { return e.Err }

// WithExitCode attaches an exit code to err, for Handle.Fail and ExitCode. It returns nil
// if err is nil.
func WithExitCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// ExitCode returns the exit code for err: 0 for nil, the Code of the first *ExitError in
// its chain, or ExitFailure (1).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	return ExitFailure
}

// Started reports that the program is ready: to the starting process, which then exits 0,
// and to systemd ("READY=1", when $NOTIFY_SOCKET is set). Only the first Started or Fail
// reaches the starting process; later calls only notify systemd. An error means a report
// could not be delivered (the starting process is gone, say); the program may carry on.
func (h *Handle) Started() error {
	err := h.report("ready\n")
	if _, nerr := NotifyReady(); nerr != nil {
		err = errors.Join(err, nerr)
	}
	return err
}

// Fail reports that the program cannot start: the starting process prints err's text on
// stderr and exits ExitCode(err) (use WithExitCode, e.g. 75 for a busy lock; a code of 0
// becomes 1). Under systemd it sends "STATUS=" and the text. Fail does not exit: the
// program should clean up and exit with ExitCode(err) itself. Only the first Ready or
// Fail reaches the starting process.
func (h *Handle) Fail(err error) error {
	if err == nil {
		err = errors.New("daemon failed to start")
	}
	code := ExitCode(err)
	if code == 0 {
		code = ExitFailure
	}
	rerr := h.report(fmt.Sprintf("fail %d %s\n", code, strconv.Quote(err.Error())))
	if _, nerr := Status(err.Error()); nerr != nil {
		rerr = errors.Join(rerr, nerr)
	}
	return rerr
}

// report sends one message on the readiness pipe and closes it.
func (h *Handle) report(msg string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pipe == nil {
		return nil
	}
	_, err := io.WriteString(h.pipe, msg)
	if cerr := h.pipe.Close(); err == nil {
		err = cerr
	}
	h.pipe = nil
	if err != nil {
		return fmt.Errorf("report readiness to the starting process: %w", err)
	}
	return nil
}

// message is one line of the readiness protocol: "pid N" (from stage 1), "ready", or
// "fail CODE QUOTED-TEXT".
type message struct {
	kind string
	pid  int
	code int
	text string
}

func parseMessage(line string) (message, bool) {
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "ready":
		return message{kind: kind}, true
	case "pid":
		pid, err := strconv.Atoi(rest)
		return message{kind: kind, pid: pid}, err == nil && pid > 0
	case "fail":
		c, q, _ := strings.Cut(rest, " ")
		code, err1 := strconv.Atoi(c)
		text, err2 := strconv.Unquote(q)
		if err1 != nil || err2 != nil || code <= 0 || code > 255 {
			return message{kind: kind, code: ExitFailure, text: "daemon failed: " + rest}, true
		}
		return message{kind: kind, code: code, text: text}, true
	}
	return message{}, false
}

// readMessages sends each protocol message read from r on the returned channel, which is
// closed at end of file (or on a read error).
func readMessages(r io.Reader) <-chan message {
	out := make(chan message, 4)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			if m, ok := parseMessage(sc.Text()); ok {
				out <- m
			}
		}
	}()
	return out
}

// Start is the starting process's half of Detach, for callers that want to handle the
// outcome themselves: it starts the daemon (see Detach) and waits for its report.
//
// It returns nil once the daemon called Ready. Otherwise it returns an *ExitError: with
// the daemon's code and text after Fail; with code 1 wrapping ErrExited when the daemon
// exited (or closed the readiness pipe) first, ErrStartTimeout after the start timeout,
// or the cause when ctx is done first; in these three cases Start has killed the daemon's
// process group (SIGKILL), so no half-started daemon is left. Start returns only after
// the intermediate process has been reaped; its exit status is not consulted.
func Start(ctx context.Context, opts DetachOptions) error {
	st, err := startStage1(opts)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("start daemon: %w", err)}
	}
	defer st.reap()
	msgs := readMessages(st.pipe)
	var timeout <-chan time.Time
	if d := opts.startTimeout(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	pid := 0
	for {
		select {
		case m, ok := <-msgs:
			switch {
			case !ok:
				st.kill()
				return &ExitError{Code: ExitFailure, Err: exitedError(pid, opts.Output)}
			case m.kind == "pid":
				pid = m.pid
			case m.kind == "ready":
				return nil
			case m.kind == "fail":
				return &ExitError{Code: m.code, Err: errors.New(m.text)}
			}
		case <-timeout:
			st.kill()
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%w (%v%s); killed it", ErrStartTimeout, opts.startTimeout(), pidSuffix(pid))}
		case <-ctx.Done():
			st.kill()
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("start interrupted (%w); killed the daemon%s", context.Cause(ctx), pidSuffix(pid))}
		}
	}
}

func pidSuffix(pid int) string {
	if pid == 0 {
		return ""
	}
	return fmt.Sprintf("; pid %d", pid)
}

func exitedError(pid int, output string) error {
	where := "its output went to /dev/null"
	if output != "" {
		where = "see " + strconv.Quote(output)
	}
	if pid == 0 {
		return fmt.Errorf("%w (%s)", ErrExited, where)
	}
	return fmt.Errorf("%w (pid %d; %s)", ErrExited, pid, where)
}
