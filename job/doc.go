// Package job runs one command as a supervised process tree: the one
// supervisor behind guard run, and the one a library user calls.
//
// The model:
//
//   - The job is its whole process tree. Start makes this process a child
//     subreaper (PR_SET_CHILD_SUBREAPER), so a descendant whose parent exits
//     (a double fork, a setsid'ed daemon) is reparented to this process
//     instead of to init: nothing the job starts can leave the tree. The tree
//     is empty exactly when this process has no children left, which the
//     kernel reports (waitid returns ECHILD); no polling decides it.
//   - When the main process ends, Spec.Leftovers says what happens to the rest
//     of the tree: Kill (the default, as systemd's KillMode=control-group):
//     SIGTERM to every remaining process, SIGKILL KillAfter later, and the job
//     is over only once every process is gone; Wait: the job lasts until the
//     last process ends by itself; Ignore: the job is over when the main
//     process ends, and the rest runs on.
//   - Stop sends SIGTERM to the whole tree and SIGKILL KillAfter later; Kill
//     sends SIGKILL now. Both keep going until every process of the tree is
//     gone (whatever the Leftovers policy), re-sending SIGKILL to any process
//     forked in between.
//   - Signals are never sent to a process or group after it was reaped. While
//     the main process is unreaped, its process group (created by Start) is
//     signalled; processes outside the group (setsid'ed ones) and, once the
//     main process is reaped, every remaining process are signalled one by one
//     through a pidfd opened after finding them in /proc and checked against
//     their start time, so a reused PID is never hit.
//   - Only this package reaps children while a Job runs: orphans are found
//     with waitid(P_ALL, WNOWAIT) and reaped by PID, the main process through
//     its exec.Cmd, so its status is never stolen.
//
// Why a subreaper and not a cgroup per run: a cgroup would also hold
// processes that another program re-parents away, but it needs root, a
// writable, delegated cgroup v2 hierarchy (under systemd, Delegate=yes) and
// cleanup of its own, none of which a cron job or a container's PID 1 can
// count on; hybrid hosts have no usable v2 hierarchy at all. A subreaper
// works for any user, in any container, with no setup, and the kernel itself
// says when the tree is empty. What it cannot hold: a process that the job
// asks another daemon to start (systemd-run, at, a D-Bus activation) is not a
// descendant; and if this process is SIGKILLed, the main process gets SIGKILL
// (Pdeathsig) but its descendants are reparented to the next subreaper or
// init and run on. Under systemd, KillMode=control-group (the default) then
// stops them; guard status lists them and guard stop stops them. Spec.PIDNamespace
// (guard run --pid-namespace, root) closes that hole: the command runs in a
// PID namespace of its own under an init that dies with this process, and
// the kernel kills every process of a namespace whose init died.
//
// A process that runs a Job should run one at a time and start no other
// long-lived children meanwhile: every child of the process counts as part of
// the tree.
package job
