package cli

import (
	"fmt"
	"io"
	"strings"
)

// manCmd prints the man page guard(1) in roff, made from the commands'
// own flag sets (make man; the .deb ships it). Hidden from the usage.
func (c *CLI) manCmd(args []string) error {
	fs := c.newFlags("man", "")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("man: unexpected argument %q", fs.Arg(0))
	}
	return c.writeMan(c.stdout)
}

// writeMan writes the man page. Its prose is fixed here; its synopsis,
// commands and flags come from the command table and the flag sets.
func (c *CLI) writeMan(w io.Writer) error {
	p := c.progName()
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"\" %s \"User Commands\"\n", strings.ToUpper(p), roffQuote(p+" "+c.version))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- run a command while holding a single\\-instance lock, and tell and control who holds it\n", roff(p))
	b.WriteString(".SH SYNOPSIS\n.nf\n")
	for _, cmd := range commands {
		if !cmd.hidden {
			fmt.Fprintf(&b, "\\fB%s %s\\fR %s\n", roff(p), roff(cmd.name), roff(cmd.args))
		}
	}
	b.WriteString(".fi\n")
	b.WriteString(roffText(c.manDescription(p)))
	b.WriteString(".SH COMMANDS\n")
	for _, cmd := range commands {
		if cmd.hidden {
			continue
		}
		fmt.Fprintf(&b, ".SS %s\n", roffQuote(strings.TrimSpace(p+" "+cmd.name+" "+cmd.args)))
		fmt.Fprintf(&b, "%s.\n", roff(capitalize(cmd.summary)))
		for _, f := range c.flagsOf(cmd).flags() {
			b.WriteString(".TP\n")
			fmt.Fprintf(&b, "\\fB\\-\\-%s\\fR", roff(f.name))
			if f.value != "" {
				fmt.Fprintf(&b, " \\fI%s\\fR", roff(f.value))
			}
			fmt.Fprintf(&b, "\n%s\n", roff(f.help()))
		}
	}
	b.WriteString(roffText(manTail(p)))
	_, err := io.WriteString(w, b.String())
	return err
}

// roff escapes text for a roff line: backslashes and hyphens, and a
// leading dot or quote that would start a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func roffQuote(s string) string { return `"` + strings.ReplaceAll(roff(s), `"`, `\(dq`) + `"` }

// roffText turns the man page's prose into roff: a line "# TITLE" starts
// a section, "## TITLE" a subsection, "- TERM: text" a tagged paragraph,
// an empty line a paragraph, a line starting with two spaces a literal
// display; other lines are escaped text.
func roffText(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		switch {
		case strings.HasPrefix(line, "# "):
			fmt.Fprintf(&b, ".SH %s\n", roffQuote(line[2:]))
		case strings.HasPrefix(line, "## "):
			fmt.Fprintf(&b, ".SS %s\n", roffQuote(line[3:]))
		case strings.HasPrefix(line, "- "):
			term, text, _ := strings.Cut(line[2:], ": ")
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roff(term), roff(text))
		case line == "":
			b.WriteString(".PP\n")
		case strings.HasPrefix(line, "  "):
			fmt.Fprintf(&b, ".nf\n.RS 4\n%s\n.RE\n.fi\n", roff(strings.TrimSpace(line)))
		default:
			fmt.Fprintf(&b, "%s\n", roff(line))
		}
	}
	return b.String()
}

