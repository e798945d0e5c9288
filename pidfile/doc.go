// Package pidfile reads, writes and judges classic PID files: a file that
// holds one process ID in ASCII decimal followed by a newline ("1234\n"), as
// written by start-stop-daemon(8), most init scripts and many daemons.
//
// A PID file is only a number in a file. Nothing stops the process from
// dying and the kernel from handing the same number to an unrelated process,
// nor another user from writing a number of their choice into a file the
// reader trusts. The package therefore does four things, and nothing more:
//
//   - Parse and Read accept only a strictly formed number in the range the
//     kernel hands out (2 <= pid < pid_max), from a regular file that is not a
//     symbolic link and that only trusted users can have written (see Read).
//   - Write replaces a PID file atomically (temporary file, fsync, rename,
//     fsync of the directory), and File.Remove deletes it only while it is
//     still the file that was written.
//   - Inspect tells whether the PID still names the process that wrote the
//     file: Running, Dead, Zombie, Reused (the process started after the
//     file was last written) or Unknown (it cannot be verified).
//   - Info.Process hands out a pidfd-backed handle (internal/proc) only for a
//     process proven, at that moment, to be the one the file names. Signals
//     go through that handle, so PID reuse between the check and the signal
//     cannot redirect them; PID 1, non-positive PIDs (process groups,
//     "every process") and the calling process itself are always refused.
//
// PID files that a lock protects (guard's own, written by "guard run
// --pidfile") need none of the guessing in Inspect: the lock decides who is
// running. Inspect is for PID files written by other programs.
//
// The package is Linux-only: it relies on /proc, pidfd_open(2) and
// CLOCK_BOOTTIME. See proc(5) and pidfd_open(2).
package pidfile
