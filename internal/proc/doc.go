// Package proc reads the few facts guard needs about processes from /proc
// and signals processes through pidfds, so that a PID read from a file is
// only ever acted on after its identity has been proven.
//
// A process is identified by its PID together with its start time (field 22
// of /proc/PID/stat, in clock ticks since boot), the boot id and the PID
// namespace. Any one of them alone can be recycled; together they cannot.
// See proc(5), pidfd_open(2) and pidfd_send_signal(2).
package proc
