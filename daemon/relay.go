package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/guardkit/guard/internal/proc"
)

// Relay is a private sd_notify socket for a child process: the child gets Path as its
// $NOTIFY_SOCKET, and the program, the main PID systemd listens to (NotifyAccess=main),
// decides what of the child's messages to pass on. It is what podman's
// --sdnotify=container proxy does for a container.
//
// The socket lives in a directory of its own, mode 0700, so that other users cannot
// even reach it; the socket asks for SCM_CREDENTIALS, and Run refuses datagrams without
// credentials, from another user (root excepted), and from a live process that is not a
// descendant of this one. A sender that has already exited (systemd-notify(1) does) is
// accepted on its user alone, since its ancestry can no longer be read. Descriptors a
// child passes along (FDSTORE=1, BARRIER=1) are closed at once: they are never stored.
type Relay struct {
	dir, path string
	conn      *net.UnixConn
	self      int
	refused   atomic.Uint64
	dropped   atomic.Uint64
	closeOnce sync.Once
	closeErr  error
}

// RelayMessage is what one datagram of the child said, after filtering.
type RelayMessage struct {
	PID, UID int    // the sender's, from SCM_CREDENTIALS
	State    string // the assignments kept (see FilterState), newline-separated; never empty
	Dropped  []string
}

// Has reports whether the message carries the assignment line (such as "READY=1").
func (m RelayMessage) Has(line string) bool {
	for _, l := range strings.Split(m.State, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// relayed are the sd_notify(3) keys a Relay passes on: the ones that describe the
// service's state. MAINPID, NOTIFYACCESS, WATCHDOG_USEC, FDSTORE and the like change
// what the manager trusts or keeps, which only the main process may ask for.
var relayed = map[string]bool{
	"READY": true, "RELOADING": true, "MONOTONIC_USEC": true, "STOPPING": true,
	"STATUS": true, "WATCHDOG": true, "EXTEND_TIMEOUT_USEC": true, "ERRNO": true,
	"BUSERROR": true,
}

// FilterState splits a datagram into the assignments a Relay passes on (READY,
// RELOADING, MONOTONIC_USEC, STOPPING, STATUS, WATCHDOG, EXTEND_TIMEOUT_USEC, ERRNO,
// BUSERROR), newline-joined in their order, and the keys (or malformed lines) it drops.
// Empty lines are skipped.
func FilterState(state string) (kept string, dropped []string) {
	var keep []string
	for _, l := range strings.Split(state, "\n") {
		if l == "" {
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if ok && relayed[k] {
			keep = append(keep, l)
			continue
		}
		if !ok {
			k = "malformed line"
		}
		dropped = append(dropped, k)
	}
	return strings.Join(keep, "\n"), dropped
}

// ListenRelay creates a directory (mode 0700) in parent, or in os.TempDir() when parent
// is empty or too deep for a socket path there (sun_path holds 107 bytes), and listens
// there on a unixgram socket with credentials passing on. Close removes both.
func ListenRelay(parent string) (*Relay, error) {
	if parent != "" && !socketPathFits(parent) && socketPathFits(os.TempDir()) {
		parent = ""
	}
	dir, err := os.MkdirTemp(parent, "guard-notify-")
	if err != nil {
		return nil, fmt.Errorf("notify relay: %w", err)
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		err = passCred(conn)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("notify relay: %w", err)
	}
	return &Relay{dir: dir, path: path, conn: conn, self: os.Getpid()}, nil
}

// socketPathFits reports whether the relay's socket, in a directory MkdirTemp makes in
// parent, has a path that fits a sockaddr_un (107 bytes and the NUL).
func socketPathFits(parent string) bool {
	const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1
	// MkdirTemp's name: the prefix and a random number of up to 10 digits (a uint32).
	return len(filepath.Join(parent, "guard-notify-"+strings.Repeat("9", 10), "notify.sock")) <= maxSunPath
}

// passCred turns SO_PASSCRED on: every datagram then carries its sender's credentials.
func passCred(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// Path is the socket's path, the child's $NOTIFY_SOCKET.
func (r *Relay) Path() string { return r.path }

// Refused counts the datagrams refused (no or foreign credentials, truncated, NUL
// bytes); Dropped those accepted but lost because out was full. Both read atomics.
func (r *Relay) Refused() uint64 { return r.refused.Load() }

// Dropped counts the messages lost because Run's out channel was full.
func (r *Relay) Dropped() uint64 { return r.dropped.Load() }

// notifyMax is the longest datagram read, systemd's own limit (NOTIFY_BUFFER_MAX).
const notifyMax = 4096

// Run reads the child's datagrams until ctx is done or the relay is closed, and sends
// each accepted one that keeps at least one assignment to out. It never blocks on out:
// when out is full the message is dropped and counted, so a child that floods the socket
// slows nobody but itself. It returns nil when stopped, or the read error that ended it.
func (r *Relay) Run(ctx context.Context, out chan<- RelayMessage) error {
	stop := context.AfterFunc(ctx, func() { r.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, notifyMax+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*253))
	for {
		n, oobn, flags, _, err := r.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("notify relay: %w", err)
		}
		cred := r.credentials(oob[:oobn])
		if !r.accept(cred, buf[:n], flags) {
			r.refused.Add(1)
			continue
		}
		kept, dropped := FilterState(string(buf[:n]))
		if kept == "" {
			continue
		}
		select {
		case out <- RelayMessage{PID: int(cred.Pid), UID: int(cred.Uid), State: kept, Dropped: dropped}:
		default:
			r.dropped.Add(1)
		}
	}
}

// credentials returns the sender's credentials from the control messages (nil if
// absent) and closes every descriptor passed along.
func (r *Relay) credentials(oob []byte) *unix.Ucred {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var cred *unix.Ucred
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			cred = c
		}
	}
	return cred
}

// accept decides whether a datagram may be relayed: credentials present, not truncated,
// no NUL byte, sent by this user (or root) from a descendant of this process, or from a
// process that has already exited.
func (r *Relay) accept(cred *unix.Ucred, b []byte, flags int) bool {
	switch {
	case cred == nil, flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0, len(b) > notifyMax:
		return false
	case strings.IndexByte(string(b), 0) >= 0:
		return false
	case int(cred.Uid) != os.Geteuid() && cred.Uid != 0:
		return false
	}
	ok, err := descendant(int(cred.Pid), r.self)
	return ok || errors.Is(err, proc.ErrGone)
}

// descendant reports whether pid is a descendant of ancestor, walking the parent chain
// in /proc. An error matching proc.ErrGone means some process of the chain has exited.
func descendant(pid, ancestor int) (bool, error) {
	for range 4096 {
		if pid <= 1 {
			return false, nil
		}
		st, err := proc.ReadStat(pid)
		if err != nil {
			return false, err
		}
		if st.PPID == ancestor {
			return true, nil
		}
		pid = st.PPID
	}
	return false, nil
}

// Close stops Run, closes the socket and removes its directory. It is idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = errors.Join(r.conn.Close(), os.RemoveAll(r.dir))
	})
	return r.closeErr
}
