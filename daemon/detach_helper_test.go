//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// daemonFacts is what the detach helper, once it is the daemon, reports about itself.
type daemonFacts struct {
	PID, SID, PGID, TTYNr int
	Detached              bool
	Cwd                   string
	Umask                 string
	FDs                   map[int]string // descriptor -> readlink target
	Files                 int            // len(Handle.Files())
	MarkerSelf            bool           // StageEnv still in our environment
	MarkerGrandchild      bool           // StageEnv in a child's environment
	PTYSlave              string         // the pty slave opened without O_NOCTTY
	TTYNrAfterPTY         int
}

// helperDetach is a daemon built on Detach. HELPER_DIR receives facts.json, signals (one
// line per signal received) and readying (created just before Ready). HELPER_ACTION:
// ready, fail, die (exit before ready) or hang (never ready).
func helperDetach() int {
	sigs := Catch()
	dir := os.Getenv("HELPER_DIR")
	opts := DetachOptions{Output: os.Getenv("HELPER_OUTPUT"), Umask: 0o027}
	if p := os.Getenv("HELPER_EXTRA"); p != "" && !Reexecuted() {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 70
		}
		opts.ExtraFiles = []*os.File{f}
	}
	if v := os.Getenv("HELPER_TIMEOUT"); v != "" {
		opts.StartTimeout, _ = time.ParseDuration(v)
	}
	h, err := Detach(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	rec := make(chan os.Signal, 16)
	signal.Notify(rec, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	_ = sigs // Catch keeps the signals caught; rec records them

	facts := collectFacts(h)
	if os.Getenv("HELPER_PTY") != "" {
		slave, err := openPTYSlave()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 70
		}
		facts.PTYSlave = slave
		st, _ := readProcStat("self")
		facts.TTYNrAfterPTY = st.TTYNr
	}
	fmt.Println("daemon stdout line")
	fmt.Fprintln(os.Stderr, "daemon stderr line")
	if err := writeJSON(filepath.Join(dir, "facts.json"), facts); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	switch os.Getenv("HELPER_ACTION") {
	case "fail":
		h.Fail(WithExitCode(75, errors.New("lock /run/x.lock busy: held by pid 1234")))
		return 75
	case "die":
		return 3
	case "hang":
		time.Sleep(time.Minute)
		return 0
	}
	time.Sleep(200 * time.Millisecond) // the starter must wait for Ready, not for this
	if err := os.WriteFile(filepath.Join(dir, "readying"), nil, 0o644); err != nil {
		return 70
	}
	if err := h.Started(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	return recordSignals(h, filepath.Join(dir, "signals"), rec)
}

// recordSignals appends each signal's name to path until SIGTERM (exit 0) or a minute.
// SIGUSR1 reopens the output and writes a line to it.
func recordSignals(h *Handle, path string, rec <-chan os.Signal) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 70
	}
	defer f.Close()
	limit := time.After(time.Minute)
	for {
		select {
		case sig := <-rec:
			fmt.Fprintln(f, sig.String())
			switch sig {
			case syscall.SIGTERM:
				return 0
			case syscall.SIGUSR1:
				if err := h.ReopenOutput(); err != nil {
					fmt.Fprintln(f, err)
				}
				fmt.Println("after reopen")
			}
		case <-limit:
			return 0
		}
	}
}

func collectFacts(h *Handle) daemonFacts {
	st, _ := readProcStat("self")
	f := daemonFacts{PID: os.Getpid(), SID: st.SID, PGID: st.PGID, TTYNr: st.TTYNr, Detached: h.Detached(), Files: len(h.Files()), FDs: map[int]string{}}
	f.Cwd, _ = os.Getwd()
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				f.Umask = strings.TrimSpace(v)
			}
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || target == fmt.Sprintf("/proc/%d/fd", os.Getpid()) {
			continue // the directory being listed
		}
		f.FDs[fd] = target
	}
	_, f.MarkerSelf = os.LookupEnv(StageEnv)
	out, _ := exec.Command("env").Output()
	f.MarkerGrandchild = strings.Contains(string(out), StageEnv+"=")
	return f
}

// openPTYSlave allocates a pseudo-terminal (posix_openpt, grantpt, unlockpt) and opens its
// slave without O_NOCTTY: a session leader without a terminal would acquire it.
func openPTYSlave() (string, error) {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return "", fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return "", fmt.Errorf("ptsname: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	if _, err := unix.Open(name, unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return "", fmt.Errorf("open %s: %w", name, err)
	}
	return name, nil
}
