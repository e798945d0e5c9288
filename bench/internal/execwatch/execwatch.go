// Package execwatch records when processes exec, from the kernel's process
// events connector, for the benchmark drivers in bench/.
package execwatch

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"
)

// Watcher records when processes exec, from the kernel's process events
// connector (root only, in the initial network namespace). The event's
// timestamp is ktime_get_ns, i.e. CLOCK_MONOTONIC, taken inside execve: it
// tells when a program was exec'ed, free of its own start-up time.
type Watcher struct {
	fd   int
	mu   sync.Mutex
	seen map[int]int64 // PID -> exec time, since the last reset
}

// Netlink process connector constants (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc         = 1
	cnValProc         = 1
	procCnMcastListen = 1
	procEventExec     = 2
	nlHdrLen          = 16 // struct nlmsghdr
	cnMsgLen          = 20 // struct cn_msg
)

// New subscribes to process events, or returns an error when the
// connector is not available.
func New() (*Watcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	msg := make([]byte, nlHdrLen+cnMsgLen+4)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))   // nlmsg_len
	ne.PutUint16(msg[4:], unix.NLMSG_DONE)    // nlmsg_type
	ne.PutUint32(msg[16:], cnIdxProc)         // cn_msg.id.idx
	ne.PutUint32(msg[20:], cnValProc)         // cn_msg.id.val
	ne.PutUint16(msg[32:], 4)                 // cn_msg.len
	ne.PutUint32(msg[36:], procCnMcastListen) // the operation
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	w := &Watcher{fd: fd, seen: map[int]int64{}}
	go w.read()
	return w, nil
}

func (w *Watcher) read() {
	buf := make([]byte, 64<<10)
	const ev = nlHdrLen + cnMsgLen // struct proc_event: what, cpu, timestamp_ns, data
	for {
		n, _, err := unix.Recvfrom(w.fd, buf, 0)
		if err == unix.ENOBUFS || err == unix.EINTR {
			continue // overrun by a busy machine: that sample goes unmatched
		}
		if err != nil {
			return
		}
		for b := buf[:n]; len(b) >= ev+24; {
			l := int(binary.NativeEndian.Uint32(b))
			if binary.NativeEndian.Uint32(b[ev:]) == procEventExec {
				ts := int64(binary.NativeEndian.Uint64(b[ev+8:]))
				tgid := int(binary.NativeEndian.Uint32(b[ev+20:]))
				w.mu.Lock()
				w.seen[tgid] = ts
				w.mu.Unlock()
			}
			if l < ev || l > len(b) {
				break
			}
			b = b[(l+3)&^3:]
		}
	}
}

// Reset forgets the events seen so far.
func (w *Watcher) Reset() {
	w.mu.Lock()
	clear(w.seen)
	w.mu.Unlock()
}

// ExecTime returns when pid last exec'ed since the last reset, in
// CLOCK_MONOTONIC nanoseconds.
func (w *Watcher) ExecTime(pid int) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.seen[pid]
	return t, ok
}

// Seen returns the PIDs that exec'ed since the last reset, with the time of
// their last exec.
func (w *Watcher) Seen() map[int]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[int]int64, len(w.seen))
	for pid, t := range w.seen {
		m[pid] = t
	}
	return m
}
