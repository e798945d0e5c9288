// Package health serves what guard and programs built from its kit report
// about themselves: HTTP probes, Prometheus metrics, and node_exporter
// textfiles.
//
// # Model
//
// The program owns one [State] and tells it what happens (lock path set,
// waiting as a standby, lock acquired, contended, lost or released, reloads,
// readiness, job runs). State keeps an immutable snapshot behind an atomic
// pointer, so every reader (probe handlers, metric scrapes) answers from
// memory without taking a lock that a blocking syscall may hold, and never
// touches the lock file.
//
// The HTTP side asks only for tiny consumer-side interfaces ([LockReporter],
// [ReloadReporter] and a readiness func), so it never imports the lock or
// daemon packages; State satisfies them. [NewHandler] builds the endpoints on
// its own mux:
//
//   - /livez: 200 "ok" while the process answers at all.
//   - /readyz: 200 only while the lock is held, its path still names the
//     locked file, and the program says it is ready; 503 otherwise,
//     including a hot standby that waits for the lock.
//   - /healthz: the status code of /readyz with a JSON body describing the
//     lock and reloads.
//   - /metrics: the Prometheus text format from a private registry
//     ([NewRegistry]); no default registry, no pprof, no expvar.
//
// Adding ?verbose to /livez, /readyz or /healthz returns the per-check text
// view Kubernetes uses ("[+]lock ok", "[-]ready failed: ...", then
// "readyz check passed" or "readyz check failed"). Unknown paths are 404,
// methods other than GET and HEAD are 405.
//
// [Server] binds exactly the address it is given, reports bind errors from
// [Server.Start] synchronously, sets every http.Server timeout, and shuts down
// gracefully within the caller's deadline.
//
// [WriteTextfile] writes a run's outcome for node_exporter's textfile
// collector (https://github.com/prometheus/node_exporter#textfile-collector),
// accumulating counters across runs from the previous file.
//
// # Cardinality
//
// No label value ever comes from a path, PID, argument or error text. The
// only label values are the fixed sets documented on [JobRun.Result] and the
// reload result ("success", "failure"), the build info fixed at start, and,
// in textfiles only, the job name (one value per file).
package health
