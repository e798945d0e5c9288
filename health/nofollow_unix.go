//go:build unix

package health

import "syscall"

// oNoFollow makes open fail on a symbolic link in the last path element;
// oNonBlock keeps open from blocking on a FIFO planted in its place.
const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonBlock = syscall.O_NONBLOCK
)
