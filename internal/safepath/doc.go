// Package safepath opens the directories and files guard writes without
// letting another user redirect it, the third promise of the contract: it
// never follows a symbolic link, truncates or chowns through a path another
// user controls, nor trusts a directory that others can write.
//
// OpenDir resolves a path from "/" one component at a time with
// openat(2) and O_PATH|O_DIRECTORY|O_NOFOLLOW, so it sees every symbolic
// link on the way and decides about each. The rule, applied to each
// directory it looks a name up in and to the directory it returns:
//
//   - the directory is owned by root or by the caller's effective UID;
//   - it is not writable by group or others, unless it has the sticky bit
//     (like /tmp: others cannot rename or delete what they do not own, and
//     files in it are judged by their owner);
//   - a symbolic link is followed only if it is owned by root or the caller
//     (the directory holding it passed the rule above, since the link was
//     looked up in it): /var/run -> /run keeps working, a link that another
//     user planted in their own directory is refused. At most 40 links are
//     followed.
//
// Options.AnyOwner relaxes the ownership part for readers of files that
// another user's daemon writes (classic PID files): see Options.
//
// A refusal is an *UnsafeError (errors.Is(err, ErrUnsafe)) that names the
// directory or link at fault and says why; a missing component, a read-only
// file system, denied access and other failures of the system calls are
// *fs.PathError naming the path as the caller gave it.
//
// Everything after OpenDir goes through the returned Dir's descriptor:
// Dir.OpenFile (O_NOFOLLOW, regular files of trusted owners only),
// Dir.Mkdir and Dir.WriteFile (temporary file, fsync, renameat, fsync of
// the directory), so a directory renamed or swapped for a link afterwards
// cannot redirect them.
//
// The package is for Linux; elsewhere a plain path-based fallback keeps the
// packages that import it building, without the guarantees.
package safepath