func (c *CLI) manDescription(p string) string {
	handover := "A command line with --etcd, or GUARD_ETCD_ENDPOINTS in the environment, is handed over to guard-etcd(1), which keeps the lock in etcd."
	if c.backend != nil {
		handover = "guard-etcd keeps the lock in etcd: --etcd ENDPOINTS or GUARD_ETCD_ENDPOINTS names the cluster, and the lock is a key prefix (--lock KEY, or /guard/NAME/). guard(1) hands any command line that asks for etcd over to it."
	}
	return strings.ReplaceAll(strings.ReplaceAll(`
# DESCRIPTION
PROG makes "exactly one instance" true for daemons and cron jobs. PROG run takes an exclusive flock(2) lock on a lock file, writes its record (PID, process start time, boot id, PID namespace, host, command, fencing token) into it, and runs COMMAND while it holds the lock; the lock is released only when every process of the job's tree has ended. PROG status, stop and reload act only on a holder they can prove holds the lock.

Every command takes --lock PATH and/or --name NAME. --name names the job (in logs, metrics and the textfile) and, without --lock, picks the lock file NAME.lock in the default directory: /run/guard for root, $XDG_RUNTIME_DIR/guard otherwise, or $GUARD_DIR. status and stop also take --pidfile PATH alone, for a classic PID file written by another daemon.

Flags take one or two dashes (--wait 10s, --wait=10s, -wait 10s). HANDOVER
`, "HANDOVER", handover), "PROG", p)
}

func manTail(p string) string {
	return strings.ReplaceAll(`
# EXIT STATUS
- job's own: run: the job's exit code; 128+N if the job died of signal N; 126 if COMMAND cannot be run, 127 if it is not found
- 64: usage error
- 69: the lock was lost and the job stopped (a local lock file replaced or unlocked, an etcd lease lost), etcd unavailable, or guard-etcd not installed
- 70: internal error
- 73: cannot create the lock or PID file (read-only file system, missing directory)
- 75: lock busy, or the wait timed out (--conflict-exit changes it)
- 77: permission denied
- 78: refused as unsafe or malformed (symbolic link, foreign owner, directory writable by others, malformed PID file, network file system without --allow-network-fs)

status uses the LSB codes: 0 running (lock held), 1 not running but a PID file or record remains (stale), 3 not running, 4 unknown (cannot verify). stop: 0 stopped, or was not running; 1 still running after its timeout; 4 the holder cannot be verified (nothing is signalled). reload: 0 the holder was sent SIGHUP; 7 nothing holds the lock; 4 the holder cannot be verified. Every non-zero exit prints one line naming the path, the PID if any, and the reason.
# ENVIRONMENT
- GUARD_DIR: the default lock directory.
- XDG_RUNTIME_DIR: for a user other than root, the default lock directory is $XDG_RUNTIME_DIR/guard.
- GUARD_ETCD_ENDPOINTS: keep the lock in etcd (see guard-etcd).
- GUARD_PARSE_ONLY: when 1, every command checks its command line and exits 0 without acting.
- GUARD_SYSLOG_SOCKET: the syslog socket of --output syslog, instead of /dev/log.
- GUARD_PING_URL: the URL of --ping when the flag is absent, kept out of the command line that ps shows; the job does not inherit it.
- GUARD_PUSH_INSTANCE: the instance label of --push (default: the host name).
- NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID: set by systemd; run speaks sd_notify and pings the watchdog as --notify says.
- JOURNAL_STREAM: set by systemd; when it names stderr, PROG's lines carry journald priorities (<N>).
- RUNTIME_DIRECTORY: where --notify job puts the relay's socket (else the temporary directory).
- GUARD_LOCK, GUARD_NAME, GUARD_TOKEN, GUARD_LOCK_FD: given to the job: the lock's path, the job's name, the fencing token (a number that strictly increases with every acquisition of the lock) and the descriptor of the lock file the job inherits.
# FILES
- /run/guard/NAME.lock: the lock file of --name NAME for root. PROG never deletes or replaces it: its inode is the lock.
# EXAMPLES
A cron job that never overlaps itself, silent when skipped:
  PROG run --name backup --quiet --timeout 2h -- /usr/local/bin/backup
A hot standby that takes over as soon as the holder ends:
  PROG run --name worker --wait forever -- /usr/local/bin/worker
Who holds it, and stop it:
  PROG status --name backup; PROG stop --name backup --timeout 30s
# SEE ALSO
flock(1), start-stop-daemon(8), systemd.service(5), crontab(5), guard-etcd(1)
`, "PROG", p)
}
