// Package instance is guard's single-instance lock: an exclusive flock(2) on
// a lock file whose inode is the lock, with the holder's record written into
// the file in place.
//
// The model:
//
//   - The lock file is never deleted or replaced: its inode is the lock. After
//     taking the flock, the path is checked to still name the locked inode; if
//     it does not (the file was deleted or replaced meanwhile), the attempt is
//     retried on the new file.
//   - The holder writes a Record into the file: its PID on the first line,
//     then key=value lines (start time, boot id, PID namespace, host,
//     acquisition time, command, fencing token) and a checksum. A reader that
//     finds the record empty or partial treats it as "being written", never as
//     stale. A clean Release rewrites the record with an empty PID line, so a
//     crash (record left behind, lock free) can be told from a clean exit.
//   - The fencing token strictly increases with every acquisition on a host,
//     across crashes and SIGKILL at any point: it is the larger of the
//     previous token plus one and the acquisition time in microseconds since
//     the Unix epoch, so even a lost or deleted lock file cannot make it go
//     back (unless the wall clock is set back at the same time).
//   - The lock belongs to an open file description opened read-only; the
//     record is written through a second descriptor. A child that inherits
//     the locked description (FileLease.Inherit) holds the lock as long as it
//     runs and cannot write the record. Release never unlocks explicitly: it
//     closes, so the lock ends only when the last process holding the
//     description has closed it, as with flock(1). (gofrs/flock's Close
//     always unlocks, which would drop the lock under such a child; the
//     flock(2) calls are therefore made here, in filelock's style.)
//   - A lease notices within CheckInterval that its path no longer names the
//     locked file, or that its description no longer holds the lock (a child
//     ran flock -u); it never writes a record without holding the lock.
//   - A run that has to create the lock file first checks that no process
//     still holds the lock on a deleted file of that path; if one does, the
//     lock is busy.
//   - Contention is not an error of the lock: TryLock reports it as a
//     *HeldError, which matches ErrHeld and carries the holder.
//   - Inspect finds the holder without touching the lock, from /proc/locks and
//     /proc/PID/fd: a probe that took the lock, even shared, could make a cron
//     run see "busy".
//   - Unsafe paths are refused with an *UnsafeError: a symlink, a file that is
//     not regular or belongs to another user, a directory that other users can
//     write without the sticky bit, a network file system (unless allowed), or
//     a file that holds something other than a guard record.
//
// Locker and Lease are the interface a distributed backend implements too.
package instance
