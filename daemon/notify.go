package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// NotifySocketEnv names the variable through which systemd passes the notification
// socket of a Type=notify (or notify-reload) service.
const NotifySocketEnv = "NOTIFY_SOCKET"

// Notify sends state, one or more newline-separated "KEY=VALUE" assignments as described
// in sd_notify(3), in a single datagram to the socket named by $NOTIFY_SOCKET.
//
// The socket is an absolute path or, with a leading '@', a Linux abstract socket name.
// Notify does not unset $NOTIFY_SOCKET, so children the program starts can see it.
//
// Results:
//   - (false, nil): not under systemd ($NOTIFY_SOCKET unset or empty); nothing was sent.
//   - (false, err): $NOTIFY_SOCKET is set but malformed (a relative path, or another
//     scheme such as vsock, which is not supported), or sending failed.
//   - (false, err) also when the socket's buffer stays full for NotifyTimeout (the
//     manager does not read): Notify never blocks longer than that.
//   - (true, nil): the datagram was handed to the socket. It says nothing about whether
//     systemd accepted it (NotifyAccess= may discard it).
func Notify(state string) (bool, error) {
	name := os.Getenv(NotifySocketEnv)
	if name == "" {
		return false, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return false, fmt.Errorf("sd_notify: unsupported %s %q: want an absolute path or @abstract name", NotifySocketEnv, name)
	}
	// net turns a leading '@' into the abstract namespace's NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	// A manager that stopped reading must not hang the caller: a full socket
	// buffer fails the send after NotifyTimeout.
	conn.SetWriteDeadline(time.Now().Add(NotifyTimeout))
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// NotifyTimeout is how long Notify waits for room in a full notification socket.
const NotifyTimeout = 2 * time.Second

// ExtendTimeout sends "EXTEND_TIMEOUT_USEC=<d in µs>": the current start, runtime or stop
// timeout is extended so that it ends no earlier than d from now (the manager keeps the
// longer of the two; send it again before d has passed to extend further). Results as
// for Notify.
func ExtendTimeout(d time.Duration) (bool, error) {
	return Notify(ExtendTimeoutAssignment(d))
}

// ExtendTimeoutAssignment returns the "EXTEND_TIMEOUT_USEC=<µs>" line for d, to combine
// with others in one datagram.
func ExtendTimeoutAssignment(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10)
}

// StatusAssignment returns the "STATUS=text" line, line breaks replaced by spaces, to
// combine with others in one datagram.
func StatusAssignment(text string) string { return "STATUS=" + oneLine(text) }

// ReloadingAssignment returns "RELOADING=1\nMONOTONIC_USEC=<now>", as Reloading sends it.
func ReloadingAssignment() (string, error) {
	usec, err := monotonicUsec()
	if err != nil {
		return "", fmt.Errorf("sd_notify: read CLOCK_MONOTONIC: %w", err)
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10), nil
}

// NotifyReady sends "READY=1": start-up (or a reload) is complete. Results as for Notify.
func NotifyReady() (bool, error) { return Notify("READY=1") }

// Reloading sends "RELOADING=1" together with "MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>",
// in one datagram, as Type=notify-reload services must. Call Ready when the reload is
// done, whether it succeeded or not. Results as for Notify.
func Reloading() (bool, error) {
	state, err := ReloadingAssignment()
	if err != nil {
		return false, err
	}
	return Notify(state)
}

// Stopping sends "STOPPING=1": the program is shutting down. Results as for Notify.
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Status sends "STATUS=text", the free-form line systemctl status shows. Newlines in text
// would start new assignments, so they are replaced by spaces. Results as for Notify.
func Status(text string) (bool, error) {
	return Notify(StatusAssignment(text))
}

// oneLine replaces line breaks so text cannot inject further sd_notify assignments.
func oneLine(text string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text)
}

// monotonicUsec reads CLOCK_MONOTONIC, the clock systemd compares MONOTONIC_USEC with.
func monotonicUsec() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return ts.Nano() / int64(time.Microsecond), nil
}
