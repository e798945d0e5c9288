// Package daemon is the run-time half of a well-behaved Unix daemon: detaching from the
// terminal, reporting readiness, handling the classic signals, talking to systemd, logging
// where the operator looks, and doing an init's duties as PID 1 in a container.
//
// The model is W. Richard Stevens' "Daemon Processes" (Advanced Programming in the UNIX
// Environment, ch. 13) done without fork, which Go cannot do safely: Detach re-executes
// the program twice (/proc/self/exe), once in a new session and once more so the daemon
// is not a session leader and can never acquire a controlling terminal; it sets the umask,
// changes to "/", points 0-2 at /dev/null or a log file and lets no other inherited
// descriptor through. The starting process waits on a pipe and exits 0 only when the
// daemon calls Handle.Ready, or non-zero with the daemon's own error text after
// Handle.Fail, an early exit, or a start timeout. Under systemd or as PID 1 the program
// stays in the foreground and readiness goes to systemd instead.
//
// Notify and its helpers implement sd_notify(3) (READY=1, RELOADING=1, STOPPING=1,
// STATUS=, WATCHDOG=1, EXTEND_TIMEOUT_USEC=); WatchdogInterval, Watchdog and
// WatchdogWhile implement sd_watchdog_enabled(3). Relay is a private notification socket
// for a child, whose messages the main process filters and passes on (NotifyAccess=main
// with a notify-aware child, as podman's --sdnotify=container does).
// Catch and Control implement the signal contract: SIGHUP reloads (serialized,
// coalesced, deferred until ready, counted), SIGTERM/SIGINT stop gracefully with a
// deadline and a second one forces exit, SIGUSR1 reopens log files. NewStderrHandler,
// NewStderrJSONHandler, NewStderrMessageHandler, NewSyslogHandler and NewFileHandler are
// log/slog handlers for stderr (with journald's "<N>" priorities when it is the journal),
// syslog(3) and logrotate-friendly files. Running a child process as a supervised tree (an init's
// duties: reaping, forwarding, stopping what it leaves behind) is package job's.
//
// A daemon's main:
//
//	sigs := daemon.Catch()                    // first: no signal kills us during start-up
//	h, err := daemon.Detach(daemon.DetachOptions{Output: logPath})
//	if err != nil { ... exit 70 }             // only the daemon (or the foreground) gets here
//	ctl := &daemon.Control{Reload: reload, Reopen: h.ReopenOutput, Handle: h}
//	err = ctl.Run(ctx, sigs, func(ctx context.Context) error {
//		if err := setUp(); err != nil {
//			h.Fail(daemon.WithExitCode(75, err)) // the starter prints err, exits 75
//			return err
//		}
//		ctl.Ready()                           // the starter exits 0; READY=1 to systemd
//		return serve(ctx)
//	})
//
// Detaching is Linux-only (they return errors.ErrUnsupported elsewhere);
// the rest needs a Unix system.
//
// References: APUE 3rd ed. ch. 13; sd_notify(3), sd_watchdog_enabled(3), sd-daemon(3),
// systemd.exec(5) ($JOURNAL_STREAM), daemon(7); syslog(3) and RFC 3164; setsid(2),
// close_range(2).
package daemon
